"""v0 `CheckpointArgs` <-> v1 checkpointables.

A v0 manager stores one unnamed item under `default` and a `Composite` under
its item names. The shim keeps exactly that layout: each v0 args object becomes
one entry `{item name: value}` of v1's checkpointables, saved by the v1 handler
that writes the same files as the v0 handler the args name (`table`). v0 args
fields become v1 abstract leaves (restore_args) or v1 Context options for the
one save or load (save_args, partial_restore, strict), see `save_context` and
`load_context`.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
import dataclasses
import numbers
from typing import Any

from etils import epath
import jax
import numpy as np
import orbax.checkpoint as ocp_root
from orbax.checkpoint import args as v0_args
from orbax.checkpoint import checkpoint_utils as v0_checkpoint_utils
from orbax.checkpoint import metadata as v0_metadata
from orbax.checkpoint import type_handlers as v0_type_handlers

from orbax_compat.compat import orbax as compat
from orbax_compat.compat.orbax import v1
from orbax_compat.handlers import bridges
from orbax_compat.handlers import recovery
from orbax_compat.handlers import settings as settings_lib
from orbax_compat.handlers import table
from orbax_compat.handlers.table import ARRAY
from orbax_compat.handlers.table import BRIDGED
from orbax_compat.handlers.table import DEFAULT_ITEM
from orbax_compat.handlers.table import JSON
from orbax_compat.handlers.table import PROTO
from orbax_compat.handlers.table import PYTREE
from orbax_compat.handlers.table import kind_of

RestoreArgs = v0_type_handlers.RestoreArgs
ArrayRestoreArgs = v0_type_handlers.ArrayRestoreArgs
SaveArgs = v0_type_handlers.SaveArgs
PLACEHOLDER = ocp_root.PLACEHOLDER  # v0: a leaf not to restore.


def as_items(args: Any, default_item: bool) -> dict[str, Any]:
  """`{item name: v0 args}` for single-item or Composite args."""
  if default_item:
    return {DEFAULT_ITEM: args}
  return {name: _args_of_class(arg) for name, arg in args.items()}


def _args_of_class(arg: Any) -> Any:
  """A Composite entry given as an args class (`metadata=JsonRestore`), as v0
  takes it: v0 looks a class up as its instances (`get_registered_handler_cls`
  takes either) and its handler reads the class's attributes, i.e. the
  fields' defaults. So: an instance reading them, built without `__init__`;
  reading a field without a class-level default (`JsonSave.item`) raises
  v0's AttributeError where the shim reads it, after v0's handler checks.
  """
  if not (isinstance(arg, type) and issubclass(arg, v0_args.CheckpointArgs)):
    return arg
  return arg.__new__(arg)


def none_entry(handler_type: Any) -> Any:
  """The args of a None Composite entry in a save, for the item's known
  handler: v0 saves the item with args None, which v0's own handlers read as
  their save args of item None (JSON: `null`; the others refuse it as they
  refuse such args); a user-written handler gets None (`bridges.NULL`)."""
  for args_cls in (v0_args.StandardSave, v0_args.PyTreeSave, v0_args.JsonSave,
                   v0_args.ProtoSave, v0_args.ArraySave):
    if isinstance(handler_type, type) and issubclass(handler_type, table.v1_handler_of(args_cls)):
      return args_cls(None)
  return bridges.NULL


def save_checkpointables(items: Mapping[str, Any]) -> dict[str, Any]:
  """v1 checkpointables for `{item name: v0 save args}`."""
  if not items:  # v0 starts the save and fails in `wait_until_finished`.
    raise ValueError('`args` is an empty Composite: there is nothing to save.')
  checkpointables = {}
  for name, arg in items.items():
    kind = kind_of(arg, table.item_argument(name))
    if kind is BRIDGED:
      checkpointables[name] = arg  # The bridge's v0 handler takes the args.
      continue
    if kind in (PYTREE, ARRAY) and isinstance(arg, kind.restore):
      raise AttributeError(  # v0's handler reads the save-only field.
          f"'{type(arg).__name__}' object has no attribute 'save_args' "
          f'(`{table.item_argument(name)}` is a restore type; save takes '
          f'{type(arg).__name__.replace("Restore", "Save")}).'
      )
    if kind is PROTO and isinstance(arg, kind.restore):
      _ = arg.item  # v0's handler reads it first (ProtoRestore class: AttributeError).
    if not isinstance(arg, kind.save) and kind is not JSON:
      # v0's JSON handler saves the `item` of JsonRestore too.
      raise ValueError(
          f'`args` for item {name!r} must be a save type '
          f'({", ".join(c.__name__ for c in kind.save)}) in `save`; got '
          f'{type(arg).__name__}.'
      )
    if kind is PYTREE:
      _check_pytree_save(arg, table.item_argument(name))
      checkpointables[name] = _numpy_scalars_as_arrays(arg.item)
    elif kind is ARRAY:
      if not isinstance(arg.item, (np.ndarray, jax.Array, int, float, np.number)):
        raise TypeError(  # v0's check, before v1 creates the step directory.
            f'Unsupported type: {type(arg.item)} (`{table.item_argument(name)}` '
            'ArraySave takes an array or a scalar).'
        )
      checkpointables[name] = arg  # The bridge takes the args (save_args too).
    elif kind is JSON and arg.item is None:
      checkpointables[name] = bridges.NULL  # v0 writes `null`; v1 takes no None.
    else:
      if arg.item is None:  # v1 refuses None checkpointables.
        raise ValueError(
            f'`{table.item_argument(name)}` {type(arg).__name__} has item None,'
            ' which Orbax v1 cannot save; save a value (e.g. {}) instead.'
        )
      checkpointables[name] = arg.item
  return checkpointables


# Leaf types v1's own LeafHandlers save (others need a user's TypeHandler).
_V1_LEAF_TYPES = (np.ndarray, jax.Array, np.number, int, float, str, bytes)


def check_leaf_types(checkpointables: Mapping[str, Any],
                     handler_types: Mapping[str, Any]) -> None:
  """Leaves no handler saves: v0's ValueError, before v1 starts the save
  (and TypeHandlers v1 would not run: NotImplementedError).

  v1 refuses such a leaf inside its save, after starting the step's
  directory signalling, whose thread then waits 300 s (also at interpreter
  exit); v0 raises ValueError from `save`. An item configured with its own
  `type_handler_registry` saves only the types that registry handles (v0
  looks every leaf up in it; v1 would save the others with its defaults).
  Run in the save's Context (an item's handler reads it).
  """
  for name, item in checkpointables.items():
    handler_type = handler_types.get(name)
    if not (isinstance(handler_type, type)
            and issubclass(handler_type, v1.handlers.PyTreeHandler)):
      continue
    registry = settings_lib.item_type_handler_registry(handler_type)
    # Refuses a user's TypeHandler v1 would not run, before v1 starts.
    settings_lib.user_type_handlers(registry)
    handled = _handled_by(registry, handler_type)
    for path, leaf in jax.tree_util.tree_flatten_with_path(item)[0]:
      if leaf is not PLACEHOLDER and not handled(leaf):
        raise ValueError(
            f'TypeHandler lookup failed for: type={type(leaf)}, keypath='
            f'{jax.tree_util.keystr(path)} in `{table.item_argument(name)}`: '
            + ('the item\'s type_handler_registry has no TypeHandler for it; add one '
               '(type_handler_registry.add(type, handler)).' if registry is not None
               else 'no TypeHandler saves it; register one '
               '(orbax.checkpoint.type_handlers.register_type_handler).')
        )


def _handled_by(registry: Any, handler_type: type) -> Callable[[Any], bool]:
  """Whether a leaf has a TypeHandler: in the item's own `registry` (v0's
  lookup, TypeHandlerRegistry.get), else in v1 (or a user's v0 one; the
  handler is built once, for the first leaf of a type v1 does not save)."""
  handler = []

  def lookup(leaf: Any) -> None:
    if registry is not None:
      registry.get(type(leaf))
    elif not isinstance(leaf, _V1_LEAF_TYPES):
      handler[:] = handler or [handler_type()]
      handler[0].validate_leaves_handleable([leaf])

  def handled(leaf: Any) -> bool:
    try:
      lookup(leaf)
    except ValueError:  # Not found (v1's UnregisteredTypeError is one).
      return False
    return True

  return handled


def _check_pytree_save(arg: Any, argument: str) -> None:
  """v0's checks of a Standard/PyTree save, before v1 creates the step directory.

  v0 raises these from `save` too, after creating a temporary step directory
  it leaves behind; v1 accepts some of these items (str leaves, scalars).
  """
  item = arg.item
  if isinstance(arg, v0_args.StandardSave):
    if item is None:
      raise ValueError(f'Must provide item to save: `{argument}` is None.')
    if isinstance(item, jax.Array | numbers.Number):
      raise ValueError(
          f'`{argument}`: StandardSave does not support single arrays or'
          ' scalars. Use ArraySave.'
      )

    def check(path, x):
      if not isinstance(x, (np.ndarray, jax.Array)) and hasattr(x, '__array__'):
        x = np.asarray(x)
      if not isinstance(x, v0_checkpoint_utils.STANDARD_ARRAY_TYPES):
        raise ValueError(
            f'Unsupported type: {type(x)} for key: {jax.tree_util.keystr(path)}'
            f' in `{argument}` (StandardSave saves arrays and numbers; use'
            ' PyTreeSave for other leaves).'
        )

    jax.tree_util.tree_map_with_path(check, item)
  if not jax.tree.leaves(item) and not item:
    raise ValueError(f'Found empty item: `{argument}` has nothing to save.')


def check_restore_arg(arg: Any, name: str) -> None:
  """Save args given to `restore`: v0's PyTree and Array handlers fail on them.

  They read restore-only fields (`restore_args`, `fallback_sharding`), so v0
  raises AttributeError; v0's JSON and Proto handlers restore from save args.
  """
  if isinstance(arg, (*PYTREE.save, *ARRAY.save)):
    raise AttributeError(
        f'`{table.item_argument(name)}` is {type(arg).__name__}, a save type; restore takes'
        f' {type(arg).__name__.replace("Save", "Restore")}.'
    )


def _numpy_scalars_as_arrays(tree: Any) -> Any:
  """v1 has no handler for numpy scalars; v0 restores them as 0-d arrays."""
  return jax.tree.map(
      lambda x: np.asarray(x) if isinstance(x, np.generic) else x, tree
  )


def _is_save_args_leaf(x: Any) -> bool:
  return x is None or isinstance(x, SaveArgs)


def _storage_options(save_args: SaveArgs) -> Any:
  storage = v1.options.ArrayOptions.Saving.StorageOptions
  if save_args.aggregate:
    raise NotImplementedError(
        'orbax_compat cannot honour `SaveArgs.aggregate=True` on Orbax v1 '
        '(v1 writes every leaf as an array; v0 deprecated aggregation).'
    )
  return storage(
      dtype=save_args.dtype,
      chunk_byte_size=save_args.chunk_byte_size,
      shard_axes=tuple(save_args.shard_axes) or None,
  )


def _flat_save_args(name: str, tree: Any, save_args: Any) -> dict[Any, SaveArgs]:
  """`{(key path, id(leaf)): SaveArgs}` of one item (v0: same structure)."""
  leaves, treedef = jax.tree_util.tree_flatten_with_path(tree)
  flat_args, args_def = jax.tree_util.tree_flatten(
      save_args, is_leaf=_is_save_args_leaf
  )
  if len(flat_args) != len(leaves):
    raise ValueError(
        f'`save_args` of item {name!r} must have the structure of its item: '
        f'{args_def} vs {treedef}.'
    )
  return {
      (path, id(leaf)): sa
      for (path, leaf), sa in zip(leaves, flat_args, strict=True)
      if sa is not None and sa != SaveArgs()
  }


def save_context(
    base: Any, items: Mapping[str, Any], checkpointables: Mapping[str, Any]
) -> Any:
  """The v1 Context for one save: `base`, plus what the args' fields ask.

  `save_args` become `ArrayOptions.Saving.scoped_storage_options_creator`
  (per leaf: v1 calls it with the leaf's key path and value); PyTreeSave's
  `ocdbt_target_data_file_size` becomes the array saving option.
  """
  by_leaf: dict[Any, SaveArgs] = {}
  target_sizes = {}
  # v0 saves with a sync handler block until written: such saves need their
  # directories before the handler runs (see `bridges.V0Bridge`).
  bridged = any(kind_of(a, 'args') is BRIDGED for a in items.values())
  for name, arg in items.items():
    if isinstance(arg, (v0_args.StandardSave, v0_args.PyTreeSave)):
      if arg.save_args is not None:
        for key, sa in _flat_save_args(name, checkpointables[name], arg.save_args).items():
          if by_leaf.setdefault(key, sa) != sa:
            raise NotImplementedError(
                f'orbax_compat cannot honour different `save_args` for the same '
                f'leaf object at {jax.tree_util.keystr(key[0])} in two items '
                f'(v1 has one storage option per save); pass copies.'
            )
      size = getattr(arg, 'ocdbt_target_data_file_size', None)
      if size is not None:
        target_sizes[name] = size
  if not by_leaf and not target_sizes and not bridged:
    return base
  if len(set(target_sizes.values())) > 1:
    raise NotImplementedError(
        'orbax_compat cannot honour different `ocdbt_target_data_file_size`s '
        f'in one save ({target_sizes}): v1 has one per save.'
    )
  context = v1.Context(base)
  if bridged:
    context.async_options.create_directories_asynchronously = False
  saving = context.array_options.saving
  if target_sizes:
    saving.ocdbt_target_data_file_size = next(iter(target_sizes.values()))
  if by_leaf:
    storage = {key: _storage_options(sa) for key, sa in by_leaf.items()}
    saving.scoped_storage_options_creator = (
        lambda path, value: storage.get((tuple(path), id(value)))
    )
  return context


@dataclasses.dataclass(frozen=True)
class NumpyAbstract:
  """An abstract leaf that v1 restores as `np.ndarray` (shape and dtype)."""

  shape: tuple[int, ...]
  dtype: Any


def _needs_metadata(leaf: Any) -> bool:
  return isinstance(leaf, jax.ShapeDtypeStruct) and leaf.sharding is None


def _path_key(path: Any) -> tuple[str, ...]:
  """A key path as strings, so lists and dicts of metadata line up."""
  out = []
  for k in path:
    for attr in ('key', 'idx', 'name'):
      if hasattr(k, attr):
        out.append(str(getattr(k, attr)))
        break
    else:
      out.append(str(k))
  return tuple(out)


def _flat_metadata(tree_metadata: Callable[[], Any]) -> dict[tuple[str, ...], Any]:
  return {
      _path_key(p): leaf
      for p, leaf in jax.tree_util.tree_flatten_with_path(tree_metadata())[0]
  }


def _jax_sharding(meta: Any, fallback: Any = None) -> Any:
  sharding = getattr(meta, 'sharding', None)
  if sharding is None or isinstance(sharding, jax.sharding.Sharding):
    return sharding
  try:
    return sharding.to_jax_sharding()
  except ValueError as e:  # v0's message and fallback.
    if fallback is not None:
      return fallback
    raise ValueError(
        'Topology mismatch detected. The checkpoint was saved with a different'
        ' topology than the current one. Please provide a target tree with the'
        ' desired topology to restore.'
    ) from e


def abstract_tree(
    target: Any, tree_metadata: Callable[[], Any] | None,
    fallback_sharding: Any = None,
) -> Any:
  """v0 restore target -> v1 abstract tree with v0's restored types.

  v0 restores a `jax.ShapeDtypeStruct` without sharding with the sharding
  recorded in the checkpoint (or `fallback_sharding` where that one does not
  fit this topology), or as `np.ndarray` where none was recorded; v1 would
  insist on a sharding. Concrete leaves map to themselves.
  """
  if target is None:
    return None
  for path, leaf in jax.tree_util.tree_flatten_with_path(target)[0]:
    if isinstance(leaf, np.generic):  # v0 refuses these targets too.
      raise ValueError(
          f'Restore target leaf {jax.tree_util.keystr(path)} is a numpy scalar '
          f'({type(leaf).__name__}); pass np.asarray(leaf) or a '
          'jax.ShapeDtypeStruct instead.'
      )
  leaves = jax.tree_util.tree_leaves(target)
  if not any(_needs_metadata(leaf) for leaf in leaves) or tree_metadata is None:
    return target
  flat_metadata = _flat_metadata(tree_metadata)

  def convert(path, leaf):
    if not _needs_metadata(leaf):
      return leaf
    sharding = _jax_sharding(flat_metadata.get(_path_key(path)), fallback_sharding)
    if sharding is None:
      return NumpyAbstract(tuple(leaf.shape), np.dtype(leaf.dtype))
    return jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=sharding)

  return jax.tree_util.tree_map_with_path(convert, target)


def _is_restore_args_leaf(x: Any) -> bool:
  return x is None or isinstance(x, RestoreArgs)


def _restore_type(ra: RestoreArgs | None, meta: Any) -> Any:
  """v0's restored type of one leaf: the args', else the recorded one."""
  if ra is not None and ra.restore_type is not None:
    return ra.restore_type
  if isinstance(meta, v0_metadata.ScalarMetadata) or not isinstance(
      meta, v0_metadata.ArrayMetadata
  ):
    return 'scalar'  # Scalars and strings: v1 restores them by their metadata.
  return jax.Array if getattr(meta, 'sharding', None) is not None else np.ndarray


def _leaf_abstract(path: Any, ra: RestoreArgs | None, meta: Any) -> Any:
  """One v0 RestoreArgs -> the v1 abstract leaf restoring what v0 restores."""
  where = jax.tree_util.keystr(path)
  if meta is None:
    raise ValueError(
        f'restore_args leaf {where} is not in the checkpoint; pass '
        'partial_restore=True with an `item` to restore a subtree.'
    )
  restore_type = _restore_type(ra, meta)
  dtype = ra.dtype if ra is not None and ra.dtype is not None else getattr(
      meta, 'dtype', None
  )
  if restore_type == 'scalar':  # The saved type (v1 skips None leaves).
    if isinstance(meta, v0_metadata.ScalarMetadata):
      return type(np.zeros((), meta.dtype).item())
    return str
  if isinstance(restore_type, type) and issubclass(restore_type, (int, float)):
    return restore_type  # Cast after loading if `dtype` says so (as v0).
  if restore_type is np.ndarray:
    return NumpyAbstract(tuple(meta.shape), np.dtype(dtype))
  if isinstance(restore_type, type) and issubclass(restore_type, jax.Array):
    sharding = None
    shape = tuple(meta.shape)
    if isinstance(ra, ArrayRestoreArgs):
      if ra.sharding is not None:
        sharding = ra.sharding
        if not isinstance(sharding, jax.sharding.Sharding):
          sharding = sharding.to_jax_sharding()
      elif ra.mesh is not None and ra.mesh_axes is not None:
        sharding = jax.sharding.NamedSharding(ra.mesh, ra.mesh_axes)
      shape = tuple(ra.global_shape or ra.shape or shape)
    sharding = sharding or _jax_sharding(meta)
    if sharding is None:  # v0 fails reading the leaf's missing `_sharding`.
      raise ValueError(
          f'restore_args leaf {where} restores a jax.Array, but neither its '
          'ArrayRestoreArgs nor the checkpoint give it a sharding; pass '
          'ArrayRestoreArgs(sharding=...) or RestoreArgs(restore_type=np.ndarray).'
      )
    return jax.ShapeDtypeStruct(shape, dtype, sharding=sharding)
  raise NotImplementedError(
      f'orbax_compat cannot restore restore_args leaf {where} as '
      f'{restore_type!r} on Orbax v1 (v1 restores jax.Array, np.ndarray, int, '
      'float and str leaves).'
  )


def _is_placeholder(leaf: Any) -> bool:
  return leaf is PLACEHOLDER


class NotInCheckpoint(int):
  """The abstract leaf of a target leaf the checkpoint lacks.

  An int type, so v1 takes it as an abstract leaf: without partial_restore
  v1 raises v0's structure error, with it v1 omits the leaf and hands this
  class back in its place; `finish_restore` then puts the target's own leaf
  there, as v0's PyTree handler returns it.
  """


def _by_path(tree: Any, is_leaf: Callable[[Any], bool]) -> dict[tuple[str, ...], Any]:
  return {
      _path_key(p): leaf
      for p, leaf in jax.tree_util.tree_flatten_with_path(tree, is_leaf=is_leaf)[0]
  }


def _restore_args_abstract(
    arg: Any, tree_metadata: Callable[[], Any], handler_type: Any = None,
    recorded_types: Callable[[], Any] | None = None,
) -> Any:
  """PyTreeRestore(item, restore_args, partial_restore) -> v1 abstract tree.

  As v0's PyTree handler: `item` gives the structure only (each leaf's type
  comes from its RestoreArgs, else from the checkpoint), `restore_args`
  are matched to `item`'s leaves (trimmed to them with partial_restore), and
  PLACEHOLDER leaves are not restored. The abstract tree keeps `item`'s
  structure, so v1 (running v0's own restore code) checks it against the
  checkpoint, omits what partial_restore omits and raises v0's errors with
  v0's text. `recorded_types()`: the item's tree of v0 ValueMetadataEntries
  (each leaf's recorded typestr), read only where a user's TypeHandler may
  restore a leaf by it.
  """
  flat_metadata = _flat_metadata(tree_metadata)
  recorded: list[Any] = []  # (user typestrs, {key: recorded entry}), once.

  def by_user_typestr(key: tuple[str, ...]) -> bool:
    """Whether v0 restores the leaf with a user's TypeHandler, found by the
    typestr the checkpoint records (no restore_type, no `item` leaf)."""
    if recorded_types is None:
      return False
    if not recorded:
      typestrs = settings_lib.user_typestrs(handler_type)
      recorded[:] = [typestrs, _by_path(recorded_types(), lambda x: False) if typestrs else {}]
    typestrs, entries = recorded
    return getattr(entries.get(key), 'value_type', None) in typestrs

  if arg.item is None:
    structure, restore_args = arg.restore_args, arg.restore_args
  else:
    structure, restore_args = arg.item, arg.restore_args
  paths, treedef = jax.tree_util.tree_flatten_with_path(
      structure, is_leaf=_is_restore_args_leaf
  )
  keys = [_path_key(p) for p, _ in paths]
  if restore_args is None:
    args_leaves = [None] * len(paths)
  else:
    args_leaves, args_def = jax.tree_util.tree_flatten(
        restore_args, is_leaf=_is_restore_args_leaf
    )
    if args_def != treedef:
      args_by_key = _by_path(restore_args, _is_restore_args_leaf)
      matches = not arg.partial_restore and (
          not any(_is_placeholder(leaf) for _, leaf in paths)
      ) and sorted(keys) == sorted(flat_metadata)
      if matches or (arg.partial_restore and any(k not in args_by_key for k in keys)):
        # `item` fits the checkpoint, `restore_args` does not fit `item`:
        # v0 fails pairing them (after its own structure checks).
        raise ValueError(
            f'`restore_args` must have the structure of `item`: {args_def} vs '
            f'{treedef}.'
        )
      # Paired by key path; v1 raises v0's structure error where `item` does
      # not fit the checkpoint (or trims it, with partial_restore).
      args_leaves = [args_by_key.get(k) for k in keys]
  if not arg.partial_restore and arg.item is None and sorted(keys) != sorted(flat_metadata):
    raise ValueError(
        'User-provided restore item and on-disk value metadata tree structures'
        f' do not match: {sorted(keys)} vs {sorted(flat_metadata)}; pass '
        'partial_restore=True to restore a subtree.'
    )

  def abstract_leaf(path, leaf, ra, key):
    if _is_placeholder(leaf) and not arg.partial_restore:
      return leaf  # Not restored (v0 returns the placeholder).
    meta = flat_metadata.get(key)
    if meta is None and arg.item is not None:
      return NotInCheckpoint  # v1 raises v0's error, or omits it.
    ra = ra if isinstance(ra, RestoreArgs) else None
    # The user's TypeHandler restores it (by the recorded type, as v0 for
    # `item`'s leaf type), and gets the leaf's own RestoreArgs, as in v0.
    if ra is not None and ra.restore_type is not None:
      if settings_lib.has_user_type_handler(ra.restore_type, handler_type):
        return compat.RecordedType(ra)
    elif arg.item is not None and settings_lib.has_user_type_handler(type(leaf), handler_type):
      return compat.RecordedType(ra)
    elif arg.item is None and by_user_typestr(key):
      return compat.RecordedType(ra)
    return _leaf_abstract(path, ra, meta)

  leaves = [
      abstract_leaf(p, leaf, ra, k)
      for (p, leaf), ra, k in zip(paths, args_leaves, keys, strict=True)
  ]
  return jax.tree_util.tree_unflatten(treedef, leaves)


def restore_abstract(
    items: Mapping[str, Any], step_dir: epath.Path,
    handler_types: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
  """v1 abstract checkpointables for `{item name: v0 restore args or None}` of
  the step in `step_dir` (`handler_types`: each item's v1 handler type, for
  its own settings). An item's tree metadata is read only where needed."""
  abstract = {}
  for name, arg in items.items():
    if arg is None:
      abstract[name] = None
      continue
    kind = kind_of(arg, table.item_argument(name))
    handler_type = (handler_types or {}).get(name)

    def metadata(name=name, handler_type=handler_type):
      return recovery.restore_metadata(step_dir / name, handler_type)

    if kind is BRIDGED:
      abstract[name] = arg  # The bridge's v0 handler restores with the args.
    elif kind is JSON:  # JSON loads need no target.
      abstract[name] = None
    elif kind is ARRAY:
      abstract[name] = arg if isinstance(arg, v0_args.ArrayRestore) else None
    elif kind is PROTO:
      abstract[name] = _proto_class(arg, name)
    elif getattr(arg, 'restore_args', None) is not None or (
        isinstance(arg, v0_args.PyTreeRestore) and arg.item is not None
    ):
      # v0's PyTree handler types leaves by RestoreArgs or the checkpoint;
      # `item` gives only the structure (StandardRestore: see abstract_tree).
      abstract[name] = _restore_args_abstract(
          arg, metadata, handler_type,
          lambda name=name: compat.pytree_structure(step_dir / name)[0])
    else:
      abstract[name] = abstract_tree(
          arg.item, metadata, getattr(arg, 'fallback_sharding', None)
      )
  return abstract


def _proto_class(arg: Any, name: str) -> Any:
  item = arg.item  # An args class without `item` given: v0's AttributeError.
  if not isinstance(item, type):  # v0 calls `item()` to build the message.
    raise TypeError(
        f'`{table.item_argument(name)}` ProtoRestore needs the message class to '
        f'restore into (e.g. ProtoRestore(MyMessage)); got {item!r}.'
    )
  return item


def _load_options(arg: Any) -> dict[str, bool]:
  """The v1 loading options one item's restore args ask for."""
  options = {}
  if arg is not None and kind_of(arg, 'args') is BRIDGED:
    return options  # The v0 handler reads its own args.
  if getattr(arg, 'partial_restore', False):
    options['pytree.loading.partial_load'] = True
  lenient = getattr(arg, 'strict', True) is False
  for ra in jax.tree_util.tree_leaves(
      getattr(arg, 'restore_args', None), is_leaf=_is_restore_args_leaf
  ):
    if isinstance(ra, ArrayRestoreArgs) and not ra.strict:
      lenient = True
  if lenient:
    options['array.loading.enable_padding_and_truncation'] = True
  return options


def load_context(base: Any, items: Mapping[str, Any]) -> Any:
  """The v1 Context for one load: `base`, plus what the args' fields ask.

  `partial_restore=True` -> `pytree.loading.partial_load`; `strict=False`
  (StandardRestore, ArrayRestoreArgs) -> `array.loading.
  enable_padding_and_truncation`. v1 sets these per load, v0 per item or
  leaf: items of one restore must agree.
  """
  wanted: dict[str, dict[str, bool]] = {
      name: _load_options(arg) for name, arg in items.items()
  }
  options = {k for opts in wanted.values() for k in opts}
  if not options:
    return base
  for option in options:
    differing = sorted(n for n, o in wanted.items() if option not in o)
    if differing and any(
        items[n] is not None and kind_of(items[n], table.item_argument(n)) is PYTREE
        for n in differing
    ):
      raise NotImplementedError(
          f'orbax_compat cannot restore these items in one call: v1 sets '
          f'`{option}` per load, and items {differing} do not ask for it; '
          'restore them in separate calls.'
      )
  context = v1.Context(base)
  if 'pytree.loading.partial_load' in options:
    context.pytree_options.loading.partial_load = True
  if 'array.loading.enable_padding_and_truncation' in options:
    context.array_options.loading.enable_padding_and_truncation = True
  return context


def _cast_scalar(value: Any, ra: Any) -> Any:
  """v0 casts scalars to RestoreArgs.dtype (as `np.asarray(x).astype(d).item()`)."""
  if isinstance(ra, RestoreArgs) and ra.dtype is not None and isinstance(
      value, (int, float)
  ):
    return np.asarray(value).astype(ra.dtype).item()
  return value


def _with_target_leaves(restored: Any, target: Any) -> Any:
  """`restored` with the target's own leaf wherever v1 omitted one the
  checkpoint lacks (partial_restore; v0 returns the target's leaf there)."""
  if not any(leaf is NotInCheckpoint for leaf in jax.tree_util.tree_leaves(restored)):
    return restored
  targets = _by_path(target, _is_restore_args_leaf)
  return jax.tree_util.tree_map_with_path(
      lambda p, leaf: targets[_path_key(p)] if leaf is NotInCheckpoint else leaf,
      restored,
  )


def finish_restore(items: Mapping[str, Any], restored: dict[str, Any]) -> dict[str, Any]:
  """What v1 loaded, as v0 returns it (target leaves the checkpoint lacks,
  scalar casts of restore_args)."""
  for name, arg in items.items():
    if name in restored and isinstance(arg, v0_args.PyTreeRestore) and arg.item is not None:
      restored[name] = _with_target_leaves(restored[name], arg.item)
    restore_args = getattr(arg, 'restore_args', None)
    if name not in restored or restore_args is None:
      continue
    if isinstance(arg, v0_args.ArrayRestore) or kind_of(arg, 'args') is BRIDGED:
      continue  # v0's own handler restored it.
    flat_args, args_def = jax.tree_util.tree_flatten(
        restore_args, is_leaf=_is_restore_args_leaf
    )
    if not any(isinstance(ra, RestoreArgs) and ra.dtype is not None for ra in flat_args):
      continue
    try:
      values = args_def.flatten_up_to(restored[name])
    except (ValueError, TypeError):  # `item` gave another structure: no casts.
      continue
    restored[name] = jax.tree_util.tree_unflatten(
        args_def, [_cast_scalar(v, ra) for v, ra in zip(values, flat_args, strict=True)]
    )
  return restored
