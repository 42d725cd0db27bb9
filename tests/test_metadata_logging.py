"""Differential tests: item metadata, step statistics, and what v0 logs.

Each scenario runs on native v0 and on the shim (tests/differential/) and
the observations must be equal:

* item metadata (`item_metadata(step)`, `metadata(step)`): which items carry
  metadata, of which types, in fresh managers, after bare restores, with
  metrics (issue 9, cause 6);
* the step statistics dict logged per save and restore, through a user's
  logger, a `CompositeLogger` and the default `StandardLogger` (cause 9):
  same keys, same values where they are not timings, timings set where v0
  sets them;
* absl records at WARNING and above, and Python warnings (cause 11), per
  phase of a scenario, in any order (background threads interleave).
"""

from __future__ import annotations

import ast
import contextlib
import gc
import logging
import re
import threading
import warnings

from differential import NATIVE
from differential import Options
from differential import Rec
from differential import abstract
from differential import args
from differential import by_label
from differential import describe_differences
from differential import json_doc
from differential import make_tree
from differential import mask_base
from differential import norm
from differential import run_native_and_shim
from differential import scenario
from differential import step_metadata_obs
from google.protobuf import duration_pb2
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

import orbax_compat

pytestmark = pytest.mark.usefixtures('quiet_shim')

# --------------------------------------------------------------------------
# Item metadata (cause 6)
# --------------------------------------------------------------------------


def jax_tree(offset=0):
  return {'j': jnp.arange(3, dtype=jnp.int32) + offset, 'n': np.arange(2) + offset}


def _md(rec, label, m, step):
  rec.call(f'{label} metadata({step})', m.metadata, step, post=step_metadata_obs)
  rec.call(f'{label} item_metadata({step})', m.item_metadata, step)


def _has_metadata_after_bare_restore(native, shim):
  """Native returns item metadata after a bare restore, not before."""
  del shim
  obs = by_label(native)
  assert obs['fresh, no restore item_metadata(0)'] == ('returns', norm(None))
  assert obs['fresh, after bare restore item_metadata(0)'] != ('returns', norm(None))


@scenario(check=_has_metadata_after_bare_restore)
def metadata_default_item_fresh_managers(cls, root):
  rec = Rec(root)
  for async_ in (True, False):
    sub = root / f'async_{async_}'
    with cls(sub, options=Options(enable_async_checkpointing=async_)) as m:
      rec.call('save(0)', m.save, 0, args=args.StandardSave(jax_tree()))
      rec.call('wait', m.wait_until_finished)
      _md(rec, 'same manager', m, 0)
    with cls(sub) as m:
      _md(rec, 'fresh, no restore', m, 0)
      rec.call('fresh restore(0)', m.restore, 0)
      _md(rec, 'fresh, after bare restore', m, 0)
    with cls(sub) as m:
      rec.call('fresh restore StandardRestore()', m.restore, 0,
               args=args.StandardRestore())
      _md(rec, 'fresh, after StandardRestore()', m, 0)
  return rec.obs


@scenario
def metadata_composite_with_metrics(cls, root):
  rec = Rec(root)
  opts = lambda: Options(best_fn=lambda mt: mt['loss'], best_mode='min')  # noqa: E731
  with cls(root, options=opts()) as m:
    rec.call('save(0)', m.save, 0, args=args.Composite(
        s=args.StandardSave(jax_tree()), p=args.PyTreeSave(jax_tree(1)),
        j=args.JsonSave(json_doc())), metrics={'loss': 0.5})
    rec.call('save(1) no metrics', m.save, 1, args=args.Composite(
        s=args.StandardSave(jax_tree(2))))
    rec.call('wait', m.wait_until_finished)
    for step in (0, 1):
      _md(rec, 'same manager', m, step)
  with cls(root, options=opts()) as m:
    _md(rec, 'fresh', m, 0)
    rec.call('fresh restore(0)', m.restore, 0)
    _md(rec, 'fresh, after bare restore', m, 0)
  with cls(root) as m:
    rec.call('no best_fn: restore s only', m.restore, 0,
             args=args.Composite(s=args.StandardRestore()))
    _md(rec, 'no best_fn, after restoring s', m, 0)
  return rec.obs


@scenario
def metadata_item_names_and_handlers(cls, root):
  rec = Rec(root)
  names = ('s', 'j')
  with cls(root / 'names', item_names=names) as m:
    rec.call('save(0)', m.save, 0, args=args.Composite(
        s=args.StandardSave(jax_tree()), j=args.JsonSave(json_doc())))
    rec.call('wait', m.wait_until_finished)
    _md(rec, 'item_names, same manager', m, 0)
  with cls(root / 'names', item_names=names) as m:
    _md(rec, 'item_names, fresh', m, 0)
    rec.call('restore s', m.restore, 0, args=args.Composite(s=args.StandardRestore()))
    _md(rec, 'item_names, after restoring s', m, 0)
  handlers = lambda: {'s': ocp.StandardCheckpointHandler(),  # noqa: E731
                      'j': ocp.JsonCheckpointHandler()}
  with cls(root / 'handlers', item_handlers=handlers()) as m:
    rec.call('save(0) with handlers', m.save, 0, args=args.Composite(
        s=args.StandardSave(jax_tree()), j=args.JsonSave(json_doc())))
    rec.call('wait 2', m.wait_until_finished)
  with cls(root / 'handlers', item_handlers=handlers()) as m:
    _md(rec, 'item_handlers, fresh', m, 0)
  with cls(root / 'single', item_handlers=ocp.StandardCheckpointHandler()) as m:
    rec.call('save(0) single', m.save, 0, args=args.StandardSave(jax_tree()))
    rec.call('wait 3', m.wait_until_finished)
  with cls(root / 'single', item_handlers=ocp.StandardCheckpointHandler()) as m:
    _md(rec, 'default item handler, fresh', m, 0)
  # A default-item manager reading a composite step: v0's ValueError.
  with cls(root / 'handlers', item_handlers=ocp.StandardCheckpointHandler()) as m:
    _md(rec, 'default-item manager, composite step', m, 0)
  return rec.obs


@scenario
def metadata_legacy_array_and_proto(cls, root):
  rec = Rec(root)
  checkpointers = lambda: {  # noqa: E731
      'state': ocp.Checkpointer(ocp.PyTreeCheckpointHandler()),
      'cfg': ocp.Checkpointer(ocp.JsonCheckpointHandler())}
  with cls(root / 'legacy', checkpointers()) as m:
    rec.call('legacy save(0)', m.save, 0, {'state': jax_tree(), 'cfg': json_doc()})
    rec.call('wait', m.wait_until_finished)
    _md(rec, 'legacy', m, 0)
  with cls(root / 'legacy', checkpointers()) as m:
    _md(rec, 'legacy, fresh', m, 0)
  with cls(root / 'ap') as m:
    rec.call('save(0)', m.save, 0, args=args.Composite(
        arr=args.ArraySave(np.arange(3)),
        msg=args.ProtoSave(duration_pb2.Duration(seconds=3))))
    rec.call('wait 2', m.wait_until_finished)
    _md(rec, 'array and proto', m, 0)
  with cls(root / 'ap') as m:
    _md(rec, 'array and proto, fresh', m, 0)
    rec.call('restore arr', m.restore, 0, args=args.Composite(arr=args.ArrayRestore()))
    _md(rec, 'array and proto, after restoring arr', m, 0)
  return rec.obs


@scenario
def composite_none_args_need_a_known_handler(cls, root):
  """`Composite(item=None)` restores an item only once its handler is known."""
  rec = Rec(root)
  tree = {'a': 1, 'b': 2}
  with cls(root) as m:
    rec.call('save(0)', m.save, 0, args=args.Composite(
        state=args.StandardSave(tree), emb=args.StandardSave(tree)))
    rec.call('wait', m.wait_until_finished)
    rec.call('same manager: state=None', m.restore, 0, args=args.Composite(state=None))
  with cls(root) as m:
    rec.call('fresh: state=None', m.restore, 0, args=args.Composite(state=None))
    rec.call('fresh: bare restore', m.restore, 0)
    rec.call('after bare restore: state=None', m.restore, 0,
             args=args.Composite(state=None))
    rec.call('after bare restore: other args type', m.restore, 0,
             args=args.Composite(state=args.PyTreeRestore()))
  with cls(root) as m:
    rec.call('fresh: emb StandardRestore', m.restore, 0,
             args=args.Composite(emb=args.StandardRestore()))
    rec.call('then emb=None', m.restore, 0, args=args.Composite(emb=None))
    rec.call('then state=None', m.restore, 0, args=args.Composite(state=None))
  return rec.obs


# --------------------------------------------------------------------------
# Step statistics (cause 9)
# --------------------------------------------------------------------------


class ListLogger(ocp.logging.AbstractLogger):
  """A user's logger: keeps every entry."""

  def __init__(self):
    self.entries = []

  def log_entry(self, entry):
    self.entries.append(entry)


_NOT_TIMINGS = ('step', 'event_type', 'reached_preemption', 'synchronous')


def stats_obs(entry):
  """A step statistics entry: keys, the values that are not timings, the
  directory relative to the scenario, and which timings are set."""
  if not isinstance(entry, dict):
    return ('not a dict', type(entry).__name__)
  out = {'keys': list(entry)}
  for key, value in entry.items():
    if key in _NOT_TIMINGS:
      out[key] = norm(value)
    elif key == 'directory':
      out[key] = norm(mask_base(value))
    else:
      out[key] = 'unset' if value is None else type(value).__name__
  return out


def _logged(rec, label, logger, fn, *a, **kw):
  """Calls fn; records its result and the entries it logged."""
  before = len(logger.entries)
  rec.call(label, fn, *a, **kw)
  rec.value(f'{label}: logged', [stats_obs(e) for e in logger.entries[before:]])


def _logs_statistics(native, shim):
  del shim
  (saved,) = by_label(native)['async=True save(0): logged'][1]
  assert saved['event_type'] == norm('save') and saved['synchronous'] == norm(False)


@scenario(check=_logs_statistics)
def step_statistics_user_logger(cls, root):
  rec = Rec(root)
  for async_ in (True, False):
    logger = ListLogger()
    sub = root / f'async_{async_}'
    m = cls(sub, options=Options(enable_async_checkpointing=async_,
                                 save_interval_steps=2, max_to_keep=2), logger=logger)
    for step in (0, 1, 2, 4):
      _logged(rec, f'async={async_} save({step})', logger, m.save, step,
              args=args.StandardSave(make_tree(step)))
      _logged(rec, f'async={async_} wait {step}', logger, m.wait_until_finished)
    _logged(rec, 'save(2) again', logger, m.save, 2, args=args.StandardSave(make_tree()),
            force=True)
    _logged(rec, 'restore(2)', logger, m.restore, 2)
    _logged(rec, 'restore(None)', logger, m.restore, None)
    _logged(rec, 'restore(4, args)', logger, m.restore, 4,
            args=args.StandardRestore(abstract(make_tree())))
    _logged(rec, 'restore(3) missing', logger, m.restore, 3)
    _logged(rec, 'restore(2, directory=)', logger, m.restore, 2, directory=sub)
    _logged(rec, 'restore(2) bad args', logger, m.restore, 2,
            args=args.Composite(x=args.StandardRestore()))
    _logged(rec, 'close', logger, m.close)
  return rec.obs


@scenario
def step_statistics_legacy_and_composite_logger(cls, root):
  rec = Rec(root)
  logger = ListLogger()
  m = cls(root / 'legacy', ocp.AsyncCheckpointer(ocp.PyTreeCheckpointHandler()),
          options=Options(max_to_keep=2), logger=ocp.logging.CompositeLogger(logger))
  _logged(rec, 'legacy save(0)', logger, m.save, 0, {'a': 1, 'b': 2})
  _logged(rec, 'wait', logger, m.wait_until_finished)
  _logged(rec, 'legacy restore(0)', logger, m.restore, 0)
  _logged(rec, 'close', logger, m.close)
  logger = ListLogger()
  m = cls(root / 'composite', logger=logger,
          options=Options(best_fn=lambda mt: mt['loss']))
  _logged(rec, 'composite save(0)', logger, m.save, 0, args=args.Composite(
      s=args.StandardSave(make_tree()), j=args.JsonSave(json_doc())), metrics={'loss': 1.0})
  _logged(rec, 'composite wait', logger, m.wait_until_finished)
  _logged(rec, 'composite restore(0)', logger, m.restore, 0)
  _logged(rec, 'composite close', logger, m.close)
  return rec.obs


class _AbslInfoDicts(logging.Handler):
  """absl INFO records whose message is a dict (the StandardLogger's entries)."""

  def __init__(self):
    super().__init__(logging.INFO)
    self.entries = []

  def emit(self, record):
    if threading.current_thread() is not threading.main_thread():
      return  # v0 logs its statistics from the calling thread.
    message = record.getMessage()
    if message.startswith('{'):
      self.entries.append(ast.literal_eval(message))


@contextlib.contextmanager
def absl_info_dicts():
  handler = _AbslInfoDicts()
  absl_logger = logging.getLogger('absl')
  level = absl_logger.level
  absl_logger.setLevel(logging.INFO)
  absl_logger.addHandler(handler)
  try:
    yield handler
  finally:
    absl_logger.removeHandler(handler)
    absl_logger.setLevel(level)


@scenario
def step_statistics_default_standard_logger(cls, root):
  """No logger: v0's StandardLogger logs each entry at absl INFO."""
  rec = Rec(root)
  with absl_info_dicts() as logged:
    with cls(root, options=Options(enable_async_checkpointing=False)) as m:
      _logged(rec, 'save(0)', logged, m.save, 0, args=args.StandardSave(make_tree()))
      _logged(rec, 'restore(0)', logged, m.restore, 0)
    with cls(root / 'std', logger=ocp.logging.StandardLogger()) as m:
      _logged(rec, 'std save(0)', logged, m.save, 0, args=args.StandardSave(make_tree()))
      _logged(rec, 'std wait', logged, m.wait_until_finished)
      _logged(rec, 'std restore(0)', logged, m.restore, 0)
  return rec.obs


def test_v1_calls_on_the_live_checkpointer_log_as_v1(tmp_path):
  """The shim holds only its own saves' entries: a save made through the v1
  Checkpointer it exposes reaches the user's logger at once, as in v1."""
  logger = ListLogger()
  with orbax_compat.CheckpointManager(tmp_path, logger=logger) as m:
    m.v1_checkpointer.save(0, {'a': np.arange(2)})
    assert [e['event_type'] for e in logger.entries] == ['save']
    assert logger.entries[0]['synchronous'] is False
    m.save(1, args=args.StandardSave({'a': np.arange(2)}))
    assert [e['event_type'] for e in logger.entries] == ['save', 'save']


def test_orbax_suite_reads_the_last_record_as_v0_logs_it(tmp_path):
  """Orbax's own logger tests parse the last INFO record after `save` and
  after `restore` as the statistics dict (dashboards do the same)."""
  for cls in (NATIVE, orbax_compat.CheckpointManager):
    directory = tmp_path / cls.__module__
    with cls(directory, ocp.AsyncCheckpointer(ocp.PyTreeCheckpointHandler()),
             options=Options(max_to_keep=2)) as m:
      records = []
      handler = logging.Handler(logging.INFO)
      handler.emit = lambda r: records.append(r) if (
          threading.current_thread() is threading.main_thread()) else None
      logging.getLogger().addHandler(handler)
      level = logging.getLogger().level
      logging.getLogger().setLevel(logging.INFO)
      try:
        assert m.save(0, {'a': 1, 'b': 2})
        saved = ast.literal_eval(records[-1].getMessage())
        m.wait_until_finished()
        m.restore(0)
        restored = ast.literal_eval(records[-1].getMessage())
      finally:
        logging.getLogger().removeHandler(handler)
        logging.getLogger().setLevel(level)
    assert (saved['event_type'], saved['step'], saved['synchronous']) == ('save', 0, False)
    assert saved['directory'] == str(directory)
    assert (restored['event_type'], restored['step']) == ('restore', 0)


# --------------------------------------------------------------------------
# What v0 logs (cause 11): absl WARNING+ records and Python warnings
# --------------------------------------------------------------------------


class _Warnings(logging.Handler):
  """absl WARNING+ messages of this thread and of threads started after it.

  Threads already running elsewhere are another scenario's leftovers in this
  worker (a refused native save's signalling thread times out minutes later),
  not what this phase logs.
  """

  def __init__(self):
    super().__init__(logging.WARNING)
    self.records = []
    self._others = {t.ident for t in threading.enumerate()} - {threading.get_ident()}

  def emit(self, record):
    if record.thread not in self._others:
      self.records.append(record.getMessage())


def _normalize(text):
  text = re.sub(r'\[thread=[^\]]*\]', '[thread=*]', text)
  return re.sub(r' at 0x[0-9a-f]+', ' at 0x*', mask_base(text))


@contextlib.contextmanager
def _capture(rec, label):
  """Records, for one phase, absl WARNING+ messages and Python warnings."""
  handler = _Warnings()
  logging.getLogger('absl').addHandler(handler)
  try:
    with warnings.catch_warnings(record=True) as caught:
      warnings.simplefilter('always')
      try:
        yield
      finally:
        gc.collect()  # Coroutines dropped unawaited warn when collected.
  finally:
    logging.getLogger('absl').removeHandler(handler)
  rec.value(f'{label}: absl warnings', sorted(_normalize(r) for r in handler.records))
  rec.value(f'{label}: python warnings', sorted(
      (w.category.__name__, _normalize(str(w.message))) for w in caught))


def _phase(rec, label, fn, *a, post=norm, **kw):
  with _capture(rec, label):
    return rec.call(label, fn, *a, post=post, **kw)


def _logs_the_legacy_notice(native, shim):
  del shim
  logged = by_label(native)['dict, mixed: absl warnings'][1]
  assert any('legacy API' in r for r in logged)
  assert any('transitioning' in r for r in logged)


@scenario(check=_logs_the_legacy_notice)
def logs_legacy_constructors(cls, root):
  rec = Rec(root)
  pytree = lambda: ocp.PyTreeCheckpointHandler()  # noqa: E731
  cases = {
      'one Checkpointer': lambda: dict(checkpointers=ocp.Checkpointer(pytree())),
      'dict, all async': lambda: dict(checkpointers={
          'a': ocp.AsyncCheckpointer(pytree()), 'b': ocp.AsyncCheckpointer(pytree())}),
      'dict, mixed': lambda: dict(checkpointers={
          'a': ocp.AsyncCheckpointer(pytree()), 'b': ocp.Checkpointer(pytree())}),
      'dict, not a checkpointer': lambda: dict(checkpointers={'a': pytree()}),
      'primary_host=1': lambda: dict(
          checkpointers=ocp.Checkpointer(pytree()),
          options=Options(multiprocessing_options=ocp.options.MultiprocessingOptions(
              primary_host=1))),
      'item_names (no legacy notice)': lambda: dict(item_names=('a',)),
      'item_handlers (no legacy notice)': lambda: dict(item_handlers={'a': pytree()}),
  }
  for i, (label, kw) in enumerate(cases.items()):
    m = _phase(rec, label, cls, root / str(i), post=lambda _: 'constructed', **kw())
    if isinstance(m, cls):
      m.close()
  return rec.obs


def _warns_as_v0(native, shim):
  del shim
  obs = by_label(native)
  assert obs['PyTreeRestore(): python warnings'][1], 'v0 warns here (sharding)'
  assert not obs['fresh: bare restore: python warnings'][1]


@scenario(check=_warns_as_v0)
def logs_restores(cls, root):
  rec = Rec(root)
  tree = jax_tree()
  with cls(root / 'std') as m:
    _phase(rec, 'save Standard', lambda: (m.save(0, args=args.StandardSave(tree)),
                                          m.wait_until_finished()))
    _phase(rec, 'same manager: bare restore', m.restore, 0)
  with cls(root / 'std') as m:
    _phase(rec, 'fresh: metadata', m.metadata, 0)
    _phase(rec, 'fresh: bare restore', m.restore, 0)
    _phase(rec, 'fresh: bare restore again', m.restore, 0)
    _phase(rec, 'StandardRestore()', m.restore, 0, args=args.StandardRestore())
    _phase(rec, 'StandardRestore(abstract)', m.restore, 0,
           args=args.StandardRestore(abstract(tree)))
  with cls(root / 'pytree') as m:
    _phase(rec, 'save PyTree', lambda: (m.save(0, args=args.PyTreeSave(tree)),
                                        m.wait_until_finished()))
    _phase(rec, 'PyTreeRestore()', m.restore, 0, args=args.PyTreeRestore())
    _phase(rec, 'PyTreeRestore(item, restore_args)', m.restore, 0, args=args.PyTreeRestore(
        tree, restore_args=ocp.checkpoint_utils.construct_restore_args(tree)))
  with cls(root / 'pytree') as m:
    _phase(rec, 'fresh PyTree: bare restore', m.restore, 0)
  with cls(root / 'legacy', ocp.Checkpointer(ocp.PyTreeCheckpointHandler())) as m:
    _phase(rec, 'legacy save', m.save, 0, tree)
    _phase(rec, 'legacy bare restore', m.restore, 0)
  with cls(root / 'composite') as m:
    _phase(rec, 'save Standard + Json', lambda: (m.save(0, args=args.Composite(
        s=args.StandardSave(tree), j=args.JsonSave(json_doc()))), m.wait_until_finished()))
  with cls(root / 'composite') as m:
    _phase(rec, 'fresh composite: item_metadata', m.item_metadata, 0)
    _phase(rec, 'fresh composite: bare restore', m.restore, 0)
  return rec.obs


@scenario
def logs_failing_restores_and_arrays(cls, root):
  rec = Rec(root)
  with cls(root, options=Options(max_to_keep=1)) as m:
    _phase(rec, 'save', lambda: (m.save(0, args=args.Composite(
        arr=args.ArraySave(np.arange(3)),
        msg=args.ProtoSave(duration_pb2.Duration(seconds=1)),
        cfg=args.JsonSave(json_doc()),
        state=args.StandardSave({'w': np.ones(2)}))), m.wait_until_finished()))
    _phase(rec, 'restore with args', m.restore, 0, args=args.Composite(
        arr=args.ArrayRestore(), msg=args.ProtoRestore(duration_pb2.Duration)))
    _phase(rec, 'bare restore (proto fails)', m.restore, 0)
    _phase(rec, 'missing item', m.restore, 0, args=args.Composite(
        arr=args.ArrayRestore(), nope=args.JsonRestore()))
  return rec.obs


@scenario
def logs_read_only_and_metrics(cls, root):
  rec = Rec(root)
  with cls(root, options=Options(best_fn=lambda mt: mt['loss'])) as m:
    _phase(rec, 'save without metrics', lambda: (m.save(
        0, args=args.StandardSave(make_tree())), m.wait_until_finished()))
    _phase(rec, 'all_steps(read=True)', m.all_steps, True)
  with cls(root, options=Options(read_only=True)) as m:
    _phase(rec, 'read-only save', m.save, 1, args=args.StandardSave(make_tree()))
    _phase(rec, 'read-only delete', m.delete, 0)
  return rec.obs


def logs_pytree_restore_with_item(cls, root):
  """v0's PyTree handler restores `PyTreeRestore(item)` without restore_args
  with the checkpoint's shardings, read from file, and warns so; the shim
  restores onto the item's shardings (issue 9, cause 4)."""
  rec = Rec(root)
  tree = jax_tree()
  with cls(root / 'pytree') as m:
    _phase(rec, 'save PyTree', lambda: (m.save(0, args=args.PyTreeSave(tree)),
                                        m.wait_until_finished()))
    _phase(rec, 'PyTreeRestore(item)', m.restore, 0, args=args.PyTreeRestore(tree))
  with cls(root / 'legacy', ocp.Checkpointer(ocp.PyTreeCheckpointHandler())) as m:
    _phase(rec, 'legacy save', m.save, 0, tree)
    _phase(rec, 'legacy restore(items=)', m.restore, 0, items=tree)
  return rec.obs


def test_pytree_restore_with_item_warns_in_v0_only(tmp_path):
  """A known difference (README): v0 warns reading shardings from file; the shim
  restores the same arrays from the metadata's shardings, without the warning."""
  native, shim = run_native_and_shim(logs_pytree_restore_with_item, tmp_path)
  phases = ('PyTreeRestore(item): python warnings', 'legacy restore(items=): python warnings')
  for label in phases:
    (warned,) = [o[2] for o in native if o[0] == label]
    assert [w[0] for w in warned] == ['UserWarning'] and 'Sharding info' in warned[0][1]
    assert (label, 'value', []) in shim
  assert ([o for o in native if o[0] not in phases] == [o for o in shim if o[0] not in phases]), (
      describe_differences(native, shim))
