"""The opt-in `fast` profile: other files, same data for every reader."""

import json

import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint.experimental import v1
import pytest

import orbax_compat
from orbax_compat.compat import profiles

TREE = {'w': np.random.default_rng(0).normal(size=(64, 1024)).astype(np.float32),
        'b': np.arange(5, dtype=np.int64)}


@pytest.fixture
def fast():
  previous_warn = orbax_compat.set_warning_policy('off')
  previous = orbax_compat.set_performance_profile('fast')
  yield
  orbax_compat.set_performance_profile(previous)
  orbax_compat.set_warning_policy(previous_warn)


def _zarray(step_dir):
  import tensorstore as ts  # pylint: disable=g-import-not-at-top

  store = ts.KvStore.open({'driver': 'ocdbt', 'base': f'file://{step_dir}/default/'}).result()
  return json.loads(store.read(b'w/.zarray').result().value)


def test_fast_profile_is_readable_by_v0_and_v1(tmp_path, fast):
  with orbax_compat.CheckpointManager(tmp_path) as mngr:
    mngr.save(0, args=ocp.args.StandardSave(TREE))
  assert _zarray(tmp_path / '0')['compressor'] is None  # the profile took effect
  with ocp.CheckpointManager(tmp_path) as native:
    for restored in (native.restore(0), native.restore(0, args=ocp.args.StandardRestore(TREE))):
      for key in TREE:
        np.testing.assert_array_equal(np.asarray(restored[key]), TREE[key])
  loaded = v1.load_checkpointables(tmp_path / '0')['default']
  np.testing.assert_array_equal(loaded['w'], TREE['w'])


def test_default_profile_writes_v0s_compression(tmp_path):
  assert orbax_compat.get_performance_profile() == 'v0'
  for cls, root in ((ocp.CheckpointManager, tmp_path / 'native'),
                    (orbax_compat.CheckpointManager, tmp_path / 'shim')):
    with cls(root) as mngr:
      mngr.save(0, args=ocp.args.StandardSave(TREE))
  assert _zarray(tmp_path / 'shim' / '0') == _zarray(tmp_path / 'native' / '0')


def test_unknown_profile_is_refused():
  with pytest.raises(ValueError, match='profile must be one of v0, fast'):
    profiles.set_performance_profile('turbo')
