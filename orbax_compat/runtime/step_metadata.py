"""Metrics, step and root metadata, item metadata: v0's answers on v1.

Each item's metadata is read by the handler the manager knows for it (from
construction, a save or a restore), as v0's CompositeCheckpointHandler does.
"""

from __future__ import annotations

from typing import Any

from absl import logging as absl_logging
from etils import epath
from orbax.checkpoint import checkpoint_manager as v0_manager
from orbax.checkpoint import handlers as v0_handlers
from orbax.checkpoint import metadata as v0_metadata

from orbax_compat.compat import orbax as compat
from orbax_compat.compat.orbax import v1
from orbax_compat.handlers import bridges
from orbax_compat.handlers import recovery
from orbax_compat.handlers import settings as settings_lib
from orbax_compat.handlers import table
from orbax_compat.runtime import state as state_lib


def metrics(m, step: int) -> Any:
  path = state_lib.step_path(m, step) / table.METRICS_ITEM
  try:
    return v0_handlers.JsonCheckpointHandler(
        filename=table.METRICS_ITEM
    ).restore(path)
  except FileNotFoundError:
    return None


# v0's CompositeCheckpointHandler, for an item whose handler it does not know.
UNRESTORABLE = (
    'Item "%s" was found in the checkpoint, but could not be restored. Please'
    ' provide a `CheckpointHandlerRegistry`, or call `restore` with an'
    ' appropriate `CheckpointArgs` subclass.'
)


def existing_items(step_dir: epath.Path) -> list[str]:
  return sorted(p.name for p in step_dir.iterdir() if p.is_dir())


def _item_metadata_of(m, step_dir: epath.Path, name: str) -> Any:
  """v0: the item's handler's metadata; None, with v0's warning, where v0
  knows no handler for the item or its metadata file is missing."""
  handler_type = state_lib.item_handler(m._state, name)
  try:
    if bridges.is_bridge(handler_type):
      return handler_type.v0_handler.metadata(step_dir / name)
    if handler_type is not None:
      if issubclass(handler_type, v1.handlers.PyTreeHandler):
        return recovery.pytree_metadata(
            step_dir / name, settings_lib.item_type_handler_registry(handler_type))
      return None  # v0's JSON, Array and Proto handlers have no item metadata.
  except FileNotFoundError:
    pass
  absl_logging.warning(UNRESTORABLE, name)
  return None


def _item_handlers(m, names: list[str], recorded: Any) -> dict[str, Any]:
  """v0's `StepMetadata.item_handlers`: the recorded names, completed with
  the known handlers' (None, with v0's warning, for unknown items)."""
  item_handlers = dict(recorded or {})
  for name in names:
    handler_type = state_lib.item_handler(m._state, name)
    if handler_type is None:
      absl_logging.warning(UNRESTORABLE, name)
      item_handlers.setdefault(name, None)
    elif item_handlers.get(name) is None:
      item_handlers[name] = f'{handler_type.__module__}.{handler_type.__qualname__}'
  return item_handlers


def metadata(m, step: int | None = None):
  if step is None:
    return _root_metadata(m)
  step_dir = state_lib.step_path(m, step)
  if not step_dir.exists():
    raise FileNotFoundError(f'Checkpoint at {step_dir} not found.')
  step_metadata = v0_metadata.get_step_metadata(step_dir)
  # v0's CompositeCheckpointHandler.metadata: every item directory, read by
  # the handler this manager knows for it (from init, a save or a restore).
  names = existing_items(step_dir)
  item_metadata = {name: _item_metadata_of(m, step_dir, name) for name in names}
  step_metadata.item_handlers = _item_handlers(m, names, step_metadata.item_handlers)
  state_lib.decide_single_item(m._state, step_dir=step_dir)
  if m._state.single_item:
    if table.DEFAULT_ITEM not in item_metadata:
      raise ValueError(
          'Unable to retrieve default item. Please ensure that a handler for'
          ' the default item is registered using `handler_registry` when'
          ' initializing the `CheckpointManager`.'
      )
    step_metadata.item_metadata = item_metadata[table.DEFAULT_ITEM]
  else:
    step_metadata.item_metadata = compat.ItemMetadataComposite(**item_metadata)
  if table.METRICS_ITEM in step_metadata.item_handlers:
    found = metrics(m, step)
    if found is not None:
      step_metadata.metrics = dict(found)
  return step_metadata


def item_metadata(m, step: int):
  if step is None:
    raise ValueError(
        '`step` must be provided. `item_metadata` only exists at the'
        ' checkpoint step level, not the root level.'
    )
  return state_lib.own(m, 'metadata', metadata, step).item_metadata


def _root_metadata(m):
  metadata_dir = m._directory / v0_manager.METADATA_ITEM_NAME
  if m._options.read_only and not metadata_dir.exists():
    return v0_metadata.RootMetadata(custom_metadata=m._state.root_metadata or {})
  return v0_metadata.RootMetadata(
      custom_metadata=dict(m._state.ckptr.root_metadata().custom_metadata or {})
  )
