"""Orbax's own v0 CheckpointManager test suite, run through the shim.

`../shared/orbax-suite/run.sh` runs Orbax's `checkpoint_manager_test.py` with
`orbax_compat.CheckpointManager` swapped in and exits 0 only when every test
that passes natively (less those reading Orbax's private attributes) passes.
Its recorded native outcomes are 0.12.8's; on another release the suite first
runs natively (`run.sh --native`) and the shim must pass every test that
release's own v0 passes.
"""

import importlib.util
import os
import pathlib
import subprocess
import sys

import orbax.checkpoint as ocp
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
SUITE = ROOT.parent / 'shared' / 'orbax-suite'
SUPPORT = pathlib.Path(__file__).resolve().parent / 'orbax_suite'
EXTRAS = ('flax', 'optax', 'pytest_timeout', 'xdist')
RECORDED_ON = '0.12.8'  # The release of SUITE/native_outcomes.txt (its README).


def _missing() -> str | None:
  if not (SUITE / 'run.sh').exists():
    return f'Orbax suite not found at {SUITE} (../shared is absent)'
  absent = [m for m in EXTRAS if importlib.util.find_spec(m) is None]
  if absent:
    return f'the Orbax suite needs {", ".join(absent)} (pip install -e .[test])'
  return None


def _run(out: pathlib.Path, *args: str) -> subprocess.CompletedProcess:
  env = dict(os.environ)
  env.update(
      PYTHON=sys.executable,
      PYTHONPATH=os.pathsep.join(p for p in (str(SUPPORT), env.get('PYTHONPATH')) if p),
      ORBAX_SUITE_OUT=str(out),
  )
  return subprocess.run(['bash', str(SUITE / 'run.sh'), *args], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=1800)


def _outcomes(path: pathlib.Path) -> dict[str, str]:
  return dict(line.split()[:2] for line in path.read_text().splitlines() if line.strip())


def _passed(outcomes: dict[str, str]) -> set[str]:
  return {test for test, outcome in outcomes.items() if outcome == 'passed'}


@pytest.mark.skipif(_missing() is not None, reason=str(_missing()))
def test_orbax_manager_suite_passes_through_the_shim(tmp_path):
  native = None
  if ocp.__version__ != RECORDED_ON:  # Judge by this release's own v0.
    _run(tmp_path / 'native', '--native')
    native = _passed(_outcomes(tmp_path / 'native' / 'outcomes.txt'))
    recorded = _passed(_outcomes(SUITE / 'native_outcomes.txt'))
    assert native, f'the suite ran no test natively on {ocp.__version__}'
    print(f'Tests v0 {RECORDED_ON} passes and v0 {ocp.__version__} does not '
          f'(not required of the shim here): {sorted(recorded - native)}')
  proc = _run(tmp_path / 'out')
  summary = proc.stdout.strip().splitlines()
  assert 'class under test: orbax_compat' in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]
  if native is None:
    assert proc.returncode == 0, '\n'.join(summary[-60:]) + proc.stderr[-2000:]
    assert 'orbax-suite:' in summary[-1]
    return
  private = set((SUITE / 'private_attribute_tests.txt').read_text().split())
  reasons = dict(
      line.partition(' ')[::2]
      for line in (tmp_path / 'out' / 'reasons.txt').read_text().splitlines()
  )
  shim = _outcomes(tmp_path / 'out' / 'outcomes.txt')
  wanted = native - private
  failing = sorted(t for t in wanted if shim.get(t) != 'passed')
  assert not failing, (
      f'{len(wanted) - len(failing)}/{len(wanted)} tests that v0 '
      f'{ocp.__version__} passes pass through the shim; failing:\n' + '\n'.join(
          f'  {t.split("::")[-1]}: {reasons.get(t, shim.get(t, "did not run"))[:240]}'
          for t in failing))
