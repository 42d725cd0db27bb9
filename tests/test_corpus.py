"""Orbax's own legacy corpus (checkpoints written by orbax-checkpoint 0.12.4).

Each composite variant is placed as step 0 of a managed root (a copy in a temp
dir). Non-critical variants must restore exactly through the shim with and
without args (where native v0 fails without args, the shim does better);
critical ones must fail with a clear error, never return wrong data.
"""

import pathlib
import shutil

import numpy as np
import orbax.checkpoint as ocp
import pytest

import orbax_compat

SHARED = pathlib.Path(__file__).resolve().parent.parent.parent / 'shared'
CORPUS = SHARED / 'fixtures' / 'orbax-0.12.4-v0-corpus' / 'composite_checkpoint'
TREE = {'a': np.arange(8, dtype=np.int32), 'b': {'c': np.array([1, 2, 3], np.int32)}}
JSON = {'metadata': 'json_data'}

pytestmark = [
    pytest.mark.skipif(
        not CORPUS.is_dir(), reason=f'the shared fixtures are absent ({CORPUS} not found)'),
    pytest.mark.usefixtures('quiet_shim'),
]


def _variants(kind):
  if not CORPUS.is_dir():
    return []
  if kind == 'critical':
    groups = ['critical_metadata_alterations']
  else:
    groups = ['checkpoint_metadata_present', 'checkpoint_metadata_missing',
              'non_critical_metadata_alterations']
  return [f'{g}/{v.name}' for g in groups for v in sorted((CORPUS / g).iterdir())]


def _root(tmp_path, variant):
  root = tmp_path / 'root'
  shutil.copytree(CORPUS / variant, root / '0')
  return root


def _args():
  return ocp.args.Composite(state=ocp.args.StandardRestore(TREE), metadata=ocp.args.JsonRestore())


def _assert_exact(restored):
  assert set(restored.keys()) == {'state', 'metadata'}
  state = restored['state']
  assert set(state) == {'a', 'b'} and set(state['b']) == {'c'}
  for got, want in ((state['a'], TREE['a']), (state['b']['c'], TREE['b']['c'])):
    assert np.asarray(got).dtype == want.dtype and np.array_equal(np.asarray(got), want)
  assert restored['metadata'] == JSON


@pytest.mark.parametrize('variant', _variants('non-critical'))
@pytest.mark.parametrize('with_args', [True, False])
def test_non_critical_variants_restore_exactly(tmp_path, variant, with_args):
  root = _root(tmp_path, variant)
  with orbax_compat.CheckpointManager(root) as mngr:
    assert mngr.all_steps() == [0]
    restored = mngr.restore(0, args=_args() if with_args else None)
  assert isinstance(restored, ocp.args.Composite)
  _assert_exact(restored)


@pytest.mark.parametrize('variant', _variants('critical'))
@pytest.mark.parametrize('with_args', [True, False])
def test_critical_variants_fail_clearly(tmp_path, variant, with_args):
  root = _root(tmp_path, variant)
  before = sorted(str(p.relative_to(root)) for p in root.rglob('*'))
  with orbax_compat.CheckpointManager(root) as mngr:
    with pytest.raises(ValueError, match=r"Cannot restore item 'state' .* array data is missing"):
      mngr.restore(0, args=_args() if with_args else None)
  assert sorted(str(p.relative_to(root)) for p in root.rglob('*')) == before


def test_native_v0_fails_where_the_shim_does_better(tmp_path):
  """The reason for `recovery`: plain v0 cannot restore these without args."""
  for variant in ('checkpoint_metadata_missing/pytree_checkpointable_has_metadata',
                  'non_critical_metadata_alterations/missing_pytree_data_file__sharding'):
    root = _root(tmp_path / variant.replace('/', '_'), variant)
    with ocp.CheckpointManager(root) as mngr, pytest.raises(ValueError):
      mngr.restore(0)
