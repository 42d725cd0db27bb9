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
from orbax_compat.compat import orbax as _v1
from orbax_compat.compat.orbax import v1

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
    if _v1.V1_DELETES:  # v1's training.Checkpointer.delete: orbax-checkpoint 0.12.8.
      ckptr.delete(1)
    else:
      mngr.delete(1)
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


# --- The other way: a v1 Checkpointer in v0's clothes, for legacy helpers ------


def legacy_helper(mngr, step):
  """Old code taking a v0 manager: saves, lists, restores, asks for the best."""
  assert isinstance(mngr, ocp.CheckpointManager)
  saved = mngr.save(step, args=ocp.args.StandardSave(tree_of(step)), metrics={'loss': 1.0 / (step + 1)})
  mngr.wait_until_finished()
  latest = mngr.latest_step()
  return saved, latest, mngr.best_step(), values(mngr.restore(latest))


def test_from_v1_serves_legacy_helpers(tmp_path):
  policies = v1.training.preservation_policies
  with v1.training.Checkpointer(
      tmp_path, save_decision_policy=v1.training.save_decision_policies.FixedIntervalPolicy(1),
      preservation_policy=policies.BestN(get_metric_fn=lambda m: m['loss'], reverse=True, n=2),
  ) as ckptr:
    mngr = orbax_compat.from_v1(ckptr)
    assert mngr.v1_checkpointer is ckptr
    ckptr.save_checkpointables(0, {'default': tree_of(0)}, metrics={'loss': 1.0})
    assert legacy_helper(mngr, 1) == (True, 1, 1, values(tree_of(1)))
    r = ckptr.save_checkpointables_async(2, {'default': tree_of(2)}, metrics={'loss': 0.1})
    assert legacy_helper(mngr, 3) == (True, 3, 2, values(tree_of(3)))  # v1's async save in flight.
    r.result()
    # The Checkpointer's BestN policy kept its two best; both views agree.
    assert mngr.all_steps() == [c.step for c in ckptr.checkpoints] == [2, 3]
    assert values(ckptr.load(2, {'w': np.empty(4, np.float32), 'j': abstract()['j']},
                             checkpointable_name='default')) == values(tree_of(2))
  with ocp.CheckpointManager(tmp_path) as native:
    assert native.all_steps() == [2, 3]


def test_from_v1_refuses_a_second_wrap_a_closed_checkpointer_and_others(tmp_path):
  ckptr = v1.training.Checkpointer(tmp_path / 'a')
  orbax_compat.from_v1(ckptr)
  with pytest.raises(ValueError, match='already runs'):
    orbax_compat.from_v1(ckptr)
  with orbax_compat.CheckpointManager(tmp_path / 'b') as mngr:
    with pytest.raises(ValueError, match='already runs'):
      orbax_compat.from_v1(mngr.v1_checkpointer)
  ckptr.close()
  closed = v1.training.Checkpointer(tmp_path / 'c')
  closed.close()
  with pytest.raises(ValueError, match='is closed'):
    orbax_compat.from_v1(closed)
  with pytest.raises(TypeError, match='training.Checkpointer'):
    orbax_compat.from_v1(ocp.CheckpointManager(tmp_path / 'd'))
