"""v0 handler settings -> their v1 form, per item.

A v0 handler instance carries constructor settings (`PyTreeCheckpointHandler(
use_zarr3=True)`, `JsonCheckpointHandler(filename='index')`); two items may
carry different ones. v1 constructs a handler type per item, inside the
Context active at save or load, so the shim binds each item to a subclass of
its recorded handler holding that item's settings (`bridges.configured`),
which builds its v1 handler from the active Context plus those settings
(`item_context`). The tables below say where each setting goes in v1; the
jax.Array TypeHandler registered for an item (globally, or in its handler's
`type_handler_registry`) is read the same way, and a user's own TypeHandlers
run inside v1's PyTree handler (`user_type_handlers`).
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
import dataclasses
from typing import Any

import jax
from orbax.checkpoint import handlers as v0_handlers
from orbax.checkpoint import type_handlers

from orbax_compat.compat import orbax as compat
from orbax_compat.compat.orbax import v1


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


# v0 PyTree/Standard handler setting (as `compat.v0_handler_settings` names it)
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
  if type(a) is type(compat.global_type_handler_registry()):
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
    _REFERENCE_ARRAY_HANDLER = compat.array_type_handler_settings(
        type_handlers.ArrayHandler(array_metadata_store=compat.array_metadata_store())
    )
  return _REFERENCE_ARRAY_HANDLER


def _refuse(what: str, setting: Setting) -> None:
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
  changed = _differences(compat.array_type_handler_settings(handler), _reference_array_handler())
  options = {}
  for name, value in changed.items():
    setting = ARRAY_TYPE_HANDLER_SETTINGS[name]
    if setting.refused:
      _refuse('the jax.Array ArrayHandler', setting)
    if name in ('primary_host', 'replica_id'):
      continue  # Checked below, against the item's primary host.
    options[setting.v1] = value
  if 'primary_host' in changed or 'replica_id' in changed:
    settings = compat.array_type_handler_settings(handler)
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
  (`compat.add_v0_type_handlers`). One registered for a type v1 serializes itself
  (int, float, bytes, numpy, jax.Array, str) is refused: v1 would not use it.
  """

  standard = compat.v0_standard_type_handler_classes()
  custom = []
  for predicate, handler in compat.v0_type_handler_entries(registry):
    if type(handler) in standard:
      continue
    shadowed = [t for t in type_handlers.supported_types() if compat.matches(predicate, t)]
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
      compat.matches(p, ty) for p, _ in user_type_handlers(registry))


def user_typestrs(handler_type: Any = None) -> set[str]:
  """The typestrs of the user's TypeHandlers an item restores with (its
  handler's `type_handler_registry`, else v0's global one)."""
  registry = item_type_handler_registry(handler_type)
  return {h.typestr() for _, h in user_type_handlers(registry)}


def item_settings(handler: Any, table: Mapping[str, Setting], argument: str) -> dict[str, Any]:
  """The non-default settings of one of v0's own handler instances (`table`:
  its settings, `table.HANDLERS`).

  Raises NotImplementedError (naming `argument` and the setting) for settings
  v1 cannot express.
  """
  settings = compat.v0_handler_settings(handler)
  if settings is None:
    return {}
  changed = _differences(settings, compat.v0_handler_settings(type(handler)()))
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
  defaults = compat.v0_handler_settings(v0_handlers.PyTreeCheckpointHandler())
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
