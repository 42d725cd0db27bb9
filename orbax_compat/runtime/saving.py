"""`save`: v0 args become v1 checkpointables, saved by v1's Checkpointer.

One way down: v0's checks and decisions (args, items and their handlers, the
save policy, a step that exists), then the handlers layer turns each item's
args into what v1 saves and the Context options its fields ask for, then one
`save_checkpointables_async`. The save in flight (`inflight`) reports its
error where v0 does; a synchronous save waits for it here.
"""

from __future__ import annotations

import time
from typing import Any

from absl import logging as absl_logging
from orbax.checkpoint import checkpoint_manager as v0_manager

from orbax_compat.compat import orbax as compat
from orbax_compat.compat import storage
from orbax_compat.handlers import checkpointables as items_lib
from orbax_compat.handlers import table
from orbax_compat.runtime import inflight
from orbax_compat.runtime import legacy as legacy_lib
from orbax_compat.runtime import lifecycle
from orbax_compat.runtime import state as state_lib
from orbax_compat.runtime import step_logging
from orbax_compat.runtime import steps

StepAlreadyExistsError = v0_manager.StepAlreadyExistsError


def save(
    m,
    step: int,
    items=None,
    save_kwargs=None,
    metrics=None,
    force: bool | None = False,
    args=None,
    custom_metadata: dict[str, Any] | None = None,
) -> bool:
  started = time.time()  # v0's step statistics time the whole save.
  if items is None and args is None:
    raise ValueError('Must provide `args` for `save`.')
  state_lib.decide_single_item(m._state, args=args, items=items)
  state_lib.validate_args(m._state, items, args)
  args = legacy_lib.save_args(m._state, items, save_kwargs, args)
  named = items_lib.as_items(args, m._state.single_item)
  if table.METRICS_ITEM in named:
    raise ValueError(
        "Item name 'metrics' in `args` is reserved by Orbax v1 for a step's"
        ' metrics (v0 allowed it without best_fn); rename the item.'
    )
  # Each item's handler, decided once: v0 refuses unknown items and args first.
  handlers = {name: state_lib.handler_for(m._state, name, arg) for name, arg in named.items()}
  if not force and not state_lib.own(m, 'should_save', steps.should_save, step):
    return False
  if m._state.closed:
    raise RuntimeError(
        f'save({step}) called after close(): this CheckpointManager is closed;'
        ' construct a new one to save more steps.'
    )
  state_lib.own(m, 'wait_until_finished', lifecycle.wait_until_finished)  # v0: the last save's error, once a thread.
  previous = m._state.in_flight
  if previous is not None:
    lifecycle.quietly(m, m._state.ckptr.wait)  # Even if a subclass's wait did not wait.
    previous.finish()
  if step in state_lib.own(m, 'all_steps', steps.all_steps):
    raise StepAlreadyExistsError(f'Checkpoint for step {step} already exists.')
  for name, arg in named.items():
    state_lib.register(m._state, name, arg, handlers[name])
  # A None entry: v0 saves the item with its known handler and args None.
  for name, arg in named.items():
    if arg is None:
      if state_lib.item_handler(m._state, name) is None:
        raise ValueError(state_lib.NONE_FOR_UNKNOWN_ITEM.format(name=name))
      named[name] = items_lib.none_entry(state_lib.item_handler(m._state, name))
  tracked = m._options.best_fn is not None
  if tracked and metrics is None:
    absl_logging.warning('Requested `tracked_metric`; did not provide metrics.')
  write_metrics = tracked and not m._options.prevent_write_metrics
  if previous is not None:
    previous.raise_held()  # v0: its checkpointer's error, before saving.
  checkpointables = items_lib.save_checkpointables(named)
  storage.forget_cached_listings(state_lib.step_path(m, step))  # gs://: as v0's sync save.
  # Args fields (save_args, ...) become v1 options of this save's Context.
  with (items_lib.save_context(m._state.context, named, checkpointables),
        step_logging.holding(m._state.step_logger) as statistics):
    items_lib.check_leaf_types(checkpointables, m._state.known_items)
    response = m._state.ckptr.save_checkpointables_async(
        step,
        checkpointables,
        force=True,  # The decision above is v0's; v1 must not decide again.
        # The step is known not to exist (checked above); without this, v1
        # checks again by building metadata for every existing step.
        overwrite=True,
        # v0 keeps metrics in memory for any preservation policy, and writes
        # them (falsy ones too) only with best_fn and no prevent_write_metrics.
        metrics=compat.metrics_for_save(metrics, write=write_metrics),
        custom_metadata=custom_metadata,
    )
  m._state.in_flight = save = inflight.SaveInFlight(step, response, m._state.ckptr, m._state.infos)
  if save.info is not None and save.info.metrics is not None:
    save.info.metrics = metrics  # The caller's object, as v0 keeps it.
  if not m._options.enable_async_checkpointing:
    error = save.settle_sync()
    if error is not None:
      _keep_committed_step(m, save)
      raise error  # v0's synchronous save raises its error here, only here.
  step_logging.log_save(
      m._state.step_logger, statistics, step=step, directory=state_lib.own(m, 'directory', steps.directory),
      started=started, synchronous=not m._options.enable_async_checkpointing,
  )
  return True


def _keep_committed_step(m, save: inflight.SaveInFlight) -> None:
  """A synchronous save that failed after its step was committed (deleting
  old steps, `_finalize_checkpoint`): v0 added the step to its list before
  that cleanup, so it stays listed, and the next save's garbage collection
  meets the same step again. v1's inner manager drops a failed step; the
  shim lists it again, there, so that both hold."""
  info = save.info
  if info is None or any(i.step == save.step for i in m._state.infos):
    return
  step_dir = state_lib.step_path(m, save.step)
  if step_dir.exists() and steps.is_committed(m, step_dir):
    compat.relist_step(m._state.ckptr, info)
