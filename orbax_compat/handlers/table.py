"""The one handler table: v0's args types, v0's handlers, the shim's v1 handlers.

Each row is one of v0's own handlers: the save and restore args types that
select it (v0's args registry), its class (whose type name `_CHECKPOINT_METADATA`
records), the shim's v1 handler recorded under that name (`bridges`), and
where its constructor settings go in v1 (`settings`). Every other lookup is
derived from `HANDLERS`: by args type, by v0 handler, by v1 handler, the
families of args (`KINDS`). Item names v0 and v1 give a meaning are here too.
"""

from __future__ import annotations

from collections.abc import Mapping
import dataclasses
from typing import Any

from orbax.checkpoint import args as v0_args
from orbax.checkpoint import checkpoint_args as v0_checkpoint_args
from orbax.checkpoint import handlers as v0_handlers

from orbax_compat.compat import orbax as compat
from orbax_compat.handlers import bridges
from orbax_compat.handlers import settings as settings_lib

DEFAULT_ITEM = 'default'  # v0's one unnamed item.
METRICS_ITEM = 'metrics'  # A step's metrics (v1 reserves the name).
RESERVED_ITEMS = (METRICS_ITEM,)


@dataclasses.dataclass(frozen=True)
class HandlerRow:
  """One of v0's own handlers, and what stands for it in v1."""

  kind: str  # The args family: pytree | json | proto | array.
  save: type  # v0's save args type.
  restore: type  # v0's restore args type.
  v0: type  # v0's handler: the type name recorded on disk.
  v1: type  # The shim's v1 handler, recorded under v0's name.
  settings: Mapping[str, settings_lib.Setting]  # Constructor settings -> v1.


HANDLERS = (
    HandlerRow('pytree', v0_args.StandardSave, v0_args.StandardRestore,
               v0_handlers.StandardCheckpointHandler, bridges.StandardHandler,
               settings_lib.PYTREE_SETTINGS),
    HandlerRow('pytree', v0_args.PyTreeSave, v0_args.PyTreeRestore,
               v0_handlers.PyTreeCheckpointHandler, bridges.PyTreeHandler,
               settings_lib.PYTREE_SETTINGS),
    HandlerRow('json', v0_args.JsonSave, v0_args.JsonRestore,
               v0_handlers.JsonCheckpointHandler, bridges.JsonHandler, settings_lib.FILE_SETTINGS),
    HandlerRow('proto', v0_args.ProtoSave, v0_args.ProtoRestore,
               v0_handlers.ProtoCheckpointHandler, bridges.ProtoHandler, settings_lib.FILE_SETTINGS),
    HandlerRow('array', v0_args.ArraySave, v0_args.ArrayRestore,
               v0_handlers.ArrayCheckpointHandler, bridges.ArrayHandler, settings_lib.ARRAY_SETTINGS),
)
BY_ARGS = {t: row for row in HANDLERS for t in (row.save, row.restore)}
BY_V0 = {row.v0: row for row in HANDLERS}
BY_V1 = {row.v1: row for row in HANDLERS}
# v0's own handlers: mapped to v1's, never bridged by name.
BUILTIN_V0_HANDLERS = frozenset({*BY_V0, v0_handlers.CompositeCheckpointHandler})


@dataclasses.dataclass(frozen=True)
class ArgsKind:
  """One family of v0 args (rows of one `kind`), as it maps to v1."""

  name: str
  save: tuple[type, ...]
  restore: tuple[type, ...]
  # Fields whose non-default values v1 cannot honour, with the v1 alternative.
  unsupported: Mapping[str, str] = dataclasses.field(default_factory=dict)


_UNSUPPORTED = {
    'pytree': {
        'custom_metadata': 'v1 PyTrees carry no per-item custom metadata; pass '
                           '`custom_metadata=` to `save` (the step\'s)',
        'support_layout': 'v1 restores with the shardings of the target leaves; '
                          'give each leaf a jax.ShapeDtypeStruct with a sharding',
    },
}


def _kind(name: str) -> ArgsKind:
  rows = [row for row in HANDLERS if row.kind == name]
  return ArgsKind(name, tuple(r.save for r in rows), tuple(r.restore for r in rows),
                  _UNSUPPORTED.get(name, {}))


PYTREE, JSON, PROTO, ARRAY = (_kind(k) for k in ('pytree', 'json', 'proto', 'array'))
KINDS = (PYTREE, JSON, PROTO, ARRAY)
# Args of user-written v0 handlers: passed through to their `bridges.V0Bridge`.
BRIDGED = ArgsKind('bridged', save=(), restore=())


def v1_handler_of(args_type: type) -> type:
  """The shim's v1 handler for one of v0's own args types."""
  return BY_ARGS[args_type].v1


def args_of(handler_type: type) -> tuple[type, type] | None:
  """v0's (save, restore) args of one of the shim's v1 handlers (or of a
  configured subclass of one), else None."""
  for base in getattr(handler_type, '__mro__', ()):
    if base in BY_V1:
      return BY_V1[base].save, BY_V1[base].restore
  return None


def item_settings(handler: Any, argument: str) -> dict[str, Any]:
  """The non-default settings of one of v0's own handler instances (raises
  NotImplementedError, naming `argument`, for those v1 cannot express)."""
  return settings_lib.item_settings(handler, BY_V0[type(handler)].settings, argument)


def bridge_for_typestr(typestr: Any) -> type | None:
  """The bridge v0 would restore a recorded handler name with (v0 resolves
  names of handlers whose args are registered), or None."""
  if not isinstance(typestr, str):
    return None
  handler_cls = compat.v0_handler_type(typestr)
  if handler_cls is None or handler_cls in BUILTIN_V0_HANDLERS or bridges.registered_args(handler_cls) is None:
    return None
  return bridges.default_bridge(handler_cls)


def item_argument(name: str) -> str:
  """How an error message names the args of item `name`."""
  return f'args[{name!r}]' if name != DEFAULT_ITEM else 'args'


def shown(arg: Any) -> str:
  """`arg` in an error message (an args class given as args, whose instance
  lacks a field: the class, as v0 shows it)."""
  try:
    return repr(arg)
  except AttributeError:
    return repr(type(arg))


def _v0_handler_class(arg: Any) -> type | None:
  """The v0 handler class v0's global args registry gives `arg`'s exact type."""
  if isinstance(arg, v0_args.Composite):
    return None
  try:
    return v0_checkpoint_args.get_registered_handler_cls(arg)
  except (ValueError, TypeError):
    return None


def user_handler_class(arg: Any) -> type | None:
  """The user-written v0 handler class v0 registered `arg`'s type with."""
  if type(arg) in BY_ARGS:
    return None
  handler_cls = _v0_handler_class(arg)
  if handler_cls in BUILTIN_V0_HANDLERS:
    return None
  return handler_cls


def v1_handler_for_args(arg: Any) -> type | None:
  """The shim's handler for args of one of v0's own handlers, else None.

  v0 looks the args' exact type up in its registry: v0's own args classes,
  and classes registered (`register_with_handler`) with v0's own handlers.
  """
  if type(arg) in BY_ARGS:
    return BY_ARGS[type(arg)].v1
  row = BY_V0.get(_v0_handler_class(arg))
  return row.v1 if row else None


def kind_of(arg: Any, argument: str) -> ArgsKind:
  """The ArgsKind of one v0 args object; raises like v0 for others."""
  if arg is bridges.NULL:
    return BRIDGED  # A user-written handler's args None (`none_entry`).
  if v1_handler_for_args(arg) is not None:
    for kind in KINDS:
      if isinstance(arg, kind.save + kind.restore):
        _check_supported_fields(arg, kind, argument)
        return kind
  if type(arg) in bridges.BRIDGED_ARGS or user_handler_class(arg) is not None:
    return BRIDGED  # A user-written v0 handler's args: its bridge takes them.
  if not isinstance(arg, v0_args.CheckpointArgs):
    raise ValueError(
        f'`{argument}` must be an orbax.checkpoint.args.CheckpointArgs '
        f'(e.g. StandardSave); got {type(arg).__name__}.'
    )
  # v0's message: its registry knows exact types only (not subclasses).
  raise ValueError(
      f'Unable to find registered `CheckpointHandler` for {type(arg)}. Use '
      f'`register_with_handler` (`{argument}`; a subclass of an args class '
      'needs its own registration, as in v0).'
  )


def _default_of(field: dataclasses.Field) -> Any:
  if field.default is not dataclasses.MISSING:
    return field.default
  if field.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
    return field.default_factory()  # type: ignore[misc]
  return dataclasses.MISSING


def _check_supported_fields(arg: Any, kind: ArgsKind, argument: str) -> None:
  for field in dataclasses.fields(arg):
    alternative = kind.unsupported.get(field.name)
    if alternative is None:
      continue
    value, default = getattr(arg, field.name), _default_of(field)
    if value is not default and value != default:
      raise NotImplementedError(
          f'orbax_compat cannot honour `{argument}`.{field.name} of '
          f'{type(arg).__name__} on Orbax v1 ({alternative}); leave it at '
          f'its default ({default!r}).'
      )


def handler_for(
    arg: Any, bound: type | None = None, by_args: Mapping[type, type] | None = None
) -> type | None:
  """The v1 handler a v0 args object saves and loads with (None for None).

  `bound` is the handler the item is bound to: the item's configured handler
  (`bridges.configured`) for args of its v0 handler, or a `bridges.V0Bridge`
  taking the args type, as v0's registry entry for the item. `by_args` are a
  handler_registry's entries without an item name. Other args of
  user-written handlers get the bridge of their default-constructed handler
  (v0's global args registry).
  """
  if arg is None:
    return None
  if kind_of(arg, 'args') is not BRIDGED:
    recorded = v1_handler_for_args(arg)
    if isinstance(bound, type) and issubclass(bound, recorded):
      return bound
    if by_args and type(arg) in by_args:
      return by_args[type(arg)]
    return recorded
  if bridges.is_bridge(bound) and isinstance(arg, bound.accepts):
    return bound
  handler_cls = user_handler_class(arg)
  if handler_cls is None:
    raise ValueError(
        f'Args "{shown(arg)}" do not match any registered handler: register its '
        'type with orbax.checkpoint.args.register_with_handler, or bind the '
        'item to its handler (item_handlers, handler_registry).'
    )
  return bridges.default_bridge(handler_cls)
