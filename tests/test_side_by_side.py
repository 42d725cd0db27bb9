"""v0 calls through the manager and v1 calls through `mngr.v1_checkpointer`.

Migration moves calls one at a time, so both run on one state in one process:
a step saved either way is listed, restorable and garbage-collected by both;
`wait`/`close` of either finishes both; no step is saved twice or lost, with
async saves in flight. Native v0 reads the result in the end.
"""

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

import orbax_compat
from orbax_compat._v1 import v1

pytestmark = pytest.mark.usefixtures('quiet_shim')


def tree_of(step):
  return {'w': np.arange(4, dtype=np.float32) + step, 'j': jnp.arange(2, dtype=jnp.int32) + step}


def abstract(step=0):
  return jax.tree.map(ocp.utils.to_shape_dtype_struct, tree_of(step))


def v0_save(mngr, step, **kw):
  return mngr.save(step, args=ocp.args.StandardSave(tree_of(step)), **kw)


def v1_save(ckptr, step, **kw):
  return ckptr.save_checkpointables_async(step, {'default': tree_of(step)}, **kw)


def values(tree):
  return {k: (np.asarray(v).tolist(), type(v).__name__ == 'ndarray') for k, v in tree.items()}


def assert_restores(mngr, ckptr, steps):
  for step in steps:
    expected = values(tree_of(step))
    assert values(mngr.restore(step, args=ocp.args.StandardRestore(abstract()))) == expected
    assert values(mngr.restore(step)) == expected
    np_target = {'w': np.empty(4, np.float32), 'j': abstract()['j']}
    assert values(ckptr.load(step, np_target, checkpointable_name='default')) == expected


def test_saves_either_way_are_listed_and_restored_by_both(tmp_path):
  with orbax_compat.CheckpointManager(tmp_path) as mngr:
    ckptr = mngr.v1_checkpointer
    assert v0_save(mngr, 0)
    assert v1_save(ckptr, 1) is not None  # v0's save of step 0 may still be in flight.
    assert v0_save(mngr, 2)
    assert v1_save(ckptr, 3) is not None
    assert mngr.all_steps() == [0, 1, 2, 3]
    assert [c.step for c in ckptr.checkpoints] == [0, 1, 2, 3]
    assert mngr.latest_step() == ckptr.latest.step == 3
    assert_restores(mngr, ckptr, [0, 1, 2, 3])
  with ocp.CheckpointManager(tmp_path) as native:  # What native v0 reads afterwards.
    assert native.all_steps() == [0, 1, 2, 3]
    for step in range(4):
      restored = native.restore(step, args=ocp.args.StandardRestore(abstract()))
      assert values(restored) == values(tree_of(step))


def test_garbage_collection_and_best_step_see_both(tmp_path):
  options = ocp.CheckpointManagerOptions(max_to_keep=2, best_fn=lambda m: m['loss'],
                                         best_mode='min')
  losses = {0: 0.3, 1: 0.1, 2: 0.5, 3: 0.4, 4: 0.2}
  with orbax_compat.CheckpointManager(tmp_path, options=options) as mngr:
    ckptr = mngr.v1_checkpointer
    for step, loss in losses.items():
      if step % 2:
        v1_save(ckptr, step, metrics={'loss': loss})
      else:
        v0_save(mngr, step, metrics={'loss': loss})
    mngr.wait_until_finished()
    kept = mngr.all_steps()
    assert kept == [c.step for c in ckptr.checkpoints]
    assert mngr.best_step() == 1 and mngr.metrics(1) == {'loss': 0.1}
  assert sorted(int(p.name) for p in tmp_path.iterdir() if p.name.isdigit()) == kept
  with ocp.CheckpointManager(tmp_path / 'native', options=options) as native:
    for step, loss in losses.items():
      native.save(step, args=ocp.args.StandardSave(tree_of(step)), metrics={'loss': loss})
    native.wait_until_finished()
    assert kept == native.all_steps()  # The same steps as v0 alone keeps.


def test_a_step_is_never_saved_twice(tmp_path):
  with orbax_compat.CheckpointManager(tmp_path) as mngr:
    ckptr = mngr.v1_checkpointer
    v0_save(mngr, 5)
    with pytest.raises(v1.training.errors.StepAlreadyExistsError):
      v1_save(ckptr, 5)
    v1_save(ckptr, 6)
    assert not v0_save(mngr, 6)  # v0: not after the latest step, so not saved ...
    with pytest.raises(ocp.checkpoint_manager.StepAlreadyExistsError):
      v0_save(mngr, 6, force=True)  # ... and forced, refused.
    mngr.wait_until_finished()
    assert mngr.all_steps() == [5, 6]
    assert_restores(mngr, ckptr, [5, 6])


@pytest.mark.parametrize('waiter', ['v0', 'v1'])
def test_wait_of_either_finishes_both(tmp_path, waiter):
  with orbax_compat.CheckpointManager(tmp_path) as mngr:
    ckptr = mngr.v1_checkpointer
    v0_save(mngr, 0)
    v1_save(ckptr, 1)
    if waiter == 'v0':
      mngr.wait_until_finished()
    else:
      ckptr.wait()
    assert not mngr.is_saving_in_progress() and not ckptr.is_saving_in_progress()
    for step in (0, 1):
      assert (tmp_path / str(step) / '_CHECKPOINT_METADATA').exists()
      assert not list(tmp_path.glob(f'{step}.orbax-checkpoint-tmp*'))


@pytest.mark.parametrize('closer', ['v0', 'v1'])
def test_close_of_either_finishes_both(tmp_path, closer):
  mngr = orbax_compat.CheckpointManager(tmp_path)
  ckptr = mngr.v1_checkpointer
  v1_save(ckptr, 0)
  v0_save(mngr, 1)
  if closer == 'v0':
    mngr.close()
  else:
    ckptr.close()
    mngr.close()  # Closing the manager after its Checkpointer is fine.
  with ocp.CheckpointManager(tmp_path) as native:
    assert native.all_steps() == [0, 1]


def test_delete_either_way(tmp_path):
  with orbax_compat.CheckpointManager(tmp_path) as mngr:
    ckptr = mngr.v1_checkpointer
    for step in range(4):
      (v0_save if step % 2 else v1_save)(mngr if step % 2 else ckptr, step)
    mngr.wait_until_finished()
    mngr.delete(0)
    ckptr.delete(1)
    assert mngr.all_steps() == [c.step for c in ckptr.checkpoints] == [2, 3]


def test_v1_reads_what_v0_calls_wrote_with_a_fresh_checkpointer(tmp_path):
  with orbax_compat.CheckpointManager(tmp_path) as mngr:
    v0_save(mngr, 0)
    v1_save(mngr.v1_checkpointer, 1)
  with v1.training.Checkpointer(tmp_path) as fresh:
    assert [c.step for c in fresh.checkpoints] == [0, 1]
    np_target = {'w': np.empty(4, np.float32), 'j': abstract()['j']}
    for step in (0, 1):
      assert values(fresh.load(step, np_target, checkpointable_name='default')) == values(
          tree_of(step))
