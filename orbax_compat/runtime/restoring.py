"""`restore`: v0 args become v1 abstract checkpointables, loaded by v1.

One way down: v0's checks (the step exists and is committed, the items and
their handlers), then the handlers layer turns each item's restore args into
the abstract checkpointable v1 loads with and the Context options its fields
ask for, then one v1 load of the step directory; what v1 cannot read of
older or damaged steps, `recovery` reads.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any
import warnings

from absl import logging as absl_logging
from etils import epath
from orbax.checkpoint import args as v0_args
from orbax.checkpoint import utils as v0_utils

from orbax_compat.compat import orbax as compat
from orbax_compat.compat.orbax import NoEntryError
from orbax_compat.compat.orbax import v1
from orbax_compat.handlers import bridges
from orbax_compat.handlers import checkpointables as items_lib
from orbax_compat.handlers import recovery
from orbax_compat.handlers import table
from orbax_compat.handlers import transforms as transforms_lib
from orbax_compat.runtime import legacy as legacy_lib
from orbax_compat.runtime import lifecycle
from orbax_compat.runtime import state as state_lib
from orbax_compat.runtime import step_logging
from orbax_compat.runtime import step_metadata as metadata_lib
from orbax_compat.runtime import steps


def _require_v0_json_file(item_dir: epath.Path, handler_type: Any = None) -> None:
  """v0 reads JSON items only from its handler's file (`metadata` unless the
  item's handler says otherwise); v1 also from `data.json`."""
  filename = getattr(handler_type, 'v0_filename', lambda: 'metadata')()
  path = item_dir / filename
  if not path.exists():
    raise FileNotFoundError(f'{path} not found.')


def restore(
    m,
    step: int | None,
    items=None,
    restore_kwargs=None,
    directory=None,
    args=None,
):
  root = epath.Path(directory) if directory is not None else m._directory
  if step is None:
    if directory is None:
      step = state_lib.own(m, 'latest_step', steps.latest_step)
    else:
      found = v0_utils.checkpoint_steps(root)
      step = max(found) if found else None
    if step is None:
      raise FileNotFoundError(f'No steps found in {directory or m._directory}.')
  started = time.time()  # v0's step statistics time the restore from here.
  step_dir = state_lib.step_path(m, step, root)
  state_lib.decide_single_item(m._state, step_dir=step_dir)
  state_lib.validate_args(m._state, items, args)
  args = legacy_lib.restore_args(m._state, items, restore_kwargs, args)
  # v0's restore waits for the save in flight to commit, and raises the
  # error its checkpointer still holds (not the save's own error).
  lifecycle.quietly(m, m._state.ckptr.wait)
  if m._state.in_flight is not None:
    m._state.in_flight.finish()
    m._state.in_flight.raise_held()
  if not step_dir.exists():
    raise FileNotFoundError(f'Checkpoint at {step_dir} not found.')
  if not steps.is_committed(m, step_dir):  # v0's Checkpointer, before any item.
    raise ValueError(f'Found incomplete checkpoint at {step_dir}.')
  if args is None:
    wanted = _saved_items(m, step_dir)
  else:
    wanted = items_lib.as_items(args, m._state.single_item)
  abstract = None
  plans = {}  # Items restored with v0's `transforms` (see transforms.py).
  if wanted is not None:
    existing = sorted(p.name for p in step_dir.iterdir() if p.is_dir())
    for name in sorted(wanted):
      if name not in existing:
        raise KeyError(
            f'Item "{name}" was not found in the checkpoint. Available items:'
            f' {existing}'
        )
      arg = wanted[name]
      if arg is None and args is not None and state_lib.item_handler(m._state, name) is None:
        raise ValueError(state_lib.NONE_FOR_UNKNOWN_ITEM.format(name=name))
      state_lib.register(m._state, name, arg, state_lib.handler_for(m._state, name, arg))
      items_lib.check_restore_arg(arg, name)
      recovery.check_restorable_types(step_dir / name, arg, m._state.known_items.get(name))
      if isinstance(arg, v0_args.JsonRestore):
        _require_v0_json_file(step_dir / name, m._state.known_items.get(name))
    plans = transforms_lib.plan(wanted, step_dir)
    wanted = transforms_lib.loads(wanted, plans)
    abstract = items_lib.restore_abstract(wanted, step_dir, m._state.known_items)
  # v1 reserves `metrics`; v0 returns it among the items of a bare restore.
  with_metrics = abstract is not None and table.METRICS_ITEM in abstract
  if with_metrics:
    del abstract[table.METRICS_ITEM]
  targets = {n: getattr(a, 'item', None) for n, a in (wanted or {}).items()}
  # Args fields (partial_restore, strict) become v1 options of this load.
  context = items_lib.load_context(m._state.context, wanted or {})
  loading = time.time()
  restored = items_lib.finish_restore(
      wanted or {}, _load(m, step_dir, abstract, targets, context)
  )
  restored = transforms_lib.finish(plans, restored)
  if with_metrics:
    restored[table.METRICS_ITEM] = state_lib.own(m, 'metrics', metadata_lib.metrics, step)
  step_logging.log_restore(
      m._state.step_logger, step=step, directory=root, started=started,
      checkpointer_started=loading,
  )
  if m._state.single_item:
    if table.DEFAULT_ITEM not in restored:
      raise ValueError(
          'Unable to retrieve default item. Please ensure that a handler for'
          ' the default item is registered using `handler_registry` when'
          ' initializing the `CheckpointManager`.'
      )
    return restored[table.DEFAULT_ITEM]
  return v0_args.Composite(**restored)


def _handler_for_typestr(typestr: Any) -> type | None:
  """The shim's handler for a recorded v0 handler type name, chosen as v0's
  restore without args chooses: the handler class's registered restore args,
  default-constructed, select the handler (a user-written one's bridge)."""
  bridged = table.bridge_for_typestr(typestr)
  if bridged is not None or not isinstance(typestr, str):
    return bridged
  handler_cls = compat.v0_handler_type(typestr)
  registered = bridges.registered_args(handler_cls) if handler_cls else None
  row = table.BY_ARGS.get(registered[1]) if registered else None
  return row.v1 if row else None


def _saved_items(m, step_dir: epath.Path) -> dict[str, None] | None:
  """What v0's `restore(step)` without args restores: every item it holds.

  Recorded items, as v0; v1 would leave out `metrics`, which v0 returns. Items
  older steps do not record are recognized by their files (v0 cannot).
  """
  recorded = recovery.recorded_items(step_dir) or {}
  existing = metadata_lib.existing_items(step_dir)
  unknown = [name for name in existing if state_lib.item_handler(m._state, name) is None]
  if unknown:  # v0 reads the step's metadata, warning twice per unknown item.
    for name in unknown + unknown:
      absl_logging.warning(metadata_lib.UNRESTORABLE, name)
  if m._state.single_item:
    wanted = {table.DEFAULT_ITEM: None}
  else:
    wanted = {name: None for name in recorded}
  # v0 binds each item it restores to the handler its recorded type name
  # selects, so later metadata and restores know it.
  for name in existing:
    if name in recorded and name in unknown and name != table.METRICS_ITEM:
      state_lib.register(m._state, name, None, _handler_for_typestr(recorded[name]))
  for name, handler_type in recovery.unrecorded_items(step_dir).items():
    if m._state.single_item and name != table.DEFAULT_ITEM:
      continue
    if bridges.is_bridge(m._state.known_items.get(name)):
      continue  # A user-written handler's files.
    state_lib.register(m._state, name, f'(recognized by its files as {handler_type.__qualname__})',
              handler_type)
    wanted[name] = None
  return wanted or None


# Handlers whose v0 restore never warns "Sharding info not provided when
# restoring": v0's StandardCheckpointHandler takes each array's sharding from
# the checkpoint's metadata (or the target) before reading; JSON and Proto
# items hold no arrays. v1 loads a pytree without a target as v0's
# PyTreeCheckpointHandler does, which warns (once per array) and reads the
# sharding file.
_NO_SHARDING_WARNING = (
    bridges.StandardHandler, bridges.JsonHandler, bridges.MetricsHandler,
    bridges.ProtoHandler,
)


_SHARDING_WARNING = 'Sharding info not provided when restoring'


@contextlib.contextmanager
def _warnings_as_v0(m, names: list[str]):
  """Silences v1's sharding warning for a load of items v0 restores without it.

  Only that warning, and only where no item of the load is a PyTree item
  (v0 warns there too) or runs v0 handler code (Array, user-written). The
  filter is process-wide while the load runs (v1 loads in its own threads).
  """
  handlers = [state_lib.item_handler(m._state, n) for n in names]
  if not names or not all(
      isinstance(h, type) and issubclass(h, _NO_SHARDING_WARNING) for h in handlers
  ):
    yield
    return
  with warnings.catch_warnings():
    warnings.filterwarnings('ignore', message=_SHARDING_WARNING, category=UserWarning)
    yield


def _load(
    m, step_dir: epath.Path, abstract: dict[str, Any] | None, targets: dict[str, Any],
    context: Any = None,
) -> dict[str, Any]:
  """v1's load of one step directory, under the shim's handler bindings.

  The free function, not `ckptr.load_checkpointables(step)`: that one first
  lists `ckptr.checkpoints`, which fails on steps without a commit timestamp
  (older v0 checkpoints) and knows only steps this manager has seen, where v0
  restores whatever step directory exists. Where v1 fails on an item, the
  item is read by `recovery` or the real cause is raised, naming the item.
  """
  names = list(abstract) if abstract is not None else metadata_lib.existing_items(step_dir)
  with context or m._state.context, _warnings_as_v0(m, names):
    try:
      return v1.load_checkpointables(step_dir, abstract)
    except NoEntryError as error:
      if error.__cause__ is None:  # No handler for an item: v0's ValueError.
        raise ValueError(
            f'An item of {step_dir} could not be restored: {error}'
        ) from error
      if abstract is None:
        raise
    restored = {}
    for name, item_abstract in abstract.items():

      def load(other_abstract, name=name):
        return v1.load_checkpointables(step_dir, {name: other_abstract})[name]

      try:
        restored[name] = load(item_abstract)
      except NoEntryError as error:
        if error.__cause__ is None:
          raise
        restored[name] = recovery.load_item(
            step_dir / name, targets.get(name), error.__cause__, load
        )
    return restored
