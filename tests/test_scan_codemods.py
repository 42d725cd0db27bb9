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


        def train(state, steps):
          # TODO(orbax-v1): ckptr = ocp_v1.training.Checkpointer(directory, custom_metadata=metadata) \N{EM DASH} exact arguments for your options: orbax_compat.v1_source(mngr) or `python -m orbax_compat v1-config`; options become v1 policies and Context options; see the options table
          mngr = ocp.CheckpointManager('/ckpt')
          for step in range(steps):
            mngr.v1_checkpointer.save_checkpointables_async(step, {'default': state})
          mngr.v1_checkpointer.wait()
          # TODO(orbax-v1): ranked = sorted((c for c in ckptr.checkpoints if c.metrics is not None), key=lambda c: best_fn(c.metrics), reverse=best_mode == 'min') if best_fn else list(ckptr.checkpoints); ranked[-1].step if ranked else None \N{EM DASH} steps without metrics never rank; without best_fn, the latest; v1 keeps metrics per checkpoint; the best is computed
          best = mngr.best_step()
          return mngr.v1_checkpointer.latest.step if mngr.v1_checkpointer.latest else None, best
        """)

  def test_adds_the_imports_the_v1_code_needs(self):
    self.assertCodemod(
        """
        import orbax_compat as ocp

        mngr = ocp.CheckpointManager('/ckpt')
        tree = mngr.restore(1, args=ocp.args.StandardRestore(like))
        """,
        """
        import orbax_compat as ocp
        import jax
        import numpy as np

        # TODO(orbax-v1): ckptr = ocp_v1.training.Checkpointer(directory, custom_metadata=metadata) \N{EM DASH} exact arguments for your options: orbax_compat.v1_source(mngr) or `python -m orbax_compat v1-config`; options become v1 policies and Context options; see the options table
        mngr = ocp.CheckpointManager('/ckpt')
        tree = mngr.v1_checkpointer.load(1, jax.tree.map(lambda x: np.empty(x.shape, x.dtype) if isinstance(x, jax.ShapeDtypeStruct) and x.sharding is None else x, like), checkpointable_name='default')
        """)

  def test_keeps_managers_orbax_builds(self):
    """Orbax's own class (the swap leaves `orbax.checkpoint.X`) has no v1_checkpointer."""
    self.assertCodemod(
        """
        import orbax.checkpoint

        orbax.checkpoint.CheckpointManager('/d').close()
        """,
        f"""
        import orbax.checkpoint

        {INIT_TODO}
        # TODO(orbax-v1): ckptr.close()
        orbax.checkpoint.CheckpointManager('/d').close()
        """)

  def test_a_second_run_changes_nothing(self):
    code = f"""
        import orbax_compat as ocp

        {INIT_TODO}
        m = ocp.CheckpointManager('/d')
        print(m.v1_checkpointer.directory)
        """
    self.assertCodemod(code, code)


INIT_TODO = (
    '# TODO(orbax-v1): ckptr = ocp_v1.training.Checkpointer(directory, custom_metadata=metadata) '
    '\N{EM DASH} exact arguments for your options: orbax_compat.v1_source(mngr) or `python -m '
    'orbax_compat v1-config`; options become v1 policies and Context options; see the options '
    'table')
