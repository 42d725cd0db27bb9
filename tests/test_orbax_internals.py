"""The few Orbax internals the shim leans on (orbax_compat/_v1.py) still hold.

Each failure names the Orbax version, so an upgrade shows what moved. Each
test names the releases it was checked on: every orbax-checkpoint release
from 0.12.0 to 0.12.8 (`tox -e orbax-oldest`, `tox -e orbax-latest`; the
others by hand), unless its docstring says otherwise.
"""

import datetime
import json
import re

import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint.experimental.v1 import training
import pytest

from orbax_compat.compat import orbax as _v1
from orbax_compat.handlers import bridges

VERSION = f'orbax-checkpoint {_v1.ORBAX_VERSION}'


def _release(text):
  return tuple(int(x) for x in re.findall(r'\d+', text)[:3])


def test_version_is_supported():
  """The installed Orbax is in the declared range (setup.cfg's)."""
  installed = _release(_v1.ORBAX_VERSION)
  for bound in _v1.SUPPORTED_ORBAX.split(','):
    op, version = re.match(r'([<>=!]+)(.*)', bound.strip()).groups()
    assert {'>=': installed >= _release(version),
            '<': installed < _release(version)}[op], (VERSION, bound)


def test_checkpoint_infos_are_v1s_cached_sorted_list(tmp_path):
  """`_manager`, `_checkpoints`, `check_for_errors` and, before 0.12.8, the
  inner manager's `delete` (`_v1.delete_step`): checked on 0.12.0-0.12.8."""
  with training.Checkpointer(tmp_path) as ckptr:
    for step in (1, 2, 3):
      ckptr.save(step, {'a': np.arange(2)}, force=True)
    infos = _v1.checkpoint_infos(ckptr)
    assert [i.step for i in infos] == [c.step for c in ckptr.checkpoints], VERSION
    assert infos.latest().step == ckptr.latest.step, VERSION
    _v1.check_for_errors(ckptr)
    # The shim caches this object: v1 must update it in place.
    _v1.delete_step(ckptr, 1)
    assert not (tmp_path / '1').exists(), VERSION
    assert [i.step for i in infos] == [2, 3], VERSION
    ckptr.reload()
    assert _v1.checkpoint_infos(ckptr) is infos, VERSION
    assert [i.step for i in infos] == [2, 3], VERSION
    assert _v1.should_save(ckptr, 4) == ckptr.should_save(4), VERSION
    # Read without the lock: the same list, the same latest.
    assert _v1.listed_infos(infos) == list(infos), VERSION
    assert _v1.latest_info(infos) is infos.latest(), VERSION
    infos.set([])
    assert _v1.listed_infos(infos) == [] and _v1.latest_info(infos) is None, VERSION


def test_item_metadata_composite_is_v0s_base_composite():
  """`args.Composite.__mro__[1]`: checked on 0.12.0-0.12.8."""
  assert issubclass(ocp.args.Composite, _v1.ItemMetadataComposite), VERSION
  assert _v1.ItemMetadataComposite.__module__.startswith('orbax.checkpoint'), VERSION


def test_recorded_handler_names_resolve_in_v0_and_v1(tmp_path):
  """v1 reads v0 handler names back; v0 imports them as its own handlers.

  v1's secondary typestrs of its global registry: checked on 0.12.0-0.12.8.
  """
  registry = _v1.v1.handlers.global_registry()
  for handler, v1_base in (
      (bridges.StandardHandler, _v1.v1.handlers.PyTreeHandler),
      (bridges.PyTreeHandler, _v1.v1.handlers.PyTreeHandler),
      (bridges.JsonHandler, _v1.v1.handlers.JsonHandler),
      (bridges.ProtoHandler, _v1.v1.handlers.ProtoHandler),
  ):
    name = f'{handler.__module__}.{handler.__qualname__}'
    assert name in registry.get_secondary_typestrs(v1_base), (name, VERSION)
    handler()  # default-constructible, as v1's registry requires
  with training.Checkpointer(tmp_path) as ckptr:
    ctx = _v1.v1.Context()
    registry = _v1.v1.handlers.local_registry()
    registry.add(bridges.StandardHandler, checkpointable_name='default')
    ctx.checkpointables.registry = registry
    with ctx:
      ckptr.save_checkpointables(0, {'default': {'a': np.arange(2)}})
  recorded = json.loads((tmp_path / '0' / '_CHECKPOINT_METADATA').read_text())
  assert recorded['item_handlers'] == {
      'default': 'orbax.checkpoint._src.handlers.standard_checkpoint_handler.'
                 'StandardCheckpointHandler'}, VERSION


def test_array_bridge_is_registered_under_v0s_name():
  """v1 has no Array handler: the shim's bridge resolves v0's recorded name.

  v0's private handler module path: checked on 0.12.0-0.12.8.
  """
  registered = [h for h, _ in _v1.v1.handlers.global_registry().get_all_entries()]
  assert bridges.ArrayHandler in registered, VERSION
  assert (f'{bridges.ArrayHandler.__module__}.{bridges.ArrayHandler.__qualname__}'
          == 'orbax.checkpoint._src.handlers.array_checkpoint_handler.ArrayCheckpointHandler'), VERSION


def test_pytree_structure_is_what_v0_reads_into(tmp_path):
  """v0's internal structure: its containers, a ValueMetadataEntry per leaf.

  `PyTreeCheckpointHandler._get_internal_metadata`: checked on 0.12.0-0.12.8.
  """
  from orbax.checkpoint.metadata.tree import ValueMetadataEntry

  tree = {'a': np.arange(3), 'b': (1, 'x'), 'e': {}}
  with ocp.CheckpointManager(tmp_path) as m:
    m.save(0, args=ocp.args.PyTreeSave(tree))
  structure, use_zarr3 = _v1.pytree_structure(tmp_path / '0' / 'default')
  assert sorted(structure) == ['a', 'b', 'e'], VERSION
  assert isinstance(structure['b'], list), VERSION
  entries = [structure['a'], *structure['b'], structure['e']]
  assert all(isinstance(e, ValueMetadataEntry) for e in entries), (structure, VERSION)
  assert [e.skip_deserialize for e in entries] == [False, False, False, True], VERSION
  assert structure['a'].value_type == 'np.ndarray', VERSION
  assert use_zarr3 is False, VERSION


def test_active_context_is_the_entered_one():
  """v1's handlers (and the shim's bridges) capture the Context active where
  v1 constructs them; `v1.Context()` would be a new, default one.

  v1's private `context.get_context`: checked on 0.12.0-0.12.8."""
  ctx = _v1.v1.Context()
  ctx.multiprocessing_options.primary_host = 3
  ctx.async_options.timeout_secs = 123
  assert _v1.active_context().multiprocessing_options.primary_host == 0, VERSION
  with ctx:
    active = _v1.active_context()
    bridge = bridges.ArrayHandler()
  assert active.multiprocessing_options.primary_host == 3, VERSION
  assert active.async_options.timeout_secs == 123, VERSION
  assert bridge._context.multiprocessing_options.primary_host == 3  # pylint: disable=protected-access


def test_checkpointer_context_closed_flag_and_best_n(tmp_path):
  """from_v1 reads a Checkpointer's Context, its closed state and its BestN."""
  ctx = _v1.v1.Context()
  ctx.async_options.timeout_secs = 321
  best = _v1.preservation_policies.BestN(get_metric_fn=lambda m: m['loss'], reverse=True, n=1)
  ckptr = training.Checkpointer(
      tmp_path, context=ctx,
      preservation_policy=_v1.preservation_policies.AnyPreservationPolicy([best]))
  assert _v1.checkpointer_context(ckptr).async_options.timeout_secs == 321, VERSION
  assert _v1.best_n_policy(ckptr) is best, VERSION
  assert not _v1.is_closed(ckptr), VERSION
  ckptr.close()
  assert _v1.is_closed(ckptr), VERSION


def test_v0_handler_settings_read_constructor_arguments():
  """The private fields the shim reads a v0 handler's settings from."""
  h = ocp.PyTreeCheckpointHandler(use_zarr3=True, use_ocdbt=False, save_concurrent_gb=3)
  settings = _v1.v0_handler_settings(h)
  assert settings['use_zarr3'] is True and settings['use_ocdbt'] is False, VERSION
  assert settings['save_concurrent_bytes'] == 3 * 10**9, VERSION
  std = _v1.v0_handler_settings(ocp.StandardCheckpointHandler(use_ocdbt=False))
  assert std['use_ocdbt'] is False, VERSION
  json_settings = _v1.v0_handler_settings(ocp.JsonCheckpointHandler(filename='index'))
  assert json_settings == {'filename': 'index', 'primary_host': 0}, VERSION
  array = _v1.v0_handler_settings(ocp.ArrayCheckpointHandler(checkpoint_name='v'))
  assert array == {'checkpoint_name': 'v'}, VERSION


def test_array_type_handler_settings_read_constructor_arguments():
  from orbax.checkpoint import type_handlers

  settings = _v1.array_type_handler_settings(type_handlers.ArrayHandler(
      primary_host=None, replica_id=None, use_replica_parallel=False,
      array_metadata_store=None))
  assert settings['primary_host'] is None and settings['replica_id'] is None, VERSION
  assert settings['use_replica_parallel'] is False, VERSION
  assert settings['array_metadata_store'] is None, VERSION
  assert type(_v1.array_metadata_store()).__name__ == 'Store', VERSION


def test_v0_hooks_on_v1s_manager_run_at_v0s_points(tmp_path):
  """v1's inner v0 manager calls the hooks the shim puts on it (subclassing.py)."""
  seen = []
  with training.Checkpointer(
      tmp_path, preservation_policy=training.preservation_policies.LatestN(1)
  ) as ckptr:

    def finalize(step):
      seen.append(('finalize', step, sorted(p.name for p in tmp_path.iterdir() if p.name.isdigit())))
      _v1.run_v0_hook(ckptr, '_finalize_checkpoint', step)

    def old_steps():
      seen.append(('old', [c.step for c in _v1.checkpoint_infos(ckptr)]))
      return _v1.run_v0_hook(ckptr, '_get_old_steps_to_remove')

    def load(skip_metadata_read=False):
      seen.append(('load', skip_metadata_read))
      return _v1.run_v0_hook(ckptr, '_load_checkpoint_infos', skip_metadata_read=skip_metadata_read)

    for name, hook in (('_finalize_checkpoint', finalize),
                       ('_get_old_steps_to_remove', old_steps), ('_load_checkpoint_infos', load)):
      _v1.set_v0_hook(ckptr, name, hook)
    for step in (1, 2):
      ckptr.save(step, {'a': np.arange(2)}, force=True)
    ckptr.reload()
    assert [c.step for c in ckptr.checkpoints] == [2], VERSION
  # finalize: after commit, before garbage collection deleted step 1.
  assert seen == [('old', [1]), ('finalize', 1, ['1']), ('old', [1, 2]),
                  ('finalize', 2, ['1', '2']), ('load', False)], VERSION


def test_v1_writes_metrics_exactly_when_truthy(tmp_path):
  """metrics_for_save: v1 writes metrics iff truthy, keeps them in memory always."""
  cases = [
      (0.0, None, True), ({}, None, True),  # v1 alone: falsy, not written.
      (0.0, True, True), ({}, True, True),  # Written anyway.
      (2.5, False, False), ({'a': 1}, False, False), ([1], False, False),
  ]
  with training.Checkpointer(tmp_path) as ckptr:
    for step, (metrics, write, _) in enumerate(cases):
      given = metrics if write is None else _v1.metrics_for_save(metrics, write=write)
      ckptr.save(step, {'a': np.arange(2)}, metrics=given, force=True)
    for step, (metrics, write, _) in enumerate(cases):
      written = (tmp_path / str(step) / 'metrics').exists()
      assert written == bool(write), (VERSION, step, metrics, write)
      info = next(i for i in _v1.checkpoint_infos(ckptr) if i.step == step)
      assert info.metrics == metrics, (VERSION, step)
      if write:
        assert json.loads((tmp_path / str(step) / 'metrics' / 'metrics').read_text()) == metrics
  assert _v1.metrics_for_save(None, write=True) is None
  assert _v1.metrics_for_save(True, write=False) is None  # bool: no subclass.


def test_delete_step_is_the_inner_v0_delete(tmp_path):
  """delete_step: v0's delete on v1's manager (a negative step too)."""
  with training.Checkpointer(tmp_path) as ckptr:
    for step in (1, 2):
      ckptr.save(step, {'a': np.arange(2)}, force=True)
    _v1.delete_step(ckptr, 1)
    assert [c.step for c in ckptr.checkpoints] == [2], VERSION
    assert not (tmp_path / '1').exists(), VERSION
    try:
      _v1.delete_step(ckptr, 5)
    except FileNotFoundError:
      pass
    else:
      raise AssertionError(f'{VERSION}: deleting a missing step did not raise')


def test_relist_step_lists_a_step_the_inner_manager_dropped(tmp_path):
  """relist_step: the inner manager's `_finalize_thread` (an OptionalRef)
  and `_checkpoints.append` (issue 16, item 8). A save whose garbage
  collection fails after the commit (v0's `todelete_full_path` off gs://:
  NotImplementedError) is dropped by the inner manager's wait, at every
  wait; relisted, it stays listed and takes part in the next garbage
  collection, which fails again as in v0. Checked on 0.12.0 and 0.12.8."""
  policy = training.preservation_policies.LatestN(1)
  with training.Checkpointer(tmp_path, preservation_policy=policy) as ckptr:
    _v1.replace_step_deleter(ckptr, ocp.CheckpointManagerOptions(todelete_full_path='trash'))
    ckptr.save(1, {'a': np.arange(2)}, force=True)
    with pytest.raises(NotImplementedError):
      ckptr.save(2, {'a': np.arange(2)}, force=True)  # GC of step 1 fails.
    assert [c.step for c in ckptr.checkpoints] == [], VERSION  # 2 dropped.
    info = ocp.checkpoint_manager.CheckpointInfo(2, datetime.datetime.now(datetime.UTC), None)
    _v1.relist_step(ckptr, info)
    ckptr.wait()  # The failed finalize is forgotten: 2 stays listed.
    assert [c.step for c in ckptr.checkpoints] == [2], VERSION
    with pytest.raises(NotImplementedError):
      ckptr.save(3, {'a': np.arange(2)}, force=True)  # GC of 2: fails again.
    _v1.relist_step(ckptr, ocp.checkpoint_manager.CheckpointInfo(
        3, datetime.datetime.now(datetime.UTC), None))  # Closes cleanly.
  assert sorted(p.name for p in tmp_path.iterdir() if p.name.isdigit()) == ['1', '2', '3']


class _Entries(ocp.logging.AbstractLogger):
  """A real logger keeping the entries it is given."""

  def __init__(self):
    self.entries = []

  def log_entry(self, entry, *args, **kwargs):
    self.entries.append(entry)


def test_logger_reaches_the_manager_v1_runs_on(tmp_path):
  """`logger=` (0.12.8) or, before, the inner manager's `_logger`: checked on
  0.12.0-0.12.8. Each save logs what v0's manager logs for it."""
  shim_logger, native_logger = _Entries(), _Entries()
  ckptr = _v1.Checkpointer(tmp_path / 'v1', logger=shim_logger)
  with ckptr:
    ckptr.save(0, {'a': np.arange(2)}, force=True)
  with ocp.CheckpointManager(tmp_path / 'v0', logger=native_logger) as mngr:
    mngr.save(0, args=ocp.args.StandardSave({'a': np.arange(2)}))
  def saves(logger):
    return [sorted(e) for e in logger.entries if e.get('event_type') == 'save']

  assert saves(native_logger), VERSION
  assert saves(shim_logger) == saves(native_logger), VERSION


def test_item_directory_options_sit_on_v1s_composite_handler(tmp_path):
  """`_checkpointer.handler._file_options`/`_temporary_path_class` of the
  manager v1 runs on (cleared before 0.12.3 by `_v1.v0_item_directories`):
  checked on 0.12.0-0.12.8."""
  ckptr = training.Checkpointer(tmp_path)
  with ckptr:
    _v1.v0_item_directories(ckptr, file_options=False)
    ckptr.save(0, {'a': np.arange(2)}, force=True)
    handler = _v1.inner_manager(ckptr)._checkpointer.handler
    assert handler._file_options is None, VERSION
    assert handler._temporary_path_class is None, VERSION
  assert (tmp_path / '0').exists(), VERSION


@pytest.mark.skipif(_v1.V1_DELETES, reason='v1 deletes (0.12.8+)')
def test_v1_checkpointer_cannot_delete_before_0_12_8(tmp_path):
  """`_v1.V1_DELETES` is False where v1 cannot delete: checked on 0.12.0-0.12.7."""
  with training.Checkpointer(tmp_path) as ckptr:
    ckptr.save(0, {'a': np.arange(2)}, force=True)
    with pytest.raises((AttributeError, NotImplementedError)):
      ckptr.delete(0)


def test_v0_type_handler_registry_and_v1s_pytree_handler_take_user_handlers():
  """`global_type_handler_registry`, `v0_type_handler_entries`,
  `v0_standard_type_handler_classes` and `add_v0_type_handlers` (v1's
  PyTreeHandler `_handler_impl._type_handler_registry` and
  `_leaf_handler_registry`): checked on 0.12.0, 0.12.4 and 0.12.8."""
  from orbax.checkpoint import type_handlers  # pylint: disable=g-import-not-at-top

  registry = _v1.global_type_handler_registry()
  assert registry.get(np.ndarray) is type_handlers.get_type_handler(np.ndarray), VERSION
  entries = _v1.v0_type_handler_entries(None)
  standard = _v1.v0_standard_type_handler_classes()
  assert len(entries) >= len(type_handlers.supported_types()), VERSION
  assert all(type(h) in standard for _, h in entries[:len(type_handlers.supported_types())])

  class Tagged:

    def __init__(self, value):
      self.value = value

  class TaggedHandler(type_handlers.NumpyHandler):

    def typestr(self):
      return 'Tagged'

    async def serialize(self, values, infos, args=None):
      return await super().serialize([v.value for v in values], infos, args)

    async def deserialize(self, infos, args=None):
      return [Tagged(v) for v in await super().deserialize(infos, args)]

  handler = _v1.v1.handlers.PyTreeHandler()
  with pytest.raises(ValueError):  # v1's UnregisteredTypeError.
    handler.validate_leaves_handleable([Tagged(np.ones(2))])
  _v1.add_v0_type_handlers(handler, [(lambda t: issubclass(t, Tagged), TaggedHandler())])
  handler.validate_leaves_handleable([Tagged(np.ones(2)), np.ones(2)])
  impl = handler._handler_impl  # pylint: disable=protected-access
  registry = impl._type_handler_registry  # pylint: disable=protected-access
  assert registry.get('Tagged').typestr() == 'Tagged', VERSION  # By typestr (restore).
  assert isinstance(registry.get(Tagged)._handler, TaggedHandler), VERSION  # By type (save).  # pylint: disable=protected-access
  assert registry.get(Tagged) is registry.get('Tagged'), VERSION  # One wrapper: one batch.


def test_v1_hands_type_handlers_restore_args_built_from_the_abstract_leaf():
  """`_OwnRestoreArgs`: v1 builds each leaf's v0 RestoreArgs from its abstract
  leaf (`pytree_handler.create_v0_restore_args`: a `V0RestoreArgs` whose
  `abstract_leaf` is that leaf, `restore_type` None for a `RecordedType`), so
  the wrapper hands the user's TypeHandler the RestoreArgs the leaf carries.
  Checked on 0.12.0 and 0.12.8."""
  import asyncio  # pylint: disable=g-import-not-at-top
  import dataclasses  # pylint: disable=g-import-not-at-top

  from orbax.checkpoint import type_handlers  # pylint: disable=g-import-not-at-top
  from orbax.checkpoint.experimental.v1._src.handlers import pytree_handler  # pylint: disable=g-import-not-at-top

  @dataclasses.dataclass
  class OwnArgs(type_handlers.RestoreArgs):
    item: object = None

  own = OwnArgs(item='live')
  v0_args = pytree_handler.create_v0_restore_args(
      _v1.v1.Context(), {'own': _v1.RecordedType(own), 'default': _v1.RecordedType()})
  leaves = v0_args.restore_args
  assert leaves['own'].restore_type is None, VERSION  # v0 looks the typestr up.
  assert leaves['own'].abstract_leaf.restore_args is own, VERSION

  class Recording(type_handlers.NumpyHandler):

    def typestr(self):
      return 'Recording'

    async def deserialize(self, infos, args=None):
      return list(args)

  handler = _v1.v1.handlers.PyTreeHandler()
  _v1.add_v0_type_handlers(handler, [(lambda t: False, Recording())])
  wrapped = handler._handler_impl._type_handler_registry.get('Recording')  # pylint: disable=protected-access
  got = asyncio.run(wrapped.deserialize([None] * 3, [leaves['own'], leaves['default'], own]))
  assert got[0] is own and type(got[1]) is type_handlers.RestoreArgs and got[2] is own
