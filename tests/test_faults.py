"""Faults, metrics and edge cases: native v0 and the shim, side by side.

Each scenario runs on Orbax's own v0 manager and on the shim (the harness,
tests/differential/) and must give the same observations: return values,
exception types, at the same calls, as many times.

* Background save errors (issue 10, cause 1): a user-written async handler
  whose background write fails. v0 raises such an error once in each thread
  that waits, by the first of `wait_until_finished`, the next `save` or
  `close`; never from `check_for_errors`, `restore`, `delete` or a query; and
  lists the failed step until then.
* Real filesystem failures: test_filesystem_faults.py.
* Metrics (causes 2, 3; issue 9 cause 8): metrics reach every preservation
  policy; falsy metrics are written; `prevent_write_metrics` keeps any metrics
  in memory.
* Edge cases (cause 6), and the deliberate differences README lists, both
  sides pinned.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
import time

from differential import NATIVE
from differential import Options
from differential import Rec
from differential import args
from differential import by_label
from differential import make_tree
from differential import run_native_and_shim
from differential import scenario
from etils import epath
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

import orbax_compat
from orbax_compat.compat import orbax as _v1

pytestmark = pytest.mark.usefixtures('quiet_shim')
pp = ocp.checkpoint_managers  # v0's preservation policies.

# --------------------------------------------------------------------------
# A user-written async handler whose background write can wait and fail.
# --------------------------------------------------------------------------


class InjectedError(Exception):
  """The failure of a background write."""


GATES: dict[str, threading.Event] = {}  # Background writes wait for these.
STARTED: dict[str, threading.Event] = {}  # Set when a gated write begins.


class FlakyHandler(ocp.AsyncCheckpointHandler):
  """Writes `value.json` in a commit future, after its gate opens; may fail."""

  async def async_save(self, directory, args):
    async def write():
      if args.gate:
        if args.gate in STARTED:
          STARTED[args.gate].set()
        await asyncio.to_thread(GATES[args.gate].wait, 60)
      if args.fail:
        raise InjectedError(f'background write of {args.value} failed')
      path = epath.Path(directory) / 'value.json'
      await asyncio.to_thread(path.write_text, json.dumps(args.value))

    return [ocp.future.CommitFutureAwaitingContractedSignals(write())]

  def save(self, directory, args):
    raise NotImplementedError('async only')

  def restore(self, directory, args=None):
    return json.loads((epath.Path(directory) / 'value.json').read_text())

  def finalize(self, directory):
    pass


@ocp.args.register_with_handler(FlakyHandler, for_save=True)
@dataclasses.dataclass
class FlakySave(ocp.args.CheckpointArgs):
  value: int
  fail: bool = False
  gate: str = ''


@ocp.args.register_with_handler(FlakyHandler, for_restore=True)
@dataclasses.dataclass
class FlakyRestore(ocp.args.CheckpointArgs):
  pass


def flaky_manager(rec: Rec, cls, **options):
  return rec.manager(
      'init', cls, item_handlers={'x': FlakyHandler()},
      options=Options(**options),
  )


def save(rec: Rec, m, step: int, fail: bool = False, label: str = '', gate: str = ''):
  return rec.call(
      label or f'save({step})' + (' failing' if fail else ''),
      m.save, step, args=args.Composite(x=FlakySave(step, fail, gate)),
  )


def settle(m) -> None:
  """Lets a save's background part end (and v1's thread see it) unobserved."""
  deadline = time.monotonic() + 60
  while m.is_saving_in_progress() and time.monotonic() < deadline:
    time.sleep(0.01)
  time.sleep(0.2)


def restore_x(m, step):
  return m.restore(step, args=args.Composite(x=FlakyRestore()))['x']


# --------------------------------------------------------------------------
# Cause 1: background save errors.
# --------------------------------------------------------------------------


def _raised_by_wait_only(native, shim):
  """The fault scenarios do see their errors (none passes vacuously)."""
  del shim
  assert [o[0] for o in native if o[1] == 'raises'] == ['wait'], native


@scenario(check=_raised_by_wait_only)
def error_raised_once_by_wait(cls, root):
  rec = Rec(root)
  m = flaky_manager(rec, cls)
  save(rec, m, 0)
  rec.call('wait', m.wait_until_finished)
  save(rec, m, 1, fail=True)
  settle(m)
  rec.call('all_steps before the error is raised', m.all_steps)
  rec.call('latest_step before', m.latest_step)
  rec.call('best_step before', m.best_step)
  rec.call('check_for_errors', m.check_for_errors)
  rec.call('wait', m.wait_until_finished)
  rec.call('wait again', m.wait_until_finished)
  rec.call('check_for_errors after', m.check_for_errors)
  rec.call('all_steps after', m.all_steps)
  rec.call('latest_step after', m.latest_step)
  save(rec, m, 2)
  rec.call('wait', m.wait_until_finished)
  rec.call('all_steps', m.all_steps)
  rec.call('restore(2)', restore_x, m, 2)
  rec.call('close', m.close)
  rec.layout('end')
  return rec.obs


@scenario
def error_raised_once_by_next_save(cls, root):
  rec = Rec(root)
  m = flaky_manager(rec, cls, max_to_keep=2)
  save(rec, m, 0)
  save(rec, m, 1, fail=True)
  settle(m)
  rec.call('all_steps', m.all_steps)
  save(rec, m, 2, label='save(2): raises the error, saves nothing')
  rec.call('all_steps', m.all_steps)
  rec.call('wait', m.wait_until_finished)
  save(rec, m, 2, label='save(2) again')
  save(rec, m, 3)
  rec.call('wait', m.wait_until_finished)
  rec.call('all_steps', m.all_steps)
  rec.call('close', m.close)
  rec.layout('end')
  return rec.obs


@scenario
def error_raised_once_by_close(cls, root):
  rec = Rec(root)
  m = flaky_manager(rec, cls)
  save(rec, m, 0)
  save(rec, m, 1, fail=True)
  rec.call('close', m.close)
  rec.call('close again', m.close)
  rec.call('all_steps', m.all_steps)
  rec.layout('end')
  return rec.obs


@scenario
def error_raised_by_exit_of_with_block(cls, root):
  rec = Rec(root)

  def block():
    with cls(root, item_handlers={'x': FlakyHandler()}) as m:
      m.save(0, args=args.Composite(x=FlakySave(0, fail=True)))
    return m.all_steps()

  rec.call('with block', block)
  return rec.obs


@scenario
def error_survives_restore_delete_and_queries(cls, root):
  """None of these raise the error (v0's restore waits only for the commit)."""
  rec = Rec(root)
  m = flaky_manager(rec, cls)
  save(rec, m, 0)
  save(rec, m, 1)
  rec.call('wait', m.wait_until_finished)
  save(rec, m, 2, fail=True)
  settle(m)
  rec.call('restore(0)', restore_x, m, 0)
  rec.call('metadata(0)', lambda: sorted(m.metadata(0).item_handlers))
  rec.call('metrics(0)', m.metrics, 0)
  rec.call('should_save(3)', m.should_save, 3)
  rec.call('is_saving_in_progress', m.is_saving_in_progress)
  rec.call('delete(0)', m.delete, 0)
  rec.call('all_steps', m.all_steps)
  rec.call('wait: raises now', m.wait_until_finished)
  rec.call('all_steps', m.all_steps)
  rec.call('close', m.close)
  rec.layout('end')
  return rec.obs


def _raised_once_per_thread(native, shim):
  del shim
  assert ('waiter threads', 'value', ['raised'] * 3 + ['returned'] * 3) in native


@scenario(check=_raised_once_per_thread)
def error_raised_once_per_thread(cls, root):
  """Each waiting thread raises it once; no thread clears it for another."""
  rec = Rec(root)
  m = flaky_manager(rec, cls)
  save(rec, m, 0)
  save(rec, m, 1, fail=True)
  settle(m)
  outcomes = []

  def waiter():
    for _ in range(2):
      try:
        m.wait_until_finished()
        outcomes.append('returned')
      except InjectedError:
        outcomes.append('raised')

  threads = [threading.Thread(target=waiter) for _ in range(3)]
  for t in threads:
    t.start()
  for t in threads:
    t.join(60)
  rec.value('waiter threads', sorted(outcomes))
  rec.call('all_steps', m.all_steps)
  save(rec, m, 2, label='save(2) in the main thread: raises it too')
  save(rec, m, 2, label='save(2) again')
  rec.call('close', m.close)
  return rec.obs


@scenario
def error_of_sync_save_raised_by_save_only(cls, root):
  rec = Rec(root)
  m = flaky_manager(rec, cls, enable_async_checkpointing=False)
  save(rec, m, 0)
  save(rec, m, 1, fail=True)
  rec.call('all_steps', m.all_steps)
  rec.call('wait', m.wait_until_finished)
  rec.call('check_for_errors', m.check_for_errors)
  save(rec, m, 2)
  rec.call('all_steps', m.all_steps)
  rec.call('close', m.close)
  rec.layout('end')
  return rec.obs


@scenario
def reload_forgets_a_failed_step(cls, root):
  rec = Rec(root)
  m = flaky_manager(rec, cls)
  save(rec, m, 0)
  save(rec, m, 1, fail=True)
  settle(m)
  rec.call('reload', m.reload)
  rec.call('all_steps after reload', m.all_steps)
  rec.call('wait', m.wait_until_finished)
  rec.call('close', m.close)
  return rec.obs


@scenario
def errors_of_two_saves(cls, root):
  """Each failed save's error is raised in its turn, each once."""
  rec = Rec(root)
  m = flaky_manager(rec, cls)
  save(rec, m, 0, fail=True)
  rec.call('wait', m.wait_until_finished)
  save(rec, m, 1, fail=True)
  save(rec, m, 2, label='save(2): raises the error of 1')
  save(rec, m, 2, fail=True, label='save(2) failing')
  rec.call('wait', m.wait_until_finished)
  rec.call('all_steps', m.all_steps)
  rec.call('close', m.close)
  return rec.obs


@scenario
def delete_old_step_during_a_save(cls, root):
  """delete(old) returns while a save is still writing (v0 does not wait)."""
  rec = Rec(root)
  m = flaky_manager(rec, cls)
  save(rec, m, 0)
  rec.call('wait', m.wait_until_finished)
  gate = f'delete-{cls.__module__}-{id(m)}'
  GATES[gate] = threading.Event()
  try:
    save(rec, m, 1, gate=gate)
    done = threading.Event()
    deleter = threading.Thread(target=lambda: (m.delete(0), done.set()))
    deleter.start()
    deleter.join(60)  # A deadlock guard, not a timing: the gate is closed.
    rec.value('delete(0) returned while save(1) was blocked', done.is_set())
    rec.value('save(1) still in progress', m.is_saving_in_progress())
  finally:
    GATES[gate].set()
  rec.call('wait', m.wait_until_finished)
  rec.call('all_steps', m.all_steps)
  rec.call('close', m.close)
  rec.layout('end')
  return rec.obs


@scenario
def sync_save_whose_cleanup_fails_after_commit(cls, root):
  """Issue 16 item 8: garbage collection of a synchronous save fails after
  the step is committed (`todelete_full_path` is for gs:// only: elsewhere
  v0 raises NotImplementedError there). v0 keeps the new step listed, and
  each next save meets the same cleanup again."""
  rec = Rec(root)
  m = rec.manager('init', cls, options=Options(
      max_to_keep=1, enable_async_checkpointing=False,
      todelete_full_path='trash'))
  for step in range(3):
    rec.call(f'save({step})', m.save, step, args=args.StandardSave(make_tree(step)))
    rec.call(f'all_steps after save({step})', m.all_steps)
    rec.call(f'latest_step after save({step})', m.latest_step)
  rec.call('is_saving_in_progress', m.is_saving_in_progress)
  rec.call('restore(latest)', m.restore, m.latest_step())
  rec.call('wait', m.wait_until_finished)
  rec.call('close', m.close)
  rec.layout('end')
  return rec.obs


@scenario
def sync_save_whose_finalize_hook_fails(cls, root):
  """A subclass's `_finalize_checkpoint` raises for a synchronous save's
  committed step: v0 raises from `save` and keeps the step listed."""

  def _finalize_checkpoint(self, step):
    if step == 1:
      raise RuntimeError(f'finalize hook refused step {step}')
    return cls._finalize_checkpoint(self, step)

  failing = type('FailingFinalize', (cls,), {'_finalize_checkpoint': _finalize_checkpoint})
  rec = Rec(root)
  m = rec.manager('init', failing, options=Options(
      max_to_keep=2, enable_async_checkpointing=False))
  for step in range(4):
    rec.call(f'save({step})', m.save, step, args=args.StandardSave(make_tree(step)))
    rec.call(f'all_steps after save({step})', m.all_steps)
  rec.call('close', m.close)
  rec.layout('end')
  return rec.obs


# --------------------------------------------------------------------------
# Causes 2, 3 (and issue 9 cause 8): metrics.
# --------------------------------------------------------------------------


def _metrics_run(rec: Rec, cls, options, metrics_of, steps=range(4)):
  m = rec.manager('init', cls, options=options)
  for step in steps:
    rec.call(f'save({step})', m.save, step,
             args=args.StandardSave(make_tree(step)), metrics=metrics_of(step))
  rec.call('wait', m.wait_until_finished)
  rec.call('all_steps', m.all_steps)
  rec.call('best_step', m.best_step)
  rec.call('metrics', lambda: [m.metrics(s) for s in m.all_steps()])
  rec.layout('layout')
  rec.call('close', m.close)
  fresh = rec.manager('fresh', cls, options=options)
  rec.call('fresh all_steps', fresh.all_steps)
  rec.call('fresh best_step', fresh.best_step)
  rec.call('fresh close', fresh.close)
  return rec.obs


@scenario
def falsy_float_metrics_are_written(cls, root):
  options = Options(best_fn=lambda x: x, best_mode='min', max_to_keep=2)
  return _metrics_run(Rec(root), cls, options, lambda s: [0.0, 3.0, 1.0, 2.0][s])


@scenario
def empty_dict_metrics_are_written(cls, root):
  options = Options(best_fn=len, max_to_keep=3)
  return _metrics_run(Rec(root), cls, options, lambda s: [{}, {'a': 1}, {}, {}][s])


@scenario
def prevent_write_metrics_keeps_float_metrics(cls, root):
  options = Options(best_fn=lambda x: x, max_to_keep=2, prevent_write_metrics=True)
  return _metrics_run(Rec(root), cls, options, lambda s: [5.0, 3.0, 1.0, 2.0][s])


@scenario
def prevent_write_metrics_keeps_dict_metrics(cls, root):
  options = Options(
      best_fn=lambda x: x['loss'], max_to_keep=2, prevent_write_metrics=True
  )
  return _metrics_run(
      Rec(root), cls, options, lambda s: {'loss': [5.0, 3.0, 1.0, 2.0][s]}
  )


@scenario
def best_n_policy_without_best_fn(cls, root):
  policy = pp.BestN(get_metric_fn=lambda x: x['loss'], n=2)
  return _metrics_run(
      Rec(root), cls, Options(preservation_policy=policy),
      lambda s: {'loss': [5.0, 3.0, 1.0, 2.0][s]},
  )


@scenario
def best_n_policy_of_float_metrics_without_best_fn(cls, root):
  policy = pp.BestN(get_metric_fn=lambda x: x, n=2, reverse=True)
  return _metrics_run(
      Rec(root), cls, Options(preservation_policy=policy),
      lambda s: [5.0, 3.0, 0.0, 2.0][s],
  )


@scenario
def joint_preservation_policy(cls, root):
  """Orbax's test_preservation_joint_policy: best-N, every-N, custom steps."""
  losses = [5, 2, 4, 3, 7, 10, 11, 9, 8, 6, 12, 1]
  policy = pp.AnyPreservationPolicy([
      pp.BestN(get_metric_fn=lambda x: x['loss'], reverse=True, n=2),
      pp.EveryNSteps(interval_steps=4),
      pp.CustomSteps(steps=[0, 3]),
  ])
  return _metrics_run(
      Rec(root), cls, Options(preservation_policy=policy),
      lambda s: {'loss': losses[s]}, steps=range(12),
  )


# --------------------------------------------------------------------------
# Cause 6: edge cases.
# --------------------------------------------------------------------------


@scenario
def negative_step(cls, root):
  rec = Rec(root)
  m = rec.manager('init', cls)
  rec.call('delete(-1) missing', m.delete, -1)
  rec.call('save(-1)', m.save, -1, args=args.StandardSave(make_tree()))
  rec.call('save(-1, force=True)', m.save, -1,
           args=args.StandardSave(make_tree()), force=True)
  rec.call('wait', m.wait_until_finished)
  rec.call('all_steps', m.all_steps)
  rec.call('restore(-1)', lambda: m.restore(-1)['w'])
  rec.call('delete(-1)', m.delete, -1)
  rec.call('all_steps', m.all_steps)
  rec.layout('end')
  rec.call('close', m.close)
  return rec.obs


def _integer_steps(rec: Rec, m) -> None:
  steps = [np.int64(0), jnp.int32(2), np.uint8(4), jnp.array(6, jnp.int64),
           np.int16(8)]
  for step in steps:
    rec.call(f'save({type(step).__name__})', m.save, step,
             args=args.StandardSave(make_tree(int(step))),
             metrics={'loss': float(step)})
  rec.call('wait', m.wait_until_finished)
  rec.call('all_steps', m.all_steps)
  rec.call('latest_step', m.latest_step)
  rec.call('best_step', m.best_step)
  for step in (np.int64(8), jnp.int32(8)):
    name = type(step).__name__
    rec.call(f'restore({name})', lambda s=step: m.restore(s)['w'])
    rec.call(f'should_save({name})', m.should_save, step)
    rec.call(f'metrics({name})', m.metrics, step)
    rec.call(f'metadata({name})', lambda s=step: type(m.metadata(s)).__name__)
    rec.call(f'item_metadata({name})',
             lambda s=step: type(m.item_metadata(s)).__name__)
    rec.call(f'reached_preemption({name})', m.reached_preemption, step)
  rec.call('delete(np.int64)', m.delete, np.int64(8))
  rec.call('delete(jax)', m.delete, jnp.int32(6))
  rec.call('all_steps', m.all_steps)
  rec.layout('end')
  rec.call('close', m.close)


@scenario
def numpy_and_jax_integer_steps(cls, root):
  rec = Rec(root)
  _integer_steps(rec, rec.manager('init', cls))
  return rec.obs


@scenario
def numpy_and_jax_integer_steps_with_options(cls, root):
  rec = Rec(root)
  options = Options(step_prefix='ckpt', step_format_fixed_length=4,
                    best_fn=lambda x: x['loss'], max_to_keep=3,
                    enable_async_checkpointing=False)
  _integer_steps(rec, rec.manager('init', cls, options=options))
  return rec.obs


@scenario
def bad_trees_for_standard_save(cls, root):
  """v0's StandardSave checks, raised from `save` (nothing is listed)."""
  rec = Rec(root)
  m = rec.manager('init', cls)
  bad = {
      'None': None,
      'empty dict': {},
      'empty list': [],
      'a scalar': 3.0,
      'a jax scalar': jnp.float32(3.0),
      'str leaves': {'s': 'hello', 'a': np.arange(2)},
      'bytes leaves': {'s': b'x'},
      'complex leaves': {'c': 1j},
  }
  for step, (label, item) in enumerate(bad.items()):
    rec.call(f'save({label})', m.save, step, args=args.StandardSave(item))
    rec.call('wait', m.wait_until_finished)
  rec.call('all_steps', m.all_steps)
  rec.call('save(a single array)', m.save, 20, args=args.StandardSave(np.arange(3)))
  rec.call('save(a None leaf)', m.save, 21,
           args=args.StandardSave({'a': None, 'b': np.arange(2)}))
  rec.call('wait', m.wait_until_finished)
  rec.call('all_steps', m.all_steps)
  rec.call('close', m.close)
  return rec.obs


@scenario
def bad_trees_for_pytree_save(cls, root):
  rec = Rec(root)
  m = rec.manager('init', cls)
  for step, (label, item) in enumerate({'None': None, 'empty': {}}.items()):
    rec.call(f'save({label})', m.save, step, args=args.PyTreeSave(item))
    rec.call('wait', m.wait_until_finished)
  rec.call('save(str leaves)', m.save, 5, args=args.PyTreeSave({'s': 'x'}))
  rec.call('wait', m.wait_until_finished)
  rec.call('restore', m.restore, 5)
  rec.call('close', m.close)
  return rec.obs


@scenario
def save_args_given_to_restore(cls, root):
  rec = Rec(root)
  m = rec.manager('init', cls)
  tree = {'a': np.arange(2)}
  rec.call('save', m.save, 0, args=args.StandardSave(tree))
  rec.call('wait', m.wait_until_finished)
  rec.call('restore(StandardSave)', m.restore, 0, args=args.StandardSave(tree))
  rec.call('restore(PyTreeSave)', m.restore, 0, args=args.PyTreeSave(tree))
  rec.call('restore(JsonSave)', m.restore, 0, args=args.JsonSave({}))
  rec.call('restore(StandardRestore)', m.restore, 0, args=args.StandardRestore(tree))
  rec.call('close', m.close)
  rec.manager('composite', cls, root=root.parent / 'c', item_names=('x', 'j'))
  m = cls(root.parent / 'c', item_names=('x', 'j', 'y'))
  rec.call('save', m.save, 0, args=args.Composite(
      x=args.PyTreeSave(tree), j=args.JsonSave({'k': 1}),
      y=args.ArraySave(np.arange(3))))
  rec.call('wait', m.wait_until_finished)
  rec.call('restore(Composite of save args: pytree)', m.restore, 0,
           args=args.Composite(x=args.PyTreeSave(tree)))
  rec.call('restore(Composite of save args: array)', m.restore, 0,
           args=args.Composite(y=args.ArraySave(np.arange(3))))
  rec.call('restore(Composite of save args: json)', m.restore, 0,
           args=args.Composite(j=args.JsonSave({})))
  rec.call('close', m.close)
  return rec.obs


def test_failed_step_is_listed_until_its_error_is_raised(tmp_path):
  """The shim's path where v1 has already dropped the failed step."""
  m = orbax_compat.CheckpointManager(tmp_path, item_handlers={'x': FlakyHandler()})
  m.save(0, args=args.Composite(x=FlakySave(0)))
  m.save(1, args=args.Composite(x=FlakySave(1, fail=True)))
  inner = _v1.checkpoint_infos(m.v1_checkpointer)  # pylint: disable=protected-access
  deadline = time.monotonic() + 60
  while 1 in [i.step for i in inner] and time.monotonic() < deadline:
    time.sleep(0.01)
  assert [i.step for i in inner] == [0]  # v1's thread saw the error.
  assert m.all_steps() == [0, 1] and m.latest_step() == 1
  with pytest.raises(InjectedError):
    m.wait_until_finished()
  assert m.all_steps() == [0] and m.latest_step() == 0
  m.wait_until_finished()
  m.close()


# --------------------------------------------------------------------------
# Known differences (README): both sides pinned.
# --------------------------------------------------------------------------


def test_delete_of_the_step_being_saved(tmp_path):
  """v0 deletes the files of a step under the save still writing it (that save
  then fails at the next wait); the shim lets the save commit, then deletes."""

  def fn(cls, root):
    rec = Rec(root)
    m = rec.manager('init', cls, item_handlers={'x': FlakyHandler()})
    gate = f'self-delete-{cls.__module__}'
    GATES[gate], STARTED[gate] = threading.Event(), threading.Event()
    save(rec, m, 0)
    save(rec, m, 1, gate=gate)
    # The step's directories exist once its write has begun (on a loaded
    # machine v0's may not yet exist when save returns).
    STARTED[gate].wait(60)
    threading.Timer(0.5, GATES[gate].set).start()  # Opens the gate for the shim.
    rec.call('delete(1) during its save', m.delete, 1)
    GATES[gate].set()
    rec.call('wait', m.wait_until_finished)
    rec.call('all_steps', m.all_steps)
    rec.layout('end')
    rec.call('close', m.close)
    return rec.obs

  native, shim = map(by_label, run_native_and_shim(fn, tmp_path))
  deleted = ('returns', ('builtins.NoneType', None))
  assert native['delete(1) during its save'] == shim['delete(1) during its save'] == deleted
  # v0 removed the files under the save, which then fails.
  assert native['wait'][:2] == ('raises', 'builtins.FileNotFoundError')
  # The shim let the save commit before deleting the step: nothing fails.
  assert shim['wait'] == ('returns', ('builtins.NoneType', None))
  assert native['all_steps'] == shim['all_steps']
  assert native['end'] == shim['end']
  assert [e[0] for e in shim['end'][1]] == ['0/']


def test_empty_composite(tmp_path):
  """v0 returns True, then raises ValueError from wait (and leaves a temporary
  directory); the shim raises the ValueError from save and writes nothing."""

  def fn(cls, root):
    rec = Rec(root)
    m = rec.manager('init', cls, item_names=('a',))
    rec.call('save(empty Composite)', m.save, 0, args=args.Composite())
    rec.call('wait', m.wait_until_finished)
    rec.call('all_steps', m.all_steps)
    rec.layout('end')
    rec.call('close', m.close)
    return rec.obs

  native, shim = run_native_and_shim(fn, tmp_path)
  assert [o[1:3] for o in native[1:3]] == [
      ('returns', ('builtins.bool', True)), ('raises', 'builtins.ValueError')]
  assert [o[1:3] for o in shim[1:3]] == [
      ('raises', 'builtins.ValueError'), ('returns', ('builtins.NoneType', None))]
  assert ('end', 'layout', []) in shim


def test_save_after_close(tmp_path):
  """v0's save returns True and fails in the background (RuntimeError at the
  next wait, a temporary directory left); the shim raises RuntimeError from
  save and writes nothing."""

  def fn(cls, root):
    rec = Rec(root)
    m = rec.manager('init', cls)
    rec.call('save(0)', m.save, 0, args=args.StandardSave(make_tree()))
    rec.call('close', m.close)
    rec.call('save(1) after close', m.save, 1, args=args.StandardSave(make_tree()))
    rec.call('wait', m.wait_until_finished)
    rec.call('all_steps', m.all_steps)
    rec.call('restore(0) after close', lambda: m.restore(0)['w'])
    rec.layout('end')
    return rec.obs

  native, shim = map(by_label, run_native_and_shim(fn, tmp_path))
  assert native['save(1) after close'] == ('returns', ('builtins.bool', True))
  assert native['wait'][:2] == ('raises', 'builtins.RuntimeError')
  assert shim['save(1) after close'][:2] == ('raises', 'builtins.RuntimeError')
  assert shim['wait'] == ('returns', ('builtins.NoneType', None))
  assert native['all_steps'] == shim['all_steps']
  assert native['restore(0) after close'] == shim['restore(0) after close']
  assert [e[0] for e in shim['end'][1]] == ['0/']


def test_json_save_of_none(tmp_path):
  """Both write JSON `null` (v1 takes no None checkpointable: the shim's JSON
  handler writes it), and restore None."""
  results = {}
  for name, cls in (('native', NATIVE), ('shim', orbax_compat.CheckpointManager)):
    with cls(tmp_path / name) as m:
      m.save(0, args=args.JsonSave(None))
      m.wait_until_finished()
      results[name] = (m.restore(0), m.all_steps(),
                       (tmp_path / name / '0' / 'default' / 'metadata').read_text())
  assert results['native'] == results['shim'] == (None, [0], 'null')


def test_refused_items_write_nothing(tmp_path):
  """Both raise v0's ValueError from save; v0 often leaves a temporary step
  directory (created in the background, racing the refusal), the shim never."""
  refused = {
      'None': args.StandardSave(None),
      'empty': args.PyTreeSave({}),
      'scalar': args.StandardSave(3.0),
      'str leaf': args.StandardSave({'s': 'x', 'a': np.arange(2)}),
  }
  for cls, may_leave in ((NATIVE, True), (orbax_compat.CheckpointManager, False)):
    for label, arg in refused.items():
      root = tmp_path / cls.__module__ / label.replace(' ', '_')
      m = cls(root)
      with pytest.raises(ValueError):
        m.save(0, args=arg)
      m.wait_until_finished()
      assert m.all_steps() == []
      m.close()
      names = sorted(p.name for p in root.iterdir())
      allowed = ([], ['0.orbax-checkpoint-tmp']) if may_leave else ([],)
      assert names in allowed, (cls, label, names)


def test_metrics_without_a_separate_truth_value(tmp_path):
  """bool metrics: v0 keeps True in memory with prevent_write_metrics and
  writes False; the shim drops the first and does not write the second."""
  kept = {}
  for cls in (NATIVE, orbax_compat.CheckpointManager):
    root = tmp_path / cls.__module__
    options = Options(best_fn=float, max_to_keep=1, prevent_write_metrics=True)
    with cls(root / 'kept', options=options) as m:
      for step, metrics in enumerate((True, False, True)):
        m.save(step, args=args.StandardSave(make_tree()), metrics=metrics)
      m.wait_until_finished()
      kept[cls] = m.all_steps()
    with cls(root / 'written', options=Options(best_fn=float)) as m:
      m.save(0, args=args.StandardSave(make_tree()), metrics=False)
      m.wait_until_finished()
      kept[cls, 'written'] = (root / 'written' / '0' / 'metrics').exists()
  assert kept[NATIVE] == [2] and kept[NATIVE, 'written'] is True
  shim = orbax_compat.CheckpointManager
  assert kept[shim] == [0, 1, 2] and kept[shim, 'written'] is False


def test_sync_save_error_leaves_no_save_in_progress(tmp_path):
  """After a failed synchronous save v0 reports a save in progress for good;
  the shim does not."""
  for cls, expected in ((NATIVE, True), (orbax_compat.CheckpointManager, False)):
    m = cls(tmp_path / cls.__module__, item_handlers={'x': FlakyHandler()},
            options=Options(enable_async_checkpointing=False))
    with pytest.raises(InjectedError):
      m.save(0, args=args.Composite(x=FlakySave(0, fail=True)))
    assert m.is_saving_in_progress() is expected
    m.close()
