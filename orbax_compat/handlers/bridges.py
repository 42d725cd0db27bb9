"""v1 handlers that write v0's files and record v0's handler type names.

v0 resolves a step's items by the handler type names `_CHECKPOINT_METADATA`
records; v1 records its own, which plain v0 cannot import. Every handler the
shim saves with is a v1 CheckpointableHandler recorded under the v0 name of
the handler that writes the same files: v1's own handlers renamed
(`_recorded_as`), v0's ArrayCheckpointHandler (v1 has none) and user-written
v0 handlers, run inside v1's save and atomic commit (`V0Bridge`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from collections.abc import Mapping
import dataclasses
import inspect
from typing import Any

import jax
from orbax.checkpoint import args as v0_args
from orbax.checkpoint import checkpoint_args as v0_checkpoint_args
from orbax.checkpoint import handlers as v0_handlers
from orbax.checkpoint import multihost
from orbax.checkpoint import type_handlers

from orbax_compat.compat import orbax as _v1
from orbax_compat.compat.orbax import v1

_handlers = v1.handlers


class _Null:
  """None where v1 takes no None checkpointable: a JSON item of value None
  (v0 writes `null`), or the args None of a user-written handler (a None
  Composite entry for an item v0 knows). The shim's handlers turn it back
  into None."""

  def __repr__(self) -> str:
    return 'orbax_compat.bridges.NULL'


NULL = _Null()


def _recorded_as(v1_handler: type, v0_handler: type, **init_kwargs: Any) -> type:
  """A v1 handler that `_CHECKPOINT_METADATA` records under a v0 type name.

  v0 resolves a step's items by the handler type names recorded when saving;
  v1 records its own names, which v0 cannot import, so plain v0 code could
  not `restore(step)` without args. The subclass writes exactly v1's files
  (which are v0's: v1's handlers wrap v0's), inside v1's atomic commit, under
  the v0 name; v1 reads that name back through its registered secondary
  type names.
  """
  attrs = {'__doc__': f'{v1_handler.__name__}, recorded as {v0_handler.__name__}.'}
  if init_kwargs:
    attrs['__init__'] = lambda self: v1_handler.__init__(self, **init_kwargs)

  async def load(self, directory: Any, abstract_checkpointable: Any = None) -> Any:
    background = await v1_handler.load(self, directory, abstract_checkpointable)
    return _ClosedIfDropped(background) if inspect.iscoroutine(background) else background

  attrs['load'] = load
  cls = type(v0_handler.__name__, (v1_handler,), attrs)
  cls.__module__, cls.__qualname__ = v0_handler.__module__, v0_handler.__qualname__
  return cls


# --- Per-item handler settings ------------------------------------------------
#
# A v0 handler instance carries constructor settings (`PyTreeCheckpointHandler(
# use_zarr3=True)`, `JsonCheckpointHandler(filename='index')`); two items may
# carry different ones. v1 constructs a handler type per item, inside the
# Context active at save or load, so the shim binds each item to a subclass of
# its recorded handler holding that item's settings (`configured`), which
# builds its v1 handler from the active Context plus those settings.


@dataclasses.dataclass(frozen=True)
class Setting:
  """Where one v0 handler constructor setting goes in v1."""

  v0: str  # The v0 constructor argument (as the user writes it).
  v1: str  # The v1 Context option path, or `Handler(arg=...)`.
  refused: str = ''  # Why v1 cannot take it (then `v1` is empty).


def _context_setter(path: str) -> Callable[[Any, Any], None]:
  *parents, leaf = path.split('.')

  def set_option(context: Any, value: Any) -> None:
    target = context
    for p in parents:
      target = getattr(target, p)
    setattr(target, leaf, value)

  return set_option


# v0 PyTree/Standard handler setting (as `_v1.v0_handler_settings` names it)
# -> its v1 form.
PYTREE_SETTINGS = {
    'use_ocdbt': Setting('use_ocdbt', 'array_options.saving.use_ocdbt'),
    'use_zarr3': Setting('use_zarr3', 'array_options.saving.use_zarr3'),
    'use_compression': Setting('use_compression', 'array_options.saving.use_compression'),
    'save_concurrent_bytes': Setting(
        'save_concurrent_gb', 'memory_options.write_concurrent_bytes'),
    'restore_concurrent_bytes': Setting(
        'restore_concurrent_gb', 'memory_options.read_concurrent_bytes'),
    'save_device_host_concurrent_bytes': Setting(
        'save_device_host_concurrent_gb', 'memory_options.transfer_concurrent_bytes'),
    'primary_host': Setting(
        'multiprocessing_options.primary_host', 'multiprocessing_options.primary_host'),
    'enable_post_merge_validation': Setting(
        'handler_impl.enable_post_merge_validation',
        'array_options.saving.enable_post_merge_validation'),
    'pytree_metadata_options': Setting(
        'pytree_metadata_options', 'pytree_options.saving.pytree_metadata_options'),
    'enable_pinned_host_transfer': Setting(
        'enable_pinned_host_transfer', 'array_options.saving.enable_pinned_host_transfer'),
    'is_prioritized_key_fn': Setting(
        'is_prioritized_key_fn', 'memory_options.is_prioritized_key_fn'),
    'array_metadata_validator': Setting(
        'array_metadata_validator', 'PyTreeHandler(array_metadata_validator=...)'),
    'type_handler_registry': Setting(
        'type_handler_registry', 'Context().array_options.saving (its jax.Array '
        'ArrayHandler\'s settings, see ARRAY_TYPE_HANDLER_SETTINGS)'),
    'memory_limit_bytes': Setting(
        'memory_limit_options', '(none: v0 reads it only with '
        'save_device_host_concurrent_gb="auto", which is refused)'),
    'aggregate_filename': Setting(
        'aggregate_filename', '', refused='v1 reads and writes no msgpack '
        'aggregate file (v0 reads it only from checkpoints of Orbax < 0.5)'),
    'handler_impl': Setting(
        'handler_impl', '', refused='v1 builds its own BasePyTreeCheckpointHandler '
        'from the Context; a custom implementation cannot run inside it'),
}
# v0 Json/Proto handler settings -> v1.
FILE_SETTINGS = {
    'filename': Setting('filename', 'JsonHandler(filename=...) / ProtoHandler(filename=...)'),
    'primary_host': Setting(
        'multiprocessing_options.primary_host', 'multiprocessing_options.primary_host'),
}
# v0 ArrayCheckpointHandler settings -> the shim's Array bridge.
ARRAY_SETTINGS = {
    'checkpoint_name': Setting('checkpoint_name', 'ArrayCheckpointHandler(checkpoint_name=...), run by the Array bridge'),
}
# Settings of the v0 jax.Array TypeHandler (`type_handlers.ArrayHandler`)
# registered for the item (globally or in its `type_handler_registry`) -> v1.
ARRAY_TYPE_HANDLER_SETTINGS = {
    'use_replica_parallel': Setting(
        'use_replica_parallel', 'array_options.saving.use_replica_parallel'),
    'min_slice_bytes_for_replica_parallel': Setting(
        'min_slice_bytes_for_replica_parallel',
        'array_options.saving.min_slice_bytes_for_replica_parallel'),
    'max_replicas_for_replica_parallel': Setting(
        'max_replicas_for_replica_parallel',
        'array_options.saving.max_replicas_for_replica_parallel'),
    'enable_replica_parallel_separate_folder': Setting(
        'enable_replica_parallel_separate_folder',
        'array_options.saving.enable_replica_parallel_separate_folder'),
    'enable_write_sharding_file': Setting(
        'enable_write_sharding_file', 'array_options.saving.enable_write_sharding_file'),
    'array_metadata_store': Setting(
        'array_metadata_store', 'array_options.saving.array_metadata_store'),
    'callback': Setting('callback', 'memory_options.serialization_status_callback'),
    'primary_host': Setting(
        'primary_host', '(derived by v1 from the item\'s primary host)'),
    'replica_id': Setting(
        'replica_id', '(derived by v1: None with primary_host=None, else 0)'),
    'metadata_key': Setting(
        'metadata_key', '', refused='v1 writes tensorstore metadata under its '
        'default key'),
    'dispatcher': Setting(
        'dispatcher', '', refused='v1 has no dispatcher option (Pathways only)'),
}


def _is_context_option(v1_form: str) -> bool:
  return bool(v1_form) and '(' not in v1_form and ' ' not in v1_form


def _same(a: Any, b: Any) -> bool:
  """Settings equal as v0 would use them (stateless helper objects by type)."""
  if a is b:
    return True
  if type(a) is not type(b):
    return False
  if type(a) is type(_v1.global_type_handler_registry()):
    return False  # Another registry than v0's global one holds other handlers.
  try:
    if a == b:
      return True
  except Exception:  # pylint: disable=broad-exception-caught
    return False
  # Orbax's helper objects without equality (Store, Validator, callbacks):
  # two of one type behave alike.
  module = type(a).__module__ or ''
  return module.startswith('orbax.') and type(a).__eq__ is object.__eq__


def _differences(settings: Mapping[str, Any], reference: Mapping[str, Any]) -> dict[str, Any]:
  return {k: v for k, v in settings.items() if not _same(v, reference.get(k))}


_REFERENCE_ARRAY_HANDLER: dict[str, Any] | None = None


def _reference_array_handler() -> dict[str, Any]:
  """v0's default jax.Array TypeHandler (`type_handler_registry`'s default)."""
  global _REFERENCE_ARRAY_HANDLER
  if _REFERENCE_ARRAY_HANDLER is None:
    _REFERENCE_ARRAY_HANDLER = _v1.array_type_handler_settings(
        type_handlers.ArrayHandler(array_metadata_store=_v1.array_metadata_store())
    )
  return _REFERENCE_ARRAY_HANDLER


def _refuse(what: str, name: str, setting: Setting) -> None:
  raise NotImplementedError(
      f'orbax_compat cannot carry {what} setting `{setting.v0}` over to '
      f'Orbax v1: {setting.refused}. Leave it at its default.'
  )


def array_type_handler_options(registry: Any, primary_host: Any) -> dict[str, Any]:
  """v1 Context options for the jax.Array TypeHandler of a v0 registry.

  `registry` None is v0's global registry (`register_type_handler`). Raises
  NotImplementedError naming what v1 cannot express.
  """

  if registry is None:
    handler = type_handlers.get_type_handler(jax.Array)
  elif registry.has(jax.Array):
    handler = registry.get(jax.Array)
  else:  # No jax.Array leaves to save there (v0 would refuse them).
    return {}
  if type(handler) is not type_handlers.ArrayHandler:
    raise NotImplementedError(
        f'orbax_compat cannot run the jax.Array TypeHandler '
        f'{type(handler).__qualname__} on Orbax v1: v1 serializes jax.Array '
        'leaves with its own ArrayHandler, built from Context().array_options; '
        'register orbax.checkpoint.type_handlers.ArrayHandler(...) instead.'
    )
  changed = _differences(_v1.array_type_handler_settings(handler), _reference_array_handler())
  options = {}
  for name, value in changed.items():
    setting = ARRAY_TYPE_HANDLER_SETTINGS[name]
    if setting.refused:
      _refuse('the jax.Array ArrayHandler', name, setting)
    if name in ('primary_host', 'replica_id'):
      continue  # Checked below, against the item's primary host.
    options[setting.v1] = value
  if 'primary_host' in changed or 'replica_id' in changed:
    settings = _v1.array_type_handler_settings(handler)
    derived = (primary_host, None if primary_host is None else 0)
    if (settings['primary_host'], settings['replica_id']) != derived:
      raise NotImplementedError(
          'orbax_compat cannot carry the jax.Array ArrayHandler settings '
          f'primary_host={settings["primary_host"]!r}, replica_id='
          f'{settings["replica_id"]!r} over to Orbax v1: v1 derives them from '
          f'the item\'s primary host ({primary_host!r}) as {derived}.'
      )
  return options


def user_type_handlers(registry: Any) -> list[tuple[Any, Any]]:
  """The user's own TypeHandlers in a v0 registry (None: the global one), in order.

  Entries of v0's standard TypeHandler classes are v1's (the jax.Array one
  through `array_type_handler_options`); any other runs as itself inside v1
  (`_v1.add_v0_type_handlers`). One registered for a type v1 serializes itself
  (int, float, bytes, numpy, jax.Array, str) is refused: v1 would not use it.
  """

  standard = _v1.v0_standard_type_handler_classes()
  custom = []
  for predicate, handler in _v1.v0_type_handler_entries(registry):
    if type(handler) in standard:
      continue
    shadowed = [t for t in type_handlers.supported_types() if _v1.matches(predicate, t)]
    if shadowed:
      raise NotImplementedError(
          f'orbax_compat cannot run the TypeHandler {type(handler).__qualname__} '
          f'registered for {shadowed[0].__qualname__} on Orbax v1: v1 serializes '
          f'{shadowed[0].__qualname__} leaves with its own LeafHandler. Register it '
          'for a type of your own instead.'
      )
    custom.append((predicate, handler))
  return custom


def item_type_handler_registry(handler_type: Any) -> Any:
  """The `type_handler_registry` an item's handler was configured with, or None
  (v0's global one)."""
  settings = getattr(handler_type, '_item_settings', None) or {}
  return settings.get('type_handler_registry')


def has_user_type_handler(ty: Any, handler_type: Any = None) -> bool:
  """Whether a user's TypeHandler saves type `ty`: in the item's registry
  (its handler's `type_handler_registry`), else in v0's global one."""
  registry = item_type_handler_registry(handler_type)
  return isinstance(ty, type) and any(
      _v1.matches(p, ty) for p, _ in user_type_handlers(registry))


def user_typestrs(handler_type: Any = None) -> set[str]:
  """The typestrs of the user's TypeHandlers an item restores with (its
  handler's `type_handler_registry`, else v0's global one)."""
  registry = item_type_handler_registry(handler_type)
  return {h.typestr() for _, h in user_type_handlers(registry)}


def item_settings(handler: Any, argument: str) -> dict[str, Any]:
  """The non-default settings of one of v0's own handler instances.

  Raises NotImplementedError (naming `argument` and the setting) for settings
  v1 cannot express.
  """
  settings = _v1.v0_handler_settings(handler)
  if settings is None:
    return {}
  table = _SETTINGS_TABLE[type(handler)]
  changed = _differences(settings, _v1.v0_handler_settings(type(handler)()))
  for name, value in changed.items():
    setting = table[name]
    if setting.refused:
      raise NotImplementedError(
          f'orbax_compat cannot carry `{argument}`\'s {type(handler).__qualname__}'
          f' setting `{setting.v0}` over to Orbax v1: {setting.refused}. Leave '
          'it at its default.'
      )
    if name == 'save_device_host_concurrent_bytes' and value == 'auto':
      raise NotImplementedError(
          f'orbax_compat cannot carry `{argument}`\'s {type(handler).__qualname__}'
          ' setting `save_device_host_concurrent_gb="auto"` over to Orbax v1: '
          'v1\'s memory regulator takes a regulator object '
          '(Context().memory_options.regulator_options), not v0\'s '
          'memory_limit_options; give a number of GB.'
      )
  changed.pop('memory_limit_bytes', None)  # v0 reads it only with 'auto'.
  return changed


def same_settings(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
  return set(a) == set(b) and all(_same(a[k], b[k]) for k in a)


# v0 PyTree/Standard handler defaults v1's Context does not share, as
# v0_handler_settings names them -> their v1 Context option.
_V0_PYTREE_DEFAULTS = ('save_concurrent_bytes', 'restore_concurrent_bytes')


def set_v0_pytree_defaults(context: Any) -> None:
  """v0's PyTree/Standard handler defaults, on a manager's base Context.

  v0's handlers bound the bytes in flight of a save and of a restore (96 GB,
  `save_concurrent_gb`/`restore_concurrent_gb`); v1 leaves both unbounded
  (`MemoryOptions` None). The bound also shapes the files: under it each
  jax.Array write waits its turn, so TensorStore commits an OCDBT item's
  writes in several batches, one data file each (under
  `ocdbt.process_0/d/`), where unbounded writes land in one.
  """
  defaults = _v1.v0_handler_settings(v0_handlers.PyTreeCheckpointHandler())
  for name in _V0_PYTREE_DEFAULTS:
    _context_setter(PYTREE_SETTINGS[name].v1)(context, defaults[name])


def item_context(base: Any, settings: Mapping[str, Any], pytree: bool) -> Any:
  """`base` (the active Context) with one item's settings applied."""
  options = {}
  table = PYTREE_SETTINGS if pytree else FILE_SETTINGS
  for name, value in settings.items():
    setting = table.get(name)
    if setting is not None and _is_context_option(setting.v1):
      options[setting.v1] = value
  if pytree:
    registry = settings.get('type_handler_registry')  # None: v0's global one.
    primary_host = options.get(
        'multiprocessing_options.primary_host',
        base.multiprocessing_options.primary_host,
    )
    options.update(array_type_handler_options(registry, primary_host))
  if not options:
    return base
  context = v1.Context(base)
  for path, value in options.items():
    _context_setter(path)(context, value)
  return context


def _pytree_recorded_as(v0_handler: type) -> type:
  """v1's PyTreeHandler, recorded under a v0 name, built with item settings.

  The settings (`configured`) become Context options of the v1 handler's own
  Context (v1's PyTreeHandler builds its v0 implementation from it), and
  `array_metadata_validator` its constructor argument. The jax.Array
  TypeHandler v0 would use (global, or the item's `type_handler_registry`)
  is read at construction, i.e. at each save and load, as v0 reads it.
  """

  def __init__(self):  # noqa: N807
    settings = self._item_settings
    context = item_context(_v1.active_context(), settings, pytree=True)
    kwargs = {}
    if 'array_metadata_validator' in settings:
      kwargs['array_metadata_validator'] = settings['array_metadata_validator']
    _handlers.PyTreeHandler.__init__(self, context=context, **kwargs)
    custom = user_type_handlers(settings.get('type_handler_registry'))
    if custom:
      _v1.add_v0_type_handlers(self, custom)

  cls = _recorded_as(_handlers.PyTreeHandler, v0_handler)
  cls.__init__ = __init__
  cls._item_settings = {}
  return cls


def _file_recorded_as(v1_handler: type, v0_handler: type, filename: str) -> type:
  """v1's Json/Proto handler, recorded under a v0 name, with item settings.

  `filename` goes to the v1 handler's constructor; `primary_host` to the
  Context its `save` reads.
  """

  def __init__(self):  # noqa: N807
    v1_handler.__init__(self, filename=self.v0_filename())

  async def save(self, directory: Any, checkpointable: Any) -> Any:
    if checkpointable is NULL:  # v0's JSON handler writes `null`.
      checkpointable = None
    base = _v1.active_context()
    context = item_context(base, self._item_settings, pytree=False)
    if context is base:
      return await v1_handler.save(self, directory, checkpointable)
    # v1's save reads the active Context's primary host before its first
    # await: run that part inside the item's Context (no `with` across an
    # await, which would leave the Context in another task).
    coro = v1_handler.save(self, directory, checkpointable)
    with context:
      try:
        coro.send(None)
      except StopIteration as done:
        return done.value
    coro.close()
    raise RuntimeError(  # pragma: no cover - only on an Orbax change.
        f'orbax_compat: {v1_handler.__qualname__}.save awaits before reading '
        f'its Context; update orbax_compat.bridges for {_v1.orbax_version_note()}.'
    )

  @classmethod
  def v0_filename(cls) -> str:
    """The one file v0's handler reads (v1's also reads others)."""
    return cls._item_settings.get('filename') or filename

  cls = _recorded_as(v1_handler, v0_handler)
  cls.__init__ = __init__
  cls.save = save
  cls.v0_filename = v0_filename
  cls._item_settings = {}
  return cls


def configured(handler_type: type, settings: Mapping[str, Any]) -> type:
  """`handler_type` (a recorded handler) bound to one item's settings."""
  if not settings:
    return handler_type
  cls = type(handler_type.__name__, (handler_type,), {
      '__doc__': handler_type.__doc__,
      '_item_settings': dict(settings),
  })
  cls.__module__, cls.__qualname__ = handler_type.__module__, handler_type.__qualname__
  return cls


def settings_of(handler_type: Any) -> dict[str, Any]:
  return dict(getattr(handler_type, '_item_settings', None) or {})


async def _finalize_after_every_commit(path: Any, finalize: Any, context: Any) -> None:
  """v0's order between an item's writes and its handler's `finalize`.

  v0's checkpointers wait for every process's commit futures, meet at a
  barrier (`async_write_complete`; the sync Checkpointer's `save` barrier)
  and only then run `finalize`, on the primary host alone. A bridge runs
  inside v1's commit, which has that barrier only after the item's
  background part, so the bridge meets at its own barrier first: without it
  the primary host finalizes while other processes still write (v0's Array
  handler then fails merging per-process array metadata; a user handler's
  `finalize` misses other processes' files). Barrier through Orbax's public
  `multihost` (safe from background threads, as v0's); the key is unique per
  step and item, like v0's `async_write_complete.<step>`. `context` is the
  manager's v1 Context, captured when v1 constructed the bridge.
  """
  mp = context.multiprocessing_options
  sync = multihost.get_barrier_sync_fn(processes=mp.active_processes)
  key = multihost.unique_barrier_key(
      f'orbax_compat_commit_before_finalize.{path.name}',
      prefix=mp.barrier_sync_key_prefix,
      suffix=path.parent.name,
  )
  timeout_ms = context.async_options.timeout_secs * 1000
  await asyncio.to_thread(sync, key=key, timeout_ms=timeout_ms)
  if multihost.is_primary_host(mp.primary_host):
    await asyncio.to_thread(finalize, path)


class _ClosedIfDropped:
  """A v1 handler's background load coroutine, closed unrun if v1 drops it.

  v1 awaits the items' background load parts one by one and stops at the
  first that fails; the others are never awaited and warn `RuntimeWarning:
  coroutine ... was never awaited` when collected, where v0 prints nothing.
  Only a coroutine that never started is closed (it then does not warn).
  """

  def __init__(self, coroutine: Any):
    self._coroutine = coroutine

  def __await__(self):
    return self._coroutine.__await__()

  def __del__(self):
    if inspect.getcoroutinestate(self._coroutine) == inspect.CORO_CREATED:
      self._coroutine.close()


class _WhenAwaited:
  """A save's or load's background part: `async_fn(*args, **kwargs)`, started
  only when awaited.

  v1 awaits the items' background load parts one by one and stops at the
  first that fails, dropping the others unawaited (and a failed blocking
  part of one item's save drops the others'). A dropped coroutine warns
  `RuntimeWarning: coroutine ... was never awaited` where v0 prints nothing;
  this awaitable creates its coroutine only when awaited, so a dropped one is
  simply not run, as v0 does not run the rest of a failed save or restore.
  """

  def __init__(self, async_fn: Any, *args: Any, **kwargs: Any):
    self._call = (async_fn, args, kwargs)

  def __await__(self):
    async_fn, args, kwargs = self._call
    return async_fn(*args, **kwargs).__await__()


class _ArrayBridge:
  """v0's ArrayCheckpointHandler as a v1 CheckpointableHandler.

  v1 has no handler writing v0's Array layout (`checkpoint/` zarr array and
  `_METADATA`, no OCDBT). The checkpointable is the `ArraySave` args and the
  abstract checkpointable the `ArrayRestore` args (or None). v0's handler
  writes into the temporary directory v1 hands it; its commit futures and
  `finalize` (on the primary host, once every process committed) run in the
  save's background part, so v1's atomic commit (the v0 manager's finalize
  and rename) happens only after they are done.
  """

  _item_settings: dict[str, Any] = {}

  def __init__(self):
    self._v0 = v0_handlers.ArrayCheckpointHandler(**self._item_settings)
    self._context = _v1.active_context()  # The manager's (see _finalize_after_every_commit).

  async def save(self, directory: Any, checkpointable: Any) -> Any:
    commit_futures = await self._v0.async_save(directory.path, args=checkpointable)

    async def background() -> None:
      path = await directory.await_creation()
      for f in commit_futures or ():
        await asyncio.to_thread(f.result)
      await _finalize_after_every_commit(path, self._v0.finalize, self._context)

    return _WhenAwaited(background)

  async def load(self, directory: Any, abstract_checkpointable: Any = None) -> Any:
    args = abstract_checkpointable or v0_args.ArrayRestore()
    return _WhenAwaited(asyncio.to_thread, self._v0.restore, directory, args=args)

  async def metadata(self, directory: Any) -> Any:
    return None  # v0's ArrayCheckpointHandler has no item metadata either.

  def is_handleable(self, checkpointable: Any) -> bool:
    return isinstance(checkpointable, v0_args.ArraySave)

  def is_abstract_handleable(self, abstract_checkpointable: Any) -> bool:
    return abstract_checkpointable is None or isinstance(
        abstract_checkpointable, v0_args.ArrayRestore
    )


StandardHandler = _pytree_recorded_as(v0_handlers.StandardCheckpointHandler)
PyTreeHandler = _pytree_recorded_as(v0_handlers.PyTreeCheckpointHandler)
# v1's JsonHandler writes `data.json`; v0's JsonCheckpointHandler reads `metadata`.
JsonHandler = _file_recorded_as(
    _handlers.JsonHandler, v0_handlers.JsonCheckpointHandler, 'metadata'
)
MetricsHandler = _recorded_as(
    _handlers.JsonHandler, v0_handlers.JsonCheckpointHandler, filename='metrics'  # v0's metrics item and file name
)
# v1's ProtoHandler writes v0's `proto.pbtxt`; v1 lists v0's name as secondary.
ProtoHandler = _file_recorded_as(
    _handlers.ProtoHandler, v0_handlers.ProtoCheckpointHandler, 'proto.pbtxt'
)
ArrayHandler = _recorded_as(_ArrayBridge, v0_handlers.ArrayCheckpointHandler)
# v0's own handler class -> the shim's handler recorded under its name.
RECORDED_FOR_V0 = {
    v0_handlers.StandardCheckpointHandler: StandardHandler,
    v0_handlers.PyTreeCheckpointHandler: PyTreeHandler,
    v0_handlers.JsonCheckpointHandler: JsonHandler,
    v0_handlers.ProtoCheckpointHandler: ProtoHandler,
    v0_handlers.ArrayCheckpointHandler: ArrayHandler,
}
_SETTINGS_TABLE = {
    v0_handlers.StandardCheckpointHandler: PYTREE_SETTINGS,
    v0_handlers.PyTreeCheckpointHandler: PYTREE_SETTINGS,
    v0_handlers.JsonCheckpointHandler: FILE_SETTINGS,
    v0_handlers.ProtoCheckpointHandler: FILE_SETTINGS,
    v0_handlers.ArrayCheckpointHandler: ARRAY_SETTINGS,
}
# v1 must resolve the recorded v0 name of Array items (v1 has no handler for
# them): register the bridge globally, before any manager copies the registry.
if ArrayHandler not in [h for h, _ in _handlers.global_registry().get_all_entries()]:
  _handlers.register_handler(ArrayHandler)


class V0Bridge:
  """A user-written v0 CheckpointHandler instance as a v1 CheckpointableHandler.

  v1 default-constructs handler types, so `bridge` makes one subclass per v0
  handler instance, holding it, and named like the v0 handler class, so that
  `_CHECKPOINT_METADATA` records the v0 handler's own type name (as v0 does).
  The checkpointable is the v0 save args, the abstract checkpointable the v0
  restore args (or None: the registered restore args, default-constructed, as
  v0's bare restore). A sync handler saves in the save's blocking part (as in
  v0; the shim creates the directories synchronously for such saves), an
  AsyncCheckpointHandler starts there and its commit futures run in the
  background part; `finalize` follows there on the primary host, once every
  process committed, before v1's atomic commit.
  """

  v0_handler: Any = None
  accepts: tuple[type, ...] = ()  # Args types the handler takes.
  v0_args: tuple[type, type] | None = None  # v0's registered (save, restore).

  def __init__(self):
    self._context = _v1.active_context()  # The manager's (see _finalize_after_every_commit).

  async def save(self, directory: Any, checkpointable: Any) -> Any:
    handler, later, commit_futures = self.v0_handler, False, None
    args = None if checkpointable is NULL else checkpointable  # As v0 hands it.
    if isinstance(handler, v0_handlers.AsyncCheckpointHandler):
      commit_futures = await handler.async_save(directory.path, args=args)
    elif directory.path.exists():
      await asyncio.to_thread(handler.save, directory.path, args=args)
    else:  # Directories are created in the background part.
      later = True

    async def background() -> None:
      path = await directory.await_creation()
      if later:
        await asyncio.to_thread(handler.save, path, args=args)
      for f in commit_futures or ():
        await asyncio.to_thread(f.result)
      await _finalize_after_every_commit(path, handler.finalize, self._context)

    return _WhenAwaited(background)

  @classmethod
  def default_restore_args(cls) -> Any:
    """v0's bare restore: the registered restore args, default-constructed."""
    if cls.v0_args is None:
      raise ValueError(
          'Unable to find registered `CheckpointArgs` for restore for '
          f'{type(cls.v0_handler)}; pass restore args for the item.'
      )
    try:
      return cls.v0_args[1]()
    except TypeError as e:
      raise ValueError(
          'Attempted to construct default restoration arguments, but the '
          f'`CheckpointArgs` class of type {cls.v0_args[1]} is not default '
          f'constructible. Original error: {e}.'
      ) from e

  async def load(self, directory: Any, abstract_checkpointable: Any = None) -> Any:
    args = abstract_checkpointable
    if args is None:
      args = self.default_restore_args()
    return _WhenAwaited(
        asyncio.to_thread, self.v0_handler.restore, directory, args=args
    )

  async def metadata(self, directory: Any) -> Any:
    return await asyncio.to_thread(self.v0_handler.metadata, directory)

  def is_handleable(self, checkpointable: Any) -> bool:
    return isinstance(checkpointable, self.accepts)

  def is_abstract_handleable(self, abstract_checkpointable: Any) -> bool:
    return abstract_checkpointable is None or isinstance(
        abstract_checkpointable, self.accepts
    )


# v0's own handlers: the shim maps them to v1's (never bridged by name).
BUILTIN_V0_HANDLERS = frozenset({
    v0_handlers.StandardCheckpointHandler, v0_handlers.PyTreeCheckpointHandler,
    v0_handlers.JsonCheckpointHandler, v0_handlers.ProtoCheckpointHandler,
    v0_handlers.ArrayCheckpointHandler, v0_handlers.CompositeCheckpointHandler,
})
BRIDGED_ARGS: set[type] = set()  # Args types some bridge takes.
_DEFAULT_BRIDGES: dict[type, type] = {}  # v0 handler class -> its bridge.


def registered_args(handler: Any) -> tuple[type, type] | None:
  """v0's globally registered (save, restore) args of a handler, or None."""
  try:
    return v0_checkpoint_args.get_registered_args_cls(handler)
  except ValueError:
    return None


def bridge(handler: Any, accepts: tuple[type, ...] = ()) -> type | None:
  """A V0Bridge subclass running this v0 handler instance; None if v0 knows
  no CheckpointArgs for it (neither registered globally nor `accepts`)."""
  handler_cls = type(handler)
  registered = registered_args(handler_cls)
  accepts = tuple(dict.fromkeys((*accepts, *(registered or ()))))
  if not accepts:
    return None
  BRIDGED_ARGS.update(accepts)
  cls = type(handler_cls.__name__, (V0Bridge,), {
      '__doc__': f'{handler_cls.__qualname__} (v0), bridged to v1.',
      'v0_handler': handler,
      'accepts': accepts,
      'v0_args': registered,
  })
  module, _, qualname = handler_cls.typestr().rpartition('.')
  cls.__module__, cls.__qualname__ = module, qualname  # v0's recorded name.
  return cls


def is_bridge(handler_type: Any) -> bool:
  return isinstance(handler_type, type) and issubclass(handler_type, V0Bridge)


def default_bridge(handler_cls: type) -> type | None:
  """The bridge of a default-constructed handler (v0's global registry)."""
  if handler_cls not in _DEFAULT_BRIDGES:
    _DEFAULT_BRIDGES[handler_cls] = bridge(handler_cls())
  return _DEFAULT_BRIDGES[handler_cls]


def bridge_for_typestr(typestr: Any) -> type | None:
  """The bridge v0 would restore a recorded handler name with (v0 resolves
  names of handlers whose args are registered), or None."""
  if not isinstance(typestr, str):
    return None
  handler_cls = _v1.v0_handler_type(typestr)
  if handler_cls is None or handler_cls in BUILTIN_V0_HANDLERS or registered_args(handler_cls) is None:
    return None
  return default_bridge(handler_cls)
