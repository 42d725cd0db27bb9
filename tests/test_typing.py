"""Type checkers see the manager's members, with v0's signatures, as deprecated.

The stub `orbax_compat/manager.pyi` is generated from the table; mypy reads it
instead of the run-time-installed members.
"""

import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

from orbax_compat.tools import stubs

ROOT = pathlib.Path(__file__).resolve().parent.parent

LEGACY = textwrap.dedent('''\
    import orbax_compat as ocp


    def train(directory: str) -> int | None:
        options = ocp.CheckpointManagerOptions(max_to_keep=2)
        with ocp.CheckpointManager(directory, options=options) as mngr:
            mngr.save(0, args=ocp.args.StandardSave({'a': 1}), metrics={'loss': 1.0})
            steps = mngr.all_steps()
            best = mngr.best_step()
            mngr.wait_until_finished()
            restored = mngr.restore(mngr.latest_step())
            print(steps, best, restored, mngr.directory, mngr.metrics(0))
            ckptr = mngr.v1_checkpointer
            print(ckptr.directory)
            return mngr.latest_step()
''')
# line -> the v0 members called on it.
EXPECTED = {6: {'CheckpointManager'}, 7: {'save'}, 8: {'all_steps'}, 9: {'best_step'},
            10: {'wait_until_finished'}, 11: {'restore', 'latest_step'},
            12: {'directory', 'metrics'}, 15: {'latest_step'}}


def test_stub_is_fresh():
  assert stubs.STUB_PATH.read_text() == stubs.render(), (
      'orbax_compat/manager.pyi is stale: run python -m orbax_compat table --write')


def _mypy(tmp_path, *flags):
  pytest.importorskip('mypy', reason='mypy is in the test extra (pip install -e .[test])')
  source = tmp_path / 'legacy.py'
  source.write_text(LEGACY)
  env = {**os.environ, 'MYPYPATH': str(ROOT)}
  return subprocess.run(
      [sys.executable, '-m', 'mypy', '--follow-imports=silent', '--ignore-missing-imports',
       '--no-incremental', '--cache-dir', str(tmp_path / 'cache'), *flags, str(source)],
      cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)


def test_mypy_sees_every_member_and_no_attr_errors(tmp_path):
  proc = _mypy(tmp_path)
  assert proc.returncode == 0, proc.stdout + proc.stderr
  assert 'attr-defined' not in proc.stdout


def test_mypy_reports_each_v0_call_as_deprecated(tmp_path):
  proc = _mypy(tmp_path, '--enable-error-code', 'deprecated')
  found: dict[int, set[str]] = {}
  for line in proc.stdout.splitlines():
    if ' is deprecated: ' not in line or not line.startswith('legacy.py:'):
      continue
    number = int(line.split(':')[1])
    name = line.split(' is deprecated: ')[0].rsplit('.', 1)[-1]
    found.setdefault(number, set()).add(name)
  assert found == EXPECTED, proc.stdout
  assert 'attr-defined' not in proc.stdout


def test_mypy_accepts_subclasses_using_v0_protected_members(tmp_path):
  pytest.importorskip('mypy', reason='mypy is in the test extra (pip install -e .[test])')
  source = tmp_path / 'tracked.py'
  source.write_text(textwrap.dedent('''\
      import orbax_compat as ocp


      class Tracked(ocp.CheckpointManager):  # type: ignore[deprecated]
          def _finalize_checkpoint(self, step: int) -> None:
              super()._finalize_checkpoint(step)
              path = self._get_write_step_directory(step, self._directory)
              print(path, self._multiprocessing_options.primary_host, self._options.max_to_keep)

          def all_steps(self, read: bool = False) -> list[int]:
              return [c.step for c in self._checkpoints]
  '''))
  proc = subprocess.run(
      [sys.executable, '-m', 'mypy', '--follow-imports=silent', '--ignore-missing-imports',
       '--no-incremental', '--cache-dir', str(tmp_path / 'cache'), str(source)],
      cwd=tmp_path, env={**os.environ, 'MYPYPATH': str(ROOT)}, capture_output=True, text=True,
      timeout=600)
  assert proc.returncode == 0, proc.stdout + proc.stderr
