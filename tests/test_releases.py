"""The Orbax releases orbax_compat runs on (setup.cfg: >=0.12.0,<0.13).

Installing next to a team's Orbax (pip keeps the release) and the error on a
release older than the floor need installs from PyPI: `.ci/install-check`
shows both, on real releases. The tests here run offline.
"""

import configparser
import json
import os
import pathlib
import subprocess
import sys

import pytest

from orbax_compat.compat import orbax as _v1
from orbax_compat.compat import release

MOVED_V1 = r'''
import json, sys, tempfile, warnings
import numpy as np
import orbax.checkpoint
import orbax.checkpoint.experimental.v1 as v1
# The layout a later major release is expected to have: v1 at orbax.checkpoint.v1.
sys.modules['orbax.checkpoint.v1'] = orbax.checkpoint.v1 = v1
with warnings.catch_warnings(record=True) as caught:
  warnings.simplefilter('always')
  import orbax_compat as ocp
  from orbax_compat.compat import orbax as _v1
  with tempfile.TemporaryDirectory() as root:
    with ocp.CheckpointManager(root) as mngr:
      mngr.save(0, args=ocp.args.StandardSave({'w': np.arange(3)}))
      restored = mngr.restore(0)
print(json.dumps({
    'warnings': [str(w.message) for w in caught
                 if issubclass(w.category, _v1.UnsupportedOrbaxWarning)],
    'v1': _v1.v1 is sys.modules['orbax.checkpoint.v1'],
    'restored': restored['w'].tolist(),
}))
'''


def test_declared_range_is_the_supported_range():
  setup = configparser.ConfigParser()
  setup.read(pathlib.Path(__file__).resolve().parent.parent / 'setup.cfg')
  requires = setup['options']['install_requires'].split()
  assert f'orbax-checkpoint{_v1.SUPPORTED_ORBAX}' in requires


def test_supported_orbax_has_what_the_shim_needs():
  assert _v1._missing_floor_features(_v1.v1) == [], _v1.ORBAX_VERSION
  assert _v1._missing_private_names() == [], _v1.ORBAX_VERSION
  assert _v1.v1.__name__ == 'orbax.checkpoint.experimental.v1'


def test_moved_v1_runs_with_one_warning():
  """v1 at orbax.checkpoint.v1 (a later major release): the shim runs on it,
  with one warning naming the release, the range and what to do."""
  proc = subprocess.run([sys.executable, '-c', MOVED_V1], capture_output=True,
                        text=True, timeout=300,
                        env=dict(os.environ, ORBAX_COMPAT_WARNINGS='off'))
  assert proc.returncode == 0, proc.stderr[-3000:]
  out = json.loads(proc.stdout.strip().splitlines()[-1])
  assert out['v1'] and out['restored'] == [0, 1, 2]
  [warning] = out['warnings']
  assert f'orbax-checkpoint {_v1.ORBAX_VERSION}' in warning
  assert 'orbax.checkpoint.v1' in warning and _v1.SUPPORTED_ORBAX in warning
  assert 'pip install' in warning


def test_unsupported_message_names_both_and_what_to_do():
  message = _v1.unsupported_orbax('lacks a mutable v1 Context')
  assert f'orbax-checkpoint {_v1.ORBAX_VERSION} lacks a mutable v1 Context' in message
  assert f'orbax-checkpoint {_v1.SUPPORTED_ORBAX}' in message
  assert f'pip install "orbax-checkpoint{_v1.SUPPORTED_ORBAX}"' in message


def test_import_refuses_a_release_below_the_floor():
  """`import orbax_compat` checks the floor from metadata, before any Orbax
  import (`.ci/install-check` shows it on a real 0.11.40 install)."""
  with pytest.raises(ImportError) as e:
    release.refuse_below_floor('0.11.40')
  message = str(e.value)
  assert 'orbax-checkpoint 0.11.40' in message
  assert f'orbax-checkpoint{release.SUPPORTED_ORBAX}' in message
  assert f'pip install "orbax-checkpoint{release.SUPPORTED_ORBAX}"' in message
  for version in ('0.12.0', '0.12.8', '0.13.0', '1.0.0rc1', None):
    release.refuse_below_floor(version)
  assert release.installed_orbax() == _v1.ORBAX_VERSION


def test_package_import_checks_the_floor_without_importing_orbax():
  code = ('import sys, orbax_compat; '
          'print(sorted(m for m in sys.modules if m.split(".")[0] in ("jax", "orbax")))')
  proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                        timeout=120)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert proc.stdout.strip() == '[]'
