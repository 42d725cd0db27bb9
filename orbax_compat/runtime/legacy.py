"""v0's legacy manager forms, turned into v0 args as v0's manager does.

`CheckpointManager(directory, checkpointers)` (one Checkpointer or a dict),
`item_names`/`item_handlers` and `handler_registry` bind item names to v0
handlers; `save(step, items, save_kwargs=...)` and `restore(step, items,
restore_kwargs=...)` then build, per item, the args class registered for its
handler (v0's `_get_args_for_key`). The shim binds each item to the v1 handler
that writes the same files as its v0 handler, so the rest of the shim only
ever sees v0 args.
"""

from __future__ import annotations

from collections.abc import Mapping
import dataclasses
from typing import Any

from absl import logging as absl_logging
import jax
from orbax.checkpoint import args as v0_args
from orbax.checkpoint import checkpoint_manager as v0_manager

from orbax_compat.compat import orbax as compat
from orbax_compat.handlers import bridges
from orbax_compat.handlers import settings as settings_lib
from orbax_compat.handlers import table

_Checkpointer = v0_manager.Checkpointer
_AsyncCheckpointer = v0_manager.AsyncCheckpointer
_CheckpointHandler = v0_manager.CheckpointHandler


_legacy_wrapper = compat.legacy_handler_wrapper

# What v0's manager logs (absl) for `checkpointers=`, word for word.
_LEGACY_INIT_EVENT = '/jax/orbax/deprecation/checkpoint_manager_legacy_init'
_LEGACY_INIT = (
    'Configured `CheckpointManager` using deprecated legacy API. Please'
    ' follow the instructions at'
    ' https://orbax.readthedocs.io/en/latest/guides/checkpoint/api_refactor.html'
    ' to migrate.'
)
_MIXED_CHECKPOINTERS = (
    'Orbax `CheckpointManager` is transitioning toward using'
    ' asynchronous saving logic under the hood in all cases. Users that'
    ' configure `CheckpointManager` with some `Checkpointer`s and some'
    ' `AsyncCheckpointer`s will now see asynchronous logic used to save'
    ' all items. This may result in breakages if the code is assuming'
    ' that certain objects will be available immediately after saving.'
    ' Ensure that if you depend on the result of `save` being fully'
    ' written at a particular moment, use `wait_until_finished()`.'
)


@dataclasses.dataclass
class Legacy:
  """What a legacy configuration fixes at construction."""

  default_item: bool | None
  handlers: dict[str, type]  # item name -> the shim's v1 handler type.
  use_async: bool
  # The only item names v0 accepts (item_names/item_handlers/checkpointers),
  # or None (handler_registry, or no legacy form: any name).
  item_names: frozenset[str] | None = None
  # handler_registry entries without an item name: args type -> handler type.
  by_args: dict[type, type] = dataclasses.field(default_factory=dict)


def v1_handler(handler: Any, argument: str, accepts: tuple[type, ...] = ()) -> type:
  """The shim's v1 handler for a v0 handler instance; raises for others.

  v0's own handlers map to the v1 handlers writing their files; a
  user-written handler runs through a `V0Bridge` of this very instance,
  taking its registered args (and `accepts`, from a handler_registry).
  """
  if not isinstance(handler, _CheckpointHandler):
    raise ValueError(
        f'`{argument}` must be an orbax.checkpoint CheckpointHandler; got '
        f'{type(handler).__name__}.'
    )
  row = table.BY_V0.get(type(handler))
  if row is None:
    bridged = bridges.bridge(handler, accepts)
    if bridged is None:  # No registered args: v0's pre-args wrapper, as v0.
      bridged = bridges.bridge(_legacy_wrapper(handler), accepts)
    if bridged is None:
      raise NotImplementedError(
          f'`{argument}` is a {type(handler).__qualname__} with no registered '
          'CheckpointArgs, which orbax_compat cannot run on Orbax v1. Register '
          'save and restore args for it with orbax.checkpoint.args.'
          'register_with_handler, or write it as a v1 CheckpointableHandler '
          '(orbax.checkpoint.experimental.v1.handlers.CheckpointableHandler) '
          'registered with v1.handlers.register_handler.'
      )
    return bridged
  # The instance's settings, bound to this item (see bridges.configured).
  return bridges.configured(row.v1, table.item_settings(handler, argument))


def _check_same_handler(name: str, first: tuple[str, Any], second: tuple[str, Any]) -> None:
  """One item, two of v0's own handlers configured differently: refused."""
  (arg_a, a), (arg_b, b) = first, second
  if a is b or type(a) not in table.BY_V0 or type(b) not in table.BY_V0:
    return
  if type(a) is type(b) and settings_lib.same_settings(
      table.item_settings(a, arg_a), table.item_settings(b, arg_b)
  ):
    return
  raise ValueError(
      f'Item {name!r} has two differently configured handlers: `{arg_a}` is '
      f'{a!r} and `{arg_b}` is {b!r}; orbax_compat binds one handler (and its '
      'settings) to an item. Register one handler instance for the item.'
  )


def _from_checkpointers(checkpointers: Any) -> tuple[dict[str, Any], bool, int | None]:
  """v0's `_configure_checkpointer_legacy_init`: handlers, async, timeout."""
  if isinstance(checkpointers, _Checkpointer):
    timeout = None
    if isinstance(checkpointers, _AsyncCheckpointer):
      timeout = compat.async_checkpointer_timeout(checkpointers)
    return (
        {table.DEFAULT_ITEM: checkpointers.handler},
        v0_manager.is_async_checkpointer(checkpointers),
        timeout,
    )
  if isinstance(checkpointers, dict):
    handlers, use_async, timeout = {}, [], 0
    for name, checkpointer in checkpointers.items():
      if not isinstance(checkpointer, _Checkpointer):
        raise ValueError(
            f'Value corresponding to {name} in `checkpointers` is not a'
            f' Checkpointer. Found {type(checkpointer)}.'
        )
      use_async.append(v0_manager.is_async_checkpointer(checkpointer))
      if isinstance(checkpointer, _AsyncCheckpointer):
        timeout = max(timeout, compat.async_checkpointer_timeout(checkpointer))
      handlers[name] = checkpointer.handler
    if any(use_async) and not all(use_async):
      absl_logging.error(_MIXED_CHECKPOINTERS)
    return handlers, any(use_async), timeout or None
  raise ValueError(f'Invalid type for `checkpointers`. Found {checkpointers}.')


def _check_exclusive(checkpointers, item_names, item_handlers, handler_registry):
  """v0's checks of which legacy arguments go together (same messages)."""
  if checkpointers and item_names:
    raise ValueError(
        '`item_names` and `checkpointers` are mutually exclusive - do not use'
        ' together.'
    )
  if checkpointers and item_handlers:
    raise ValueError(
        '`item_handlers` and `checkpointers` are mutually exclusive - do not'
        ' use together.'
    )
  if item_names and isinstance(item_handlers, _CheckpointHandler):
    raise ValueError(
        '`item_handlers` in default item mode and `item_names` should not be'
        ' provided together.'
    )
  if checkpointers is not None and handler_registry is not None:
    raise ValueError(
        'Deprecated `checkpointers` can not be used with `handler_registry`.'
    )
  if item_handlers is not None and handler_registry is not None:
    raise ValueError(
        '`item_handlers` and `handler_registry` are mutually exclusive -'
        ' prefer configuring the handler registry.'
    )
  if item_names is not None and handler_registry is not None:
    raise ValueError(
        '`item_names` and `handler_registry` are mutually exclusive - prefer'
        ' configuring the handler registry.'
    )


def configure(
    options: Any, checkpointers, item_names, item_handlers, handler_registry
) -> Legacy | None:
  """Validates v0's legacy arguments; None when none is given.

  Raises (before anything touches the disk) where v0 raises, and
  NotImplementedError for handlers the shim cannot run on v1.
  """
  if all(
      x is None for x in (checkpointers, item_names, item_handlers, handler_registry)
  ):
    return None
  _check_exclusive(checkpointers, item_names, item_handlers, handler_registry)
  primary_host = options.multiprocessing_options.primary_host
  default_item: bool | None
  accepts: dict[str, list[type]] = {}  # handler_registry: item -> args types.
  by_args: dict[type, type] = {}  # handler_registry: args type -> handler type.
  if checkpointers is not None:
    jax.monitoring.record_event(_LEGACY_INIT_EVENT)  # As v0.
    absl_logging.warning(_LEGACY_INIT)
    if primary_host != 0:
      raise ValueError(
          f'`primary_host`={primary_host} is not supported in legacy API.'
      )
    handlers, use_async, timeout = _from_checkpointers(checkpointers)
    default_item = isinstance(checkpointers, _Checkpointer)
    if options.async_options is None:  # v0 stores what it derives.
      options.async_options = v0_manager.AsyncOptions(
          **({} if timeout is None else {'timeout_secs': timeout})
      )
    arguments = {
        name: f'checkpointers[{name!r}]' if not default_item else 'checkpointers'
        for name in handlers
    }
  elif handler_registry is not None:
    if not callable(getattr(handler_registry, 'get_all_entries', None)):
      raise ValueError(
          '`handler_registry` must be an orbax.checkpoint.handlers.'
          f'CheckpointHandlerRegistry; got {type(handler_registry).__name__}.'
      )
    default_item, use_async = None, options.enable_async_checkpointing
    handlers, arguments = {}, {}
    for (name, args_type), handler in handler_registry.get_all_entries().items():
      argument = f'handler_registry[{name!r}, {args_type.__name__}]'
      if name is None:
        bound_type = v1_handler(handler, argument, (args_type,))  # Refuses what v1 cannot run.
        if type(handler) in table.BY_V0:
          by_args[args_type] = bound_type
        continue
      # An item's first handler instance runs it (v0 registers one per args
      # type; save and restore entries normally share it).
      if name in handlers:
        _check_same_handler(name, (arguments[name], handlers[name]), (argument, handler))
      handlers.setdefault(name, handler)
      arguments.setdefault(name, argument)
      accepts.setdefault(name, []).append(args_type)
  else:
    if primary_host is None and item_handlers is None:
      raise ValueError(
          'When primary_host is set to None, item_handlers must be provided to'
          ' match with the primary_host setting.'
      )
    default_item = isinstance(item_handlers, _CheckpointHandler)
    use_async = options.enable_async_checkpointing
    if default_item:
      handlers = {table.DEFAULT_ITEM: item_handlers}
      arguments = {table.DEFAULT_ITEM: 'item_handlers'}
    else:
      handlers = {name: None for name in item_names or ()}
      if isinstance(item_handlers, Mapping):
        handlers.update(item_handlers)
      elif item_handlers is not None:
        raise ValueError(
            '`item_handlers` must be a CheckpointHandler or a dict of them; got'
            f' {type(item_handlers).__name__}.'
        )
      arguments = {name: f'item_handlers[{name!r}]' for name in handlers}
  bound = {}
  for name, handler in handlers.items():
    if name in table.RESERVED_ITEMS:
      raise ValueError(
          f'Item name {name!r} in `{arguments[name].split("[")[0]}` is reserved'
          ' by Orbax v1 for a step\'s metrics; rename the item.'
      )
    if handler is not None:
      bound[name] = v1_handler(handler, arguments[name], tuple(accepts.get(name, ())))
  item_names = None
  if handler_registry is None and not default_item:
    item_names = frozenset(handlers)  # v0 refuses other item names.
  return Legacy(default_item, bound, use_async, item_names, by_args)


def _args_for_key(state: Any, key: str) -> tuple[type, type]:
  """v0's `_get_args_for_key`: the args classes of the item's handler."""
  handler_type = state.known_items.get(key)
  if bridges.is_bridge(handler_type):  # v0: the handler's registered args.
    if handler_type.v0_args is None:
      raise ValueError(
          'Unable to find registered `CheckpointArgs` for '
          f'{type(handler_type.v0_handler)}.'
      )
    return handler_type.v0_args
  found = table.args_of(handler_type)  # Configured: a subclass.
  if found is not None:
    return found
  raise ValueError(f'Unknown key "{key}" in CompositeCheckpointHandler.')


def save_args(state: Any, items: Any, save_kwargs: Any, args: Any) -> Any:
  """`args` for v0's `save(step, items, save_kwargs)` (args win, as in v0;
  `state` a ManagerState whose kind is decided)."""
  if args is not None or items is None:
    return args
  save_kwargs = save_kwargs or {}
  if state.single_item:
    items = {table.DEFAULT_ITEM: items}
    save_kwargs = {table.DEFAULT_ITEM: save_kwargs}
  built = {}
  for key, item in items.items():
    save_cls, _ = _args_for_key(state, key)
    built[key] = save_cls(item, **(save_kwargs.get(key) or {}))
  if state.single_item:
    return built[table.DEFAULT_ITEM]
  return v0_args.Composite(**built)


def restore_args(state: Any, items: Any, restore_kwargs: Any, args: Any) -> Any:
  """`args` for v0's `restore(step, items, restore_kwargs)`."""
  if args is not None or (items is None and restore_kwargs is None):
    return args  # v0's empty Composite restores every item, as args=None.
  if items is None:
    items = {}
  elif state.single_item:
    items = {table.DEFAULT_ITEM: items}
  if restore_kwargs is None:
    restore_kwargs = {}
  elif state.single_item:
    restore_kwargs = {table.DEFAULT_ITEM: restore_kwargs}
  built = {}
  for key in sorted(set(items) | set(restore_kwargs)):
    _, restore_cls = _args_for_key(state, key)
    built[key] = restore_cls(items.get(key), **(restore_kwargs.get(key) or {}))
  if state.single_item:
    return built.get(table.DEFAULT_ITEM)
  return v0_args.Composite(**built)
