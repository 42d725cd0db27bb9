"""v1 handlers that write v0's files and record v0's handler type names.

v0 resolves a step's items by the handler type names `_CHECKPOINT_METADATA`
records; v1 records its own, which plain v0 cannot import. Every handler the
shim saves with is a v1 CheckpointableHandler recorded under the v0 name of
the handler that writes the same files: v1's own handlers renamed
(`_recorded_as`), v0's ArrayCheckpointHandler (v1 has none) and user-written
v0 handlers, run inside v1's save and atomic commit (`V0Bridge`). Which v0
handler and args each one stands for is `table.HANDLERS`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
import inspect
from typing import Any

from orbax.checkpoint import args as v0_args
from orbax.checkpoint import checkpoint_args as v0_checkpoint_args
from orbax.checkpoint import handlers as v0_handlers
from orbax.checkpoint import multihost

from orbax_compat.compat import orbax as compat
from orbax_compat.compat.orbax import v1
from orbax_compat.handlers import settings as settings_lib

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
    context = settings_lib.item_context(compat.active_context(), settings, pytree=True)
    kwargs = {}
    if 'array_metadata_validator' in settings:
      kwargs['array_metadata_validator'] = settings['array_metadata_validator']
    _handlers.PyTreeHandler.__init__(self, context=context, **kwargs)
    custom = settings_lib.user_type_handlers(settings.get('type_handler_registry'))
    if custom:
      compat.add_v0_type_handlers(self, custom)

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
    base = compat.active_context()
    context = settings_lib.item_context(base, self._item_settings, pytree=False)
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
        f'its Context; update orbax_compat.bridges for {compat.orbax_version_note()}.'
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
    self._context = compat.active_context()  # The manager's (see _finalize_after_every_commit).

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
    self._context = compat.active_context()  # The manager's (see _finalize_after_every_commit).

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
