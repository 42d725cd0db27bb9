"""v0 `CheckpointArgs` <-> v1 checkpointables.

A v0 manager stores one unnamed item under `default` and a `Composite` under
its item names. The shim keeps exactly that layout: each v0 args object becomes
one entry `{item name: value}` of v1's checkpointables, saved by the v1 handler
that writes the same files as the v0 handler the args name.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
import dataclasses
from typing import Any

import jax
import numpy as np
from orbax.checkpoint import args as v0_args
from orbax.checkpoint import handlers as v0_handlers

from orbax_compat._v1 import v1

DEFAULT_ITEM = 'default'
METRICS_ITEM = 'metrics'
RESERVED_ITEMS = (METRICS_ITEM,)

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


StandardHandler = _recorded_as(_handlers.PyTreeHandler, v0_handlers.StandardCheckpointHandler)
PyTreeHandler = _recorded_as(_handlers.PyTreeHandler, v0_handlers.PyTreeCheckpointHandler)
# v1's JsonHandler writes `data.json`; v0's JsonCheckpointHandler reads `metadata`.
JsonHandler = _recorded_as(
    _handlers.JsonHandler, v0_handlers.JsonCheckpointHandler, filename='metadata'
)
MetricsHandler = _recorded_as(
    _handlers.JsonHandler, v0_handlers.JsonCheckpointHandler, filename=METRICS_ITEM
)


@dataclasses.dataclass(frozen=True)
class ArgsKind:
  """How one family of v0 args maps to v1."""

  handler: type  # v1 CheckpointableHandler family (PyTree or JSON).
  save: tuple[type, ...]
  restore: tuple[type, ...]
  # Fields whose non-default values v1 cannot honour yet.
  unsupported: tuple[str, ...] = ()


KINDS = (
    ArgsKind(
        _handlers.PyTreeHandler,
        save=(v0_args.StandardSave, v0_args.PyTreeSave),
        restore=(v0_args.StandardRestore, v0_args.PyTreeRestore),
        unsupported=(
            'save_args', 'ocdbt_target_data_file_size', 'custom_metadata',
            'strict', 'support_layout', 'fallback_sharding', 'restore_args',
            'transforms', 'legacy_transform_fn', 'partial_restore',
        ),
    ),
    ArgsKind(
        _handlers.JsonHandler,
        save=(v0_args.JsonSave,),
        restore=(v0_args.JsonRestore,),
    ),
)
# The handler each args type saves with: the one v0 would record on disk.
RECORDED_HANDLER = {
    v0_args.StandardSave: StandardHandler,
    v0_args.StandardRestore: StandardHandler,
    v0_args.PyTreeSave: PyTreeHandler,
    v0_args.PyTreeRestore: PyTreeHandler,
    v0_args.JsonSave: JsonHandler,
    v0_args.JsonRestore: JsonHandler,
}


def kind_of(arg: Any, argument: str) -> ArgsKind:
  """The ArgsKind of one v0 args object; raises like v0 for others."""
  for kind in KINDS:
    if isinstance(arg, kind.save + kind.restore):
      _check_supported_fields(arg, kind, argument)
      return kind
  if not isinstance(arg, v0_args.CheckpointArgs):
    raise ValueError(
        f'`{argument}` must be an orbax.checkpoint.args.CheckpointArgs '
        f'(e.g. StandardSave); got {type(arg).__name__}.'
    )
  supported = ', '.join(
      c.__name__ for k in KINDS for c in k.save + k.restore
  )
  raise NotImplementedError(
      f'orbax_compat does not yet translate `{argument}` of type '
      f'{type(arg).__name__}; supported: {supported}.'
  )


def _check_supported_fields(arg: Any, kind: ArgsKind, argument: str) -> None:
  for field in dataclasses.fields(arg):
    if field.name not in kind.unsupported:
      continue
    value = getattr(arg, field.name)
    default = (
        field.default
        if field.default is not dataclasses.MISSING
        else field.default_factory()  # type: ignore[misc]
        if field.default_factory is not dataclasses.MISSING
        else dataclasses.MISSING
    )
    if value is not default and value != default:
      raise NotImplementedError(
          f'orbax_compat does not yet support `{argument}`'
          f'.{field.name} of {type(arg).__name__} on v1; leave it at its '
          f'default ({default!r}).'
      )


def as_items(args: Any, default_item: bool) -> dict[str, Any]:
  """`{item name: v0 args}` for single-item or Composite args."""
  if default_item:
    return {DEFAULT_ITEM: args}
  return dict(args.items())


def save_checkpointables(items: Mapping[str, Any]) -> dict[str, Any]:
  """v1 checkpointables for `{item name: v0 save args}`."""
  checkpointables = {}
  for name, arg in items.items():
    kind = kind_of(arg, f'args[{name!r}]' if name != DEFAULT_ITEM else 'args')
    if not isinstance(arg, kind.save):
      raise ValueError(
          f'`args` for item {name!r} must be a save type '
          f'({", ".join(c.__name__ for c in kind.save)}) in `save`; got '
          f'{type(arg).__name__}.'
      )
    checkpointables[name] = (
        _numpy_scalars_as_arrays(arg.item)
        if kind.handler is _handlers.PyTreeHandler
        else arg.item
    )
  return checkpointables


def _numpy_scalars_as_arrays(tree: Any) -> Any:
  """v1 has no handler for numpy scalars; v0 restores them as 0-d arrays."""
  return jax.tree.map(
      lambda x: np.asarray(x) if isinstance(x, np.generic) else x, tree
  )


@dataclasses.dataclass(frozen=True)
class NumpyAbstract:
  """An abstract leaf that v1 restores as `np.ndarray` (shape and dtype)."""

  shape: tuple[int, ...]
  dtype: Any


def _needs_metadata(leaf: Any) -> bool:
  return isinstance(leaf, jax.ShapeDtypeStruct) and leaf.sharding is None


def abstract_tree(
    target: Any, tree_metadata: Callable[[], Any] | None
) -> Any:
  """v0 restore target -> v1 abstract tree with v0's restored types.

  v0 restores a `jax.ShapeDtypeStruct` without sharding with the sharding
  recorded in the checkpoint, or as `np.ndarray` where none was recorded;
  v1 would insist on a sharding. Concrete leaves map to themselves.
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
  flat_metadata = dict(
      jax.tree_util.tree_flatten_with_path(tree_metadata())[0]
  )

  def convert(path, leaf):
    if not _needs_metadata(leaf):
      return leaf
    meta = flat_metadata.get(path)
    sharding = getattr(meta, 'sharding', None)
    if sharding is not None and not isinstance(sharding, jax.sharding.Sharding):
      sharding = sharding.to_jax_sharding()
    if sharding is None:
      return NumpyAbstract(tuple(leaf.shape), np.dtype(leaf.dtype))
    return jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=sharding)

  return jax.tree_util.tree_map_with_path(convert, target)


def restore_abstract(
    items: Mapping[str, Any], tree_metadata: Callable[[str], Any]
) -> dict[str, Any]:
  """v1 abstract checkpointables for `{item name: v0 restore args or None}`."""
  abstract = {}
  for name, arg in items.items():
    if arg is None:
      abstract[name] = None
      continue
    kind = kind_of(arg, f'args[{name!r}]' if name != DEFAULT_ITEM else 'args')
    if kind.handler is _handlers.JsonHandler:  # JSON loads need no target.
      abstract[name] = None
    else:
      abstract[name] = abstract_tree(
          arg.item, lambda name=name: tree_metadata(name)
      )
  return abstract


def handler_for(arg: Any) -> type | None:
  """The v1 handler a v0 args object saves and loads with (None for None)."""
  if arg is None:
    return None
  kind_of(arg, 'args')
  return RECORDED_HANDLER[type(arg)]
