"""Issue 19, item by item, each as the real code it was seen in.

The programs of tests/migration_programs/ prove the whole set by running
(tests/test_migration_programs.py); these check each rule on the shape that
broke it: what `--fix` and `--to-v1` write, report and exit with.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import textwrap

import pytest

from orbax_compat.mapping import members
from orbax_compat.tools import scan


def project(tmp_path, files: dict[str, str], config: str = '') -> dict:
  """A project (a pyproject.toml at its root) with `files`; {name: path}."""
  (tmp_path / 'pyproject.toml').write_text(config)
  out = {}
  for name, text in files.items():
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    out[name] = path
  return out


def run_python(code: str, cwd, block_orbax_compat: bool = False) -> str:
  prefix = 'import sys; sys.modules["orbax_compat"] = None\n' if block_orbax_compat else ''
  proc = subprocess.run([sys.executable, '-c', prefix + code], cwd=cwd, capture_output=True,
                        text=True, timeout=300, env={'ORBAX_COMPAT_WARNINGS': 'off',
                                                     'PATH': '/usr/bin:/bin'})
  assert proc.returncode == 0, proc.stderr[-3000:]
  return proc.stdout


# --- Item 1: StandardRestore of jax.eval_shape's tree --------------------------


def test_eval_shape_restore_rewrites_to_the_exact_helper(tmp_path):
  """Orbax's guide for PyTorch users: the abstract tree comes from eval_shape.
  v0 restores its leaves with the checkpoint's shardings (numpy where none);
  the rewrite calls v0_standard_restore, which does the same on v1, and
  evaluates `jax.eval_shape(init)` once, where v0 did."""
  files = project(tmp_path, {'guide.py': '''\
      import jax
      import orbax.checkpoint as ocp


      def restore(path, init):
        mngr = ocp.CheckpointManager(path)
        abstract = jax.eval_shape(init)
        state = mngr.restore(mngr.latest_step(), args=ocp.args.StandardRestore(abstract))
        other = mngr.restore(0, args=ocp.args.StandardRestore(jax.eval_shape(init)))
        return state, other
      '''})
  result = scan.run([str(files['guide.py'])], to_v1=True)
  text = files['guide.py'].read_text()
  assert members.HELPERS['v0_standard_abstract'] in text
  assert members.HELPERS['v0_standard_restore'] in text
  # Every use rewritten: the manager is finished (a v1 Checkpointer), so ckptr is mngr.
  assert [m['finished'] for m in result.managers] == [True]
  assert ('  state = v0_standard_restore(\n      mngr, mngr.latest.step if mngr.latest else None, '
          'abstract)\n') in text
  assert '  other = v0_standard_restore(mngr, 0, jax.eval_shape(init))\n' in text


# --- Item 2: a save of a step that exists --------------------------------------


def test_saves_keep_v0s_false_for_a_step_that_exists(tmp_path):
  """A resumed loop saves the step it resumed from: v0 returns False, v1's
  save raises. As a statement: `if`, or `try` where an argument is a call (it
  is evaluated whatever the step, as in v0); as a value: the guard in an
  expression (arguments that are calls kept, with the reason)."""
  files = project(tmp_path, {'loop.py': '''\
      import orbax.checkpoint as ocp


      def loop(path, state, start, batches):
        mngr = ocp.CheckpointManager(path)
        for step in range(start, start + 3):
          mngr.save(step, args=ocp.args.StandardSave(state))
          mngr.save(step + 100, args=ocp.args.StandardSave(next(batches)))
          ok = mngr.save(step, args=ocp.args.StandardSave(state))
          kept = mngr.save(step, args=ocp.args.StandardSave(next(batches)))
        return ok, kept
      '''})
  result = scan.run([str(files['loop.py'])], to_v1=True)
  text = files['loop.py'].read_text()
  assert ('    if step not in [c.step for c in mngr.v1_checkpointer.checkpoints]:\n'
          "      mngr.v1_checkpointer.save_checkpointables_async(step, {'default': state})\n"
          ) in text
  assert ('    try:\n      mngr.v1_checkpointer.save_checkpointables_async(\n'
          "          step + 100, {'default': next(batches)})\n"
          '    except ocp_v1.training.errors.StepAlreadyExistsError:\n      pass\n') in text
  assert ('    ok = (step not in [c.step for c in mngr.v1_checkpointer.checkpoints]\n'
          '          and mngr.v1_checkpointer.save_checkpointables_async(\n'
          "              step, {'default': state}) is not None)\n") in text
  assert 'from orbax.checkpoint.experimental import v1 as ocp_v1\n' in text
  kept = next(f for f in result.findings if f.line == 10 and f.label == 'save')
  assert kept.reason == '`next(batches)` would be evaluated a different number of times'


# --- Item 3: managers built through the submodule ------------------------------


def test_managers_built_through_the_submodule_run_on_the_shim(tmp_path):
  """`ocp.checkpoint_manager.CheckpointManager(d)` after the swap, and
  `cm.CheckpointManager(d)`, are Orbax's own class: --to-v1 used to rewrite
  their calls to `.v1_checkpointer` (AttributeError). Now --fix makes them the
  shim's, and the rewritten program runs."""
  files = project(tmp_path, {'sub.py': '''\
      import numpy as np
      import orbax_compat as ocp  # Swapped by hand earlier.
      from orbax.checkpoint import checkpoint_manager as cm


      def main(path):
        a = ocp.checkpoint_manager.CheckpointManager(path + '/a')
        a.save(0, args=ocp.args.StandardSave({'x': np.arange(2)}))
        a.wait_until_finished()
        b = cm.CheckpointManager(path + '/b')
        b.save(1, args=ocp.args.StandardSave({'x': np.arange(2)}))
        b.wait_until_finished()
        return a.all_steps(), b.all_steps(), type(a).__module__, type(b).__module__
      '''})
  before = scan.run([str(files['sub.py'])])
  assert [(f.line, f.v1) for f in before.findings if f.kind == 'reference'] == [
      (7, 'ocp.CheckpointManager'), (10, 'orbax_compat.CheckpointManager')]
  native = run_python(f'import sub; print(sub.main({str(tmp_path / "native")!r}))', tmp_path)
  assert native == ("([0], [1], 'orbax.checkpoint.checkpoint_manager', "
                    "'orbax.checkpoint.checkpoint_manager')\n")
  result = scan.run([str(files['sub.py'])], to_v1=True)
  text = files['sub.py'].read_text()
  assert 'a = ocp.CheckpointManager(' in text and 'a.v1_checkpointer.wait()' in text
  assert 'b = orbax_compat.CheckpointManager(' in text and 'b.v1_checkpointer.wait()' in text
  # type(a) is the shim's class now (as after --fix): the managers escape to
  # type(), so they are not finished, and the report says so.
  assert [m['left'] for m in result.managers] == [
      ['line 13: `a` is passed to type()'], ['line 13: `b` is passed to type()']]
  out = run_python(f'import sub; print(sub.main({str(tmp_path / "ckpt")!r}))', tmp_path)
  assert out.startswith('([0], [1], ') and out.count("'orbax_compat.") == 2, out


def test_native_managers_keep_their_calls(tmp_path):
  """Orbax's class in a module outside the paths given stays Orbax's: its calls
  keep their TODOs (no v1_checkpointer there)."""
  files = project(tmp_path, {
      'factory.py': '''\
          from orbax.checkpoint import checkpoint_manager as cm


          def make(d):
            return cm.CheckpointManager(d)
          ''',
      'train.py': '''\
          from factory import make

          m = make('/d')
          m.close()
          '''})
  result = scan.run([str(files['train.py'])], to_v1=True)
  close = next(f for f in result.findings if f.label == 'close')
  assert not close.to_v1 and 'Orbax\'s own CheckpointManager' in close.reason


# --- Item 4: --fix leaves no manager native -------------------------------------


def test_fix_swaps_maxdiffusions_import_and_t5xs_references(tmp_path):
  files = project(tmp_path, {
      'checkpointing_utils.py': '''\
          import orbax.checkpoint
          import orbax
          import orbax.checkpoint as ocp
          from orbax.checkpoint.logging import AbstractLogger
          from orbax.checkpoint.checkpoint_manager import CheckpointManager, CheckpointManagerOptions


          def create(path, logger: AbstractLogger | None = None):
            return CheckpointManager(path, options=CheckpointManagerOptions(create=True))


          def restore(checkpoint_manager: CheckpointManager, step):
            return checkpoint_manager.restore(step, args=orbax.checkpoint.args.JsonRestore())
          ''',
      'utils.py': '''\
          import orbax.checkpoint


          class LegacyCheckpointManager(orbax.checkpoint.CheckpointManager):
            pass


          def is_manager(m):
            return isinstance(m, orbax.checkpoint.CheckpointManager)
          '''})
  result = scan.run([str(tmp_path)], fix=True)
  assert result.exit_code == 0 and not result.actions
  text = files['checkpointing_utils.py'].read_text()
  assert 'from orbax_compat import CheckpointManager, CheckpointManagerOptions\n' in text
  assert 'import orbax.checkpoint\nimport orbax\nimport orbax_compat as ocp\n' in text
  utils = files['utils.py'].read_text()
  assert 'class LegacyCheckpointManager(orbax_compat.CheckpointManager):' in utils
  # isinstance keeps Orbax's class: orbax_compat's is a virtual subclass of it.
  assert 'isinstance(m, orbax.checkpoint.CheckpointManager)' in utils
  assert utils.startswith('import orbax.checkpoint\nimport orbax_compat\n')
  assert scan.run([str(tmp_path)], fix=True).changes == []  # Idempotent.


def test_fix_names_what_it_cannot_do_and_exits_non_zero(tmp_path, capsys):
  files = project(tmp_path, {
      'star.py': '''\
          from orbax.checkpoint import *

          mngr = CheckpointManager('/d')
          ''',
      'shadowed.py': '''\
          import orbax.checkpoint
          orbax_compat = None


          def make(d):
            return orbax.checkpoint.CheckpointManager(d)
          '''})
  assert scan.main(['--fix', str(tmp_path)]) == 1
  out = capsys.readouterr().out
  assert (f'{files["star.py"]}:1:1: import: (unchanged)  (left by --fix: `from orbax_compat '
          'import *` gives only the shim\'s own names; import the names you use)  [action: left '
          'by --fix: `from orbax_compat import *` gives only the shim\'s own names; import the '
          'names you use; the manager it builds stays Orbax\'s own class]') in out
  assert (f'{files["shadowed.py"]}:6:10: reference: orbax_compat.CheckpointManager') in out
  assert '[action: `orbax_compat` names something else here' in out
  assert '2 finding(s) marked [action] need you' in out
  assert files['star.py'].read_text().startswith('from orbax.checkpoint import *')


# --- Item 5: --fix swaps only where a manager is built or used ------------------


def test_fix_swaps_only_files_with_managers(tmp_path, capsys):
  files = project(tmp_path, {
      'train.py': '''\
          import orbax.checkpoint as ocp
          from checkpointing import make


          def train(d):
            mngr = make(d)
            mngr.save(0, args=ocp.args.StandardSave({'a': 1}))
          ''',
      'checkpointing.py': '''\
          import orbax.checkpoint as ocp


          def make(d):
            return ocp.CheckpointManager(d)
          ''',
      'utils.py': '''\
          import orbax.checkpoint as ocp


          def abstract(tree):
            return ocp.utils.to_shape_dtype_struct(tree)
          ''',
      'v1_eval.py': '''\
          from orbax.checkpoint import v1 as ocp, utils


          def load(d):
            return ocp.load_pytree(d), utils
          '''})
  originals = {n: p.read_text() for n, p in files.items()}
  # Imports but no manager: nothing to migrate, exit 0, counted apart.
  assert scan.main([str(files['v1_eval.py']), str(files['utils.py'])]) == 0
  out = capsys.readouterr().out
  assert out.startswith('no v0 uses found (2 files scanned)\n2 Orbax import(s) in 2 file(s) '
                        'that build and use no v0 manager: nothing to migrate there')
  scan.main(['--format', 'json', str(files['v1_eval.py'])])
  summary = json.loads(capsys.readouterr().out)['summary']
  assert (summary['findings'], summary['imports_without_manager']) == (0, 1)
  result = scan.run([str(tmp_path)], fix=True)
  changed = {n for n, p in files.items() if p.read_text() != originals[n]}
  assert changed == {'train.py', 'checkpointing.py'}
  assert [(f.path.rsplit('/', 1)[1], f.needed) for f in result.findings if f.kind == 'import'] == [
      ('checkpointing.py', True), ('train.py', True), ('utils.py', False), ('v1_eval.py', False)]
  # On request, every file that is not on v1.
  result = scan.run([str(tmp_path)], fix=True, swap_all=True)
  assert [c['path'].rsplit('/', 1)[1] for c in result.changes] == ['utils.py']
  assert files['v1_eval.py'].read_text() == originals['v1_eval.py']  # Never: it is on v1.


# --- Item 6: no form matches a named-items manager's call ------------------------


def test_named_items_calls_get_the_named_items_form(tmp_path):
  """maxdiffusion's legacy shape: the manager names its items; `save(step,
  items)` and `restore(step, items={...})` are not single-item calls."""
  files = project(tmp_path, {'legacy.py': '''\
      import orbax.checkpoint as ocp


      def run(d, items):
        mngr = ocp.CheckpointManager(d, {'params': ocp.PyTreeCheckpointer()})
        mngr.save(0, items)
        return mngr.restore(0, items={'params': items['params']})
      '''})
  result = scan.run([str(files['legacy.py'])], to_v1=True)
  save = next(f for f in result.findings if f.label == 'save')
  restore = next(f for f in result.findings if f.label == 'restore')
  assert (save.form, save.v1) == (
      'mngr.save(step, items)', 'step not in [c.step for c in ckptr.checkpoints] and '
      'ckptr.save_checkpointables_async(step, items) is not None')
  assert (restore.form, restore.v1) == ('', 'ckptr.load_checkpointables(step)')
  assert restore.note == ('no form of the table matches this call statically; this manager '
                          'has named items: mngr.restore(step) is its form')
  text = files['legacy.py'].read_text()
  assert ('  # TODO(orbax-v1): no form of the table matches this call;\n'
          '  #   see MIGRATION_TABLE.md#restore\n'
          '  #   named items: mngr.v1_checkpointer.load_checkpointables(0)\n'
          "  return mngr.restore(0, items={'params': items['params']})\n") in text
  assert "{'default'" not in text and "checkpointable_name='default'" not in text


# --- Item 7: TODOs, pragmas, line length, imports, the simplest code -------------


@pytest.mark.parametrize('pragma', [
    '# pylint: disable-next=protected-access', '# type: ignore[attr-defined]',
    '# noqa: E501', '# pragma: no cover', '# fmt: off', '# pyright: ignore',
])
def test_todos_never_come_between_a_pragma_and_its_statement(tmp_path, pragma):
  files = project(tmp_path, {'p.py': f'''\
      import orbax.checkpoint as ocp


      def f(m: ocp.CheckpointManager):
        # A comment of the code.
        {pragma}
        m.best_step()
      '''})
  scan.run([str(files['p.py'])], to_v1=True)
  text = files['p.py'].read_text()
  assert ('  # A comment of the code.\n'
          '  # TODO(orbax-v1): see MIGRATION_TABLE.md#best-step; in v1:\n'
          '  #   v0_best_step(m.v1_checkpointer, best_fn, best_mode)\n'
          f'  {pragma}\n'
          '  m.best_step()\n') in text


def test_rewrites_keep_the_files_line_length_and_wrapping(tmp_path):
  """The line length from pyproject.toml (ruff's), wrapping as the file wraps
  (its calls align with the open bracket where the arguments fit so, else
  hang); TODOs short, with the call's arguments and the table's anchor."""
  files = project(tmp_path, {'train.py': '''\
      import orbax.checkpoint as ocp


      def train(path, train_state, step):
          checkpoint_manager = ocp.CheckpointManager(path)
          print(checkpoint_manager)
          result = some_function(first_argument_of_the_call,
                                 second_argument_of_the_call)
          if checkpoint_manager.latest_step() is not None:
              return checkpoint_manager.restore(checkpoint_manager.latest_step(),
                                                args=ocp.args.StandardRestore(train_state))
          checkpoint_manager.save(step, args=ocp.args.StandardSave(train_state))
          return result
      '''}, config='[tool.ruff]\nline-length = 72\n')
  scan.run([str(files['train.py'])], to_v1=True)
  text = files['train.py'].read_text()
  assert text.endswith(textwrap.dedent('''\
      def train(path, train_state, step):
          # TODO(orbax-v1): see MIGRATION_TABLE.md#init; in v1:
          #   ocp_v1.training.Checkpointer(path)
          #   exact arguments: orbax_compat.v1_source(mngr)
          checkpoint_manager = ocp.CheckpointManager(path)
          print(checkpoint_manager)
          result = some_function(first_argument_of_the_call,
                                 second_argument_of_the_call)
          if checkpoint_manager.v1_checkpointer.latest is not None:
              return v0_standard_restore(
                  checkpoint_manager.v1_checkpointer,
                  checkpoint_manager.v1_checkpointer.latest.step
                  if checkpoint_manager.v1_checkpointer.latest else None,
                  train_state)
          if step not in [
                  c.step
                  for c in checkpoint_manager.v1_checkpointer.checkpoints]:
              checkpoint_manager.v1_checkpointer.save_checkpointables_async(
                  step, {'default': train_state})
          return result
      '''))
  body = text[text.index('def train'):]
  assert max(len(line) for line in body.splitlines()) <= 72


def test_added_imports_go_where_isort_puts_them(tmp_path):
  files = project(tmp_path, {'m.py': '''\
      """A module."""

      from __future__ import annotations

      import os
      import sys

      from absl import logging
      import optax
      import orbax.checkpoint as ocp

      from myproject import data


      def f(path, target):
        mngr = ocp.CheckpointManager(path)
        logging.info('%s %s', os, sys)
        return mngr.restore(0, args=ocp.args.StandardRestore(target)), data, optax
      '''})
  result = scan.run([str(files['m.py'])], to_v1=True)
  assert [m['finished'] for m in result.managers] == [True]  # The shim's import goes.
  text = files['m.py'].read_text()
  # force_sort_within_sections (the file sorts `from absl` among plain imports).
  assert ('import os\nimport sys\n\nfrom absl import logging\nimport jax\nimport numpy as np\n'
          'import optax\nfrom orbax.checkpoint.experimental import v1 as ocp_v1\n\n'
          'from myproject import data\n') in text


def test_the_simplest_exact_code(tmp_path):
  files = project(tmp_path, {'m.py': '''\
      import orbax.checkpoint as ocp

      m = ocp.CheckpointManager('/d')
      if m.latest_step() is not None and m.latest_step() is None:
        pass
      '''})
  scan.run([str(files['m.py'])], to_v1=True)
  # Finished: `m` is the v1 Checkpointer.
  assert 'if m.latest is not None and m.latest is None:' in files['m.py'].read_text()


def test_todo_lines_are_short_with_the_calls_arguments(tmp_path):
  files = project(tmp_path, {'m.py': '''\
      import orbax.checkpoint as ocp


      def f(path, opts, meta, step, m: ocp.CheckpointManager):
        mngr = ocp.CheckpointManager(path, options=opts, metadata=meta)
        m.reached_preemption(step)
        m.close()
        return mngr.item_metadata(step)
      '''}, config='[tool.ruff]\nline-length = 72\n')
  scan.run([str(files['m.py'])], to_v1=True)
  assert files['m.py'].read_text().endswith(textwrap.dedent('''\
      def f(path, opts, meta, step, m: ocp.CheckpointManager):
        # TODO(orbax-v1): see MIGRATION_TABLE.md#init; in v1:
        #   ocp_v1.training.Checkpointer(path, custom_metadata=meta)
        #   exact arguments: orbax_compat.v1_source(mngr)
        mngr = ocp.CheckpointManager(path, options=opts, metadata=meta)
        # TODO(orbax-v1): see MIGRATION_TABLE.md#reached-preemption; in v1:
        #   from orbax.checkpoint import utils
        #   utils.reached_preemption(step)
        m.reached_preemption(step)
        # TODO(orbax-v1): see MIGRATION_TABLE.md#close; in v1:
        #   m.v1_checkpointer.close()
        m.close()
        # TODO(orbax-v1): no form of the table matches this call;
        #   see MIGRATION_TABLE.md#item-metadata
        return mngr.item_metadata(step)
      '''))


# --- Item 8: finishing ---------------------------------------------------------


def test_finishing_across_modules_and_what_is_left(tmp_path):
  """A manager built in one module and used in another is finished when every
  use is rewritten; one that escapes (passed to a function the analysis does
  not follow), whose options come from a config, or whose best_step needs a
  best_fn the call site cannot name, is not, and the report names why."""
  files = project(tmp_path, {
      'checkpointing.py': '''\
          import orbax.checkpoint as ocp


          def loss(metrics):
            return metrics['loss']


          def make(path):
            options = ocp.CheckpointManagerOptions(max_to_keep=2, best_fn=loss, best_mode='min')
            return ocp.CheckpointManager(path, options=options, metadata={'model': 'mlp'})


          def make_escaping(path):
            return ocp.CheckpointManager(path)


          def make_configured(path, config):
            return ocp.CheckpointManager(
                path, options=ocp.CheckpointManagerOptions(max_to_keep=config.keep))


          def make_best(path):
            return ocp.CheckpointManager(path, options=ocp.CheckpointManagerOptions(best_fn=loss))
          ''',
      'train.py': '''\
          import logging

          import orbax.checkpoint as ocp
          from checkpointing import make, make_best, make_configured, make_escaping


          def train(path, state, config):
            mngr = make(path)
            if mngr.latest_step() is None:
              mngr.save(0, args=ocp.args.StandardSave(state), metrics={'loss': 1.0})
            mngr.wait_until_finished()
            steps = mngr.all_steps()
            mngr.close()
            escaping = make_escaping(path + '_e')
            logging.info('manager %s', escaping)
            escaping.close()
            configured = make_configured(path + '_c', config)
            configured.close()
            best = make_best(path + '_b')
            return steps, best.best_step()
          '''})
  result = scan.run([str(tmp_path)], to_v1=True)
  decisions = {(m['path'].rsplit('/', 1)[1], m['line']): m for m in result.managers}
  assert decisions[('checkpointing.py', 10)]['finished']
  assert decisions[('checkpointing.py', 14)]['left'] == [
      f"{files['train.py']}:15: `escaping` is passed to logging.info()"]
  assert decisions[('checkpointing.py', 18)]['left'] == [
      'its option max_to_keep=config.keep cannot be read statically']
  assert decisions[('checkpointing.py', 23)]['left'] == [
      f"{files['train.py']}:20: best.best_step() kept: the v1 code needs the manager's best_fn, "
      'which its options do not show in a form the call site can name']
  checkpointing = files['checkpointing.py'].read_text()
  assert 'ocp.CheckpointManagerOptions(max_to_keep=2' not in checkpointing  # Gone with it.
  assert 'return ocp_v1.training.Checkpointer(' in checkpointing
  assert "custom_metadata={'model': 'mlp'}" in checkpointing
  assert 'get_metric_fn=loss' in checkpointing
  train = files['train.py'].read_text()
  assert 'if mngr.latest is None:' in train
  assert '  steps = [c.step for c in mngr.checkpoints]\n  mngr.close()\n' in train
  assert '  escaping.v1_checkpointer.close()\n' in train  # Still the shim's manager.
  assert '#   v0_best_step(best.v1_checkpointer, best_fn, best_mode)\n' in train


def test_a_finished_program_runs_on_v1_alone_and_reads_old_steps(tmp_path):
  files = project(tmp_path, {'prog.py': '''\
      import jax
      import jax.numpy as jnp
      import orbax.checkpoint as ocp


      def init():
        return {'w': jnp.zeros(2)}


      def main(path, steps):
        with ocp.CheckpointManager(path, options=ocp.CheckpointManagerOptions(max_to_keep=5)) as m:
          start = 0 if m.latest_step() is None else m.latest_step()
          state = init() if start == 0 else m.restore(start, args=ocp.args.StandardRestore(
              jax.eval_shape(init)))
          for step in range(start, steps):
            m.save(step, args=ocp.args.StandardSave(state))
            state = {'w': state['w'] + 1}
          m.wait_until_finished()
          return m.all_steps(), type(state['w']).__name__, state['w'].tolist()
      '''})
  ckpt, native_ckpt = str(tmp_path / 'ckpt'), str(tmp_path / 'native')
  before = run_python(f'import prog; print(prog.main({ckpt!r}, 3))', tmp_path)
  assert before == "([0, 1, 2], 'ArrayImpl', [3.0, 3.0])\n"
  shutil.copytree(ckpt, native_ckpt)
  # Native v0 resuming: restores step 2 (w=2) and re-saves it (False), then 3, 4.
  native = run_python(f'import prog; print(prog.main({native_ckpt!r}, 5))', tmp_path)
  assert native == "([0, 1, 2, 3, 4], 'ArrayImpl', [5.0, 5.0])\n"
  result = scan.run([str(files['prog.py'])], to_v1=True)
  assert [m['finished'] for m in result.managers] == [True]
  text = files['prog.py'].read_text()
  assert 'orbax_compat' not in text and 'import orbax.checkpoint as ocp' not in text
  after = run_python(f'import prog; print(prog.main({ckpt!r}, 5))', tmp_path,
                     block_orbax_compat=True)
  assert after == native


def test_the_demos_legacy_script_finishes_and_matches_native_v0(tmp_path):
  """The demo's stage 1 as the team wrote it (`import orbax.checkpoint as
  ocp`): --to-v1 finishes it, and the finished script, with orbax_compat
  unimportable, resumes from native v0's steps as native v0 does."""
  demo = pathlib.Path(__file__).resolve().parent.parent / 'orbax_compat' / 'tools' / 'demo'
  (tmp_path / 'pyproject.toml').write_text('')
  shutil.copy(demo / 'model.py', tmp_path / 'model.py')
  script = (demo / 'stage1_v0.py').read_text()
  legacy = re.sub(r'^import orbax_compat as ocp.*$', 'import orbax.checkpoint as ocp', script,
                  flags=re.M)
  assert legacy != script
  (tmp_path / 'stage1_v0.py').write_text(legacy)
  first, native, pure = (str(tmp_path / n) for n in ('first', 'native', 'pure'))
  run = 'import stage1_v0; stage1_v0.main({!r}, {})'
  assert run_python(run.format(first, 5), tmp_path) == (
      'resumed at 0; steps [0, 2, 4], best 4\n')
  shutil.copytree(first, native)
  shutil.copytree(first, pure)
  expected = run_python(run.format(native, 9), tmp_path)
  assert expected == 'resumed at 5; steps [0, 4, 6, 8], best 8\n'

  result = scan.run([str(tmp_path / 'stage1_v0.py')], to_v1=True)
  assert [m['finished'] for m in result.managers] == [True] and result.exit_code == 0
  finished = (tmp_path / 'stage1_v0.py').read_text()
  assert 'orbax_compat' not in finished and 'CheckpointManager' not in finished
  assert 'with ocp_v1.training.Checkpointer(' in finished
  # The f-string's calls too: best_mode from the options takes the other quote.
  assert 'best {v0_best_step(mngr, loss_of, "min")}' in finished
  assert run_python(run.format(pure, 9), tmp_path, block_orbax_compat=True) == expected
  assert sorted(os.listdir(pure)) == sorted(os.listdir(native))
