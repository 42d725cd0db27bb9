"""Reading older or damaged v0 steps: what the step directory still holds.

v1 reads v0 steps through the handler names in `_CHECKPOINT_METADATA` and the
pytree `_METADATA` file. Steps written by older Orbax releases, or that lost
such files, still hold their data; v0 reads some of them, and the shim reads
them all where the data itself is intact:

- items not recorded in `_CHECKPOINT_METADATA` are recognized by their files;
- a pytree without `_METADATA` is read by v0's own handler (with a target),
  or, without one, in the structure its array names spell;
- a pytree without `_sharding` is restored onto the local device.

Where array data is missing, restore fails with the item and what is missing.
"""

from __future__ import annotations

from typing import Any

from etils import epath
import jax
import numpy as np
from orbax.checkpoint import args as v0_args
from orbax.checkpoint import handlers as v0_handlers
from orbax.checkpoint import metadata as v0_metadata
from orbax.checkpoint import type_handlers as v0_type_handlers

from orbax_compat.compat.orbax import v1
from orbax_compat.handlers import bridges
from orbax_compat.handlers import settings as settings_lib
from orbax_compat.handlers import table

PYTREE_METADATA = '_METADATA'


def _is_pytree_dir(item_dir: epath.Path) -> bool:
  return any(
      (item_dir / name).exists()
      for name in (PYTREE_METADATA, 'manifest.ocdbt', 'ocdbt.process_0', '_sharding')
  )


def pytree_metadata(item_dir: epath.Path, type_handler_registry: Any = None) -> Any:
  """A pytree item's v0 TreeMetadata (v0's types, which v1 does not return),
  read through the item's TypeHandlers (None: v0's global registry)."""
  if type_handler_registry is None:
    return v0_handlers.PyTreeCheckpointHandler().metadata(item_dir)
  return v0_handlers.PyTreeCheckpointHandler(
      type_handler_registry=type_handler_registry).metadata(item_dir)


class _WithGlobalFallback:
  """A v0 TypeHandlerRegistry: an item's own, then v0's global one."""

  def __init__(self, registry: Any):
    self._registry = registry

  def get(self, ty: Any) -> Any:
    try:
      return self._registry.get(ty)
    except ValueError:
      return v0_type_handlers.get_type_handler(ty)

  def has(self, ty: Any) -> bool:
    return self._registry.has(ty) or v0_type_handlers.has_type_handler(ty)

  def add(self, *args: Any, **kwargs: Any) -> None:
    self._registry.add(*args, **kwargs)


def restore_metadata(item_dir: epath.Path, handler_type: Any) -> Any:
  """The tree metadata a restore reads for its leaves' shapes and dtypes:
  through the item's own registry, and v0's global one for the types it lacks
  (which `check_restorable_types` refused where v0 restores them)."""
  registry = settings_lib.item_type_handler_registry(handler_type)
  return pytree_metadata(
      item_dir, None if registry is None else _WithGlobalFallback(registry)).tree


def check_restorable_types(item_dir: epath.Path, arg: Any, handler_type: Any) -> None:
  """An item whose handler has its own `type_handler_registry` restores only
  types that registry has a TypeHandler for, as in v0: each `restore_type` of
  `restore_args`, else every type the checkpoint records (v0 looks each up
  and raises ValueError; v1 would restore the others with its own).

  Not checked (README, known differences): the recorded types of leaves
  whose RestoreArgs leave `restore_type` None.
  """
  registry = settings_lib.item_type_handler_registry(handler_type)
  if registry is None or not (item_dir / PYTREE_METADATA).exists():
    return
  restore_args = getattr(arg, 'restore_args', None)
  try:
    if restore_args is None:
      pytree_metadata(item_dir, registry)  # Looks up every recorded typestr.
      return
    for ra in jax.tree.leaves(restore_args):
      if getattr(ra, 'restore_type', None) is not None:
        registry.get(ra.restore_type)
  except ValueError as e:
    raise ValueError(
        f'TypeHandler lookup failed restoring item {item_dir.name!r}: the '
        'item\'s type_handler_registry has no TypeHandler for a type it '
        f'restores; add one (type_handler_registry.add(type, handler)). {e}'
    ) from e


def recorded_items(step_dir: epath.Path) -> dict[str, str] | None:
  """Item name -> recorded handler type name, or None without that record."""
  try:
    return v0_metadata.get_step_metadata(step_dir).item_handlers or None
  except (ValueError, FileNotFoundError):
    return None


def _known_to_v1(typestr: str) -> bool:
  registry = v1.handlers.global_registry()
  return any(
      typestr == f'{h.__module__}.{h.__qualname__}'
      or typestr in registry.get_secondary_typestrs(h)
      for h, _ in registry.get_all_entries()
  )


def unrecorded_items(step_dir: epath.Path) -> dict[str, type]:
  """Items whose handler `_CHECKPOINT_METADATA` does not name (or names a
  type neither v0 nor v1 knows), recognized by their files."""
  recorded = {
      name: typestr
      for name, typestr in (recorded_items(step_dir) or {}).items()
      if _known_to_v1(typestr)
  }
  found = {}
  for item_dir in sorted(p for p in step_dir.iterdir() if p.is_dir()):
    name = item_dir.name
    if name in recorded or name.startswith(('.', '_')) or '.orbax-checkpoint-tmp' in name:
      continue
    if name == table.METRICS_ITEM and (item_dir / table.METRICS_ITEM).exists():
      continue  # Metrics are read on their own.
    if _is_pytree_dir(item_dir):
      found[name] = bridges.StandardHandler
    elif (item_dir / 'metadata').exists():
      found[name] = bridges.JsonHandler
  return found


def _kvstore_url(item_dir: epath.Path) -> str:
  """TensorStore's URL of a directory: `gs://bucket/path/` as it is (the
  `gcs` driver), a local path as `file://`."""
  text = str(item_dir).rstrip('/') + '/'
  return text if '://' in text else f'file://{text}'


def _array_names(item_dir: epath.Path) -> list[str]:
  """The param names of a pytree item's arrays (OCDBT keys or zarr dirs)."""
  if (item_dir / 'manifest.ocdbt').exists():
    import tensorstore as ts  # pylint: disable=g-import-not-at-top

    store = ts.KvStore.open({'driver': 'ocdbt', 'base': _kvstore_url(item_dir)}).result()
    keys = [k.decode() for k in store.list().result()]
  else:
    keys = [f'{p.name}/.zarray' for p in item_dir.iterdir() if (p / '.zarray').exists()]
  return sorted({k.rsplit('/', 1)[0] for k in keys if k.endswith(('/.zarray', '/zarr.json'))})


def _tree_from_names(names: list[str], leaf: Any) -> dict[str, Any]:
  tree: dict[str, Any] = {}
  for name in names:
    node = tree
    *parents, last = name.split('.')
    for part in parents:
      node = node.setdefault(part, {})
    node[last] = leaf
  return tree


def _without_pytree_metadata(item_dir: epath.Path, target: Any) -> Any:
  """A pytree whose `_METADATA` is gone: v0's handler, or its array names."""
  if target is not None:
    return v0_handlers.StandardCheckpointHandler().restore(
        item_dir, args=v0_args.StandardRestore(target)
    )
  names = _array_names(item_dir)
  if not names:
    raise FileNotFoundError(
        f'No structure could be identified for the checkpoint at {item_dir}: '
        f'{PYTREE_METADATA} is missing and no arrays were found.'
    )
  structure = _tree_from_names(names, 0)
  restore_args = jax.tree.map(
      lambda _: v0_type_handlers.RestoreArgs(restore_type=np.ndarray), structure
  )
  return v0_handlers.PyTreeCheckpointHandler().restore(
      item_dir, args=v0_args.PyTreeRestore(item=structure, restore_args=restore_args)
  )


def _onto_local_device(tree_metadata: Any) -> Any:
  sharding = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  return jax.tree.map(
      lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=sharding)
      if hasattr(m, 'shape') and hasattr(m, 'dtype') else None,
      tree_metadata,
  )


def load_item(
    item_dir: epath.Path, target: Any, error: BaseException, load: Any
) -> Any:
  """Recovers one item v1 failed to load with `error`, or explains why not.

  `load(abstract)` loads the item through v1 with another abstract tree.
  """
  message = str(error)
  if isinstance(error, FileNotFoundError) and PYTREE_METADATA in message:
    return _without_pytree_metadata(item_dir, target)
  if target is None and 'Sharding of jax.Array cannot be None' in message:
    metadata = pytree_metadata(item_dir).tree
    return load(_onto_local_device(metadata))
  if 'NOT_FOUND' in message or isinstance(error, FileNotFoundError):
    raise type(error)(
        f'Cannot restore item {item_dir.name!r} of {item_dir.parent}: its array '
        f'data is missing or unreadable. {message}'
    ) from error
  raise error
