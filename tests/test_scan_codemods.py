"""The scanner's codemods, each with libcst's `CodemodTest`.

Run alone (as here), a command scans the module it is given first (the same
analysis a whole scan makes, on that one module), then rewrites it.
"""

from libcst.codemod import CodemodTest

from orbax_compat.tools.scan.import_swap import ImportSwapCommand
from orbax_compat.tools.scan.to_v1 import ToV1Command


class ImportSwapTest(CodemodTest):
  TRANSFORM = ImportSwapCommand

  def test_swaps_aliased_imports(self):
    self.assertCodemod(
        """
        import numpy as np, orbax.checkpoint as ocp  # legacy
        from orbax import checkpoint
        from orbax.checkpoint import (
            CheckpointManager,  # the manager
            args as a,
        )

        m = ocp.CheckpointManager('/d')
        """,
        """
        import numpy as np, orbax_compat as ocp  # legacy
        import orbax_compat as checkpoint
        from orbax_compat import (
            CheckpointManager,  # the manager
            args as a,
        )

        m = ocp.CheckpointManager('/d')
        """)

  def test_leaves_what_would_not_stay_correct(self):
    code = """
        import orbax.checkpoint
        import orbax.checkpoint.args as oargs
        from orbax.checkpoint.args import StandardSave
        from orbax.checkpoint import *
        from orbax.checkpoint import no_such_name
        from orbax import checkpoint, export
        import orbax_compat as ocp
        """
    self.assertCodemod(code, code)


class ToV1Test(CodemodTest):
  """Run alone, a command sees one module: it rewrites and comments, and
  finishes no manager (that takes the whole-repo analysis of a scan)."""

  TRANSFORM = ToV1Command

  def test_mechanical_calls_to_v1_and_todos_above_the_rest(self):
    self.assertCodemod(
        """
        import orbax.checkpoint as ocp


        def train(state, steps):
          mngr = ocp.CheckpointManager('/ckpt')
          for step in range(steps):
            mngr.save(step, args=ocp.args.StandardSave(state))
          mngr.wait_until_finished()
          best = mngr.best_step()
          return mngr.latest_step(), best
        """,
        """
        import orbax_compat as ocp
        """ + _helpers('v0_best_step') + """

        def train(state, steps):
          # TODO(orbax-v1): see MIGRATION_TABLE.md#init; in v1:
          #   ocp_v1.training.Checkpointer('/ckpt')
          #   exact arguments: orbax_compat.v1_source(mngr)
          mngr = ocp.CheckpointManager('/ckpt')
          for step in range(steps):
            if step not in [c.step for c in mngr.v1_checkpointer.checkpoints]:
              mngr.v1_checkpointer.save_checkpointables_async(step, {'default': state})
          mngr.v1_checkpointer.wait()
          best = v0_best_step(mngr.v1_checkpointer, None, 'max')
          return (
              mngr.v1_checkpointer.latest.step if mngr.v1_checkpointer.latest else None,
              best)
        """)

  def test_adds_the_helpers_and_imports_the_v1_code_needs(self):
    """Imports where isort puts them; helpers after them, in the module's indentation."""
    self.assertCodemod(
        """
        import orbax_compat as ocp

        if True:
            mngr = ocp.CheckpointManager('/ckpt')
            tree = mngr.restore(1, args=ocp.args.StandardRestore(like))
        """,
        """
        import jax
        import numpy as np
        import orbax_compat as ocp
        """ + _helpers('v0_standard_abstract', 'v0_standard_restore', indent='    ') + """

        if True:
            # TODO(orbax-v1): see MIGRATION_TABLE.md#init; in v1:
            #   ocp_v1.training.Checkpointer('/ckpt')
            #   exact arguments: orbax_compat.v1_source(mngr)
            mngr = ocp.CheckpointManager('/ckpt')
            tree = v0_standard_restore(mngr.v1_checkpointer, 1, like)
        """)

  def test_rewrites_orbaxs_own_class_where_no_swap_reaches(self):
    """`orbax.checkpoint.CheckpointManager` with no alias (t5x): the shim's class."""
    self.assertCodemod(
        """
        import orbax.checkpoint

        orbax.checkpoint.CheckpointManager('/d').close()
        """,
        """
        import orbax.checkpoint
        import orbax_compat

        # TODO(orbax-v1): see MIGRATION_TABLE.md#init; in v1:
        #   ocp_v1.training.Checkpointer('/d')
        #   exact arguments: orbax_compat.v1_source(mngr)
        orbax_compat.CheckpointManager('/d').v1_checkpointer.close()
        """)

  def test_a_second_run_changes_nothing(self):
    code = """
        import orbax_compat as ocp

        # TODO(orbax-v1): see MIGRATION_TABLE.md#init; in v1:
        #   ocp_v1.training.Checkpointer('/d')
        #   exact arguments: orbax_compat.v1_source(mngr)
        m = ocp.CheckpointManager('/d')
        print(m.v1_checkpointer.directory)
        """
    self.assertCodemod(code, code)


def _helpers(*names, indent='  '):
  """The helpers --to-v1 writes after the imports (in the module's indentation),
  as the test's dedented source shows them."""
  import textwrap  # pylint: disable=import-outside-toplevel

  import libcst as cst  # pylint: disable=import-outside-toplevel

  from orbax_compat.mapping import members  # pylint: disable=import-outside-toplevel
  out = ''
  for name in names:
    code = cst.parse_module(members.HELPERS[name]).with_changes(default_indent=indent).code
    out += '\n\n' + code
  return textwrap.indent(out, ' ' * 8).replace(' ' * 8 + '\n', '\n').rstrip('\n') + '\n'
