"""Differential tests: orbax_compat.CheckpointManager against Orbax's own v0.

Each scenario below is a function `scenario(cls, root) -> observations`,
registered with `@scenario`: it runs as `test_scenario[<name>]`, on native v0
twice (the same observations: the scenario is deterministic) and on the shim
(the same as native), each in a fresh directory (tests/differential/ says
what is recorded and how it is compared).

`test_shim_leaves_no_threads_after_close` checks that, like v0, the shim
leaves no background thread alive once its managers are closed.

Run one side by hand: `run_scenario(single_item_roundtrip, cls, root)`
returns the observations of either class.
"""

from __future__ import annotations

import datetime
import pathlib
import re
import threading
import time

from differential import NATIVE
from differential import Options
from differential import Rec
from differential import abstract
from differential import args
from differential import disk_layout
from differential import json_doc
from differential import make_tree
from differential import registry
from differential import root_metadata_obs
from differential import run_scenario
from differential import scenario
from differential import step_metadata_obs
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

import orbax_compat

pytestmark = pytest.mark.usefixtures('quiet_shim')
# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------


def save_steps(rec: Rec, m, steps, metrics_fn=None, label='save'):
  for s in steps:
    kw = {}
    if metrics_fn is not None:
      mt = metrics_fn(s)
      if mt is not None:
        kw['metrics'] = mt
    rec.call(f'{label}({s})', m.save, s, args=args.StandardSave(make_tree(s)),
             **kw)
  rec.call('wait', m.wait_until_finished)


# --------------------------------------------------------------------------
# Scenarios: single item
# --------------------------------------------------------------------------


@scenario
def single_item_roundtrip(cls, root):
  rec = Rec(root)
  tree = make_tree()
  m = rec.manager('init', cls)
  rec.call('directory', lambda: m.directory)
  rec.call('save(0)', m.save, 0, args=args.StandardSave(tree))
  rec.call('wait', m.wait_until_finished)
  rec.call('is_saving_in_progress', m.is_saving_in_progress)
  rec.call('check_for_errors', m.check_for_errors)
  rec.layout('after save')
  rec.call('restore no args', m.restore, 0)
  rec.call('restore concrete', m.restore, 0, args=args.StandardRestore(tree))
  rec.call('restore abstract', m.restore, 0,
           args=args.StandardRestore(abstract(tree)))
  rec.call('restore StandardRestore()', m.restore, 0,
           args=args.StandardRestore())
  rec.call('restore latest (None)', m.restore, None)
  rec.call('close', m.close)
  return rec.obs


@scenario
def single_item_restore_in_fresh_manager(cls, root):
  rec = Rec(root)
  tree = make_tree(3)
  with cls(root) as m:
    rec.call('save(4)', m.save, 4, args=args.StandardSave(tree))
  rec.layout('after close')
  m2 = rec.manager('init 2', cls)
  rec.call('all_steps', m2.all_steps)
  rec.call('restore no args', m2.restore, 4)
  rec.call('restore abstract', m2.restore, 4,
           args=args.StandardRestore(abstract(tree)))
  rec.call('close', m2.close)
  m3 = rec.manager('init 3', cls)
  rec.call('restore StandardRestore()', m3.restore, 4,
           args=args.StandardRestore())
  rec.call('restore None', m3.restore, None)
  rec.call('close', m3.close)
  return rec.obs


@scenario
def pytree_save_restore(cls, root):
  rec = Rec(root)
  tree = make_tree(1)
  m = rec.manager('init', cls)
  rec.call('save(0)', m.save, 0, args=args.PyTreeSave(tree))
  rec.call('wait', m.wait_until_finished)
  rec.layout('after save')
  rec.call('restore no args', m.restore, 0)
  rec.call('restore PyTreeRestore(item)', m.restore, 0,
           args=args.PyTreeRestore(item=tree))
  rec.call('item_metadata', m.item_metadata, 0)
  rec.call('close', m.close)
  m2 = rec.manager('init 2', cls)
  rec.call('fresh restore PyTreeRestore(item)', m2.restore, 0,
           args=args.PyTreeRestore(item=abstract(tree)))
  rec.call('close', m2.close)
  return rec.obs


@scenario
def restore_concrete_target_with_numpy_scalar(cls, root):
  # v0's StandardCheckpointHandler rejects a numpy scalar in a target tree.
  rec = Rec(root)
  m = rec.manager('init', cls)
  tree = {'a': np.arange(2, dtype=np.float32), 's': np.int64(5)}
  rec.call('save(0)', m.save, 0, args=args.StandardSave(tree))
  rec.call('wait', m.wait_until_finished)
  rec.call('restore no args', m.restore, 0)
  rec.call('restore concrete', m.restore, 0, args=args.StandardRestore(tree))
  rec.call('close', m.close)
  return rec.obs


@scenario
def sync_save(cls, root):
  rec = Rec(root)
  m = rec.manager('init', cls,
                  options=Options(enable_async_checkpointing=False))
  rec.call('save(0)', m.save, 0, args=args.StandardSave(make_tree()))
  # Synchronous: the step is complete when save returns.
  rec.call('is_saving_in_progress', m.is_saving_in_progress)
  rec.layout('right after save (no wait)')
  rec.call('save(1)', m.save, 1, args=args.StandardSave(make_tree(1)))
  rec.call('all_steps', m.all_steps)
  rec.call('restore(1)', m.restore, 1)
  rec.call('check_for_errors', m.check_for_errors)
  rec.call('close', m.close)
  return rec.obs


@scenario
def context_manager_closes(cls, root):
  rec = Rec(root)
  mgr = cls(root, options=Options(max_to_keep=1))
  with mgr as m:
    rec.value('__enter__ returns the manager', m is mgr)
    rec.call('save(0)', m.save, 0, args=args.StandardSave(make_tree()))
    rec.call('save(1)', m.save, 1, args=args.StandardSave(make_tree(1)))
  rec.layout('after exit (no explicit wait)')
  rec.call('close again after exit', m.close)
  rec.call('all_steps after close', m.all_steps)
  return rec.obs


@scenario
def mixed_arg_families_on_restore(cls, root):
  # Restores only: a v0 save that fails mid-way leaves a tmp dir behind.
  rec = Rec(root)
  tree = make_tree()
  m = rec.manager('init', cls)
  rec.call('StandardSave(0)', m.save, 0, args=args.StandardSave(tree))
  rec.call('wait', m.wait_until_finished)
  rec.call('same manager PyTreeRestore', m.restore, 0,
           args=args.PyTreeRestore(item=tree))
  rec.call('same manager JsonRestore', m.restore, 0, args=args.JsonRestore())
  rec.call('close', m.close)
  m2 = rec.manager('fresh', cls)
  rec.call('fresh PyTreeRestore of StandardSave data', m2.restore, 0,
           args=args.PyTreeRestore(item=tree))
  rec.call('then StandardRestore', m2.restore, 0,
           args=args.StandardRestore(tree))
  rec.call('close 2', m2.close)
  m3 = rec.manager('fresh 3', cls)
  rec.call('fresh JsonRestore of a pytree item', m3.restore, 0,
           args=args.JsonRestore())
  rec.call('close 3', m3.close)
  rec.layout('end')
  return rec.obs


@scenario
def jax_scalar_step(cls, root):
  # Training loops often pass `state.step`, a jax scalar.
  rec = Rec(root)
  m = rec.manager('init', cls, options=Options(save_interval_steps=2))
  rec.call('save(jnp 4)', m.save, jnp.asarray(4, dtype=jnp.int32),
           args=args.StandardSave(make_tree(4)))
  rec.call('should_save(jnp 5)', m.should_save, jnp.asarray(5))
  rec.call('save(jnp 5)', m.save, jnp.asarray(5),
           args=args.StandardSave(make_tree(5)))
  rec.call('save(jnp 6)', m.save, jnp.asarray(6),
           args=args.StandardSave(make_tree(6)))
  rec.call('wait', m.wait_until_finished)
  rec.call('latest_step', m.latest_step)
  rec.call('all_steps', m.all_steps)
  rec.call('restore(jnp 4)', m.restore, jnp.asarray(4))
  rec.call('delete(jnp 4)', m.delete, jnp.asarray(4))
  rec.call('all_steps after delete', m.all_steps)
  rec.layout('end')
  rec.call('close', m.close)
  return rec.obs


@scenario
def numpy_integer_step(cls, root):
  # v0 keeps the step object it was given in its in-memory list.
  rec = Rec(root)
  m = rec.manager('init', cls)
  rec.call('save(0)', m.save, 0, args=args.StandardSave(make_tree()))
  rec.call('save(np.int64(4))', m.save, np.int64(4),
           args=args.StandardSave(make_tree(4)))
  rec.call('wait', m.wait_until_finished)
  rec.call('latest_step', m.latest_step)
  rec.call('all_steps', m.all_steps)
  rec.call('restore(np.int64(4))', m.restore, np.int64(4))
  rec.layout('end')
  rec.call('close', m.close)
  m2 = rec.manager('reopen', cls)
  rec.call('reopen latest_step', m2.latest_step)
  rec.call('close 2', m2.close)
  return rec.obs


# --------------------------------------------------------------------------
# Scenarios: composite
# --------------------------------------------------------------------------


@scenario
def composite_standard_and_json(cls, root):
  rec = Rec(root)
  tree = make_tree(2)
  m = rec.manager('init', cls)
  rec.call('save(0)', m.save, 0, args=args.Composite(
      state=args.StandardSave(tree), meta=args.JsonSave(json_doc(0))))
  rec.call('wait', m.wait_until_finished)
  rec.layout('after save')
  rec.call('restore no args', m.restore, 0)
  rec.call('restore full args', m.restore, 0, args=args.Composite(
      state=args.StandardRestore(abstract(tree)), meta=args.JsonRestore()))
  rec.call('restore partial (state)', m.restore, 0, args=args.Composite(
      state=args.StandardRestore(tree)))
  rec.call('restore partial (meta)', m.restore, 0, args=args.Composite(
      meta=args.JsonRestore()))
  rec.call('item_metadata', m.item_metadata, 0)
  rec.call('close', m.close)
  return rec.obs


@scenario
def composite_restore_in_fresh_manager(cls, root):
  rec = Rec(root)
  tree = make_tree(5)
  with cls(root) as m:
    rec.call('save(2)', m.save, 2, args=args.Composite(
        state=args.StandardSave(tree), meta=args.JsonSave(json_doc(2))))
  m2 = rec.manager('init 2', cls)
  rec.call('restore no args', m2.restore, 2)
  rec.call('close', m2.close)
  m3 = rec.manager('init 3', cls)
  rec.call('restore partial (meta)', m3.restore, 2,
           args=args.Composite(meta=args.JsonRestore()))
  rec.call('restore partial (state abstract)', m3.restore, 2,
           args=args.Composite(state=args.StandardRestore(abstract(tree))))
  rec.call('item_metadata', m3.item_metadata, 2)
  rec.call('close', m3.close)
  return rec.obs


@scenario
def composite_json_only_sync(cls, root):
  rec = Rec(root)
  m = rec.manager('init', cls,
                  options=Options(enable_async_checkpointing=False))
  for s in (0, 1):
    rec.call(f'save({s})', m.save, s,
             args=args.Composite(cfg=args.JsonSave(json_doc(s))))
  rec.layout('after saves')
  rec.call('restore(1)', m.restore, 1)
  rec.call('restore(0) args', m.restore, 0,
           args=args.Composite(cfg=args.JsonRestore()))
  rec.call('close', m.close)
  return rec.obs


# --------------------------------------------------------------------------
# Scenarios: steps and queries
# --------------------------------------------------------------------------


@scenario
def empty_root_queries(cls, root):
  rec = Rec(root)
  m = rec.manager('init', cls)
  rec.layout('after init')
  rec.call('all_steps', m.all_steps)
  rec.call('all_steps(read=True)', m.all_steps, read=True)
  rec.call('latest_step', m.latest_step)
  rec.call('best_step', m.best_step)
  rec.call('should_save(0)', m.should_save, 0)
  rec.call('reached_preemption(0)', m.reached_preemption, 0)
  rec.call('is_saving_in_progress', m.is_saving_in_progress)
  rec.call('wait', m.wait_until_finished)
  rec.call('check_for_errors', m.check_for_errors)
  rec.call('restore(None) on empty', m.restore, None)
  rec.call('close', m.close)
  mb = rec.manager('init best', cls, options=Options(
      best_fn=lambda mt: mt['loss'], best_mode='min'))
  rec.call('best_step with best_fn', mb.best_step)
  rec.call('close best', mb.close)
  return rec.obs


@scenario
def populated_queries(cls, root):
  rec = Rec(root)
  m = rec.manager('init', cls)
  save_steps(rec, m, [0, 1, 5])
  rec.call('all_steps', m.all_steps)
  rec.call('all_steps(read=True)', m.all_steps, read=True)
  rec.call('latest_step', m.latest_step)
  rec.call('best_step (no best_fn)', m.best_step)
  rec.call('should_save(5)', m.should_save, 5)
  rec.call('should_save(3)', m.should_save, 3)
  rec.call('should_save(6)', m.should_save, 6)
  rec.call('save(3) below latest', m.save, 3,
           args=args.StandardSave(make_tree()))
  rec.call('save(3, force=True)', m.save, 3,
           args=args.StandardSave(make_tree(3)), force=True)
  rec.call('wait', m.wait_until_finished)
  rec.call('all_steps after forced', m.all_steps)
  rec.call('latest_step after forced', m.latest_step)
  rec.layout('end')
  rec.call('close', m.close)
  m2 = rec.manager('reopen', cls)
  rec.call('reopen all_steps', m2.all_steps)
  rec.call('reopen latest_step', m2.latest_step)
  rec.call('close 2', m2.close)
  return rec.obs


@scenario
def save_interval_steps_3(cls, root):
  rec = Rec(root)
  m = rec.manager('init', cls, options=Options(save_interval_steps=3))
  for s in range(11):
    rec.call(f'should_save({s})', m.should_save, s)
    rec.call(f'save({s})', m.save, s, args=args.StandardSave(make_tree(s)))
    rec.call(f'wait {s}', m.wait_until_finished)
  rec.call('all_steps', m.all_steps)
  rec.layout('end')
  rec.call('close', m.close)
  return rec.obs


@scenario
def save_on_steps(cls, root):
  rec = Rec(root)
  m = rec.manager('init', cls, options=Options(
      save_interval_steps=4, save_on_steps=[3, 5, 6]))
  for s in range(10):
    rec.call(f'should_save({s})', m.should_save, s)
    rec.call(f'save({s})', m.save, s, args=args.StandardSave(make_tree(s)))
    rec.call(f'wait {s}', m.wait_until_finished)
  rec.call('all_steps', m.all_steps)
  rec.layout('end')
  rec.call('close', m.close)
  return rec.obs


@scenario
def should_save_fn(cls, root):
  rec = Rec(root)
  seen = set()

  def fn(step, last):
    seen.add((step, last))
    return step % 4 == 1

  m = rec.manager('init', cls, options=Options(
      should_save_fn=fn, save_interval_steps=2, save_on_steps=[2]))
  for s in range(10):
    rec.call(f'should_save({s})', m.should_save, s)
    rec.call(f'save({s})', m.save, s, args=args.StandardSave(make_tree(s)))
    rec.call(f'wait {s}', m.wait_until_finished)
  rec.call('all_steps', m.all_steps)
  rec.value('should_save_fn saw (step, last)', sorted(seen, key=repr))
  rec.layout('end')
  rec.call('close', m.close)
  return rec.obs


@scenario
def save_decision_policy(cls, root):
  rec = Rec(root)
  policy = ocp.checkpoint_managers.AnySavePolicy([
      ocp.checkpoint_managers.FixedIntervalPolicy(4),
      ocp.checkpoint_managers.SpecificStepsPolicy(steps=(3,)),
  ])
  m = rec.manager('init', cls, options=Options(
      save_decision_policy=policy, save_interval_steps=1))
  for s in range(9):
    rec.call(f'save({s})', m.save, s, args=args.StandardSave(make_tree(s)))
    rec.call(f'wait {s}', m.wait_until_finished)
  rec.call('all_steps', m.all_steps)
  rec.call('close', m.close)
  return rec.obs


@scenario
def max_to_keep_2(cls, root):
  rec = Rec(root)
  m = rec.manager('init', cls, options=Options(max_to_keep=2))
  for s in range(6):
    rec.call(f'save({s})', m.save, s, args=args.StandardSave(make_tree(s)))
    rec.call(f'wait {s}', m.wait_until_finished)
    rec.call(f'all_steps after {s}', m.all_steps)
  rec.layout('end')
  rec.call('restore(4)', m.restore, 4)
  rec.call('restore(3) deleted', m.restore, 3)
  rec.call('close', m.close)
  return rec.obs


@scenario
def keep_period(cls, root):
  rec = Rec(root)
  m = rec.manager('init', cls, options=Options(max_to_keep=1, keep_period=3))
  save_steps(rec, m, range(8))
  rec.call('all_steps', m.all_steps)
  rec.layout('end')
  rec.call('close', m.close)
  return rec.obs


@scenario
def keep_time_interval(cls, root):
  # An hour-long interval: only the first step is kept by it (deterministic
  # as long as the scenario takes less than an hour).
  rec = Rec(root)
  m = rec.manager('init', cls, options=Options(
      max_to_keep=1, keep_time_interval=datetime.timedelta(hours=1)))
  save_steps(rec, m, range(4))
  rec.call('all_steps', m.all_steps)
  rec.layout('end')
  rec.call('close', m.close)
  return rec.obs


@scenario
def preservation_policy(cls, root):
  rec = Rec(root)
  policy = ocp.checkpoint_managers.AnyPreservationPolicy([
      ocp.checkpoint_managers.LatestN(n=2),
      ocp.checkpoint_managers.CustomSteps(steps=[1]),
  ])
  m = rec.manager('init', cls, options=Options(preservation_policy=policy))
  save_steps(rec, m, range(6))
  rec.call('all_steps', m.all_steps)
  rec.layout('end')
  rec.call('close', m.close)
  return rec.obs


# --------------------------------------------------------------------------
# Scenarios: best_fn and metrics
# --------------------------------------------------------------------------

LOSSES = {0: 0.5, 1: 0.2, 2: 0.9, 3: 0.1, 4: 0.7, 5: 0.3}


def _loss_metrics(s):
  return {'loss': LOSSES[s], 'acc': 1.0 - LOSSES[s]}


@scenario
def best_fn_max_with_max_to_keep(cls, root):
  rec = Rec(root)
  m = rec.manager('init', cls, options=Options(
      best_fn=lambda mt: mt['acc'], best_mode='max', max_to_keep=2))
  for s in range(6):
    rec.call(f'save({s})', m.save, s, args=args.StandardSave(make_tree(s)),
             metrics=_loss_metrics(s))
    rec.call(f'wait {s}', m.wait_until_finished)
    rec.call(f'all_steps after {s}', m.all_steps)
  rec.call('best_step', m.best_step)
  rec.call('latest_step', m.latest_step)
  for s in m.all_steps():
    rec.call(f'metrics({s})', m.metrics, s)
  rec.layout('end')
  rec.call('close', m.close)
  m2 = rec.manager('reopen', cls, options=Options(
      best_fn=lambda mt: mt['acc'], best_mode='max', max_to_keep=2))
  rec.call('reopen best_step', m2.best_step)
  rec.call('reopen all_steps', m2.all_steps)
  rec.call('close 2', m2.close)
  return rec.obs


@scenario
def best_fn_min_keep_without_metrics(cls, root):
  rec = Rec(root)
  m = rec.manager('init', cls, options=Options(
      best_fn=lambda mt: mt['loss'], best_mode='min', max_to_keep=2,
      keep_checkpoints_without_metrics=True))
  save_steps(rec, m, range(6),
             metrics_fn=lambda s: None if s in (1, 4) else _loss_metrics(s))
  rec.call('all_steps', m.all_steps)
  rec.call('best_step', m.best_step)
  for s in range(6):
    rec.call(f'metrics({s})', m.metrics, s)
  rec.layout('end')
  rec.call('close', m.close)
  return rec.obs


@scenario
def best_fn_min_drop_without_metrics(cls, root):
  rec = Rec(root)
  m = rec.manager('init', cls, options=Options(
      best_fn=lambda mt: mt['loss'], best_mode='min', max_to_keep=2,
      keep_checkpoints_without_metrics=False))
  save_steps(rec, m, range(6),
             metrics_fn=lambda s: None if s in (1, 4) else _loss_metrics(s))
  rec.call('all_steps', m.all_steps)
  rec.call('best_step', m.best_step)
  rec.layout('end')
  rec.call('close', m.close)
  return rec.obs


@scenario
def best_fn_without_any_metrics(cls, root):
  rec = Rec(root)
  m = rec.manager('init', cls, options=Options(
      best_fn=lambda mt: mt['loss'], best_mode='min', max_to_keep=1))
  save_steps(rec, m, range(3))
  rec.call('all_steps', m.all_steps)
  rec.call('best_step', m.best_step)
  rec.call('latest_step', m.latest_step)
  rec.call('metrics(2)', m.metrics, 2)
  rec.layout('end')
  rec.call('close', m.close)
  return rec.obs


@scenario
def metrics_without_best_fn(cls, root):
  # v0 only writes metrics when best_fn is set.
  rec = Rec(root)
  m = rec.manager('init', cls)
  rec.call('save(0) with metrics', m.save, 0,
           args=args.StandardSave(make_tree()), metrics={'loss': 0.25})
  rec.call('wait', m.wait_until_finished)
  rec.call('metrics(0)', m.metrics, 0)
  rec.call('best_step', m.best_step)
  rec.call('metadata(0)', m.metadata, 0,
           post=step_metadata_obs)
  rec.layout('end')
  rec.call('close', m.close)
  return rec.obs


@scenario
def metrics_with_best_fn(cls, root):
  rec = Rec(root)
  def opts():
    return Options(best_fn=lambda mt: mt['loss'], best_mode='min')

  m = rec.manager('init', cls, options=opts())
  rec.call('save(0) metrics', m.save, 0, args=args.StandardSave(make_tree()),
           metrics={'loss': 0.25, 'acc': 0.5})
  rec.call('save(1) no metrics', m.save, 1,
           args=args.StandardSave(make_tree(1)))
  rec.call('wait', m.wait_until_finished)
  rec.call('metrics(0)', m.metrics, 0)
  rec.call('metrics(1)', m.metrics, 1)
  rec.call('metrics(9) missing step', m.metrics, 9)
  rec.call('best_step', m.best_step)
  for s in (0, 1):
    rec.call(f'metadata({s})', m.metadata, s,
             post=step_metadata_obs)
  rec.layout('end')
  rec.call('close', m.close)
  return rec.obs


# --------------------------------------------------------------------------
# Scenarios: naming and directories
# --------------------------------------------------------------------------


@scenario
def step_prefix_and_fixed_length(cls, root):
  rec = Rec(root)
  def opts():
    return Options(step_prefix='ckpt', step_format_fixed_length=5,
                   max_to_keep=2)

  m = rec.manager('init', cls, options=opts())
  save_steps(rec, m, [1, 20, 300])
  rec.layout('end')
  rec.call('all_steps', m.all_steps)
  rec.call('restore(20)', m.restore, 20)
  rec.call('delete(20)', m.delete, 20)
  rec.layout('after delete')
  rec.call('close', m.close)
  m2 = rec.manager('reopen', cls, options=opts())
  rec.call('reopen all_steps', m2.all_steps)
  rec.call('close 2', m2.close)
  m3 = rec.manager('reopen without prefix', cls)
  rec.call('no-prefix all_steps', m3.all_steps)
  rec.call('close 3', m3.close)
  return rec.obs


@scenario
def step_prefix_only(cls, root):
  rec = Rec(root)
  m = rec.manager('init', cls, options=Options(step_prefix='step'))
  save_steps(rec, m, [0, 7])
  rec.layout('end')
  rec.call('latest_step', m.latest_step)
  rec.call('close', m.close)
  return rec.obs


@scenario
def step_name_format(cls, root):
  rec = Rec(root)
  def fmt():
    return ocp.step.standard_name_format(step_prefix='ckpt')

  m = rec.manager('init', cls, options=Options(step_name_format=fmt()))
  save_steps(rec, m, [2, 4])
  rec.layout('end')
  rec.call('all_steps', m.all_steps)
  rec.call('restore(4)', m.restore, 4)
  rec.call('metadata(2).custom_metadata',
           lambda: m.metadata(2).custom_metadata)
  rec.call('delete(2)', m.delete, 2)
  rec.call('all_steps after delete', m.all_steps)
  rec.call('close', m.close)
  m2 = rec.manager('reopen', cls, options=Options(step_name_format=fmt()))
  rec.call('reopen all_steps', m2.all_steps)
  rec.call('reopen restore(4)', m2.restore, 4)
  rec.call('close 2', m2.close)
  rec.layout('after delete')
  return rec.obs


@scenario
def create_false_on_missing_dir(cls, root):
  rec = Rec(root)
  m = rec.manager('init', cls, options=Options(create=False))
  rec.layout('after init')
  if m is not None:
    rec.call('all_steps', m.all_steps)
    rec.call('latest_step', m.latest_step)
    rec.call('save(0)', m.save, 0, args=args.StandardSave(make_tree()))
    rec.call('wait', m.wait_until_finished)
    rec.layout('after save')
    rec.call('close', m.close)
  return rec.obs


@scenario
def create_true_makes_nested_root(cls, root):
  rec = Rec(root)
  nested = root / 'a' / 'b'
  m = rec.manager('init', cls, root=str(nested))
  rec.layout('root')
  rec.layout('nested', nested)
  rec.call('directory', lambda: m.directory)
  rec.call('close', m.close)
  return rec.obs


@scenario
def read_only_existing_root(cls, root):
  rec = Rec(root)
  with cls(root, metadata={'owner': 'w'}) as w:
    for s in (0, 1):
      rec.call(f'writer save({s})', w.save, s,
               args=args.StandardSave(make_tree(s)))
  before = rec.layout('before read-only')
  m = rec.manager('init read-only', cls,
                  options=Options(read_only=True, max_to_keep=1),
                  metadata={'owner': 'r'})
  rec.call('all_steps', m.all_steps)
  rec.call('should_save(5)', m.should_save, 5)
  rec.call('save(5)', m.save, 5, args=args.StandardSave(make_tree(5)))
  rec.call('wait', m.wait_until_finished)
  rec.call('delete(0)', m.delete, 0)
  rec.call('delete(9) missing', m.delete, 9)
  rec.call('all_steps after', m.all_steps)
  rec.call('restore(1)', m.restore, 1)
  rec.call('metadata().custom_metadata', lambda: m.metadata().custom_metadata)
  after = rec.layout('after read-only calls')
  rec.value('disk unchanged', before == after)
  # v0 quirk: read_only only gates should_save, so force=True still writes.
  rec.call('save(6, force=True)', m.save, 6,
           args=args.StandardSave(make_tree(6)), force=True)
  rec.call('wait 2', m.wait_until_finished)
  rec.call('all_steps after forced save', m.all_steps)
  rec.layout('after forced save')
  rec.call('close', m.close)
  return rec.obs


@scenario
def read_only_missing_root(cls, root):
  rec = Rec(root)
  m = rec.manager('init', cls, options=Options(read_only=True),
                  metadata={'k': 3})
  rec.layout('after init')
  if m is not None:
    rec.call('all_steps', m.all_steps)
    rec.call('metadata()', m.metadata,
           post=root_metadata_obs)
    rec.call('save(0)', m.save, 0, args=args.StandardSave(make_tree()))
    rec.layout('after save')
    rec.call('close', m.close)
  return rec.obs


@scenario
def restore_from_other_directory(cls, root):
  rec = Rec(root)
  other = root.parent / (root.name + '_other')
  with cls(other) as w:
    rec.call('other save(3)', w.save, 3, args=args.StandardSave(make_tree(3)))
  m = rec.manager('init', cls)
  rec.call('restore(3, directory=other)', m.restore, 3, directory=other)
  rec.call('restore(None, directory=other)', m.restore, None,
           directory=other)
  rec.call('all_steps (own root)', m.all_steps)
  rec.call('close', m.close)
  rec.layout('own root')
  return rec.obs


# --------------------------------------------------------------------------
# Scenarios: existing steps, missing steps, delete, reload
# --------------------------------------------------------------------------


@scenario
def existing_step_force_and_no_force(cls, root):
  rec = Rec(root)
  m = rec.manager('init', cls)
  rec.call('save(0)', m.save, 0, args=args.StandardSave(make_tree()))
  rec.call('wait', m.wait_until_finished)
  before = rec.layout('before')
  rec.call('save(0) again', m.save, 0, args=args.StandardSave(make_tree(9)))
  rec.call('save(0, force=True)', m.save, 0,
           args=args.StandardSave(make_tree(9)), force=True)
  rec.call('wait 2', m.wait_until_finished)
  after = rec.layout('after')
  rec.value('disk unchanged', before == after)
  rec.call('restore(0) is original', m.restore, 0)
  rec.call('save(1) still works', m.save, 1,
           args=args.StandardSave(make_tree(1)))
  rec.call('wait 3', m.wait_until_finished)
  rec.call('all_steps', m.all_steps)
  rec.call('close', m.close)
  return rec.obs


@scenario
def missing_step_reads(cls, root):
  rec = Rec(root)
  m = rec.manager('init', cls)
  rec.call('save(1)', m.save, 1, args=args.StandardSave(make_tree()))
  rec.call('wait', m.wait_until_finished)
  before = rec.layout('before')
  rec.call('restore(7)', m.restore, 7)
  rec.call('restore(7, args)', m.restore, 7,
           args=args.StandardRestore(make_tree()))
  rec.call('metrics(7)', m.metrics, 7)
  rec.call('item_metadata(7)', m.item_metadata, 7)
  rec.call('item_metadata(None)', m.item_metadata, None)
  after = rec.layout('after')
  rec.value('disk unchanged', before == after)
  rec.call('close', m.close)
  return rec.obs


@scenario
def delete_steps(cls, root):
  rec = Rec(root)
  m = rec.manager('init', cls)
  save_steps(rec, m, [0, 1, 2])
  rec.call('delete(5) missing', m.delete, 5)
  rec.call('delete(1)', m.delete, 1)
  rec.call('all_steps', m.all_steps)
  rec.call('latest_step', m.latest_step)
  rec.layout('after delete(1)')
  rec.call('delete(1) again', m.delete, 1)
  rec.call('delete(2)', m.delete, 2)
  rec.call('latest_step after delete(2)', m.latest_step)
  rec.call('reload', m.reload)
  rec.call('all_steps after reload', m.all_steps)
  rec.call('restore(1) deleted', m.restore, 1)
  rec.layout('end')
  rec.call('close', m.close)
  return rec.obs


@scenario
def reload_after_external_write(cls, root):
  rec = Rec(root)
  a = rec.manager('init a', cls)
  rec.call('a save(0)', a.save, 0, args=args.StandardSave(make_tree()))
  rec.call('a wait', a.wait_until_finished)
  with cls(root) as b:
    rec.call('b save(5)', b.save, 5, args=args.StandardSave(make_tree(5)))
  rec.call('a all_steps before reload', a.all_steps)
  rec.call('a latest_step before reload', a.latest_step)
  rec.call('a reload', a.reload)
  rec.call('a all_steps after reload', a.all_steps)
  rec.call('a latest_step after reload', a.latest_step)
  rec.call('a restore(5)', a.restore, 5)
  with NATIVE(root) as c:
    rec.call('native c save(9)', c.save, 9,
             args=args.StandardSave(make_tree(9)))
  rec.call('a all_steps(read=True)', a.all_steps, read=True)
  rec.call('a restore(9)', a.restore, 9)
  rec.layout('end')
  rec.call('a close', a.close)
  return rec.obs


# --------------------------------------------------------------------------
# Scenarios: metadata
# --------------------------------------------------------------------------


@scenario
def root_metadata(cls, root):
  rec = Rec(root)
  m = rec.manager('init', cls, metadata={'k': 1, 'name': 'exp'})
  rec.layout('after init')
  rec.call('metadata()', m.metadata,
           post=root_metadata_obs)
  rec.call('close', m.close)
  m2 = rec.manager('init 2 (other metadata)', cls, metadata={'k': 2})
  rec.call('metadata() kept first', m2.metadata,
           post=root_metadata_obs)
  rec.call('close 2', m2.close)
  m3 = rec.manager('init 3 (no metadata)', cls)
  rec.call('metadata() reread', m3.metadata,
           post=root_metadata_obs)
  rec.call('close 3', m3.close)
  other = root.parent / (root.name + '_nometa')
  m4 = rec.manager('init 4 (fresh, no metadata)', cls, root=other)
  rec.call('metadata() none', m4.metadata,
           post=root_metadata_obs)
  rec.layout('fresh root without metadata', other)
  rec.call('close 4', m4.close)
  return rec.obs


@scenario
def step_metadata_single(cls, root):
  rec = Rec(root)
  m = rec.manager('init', cls, options=Options(
      best_fn=lambda mt: mt['loss'], best_mode='min'))
  rec.call('save(0)', m.save, 0, args=args.StandardSave(make_tree()),
           metrics={'loss': 0.5}, custom_metadata={'lr': 0.1, 'tag': 'x'})
  rec.call('save(1)', m.save, 1, args=args.StandardSave(make_tree(1)))
  rec.call('wait', m.wait_until_finished)
  for s in (0, 1):
    rec.call(f'metadata({s})', m.metadata, s,
             post=step_metadata_obs)
    rec.call(f'item_metadata({s})', m.item_metadata, s)
  rec.call('close', m.close)
  m2 = rec.manager('reopen', cls)
  rec.call('reopen metadata(0)', m2.metadata, 0,
           post=step_metadata_obs)
  rec.call('close 2', m2.close)
  return rec.obs


@scenario
def step_metadata_composite(cls, root):
  rec = Rec(root)
  m = rec.manager('init', cls)
  rec.call('save(3)', m.save, 3, args=args.Composite(
      state=args.StandardSave(make_tree()), meta=args.JsonSave(json_doc())),
           custom_metadata={'epoch': 2})
  rec.call('wait', m.wait_until_finished)
  rec.call('metadata(3)', m.metadata, 3,
           post=step_metadata_obs)
  rec.call('item_metadata(3)', m.item_metadata, 3)
  rec.call('close', m.close)
  m2 = rec.manager('reopen', cls)
  rec.call('reopen item_metadata(3)', m2.item_metadata, 3)
  rec.call('reopen metadata(3)', m2.metadata, 3,
           post=step_metadata_obs)
  rec.call('close 2', m2.close)
  return rec.obs


# --------------------------------------------------------------------------
# Scenarios: bad inputs (the disk must stay unchanged)
# --------------------------------------------------------------------------


@scenario
def bad_inputs_single_item(cls, root):
  rec = Rec(root)
  tree = make_tree()
  m = rec.manager('init', cls)
  before_any = rec.layout('fresh')
  rec.call('save(0) without args', m.save, 0)
  rec.call('save(0) args not CheckpointArgs', m.save, 0, args=tree)
  rec.call('save(0) args positionally', m.save, 0, args.StandardSave(tree))
  rec.value('disk unchanged before first save',
            before_any == disk_layout(root))
  rec.call('save(0)', m.save, 0, args=args.StandardSave(tree))
  rec.call('wait', m.wait_until_finished)
  before = rec.layout('before')
  rec.call('save(1) Composite to single-item', m.save, 1,
           args=args.Composite(x=args.StandardSave(tree)))
  rec.call('save(1) args dict', m.save, 1, args={'a': 1})
  rec.call('save(1) no args', m.save, 1)
  rec.call('save(1) positional args', m.save, 1, args.StandardSave(tree))
  rec.call('save(1) reserved name metrics?', m.save, 1,
           args=args.Composite(metrics=args.JsonSave({'a': 1})))
  rec.call('restore(0) Composite to single-item', m.restore, 0,
           args=args.Composite(default=args.StandardRestore()))
  rec.call('restore(0) positional args', m.restore, 0,
           args.StandardRestore())
  rec.call('restore(0) args not CheckpointArgs', m.restore, 0, args=tree)
  rec.call('wait 2', m.wait_until_finished)
  after = rec.layout('after')
  rec.value('disk unchanged', before == after)
  rec.call('all_steps', m.all_steps)
  rec.call('close', m.close)
  return rec.obs


@scenario
def bad_inputs_composite(cls, root):
  rec = Rec(root)
  tree = make_tree()
  m = rec.manager('init', cls)
  rec.call('save(0)', m.save, 0, args=args.Composite(
      state=args.StandardSave(tree), meta=args.JsonSave(json_doc())))
  rec.call('wait', m.wait_until_finished)
  before = rec.layout('before')
  rec.call('save(1) StandardSave to composite', m.save, 1,
           args=args.StandardSave(tree))
  rec.call('save(1) JsonSave to composite', m.save, 1,
           args=args.JsonSave(json_doc()))
  rec.call('save(1) positional Composite', m.save, 1,
           args.Composite(state=args.StandardSave(tree)))
  rec.call('restore(0) StandardRestore to composite', m.restore, 0,
           args=args.StandardRestore())
  rec.call('restore(0) unknown item', m.restore, 0,
           args=args.Composite(nope=args.JsonRestore()))
  rec.call('wait 2', m.wait_until_finished)
  after = rec.layout('after')
  rec.value('disk unchanged', before == after)
  rec.call('all_steps', m.all_steps)
  rec.call('close', m.close)
  return rec.obs


def composite_item_named_metrics(cls, root):
  # v0 0.12.8 has no reserved item names left (RESERVED_ITEM_NAMES == []):
  # without best_fn an item may be called 'metrics'.
  rec = Rec(root)
  m = rec.manager('init', cls)
  rec.call('save(0) item named metrics', m.save, 0,
           args=args.Composite(metrics=args.JsonSave({'a': 1})))
  rec.call('wait', m.wait_until_finished)
  rec.layout('after save')
  rec.call('restore(0)', m.restore, 0)
  rec.call('metrics(0)', m.metrics, 0)
  rec.call('close', m.close)
  return rec.obs


@scenario
def bad_options(cls, root):
  rec = Rec(root)
  opts = Options()
  opts.best_mode = 'bad'  # Options itself rejects it; reach the manager.
  rec.manager('best_mode=bad', cls, options=opts)
  rec.manager('preservation_policy + max_to_keep', cls, options=Options(
      max_to_keep=2,
      preservation_policy=ocp.checkpoint_managers.LatestN(n=1)))
  rec.manager('preservation_policy + keep_period', cls, options=Options(
      keep_period=2,
      preservation_policy=ocp.checkpoint_managers.LatestN(n=1)))
  rec.manager('preservation_policy + keep_time_interval', cls,
              options=Options(
                  keep_time_interval=datetime.timedelta(seconds=5),
                  preservation_policy=ocp.checkpoint_managers.LatestN(n=1)))
  rec.layout('after bad constructions')
  return rec.obs


# --------------------------------------------------------------------------
# Scenarios: cross-reading native <-> shim
# --------------------------------------------------------------------------


@scenario
def cross_read_native_written_single(cls, root):
  """Native v0 writes; `cls` reads."""
  rec = Rec(root)
  tree = make_tree(4)
  with NATIVE(root, metadata={'by': 'native'}) as w:
    rec.call('native save(0)', w.save, 0, args=args.StandardSave(tree),
             custom_metadata={'c': 1})
    rec.call('native save(1)', w.save, 1, args=args.StandardSave(make_tree(1)))
  m = rec.manager('init reader', cls)
  rec.call('all_steps', m.all_steps)
  rec.call('latest_step', m.latest_step)
  rec.call('restore(0) no args', m.restore, 0)
  rec.call('restore(1) abstract', m.restore, 1,
           args=args.StandardRestore(abstract(make_tree(1))))
  rec.call('restore(0) StandardRestore()', m.restore, 0,
           args=args.StandardRestore())
  rec.call('metadata().custom_metadata', lambda: m.metadata().custom_metadata)
  rec.call('metadata(0).custom_metadata',
           lambda: m.metadata(0).custom_metadata)
  rec.call('close', m.close)
  return rec.obs


@scenario
def cross_read_native_written_composite(cls, root):
  rec = Rec(root)
  tree = make_tree(6)
  def opts():
    return Options(best_fn=lambda mt: mt['loss'], best_mode='min',
                   max_to_keep=3)

  with NATIVE(root, options=opts()) as w:
    for s in (0, 1):
      rec.call(f'native save({s})', w.save, s, args=args.Composite(
          state=args.StandardSave(make_tree(s)),
          meta=args.JsonSave(json_doc(s))), metrics={'loss': 1.0 - s})
  m = rec.manager('init reader', cls, options=opts())
  rec.call('all_steps', m.all_steps)
  rec.call('best_step', m.best_step)
  rec.call('metrics(1)', m.metrics, 1)
  rec.call('restore(1) no args', m.restore, 1)
  rec.call('restore(0) args', m.restore, 0, args=args.Composite(
      state=args.StandardRestore(abstract(tree)), meta=args.JsonRestore()))
  rec.call('restore(0) partial', m.restore, 0,
           args=args.Composite(meta=args.JsonRestore()))
  rec.call('save(2) appends', m.save, 2, args=args.Composite(
      state=args.StandardSave(tree), meta=args.JsonSave(json_doc(2))),
           metrics={'loss': 0.5})
  rec.call('wait', m.wait_until_finished)
  rec.call('all_steps after own save', m.all_steps)
  rec.layout('end')
  rec.call('close', m.close)
  return rec.obs


@scenario
def cross_read_written_by_cls_read_by_native(cls, root):
  """`cls` writes; native v0 reads, with and without args."""
  rec = Rec(root)
  tree = make_tree(8)
  with cls(root, metadata={'by': 'writer'}) as w:
    rec.call('save(0)', w.save, 0, args=args.StandardSave(tree),
             custom_metadata={'c': 2})
    rec.call('save(1)', w.save, 1, args=args.StandardSave(make_tree(1)))
  rec.layout('written')
  with NATIVE(root) as r:
    rec.call('native all_steps', r.all_steps)
    rec.call('native restore(0) abstract', r.restore, 0,
             args=args.StandardRestore(abstract(tree)))
    rec.call('native restore(1) concrete', r.restore, 1,
             args=args.StandardRestore(make_tree(1)))
    rec.call('native metadata().custom_metadata',
             lambda: r.metadata().custom_metadata)
    rec.call('native metadata(0)', r.metadata, 0,
             post=step_metadata_obs)
  with NATIVE(root) as r2:
    rec.call('native restore(0) no args', r2.restore, 0)
  return rec.obs


@scenario
def cross_read_composite_written_by_cls_read_by_native(cls, root):
  rec = Rec(root)
  tree = make_tree(9)
  with cls(root) as w:
    rec.call('save(0)', w.save, 0, args=args.Composite(
        state=args.StandardSave(tree), meta=args.JsonSave(json_doc())))
  with NATIVE(root) as r:
    rec.call('native restore(0) args', r.restore, 0, args=args.Composite(
        state=args.StandardRestore(abstract(tree)), meta=args.JsonRestore()))
  with NATIVE(root) as r2:
    rec.call('native restore(0) no args', r2.restore, 0)
    rec.call('native item_metadata(0)', r2.item_metadata, 0)
  return rec.obs


# --------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------


def _threads_left_by(fn, cls, root: pathlib.Path) -> list[str]:
  """Names (digits dropped) of threads a scenario leaves running."""
  before = set(threading.enumerate())
  run_scenario(fn, cls, root)
  deadline = time.monotonic() + 10.0  # Generous: a loaded machine; joins end early.
  left = []
  for t in threading.enumerate():
    if t in before:
      continue
    t.join(max(0.0, deadline - time.monotonic()))
    if t.is_alive():
      left.append(re.sub(r'\d+', '', t.name))
  return sorted(left)


@pytest.mark.parametrize('fn', [max_to_keep_2, composite_json_only_sync],
                         ids=lambda fn: fn.__name__)
def test_shim_leaves_no_threads_after_close(fn, tmp_path):
  # v0 joins all its background work in close(); nothing may outlive it.
  native = _threads_left_by(fn, NATIVE, tmp_path / 'a' / 'root')
  shim = _threads_left_by(fn, orbax_compat.CheckpointManager, tmp_path / 'b' / 'root')
  assert native == shim, f'threads still alive: native {native}, shim {shim}'


def test_enough_scenarios():
  assert len(registry.of_module(__name__)) >= 20


def test_item_named_metrics_is_refused_cleanly(tmp_path):
  """A documented difference: v1 reserves the item name `metrics`.

  Native v0 0.12.8 saves an item called `metrics` (it has no reserved names);
  v1 refuses it, so the shim raises a ValueError naming the item before
  anything reaches the disk.
  """
  native = composite_item_named_metrics(NATIVE, tmp_path / 'native')
  assert ('save(0) item named metrics', 'returns', ('builtins.bool', True)) in native
  root = tmp_path / 'shim'
  with orbax_compat.CheckpointManager(root) as m:
    with pytest.raises(ValueError, match="'metrics'"):
      m.save(0, args=args.Composite(metrics=args.JsonSave({'a': 1})))
    assert m.all_steps() == []
  assert sorted(p.name for p in root.iterdir()) == []
