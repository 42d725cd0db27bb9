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
from typing import Any

from orbax.checkpoint import args as v0_args
from orbax.checkpoint import checkpoint_args as v0_checkpoint_args
from orbax.checkpoint import handlers as v0_handlers
from orbax.checkpoint import multihost

from orbax_compat import _v1
from orbax_compat._v1 import v1

_handlers = v1.handlers


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
  cls = type(v0_handler.__name__, (v1_handler,), attrs)
  cls.__module__, cls.__qualname__ = v0_handler.__module__, v0_handler.__qualname__
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

  def __init__(self):
    self._v0 = v0_handlers.ArrayCheckpointHandler()
    self._context = _v1.active_context()  # The manager's (see _finalize_after_every_commit).

  async def save(self, directory: Any, checkpointable: Any) -> Any:
    commit_futures = await self._v0.async_save(directory.path, args=checkpointable)

    async def background() -> None:
      path = await directory.await_creation()
      for f in commit_futures or ():
        await asyncio.to_thread(f.result)
      await _finalize_after_every_commit(path, self._v0.finalize, self._context)

    return background()

  async def load(self, directory: Any, abstract_checkpointable: Any = None) -> Any:
    args = abstract_checkpointable or v0_args.ArrayRestore()

    async def background() -> Any:
      return await asyncio.to_thread(self._v0.restore, directory, args=args)

    return background()

  async def metadata(self, directory: Any) -> Any:
    return None  # v0's ArrayCheckpointHandler has no item metadata either.

  def is_handleable(self, checkpointable: Any) -> bool:
    return isinstance(checkpointable, v0_args.ArraySave)

  def is_abstract_handleable(self, abstract_checkpointable: Any) -> bool:
    return abstract_checkpointable is None or isinstance(
        abstract_checkpointable, v0_args.ArrayRestore
    )


StandardHandler = _recorded_as(_handlers.PyTreeHandler, v0_handlers.StandardCheckpointHandler)
PyTreeHandler = _recorded_as(_handlers.PyTreeHandler, v0_handlers.PyTreeCheckpointHandler)
# v1's JsonHandler writes `data.json`; v0's JsonCheckpointHandler reads `metadata`.
JsonHandler = _recorded_as(
    _handlers.JsonHandler, v0_handlers.JsonCheckpointHandler, filename='metadata'
)
MetricsHandler = _recorded_as(
    _handlers.JsonHandler, v0_handlers.JsonCheckpointHandler, filename='metrics'  # v0's metrics item and file name
)
# v1's ProtoHandler writes v0's `proto.pbtxt`; v1 lists v0's name as secondary.
ProtoHandler = _recorded_as(_handlers.ProtoHandler, v0_handlers.ProtoCheckpointHandler)
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
    self._context = _v1.active_context()  # The manager's (see _finalize_after_every_commit).

  async def save(self, directory: Any, checkpointable: Any) -> Any:
    handler, pending, commit_futures = self.v0_handler, None, None
    if isinstance(handler, v0_handlers.AsyncCheckpointHandler):
      commit_futures = await handler.async_save(directory.path, args=checkpointable)
    elif directory.path.exists():
      await asyncio.to_thread(handler.save, directory.path, args=checkpointable)
    else:  # Directories are created in the background part.
      pending = checkpointable

    async def background() -> None:
      path = await directory.await_creation()
      if pending is not None:
        await asyncio.to_thread(handler.save, path, args=pending)
      for f in commit_futures or ():
        await asyncio.to_thread(f.result)
      await _finalize_after_every_commit(path, handler.finalize, self._context)

    return background()

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

    async def background() -> Any:
      return await asyncio.to_thread(self.v0_handler.restore, directory, args=args)

    return background()

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
