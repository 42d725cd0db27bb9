"""Orbax's own v0 CheckpointManager test suite, run through the shim.

`../shared/orbax-suite/run.sh` runs Orbax's `checkpoint_manager_test.py` with
`orbax_compat.CheckpointManager` swapped in and exits 0 only when every test
that passes natively (less those reading Orbax's private attributes) passes.
"""

import importlib.util
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
SUITE = ROOT.parent / 'shared' / 'orbax-suite'
SUPPORT = pathlib.Path(__file__).resolve().parent / 'orbax_suite'
EXTRAS = ('flax', 'optax', 'pytest_timeout', 'xdist')


def _missing() -> str | None:
  if not (SUITE / 'run.sh').exists():
    return f'Orbax suite not found at {SUITE} (../shared is absent)'
  absent = [m for m in EXTRAS if importlib.util.find_spec(m) is None]
  if absent:
    return f'the Orbax suite needs {", ".join(absent)} (pip install -e .[test])'
  return None


@pytest.mark.skipif(_missing() is not None, reason=str(_missing()))
def test_orbax_manager_suite_passes_through_the_shim(tmp_path):
  env = dict(os.environ)
  env.update(
      PYTHON=sys.executable,
      PYTHONPATH=os.pathsep.join(p for p in (str(SUPPORT), env.get('PYTHONPATH')) if p),
      ORBAX_SUITE_OUT=str(tmp_path / 'out'),
  )
  proc = subprocess.run(['bash', str(SUITE / 'run.sh')], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=1800)
  summary = proc.stdout.strip().splitlines()
  assert proc.returncode == 0, '\n'.join(summary[-60:]) + proc.stderr[-2000:]
  assert 'orbax-suite:' in summary[-1] and 'class under test: orbax_compat' in proc.stdout
