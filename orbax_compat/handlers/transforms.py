"""v0's restore-time `transforms` and `legacy_transform_fn`, on v1.

v1 loads a pytree as it was saved. v0's PyTreeCheckpointHandler could also
reshape it while restoring: `PyTreeRestore(item, restore_args, transforms=...,
transforms_default_to_original=..., legacy_transform_fn=...)`, or the same
keys in a legacy `restore_kwargs`. The shim takes v0's own steps
(`pytree_checkpoint_handler._get_restore_parameters`, `restore` and
`_transform_checkpoint` of orbax-checkpoint 0.12.8), with v1 reading the data:

1. `plan`: which leaves of the checkpoint v0 reads, each with the RestoreArgs
   v0 reads it with (those of the output leaf it feeds, or a
   `RestoreTransform`'s `multi_value_fn_input_args`). They become one v1 load,
   a StandardRestore over the checkpoint's own structure with `PLACEHOLDER`
   where v0 reads nothing, which stands in for the item's args (`loads`).
2. `finish`: the tree v0 would have read (unread leaves hold v0's
   `ValueMetadataEntry`, as in v0) goes through v0's public
   `transform_utils.apply_transformations` with `item` as the new tree; a
   `legacy_transform_fn`'s tree is filled in as v0 fills it.

v0's errors for bad input (a transform naming a key the checkpoint lacks, a
`multi_value_fn` without `RestoreTransform` or input args, `transforms`
without `item` or `restore_args`, both `transforms` and
`legacy_transform_fn`) are raised with v0's types and messages, before v1
reads anything.
"""

from __future__ import annotations

from collections.abc import Mapping
import dataclasses
import re
from typing import Any

from etils import epath
import jax
import numpy as np
from orbax.checkpoint import args as v0_args
from orbax.checkpoint import transform_utils
from orbax.checkpoint import tree as v0_tree
from orbax.checkpoint import type_handlers as v0_type_handlers
from orbax.checkpoint.metadata.tree import ValueMetadataEntry

from orbax_compat.compat import orbax as compat
from orbax_compat.handlers import checkpointables as items_lib
from orbax_compat.handlers import recovery

RestoreArgs = v0_type_handlers.RestoreArgs
ArrayRestoreArgs = v0_type_handlers.ArrayRestoreArgs
RestoreTransform = transform_utils.RestoreTransform
PLACEHOLDER = ...  # v1 reads nothing for this leaf.
# v0's value types of empty nodes, which v0 never reads.
_EMPTY_TYPES = frozenset({'List', 'NamedTuple', 'Tuple', 'Dict', 'None'})

_ITEM_NEEDED = (
    'If providing `transforms`, must provide `item` matching structure of'
    ' expected result.'
)
_RESTORE_ARGS_NEEDED = (
    'If providing `transforms`, must provide `restore_args` matching'
    ' structure of expected result.'
)


def requested(arg: Any) -> bool:
  """Whether v0 restores this item through its transformation path."""
  return isinstance(arg, v0_args.PyTreeRestore) and (
      arg.transforms is not None or arg.legacy_transform_fn is not None
  )


@dataclasses.dataclass
class Plan:
  """One item's transformed restore: v1's load, and how v0 fills its tree."""

  arg: Any  # The user's PyTreeRestore.
  structure: Any  # The tree v0 reads into (the checkpoint's, or the legacy fn's).
  values: dict[tuple[str, ...], Any]  # Its leaves that are not read.
  reads: dict[tuple[str, ...], tuple[tuple[str, ...], Any]]  # key -> (checkpoint key, RestoreArgs)
  load: Any  # v1's load of the checkpoint leaves read, as v0 args.


def plan(items: Mapping[str, Any], step_dir: epath.Path) -> dict[str, Plan]:
  """The plans of the items of one restore that ask for transformations."""
  return {
      name: _plan(arg, step_dir / name)
      for name, arg in items.items()
      if requested(arg)
  }


def loads(items: Mapping[str, Any], plans: Mapping[str, Plan]) -> dict[str, Any]:
  """`items`, each planned item's args replaced by the load v1 performs."""
  return {n: plans[n].load if n in plans else a for n, a in items.items()}


def finish(plans: Mapping[str, Plan], restored: dict[str, Any]) -> dict[str, Any]:
  """What v1 loaded for planned items, transformed as v0 returns it."""
  for name, p in plans.items():
    if name in restored:
      restored[name] = _finish(p, restored[name])
  return restored


# --- Which leaves v0 reads ----------------------------------------------------


def _keystr(key: tuple[str, ...]) -> str:
  return '/'.join(key)


def _input_args(input_key, flat_item, flat_transforms, flat_restore_args):
  """v0's `_find_matching_input_args`: the RestoreArgs a checkpoint key is
  read with according to the transforms, or None."""
  for transform_key, transform in flat_transforms.items():
    if transform.multi_value_fn is not None:
      if not isinstance(transform, RestoreTransform):
        raise ValueError(
            'Must use RestoreTransform in order to use multi_value_fn during'
            ' restore.'
        )
      if transform.multi_value_fn_input_args is None:
        raise ValueError(
            '`multi_value_fn` was specified, but `multi_value_fn_input_args`'
            ' were not. The latter must be specified to identify inputs for'
            ' the function.'
        )
      for regex, input_args in transform.multi_value_fn_input_args.items():
        if re.fullmatch(regex, _keystr(input_key)):
          return input_args
    elif not transform.use_fallback:
      for output_key in flat_item:
        match = re.fullmatch(_keystr(transform_key), _keystr(output_key))
        if match:
          if transform.original_key is None:
            pattern = _keystr(output_key)
          else:
            pattern = match.expand(transform.original_key)
          if pattern == _keystr(input_key):
            return flat_restore_args[output_key]
  return None


def _has_fallback(input_key, flat_transforms) -> bool:
  return any(
      t.use_fallback and re.fullmatch(_keystr(k), _keystr(input_key))
      for k, t in flat_transforms.items()
  )


def _transform_reads(arg: Any, flat_structure: dict) -> dict[tuple, Any]:
  """Checkpoint key -> the RestoreArgs v0 reads it with (transforms)."""
  if arg.item is None:
    raise ValueError(_ITEM_NEEDED)
  restore_args = arg.restore_args
  if restore_args is None:  # v0 looks up the checkpoint's keys then fails.
    restore_args = {k: RestoreArgs() for k in flat_structure}
    flat_restore_args = restore_args
  else:
    flat_restore_args = v0_tree.to_flat_dict(restore_args, keep_empty_nodes=True)
  flat_item = v0_tree.to_flat_dict(arg.item, keep_empty_nodes=True)
  flat_transforms = v0_tree.to_flat_dict(arg.transforms)
  to_original = arg.transforms_default_to_original
  reads = {}
  for input_key in flat_structure:
    found = _input_args(input_key, flat_item, flat_transforms, flat_restore_args)
    if found:
      reads[input_key] = found
    elif input_key in flat_item:
      # Kept from the checkpoint: by default (unless a `use_fallback` takes
      # the item's value), or, defaulting to the item, where `use_fallback`
      # asks for the checkpoint's.
      if _has_fallback(input_key, flat_transforms) != to_original:
        reads[input_key] = flat_restore_args[input_key]
  return reads


def _is_read(value: Any, ra: Any) -> bool:
  """v0's `batched_serialization_requests`: whether a leaf is deserialized."""
  if not isinstance(value, ValueMetadataEntry) or value.skip_deserialize:
    return False
  if not isinstance(ra, RestoreArgs):
    if not jax.tree.leaves(ra):  # An empty node: nothing to read.
      return False
    raise AssertionError(f'Expected `RestoreArgs` or `SaveArgs`. Got {type(ra)}.')
  return (ra.restore_type or value.value_type) not in _EMPTY_TYPES


# --- Plans --------------------------------------------------------------------


def _plan(arg: Any, item_dir: epath.Path) -> Plan:
  structure, use_zarr3 = compat.pytree_structure(item_dir)
  flat_structure = v0_tree.to_flat_dict(structure, keep_empty_nodes=True)
  if arg.transforms is not None:
    checkpoint_args = _transform_reads(arg, flat_structure)
    if arg.legacy_transform_fn is not None:
      raise ValueError('Cannot provide both `transforms` and `legacy_transform_fn`.')
    if arg.restore_args is None:  # v0 raises this after reading.
      raise ValueError(_RESTORE_ARGS_NEEDED)
    reads = {
        k: (k, ra)
        for k, ra in checkpoint_args.items()
        if _is_read(flat_structure[k], ra)
    }
    flat_args = {k: checkpoint_args.get(k, RestoreArgs()) for k in flat_structure}
    out_structure = structure
    restore_args = v0_tree.from_flat_dict(flat_args, target=structure)
  else:
    out_structure, restore_args, reads = _legacy_reads(
        arg, item_dir, structure, use_zarr3
    )
  values = v0_tree.to_flat_dict(
      jax.tree_util.tree_map(_aggregated_value, out_structure, restore_args)
  )
  for key in reads:
    values.pop(key, None)
  return Plan(arg, out_structure, values, reads,
              _load_args(item_dir, structure, reads))


def _legacy_reads(arg, item_dir, structure, use_zarr3):
  """v0's `legacy_transform_fn(item, structure, param_infos)` and what it
  makes v0 read: (its structure, restore args, reads)."""
  names = v0_tree.to_flat_dict(
      v0_tree.get_param_names(structure), keep_empty_nodes=True
  )
  is_ocdbt = v0_type_handlers.is_ocdbt_checkpoint(item_dir)

  def param_info(key, meta):
    if not isinstance(meta, ValueMetadataEntry) and not jax.tree.leaves(meta):
      return meta  # Empty node: v0 gives it no ParamInfo.
    return v0_type_handlers.ParamInfo(
        name=names[key],
        parent_dir=item_dir,
        skip_deserialize=(
            meta.skip_deserialize if isinstance(meta, ValueMetadataEntry) else True
        ),
        is_ocdbt_checkpoint=is_ocdbt,
        use_zarr3=bool(use_zarr3),
        raise_array_data_missing_error=False,
    )

  flat = v0_tree.to_flat_dict(structure, keep_empty_nodes=True)
  param_infos = v0_tree.from_flat_dict(
      {k: param_info(k, v) for k, v in flat.items()}, target=structure
  )
  new_structure, new_infos = arg.legacy_transform_fn(arg.item, structure, param_infos)
  restore_args = arg.restore_args
  if restore_args is None:
    restore_args = jax.tree.map(lambda _: RestoreArgs(), arg.item)
  # v0 maps the two trees together before reading (same errors).
  jax.tree.map(lambda *_: None, new_structure, restore_args)
  by_name = {name: key for key, name in names.items()}
  reads = {}
  flat_infos = v0_tree.to_flat_dict(new_infos)
  flat_values = v0_tree.to_flat_dict(new_structure)
  flat_args = v0_tree.to_flat_dict(restore_args, keep_empty_nodes=True)
  for key, info in flat_infos.items():
    if info.skip_deserialize or not _is_read(flat_values.get(key), flat_args.get(key)):
      continue
    where = _keystr(key)
    if epath.Path(info.parent_dir) != epath.Path(item_dir):
      raise NotImplementedError(
          f'orbax_compat cannot honour `legacy_transform_fn` reading {where!r} '
          f'from {info.parent_dir}: v1 loads one item from its own directory '
          f'({item_dir}); restore that checkpoint separately.'
      )
    if info.name not in by_name:  # v0: tensorstore's NOT_FOUND ValueError.
      raise ValueError(
          f'`legacy_transform_fn` reads parameter {info.name!r} into {where!r},'
          f' but the checkpoint at {item_dir} has no such parameter.'
      )
    reads[key] = (by_name[info.name], flat_args[key])
  return new_structure, restore_args, reads


def _load_args(item_dir: epath.Path, structure: Any, reads: Mapping) -> Any:
  """The StandardRestore v1 loads: checkpoint leaves read, PLACEHOLDER else."""
  metadata = v0_tree.to_flat_dict(
      recovery.pytree_metadata(item_dir).tree, keep_empty_nodes=True
  )
  abstract: dict[tuple[str, ...], Any] = {}
  readers: dict[tuple[str, ...], str] = {}
  lenient = False
  for key, (source, ra) in reads.items():
    path = tuple(jax.tree_util.DictKey(k) for k in key)
    leaf = items_lib._leaf_abstract(path, ra, metadata.get(source))  # noqa: SLF001
    if source in abstract and abstract[source] != leaf:
      raise NotImplementedError(
          f'orbax_compat cannot read checkpoint leaf {_keystr(source)!r} twice '
          f'with different RestoreArgs (for {readers[source]!r} and '
          f'{_keystr(key)!r}): v1 reads each leaf once per restore; restore '
          'it separately.'
      )
    abstract[source], readers[source] = leaf, _keystr(key)
    lenient |= isinstance(ra, ArrayRestoreArgs) and not ra.strict
  flat = v0_tree.to_flat_dict(structure, keep_empty_nodes=True)
  item = v0_tree.from_flat_dict(
      {k: abstract.get(k, PLACEHOLDER) for k in flat}, target=structure
  )
  return v0_args.StandardRestore(item, strict=not lenient)


# --- Filling in and transforming ---------------------------------------------


def _aggregated_value(value: Any, ra: Any) -> Any:
  """v0's `_process_aggregated_value`: a value stored in the tree itself."""
  if isinstance(value, ValueMetadataEntry):
    return value
  dtype = getattr(ra, 'dtype', None)
  if dtype is not None:
    if isinstance(value, (int, float, complex, np.number)):
      value = np.asarray(value).astype(dtype).item()
    elif hasattr(value, 'astype'):
      value = value.astype(dtype)
  if hasattr(value, 'reshape') and isinstance(ra, ArrayRestoreArgs):
    value = value.reshape(ra.global_shape)
    sharding = ra.sharding or jax.sharding.NamedSharding(ra.mesh, ra.mesh_axes)
    value = jax.make_array_from_callback(
        value.shape, sharding, lambda idx, value=value: value[idx]
    )
  return value


def _with_restore_args(transforms: Any, restore_args: Any) -> Any:
  """v0's `_multi_value_fns_with_args`: each multi_value_fn also gets the
  RestoreArgs of the output key it computes."""
  flat_args = v0_tree.to_flat_dict(restore_args, sep='/')

  def wrap(transform):
    if transform.multi_value_fn is None:
      return transform
    fn = transform.multi_value_fn
    return transform_utils.Transform(
        multi_value_fn=lambda key, tree: fn(key, tree, flat_args[key])
    )

  return jax.tree.map(wrap, transforms)


def _finish(p: Plan, loaded: Any) -> Any:
  flat_loaded = v0_tree.to_flat_dict(loaded, keep_empty_nodes=True)
  flat = dict(p.values)
  for key, (source, ra) in p.reads.items():
    flat[key] = items_lib._cast_scalar(flat_loaded[source], ra)  # noqa: SLF001
  tree = v0_tree.from_flat_dict(flat, target=p.structure)
  arg = p.arg
  if arg.legacy_transform_fn is not None:
    return tree
  return transform_utils.apply_transformations(
      tree,
      _with_restore_args(arg.transforms, arg.restore_args),
      arg.item,
      arg.transforms_default_to_original,
  )
