"""v0's step statistics: one dict per save and per restore, to the manager's logger.

v0's manager logs `dataclasses.asdict(SaveStepStatistics)` at the end of each
save that happens and `asdict(RestoreStepStatistics)` at the end of each
restore, through its `logger` (a `StandardLogger`, absl INFO, when none is
given); log-based dashboards parse those dicts. Through the shim:

- save: the v0 manager inside v1's Checkpointer computes the statistics (the
  waits, the checkpointer's blocking part, old steps), but as v1's manager:
  always asynchronous, timed from v1's call. `StepStatisticsLogger` sits
  between v1 and the user's logger and holds that entry while the shim's own
  save runs; `log_save` then sets what v0 measures around its whole save
  (`synchronous`, the manager's blocking start and duration; a synchronous
  save's checkpointer part lasts until the step is written, as in v0) and
  logs it where v0 does, just before `save` returns True. Where v1 logged no
  entry (a release whose Checkpointer takes no logger), the shim builds it
  from what it knows.
- restore: the shim loads through v1's free `load_checkpointables`, which
  logs nothing; `log_restore` logs v0's entry (same fields, same moments).

v1 calls made directly on the live v1 Checkpointer (`v1_checkpointer`) log
as v1 does: only saves inside the shim's `save` are held. A manager wrapping
a v1 Checkpointer built elsewhere (`from_v1`) has no such logger (`None`
below): its saves log what that Checkpointer's logger gets from v1.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from typing import Any

from orbax.checkpoint import logging as ocp_logging
from orbax.checkpoint import utils as v0_utils
from orbax.checkpoint.logging import step_statistics

_SAVE = 'save'


class StepStatisticsLogger(ocp_logging.AbstractLogger):
  """The logger v1 gets: forwards to the user's, holding the shim's saves'."""

  def __init__(self, logger: Any = None):
    # v0: `logger or StandardLogger()`.
    self.logger = logger or ocp_logging.StandardLogger()
    self._local = threading.local()

  def log_entry(self, entry: Any, *args: Any, **kwargs: Any) -> None:
    held = getattr(self._local, 'held', None)
    if held is not None and isinstance(entry, dict) and entry.get('event_type') == _SAVE:
      held.append(entry)
      return
    self.logger.log_entry(entry, *args, **kwargs)

  @contextlib.contextmanager
  def holding(self):
    """Holds v1's save statistics logged in this thread (the shim's v1 call)."""
    held: list[dict[str, Any]] = []
    self._local.held = held
    try:
      yield held
    finally:
      self._local.held = None


def holding(logger: StepStatisticsLogger | None):
  """`logger.holding()`; nothing held without a logger."""
  return logger.holding() if logger is not None else contextlib.nullcontext([])


def log_save(
    logger: StepStatisticsLogger | None, held: list[dict[str, Any]], *, step: int,
    directory: Any, started: float, synchronous: bool,
) -> None:
  """Logs v0's SaveStepStatistics of one save that happened."""
  if logger is None:
    return
  now = time.time()
  if held:
    entry = dict(held[-1])
  else:  # v1 logged nothing: the fields the shim knows.
    reached_preemption = bool(v0_utils.reached_preemption(step))
    entry = dataclasses.asdict(step_statistics.SaveStepStatistics(
        step=step, directory=str(directory),
        reached_preemption=reached_preemption,
        preemption_received_at=now if reached_preemption else None,
    ))
  entry['synchronous'] = synchronous
  entry['checkpoint_manager_blocking_start_time'] = started
  entry['checkpoint_manager_blocking_duration_secs'] = now - started
  checkpointer_started = entry.get('checkpointer_blocking_start_time')
  if synchronous and checkpointer_started is not None:
    entry['checkpointer_blocking_duration_secs'] = now - checkpointer_started
  logger.logger.log_entry(entry)


def log_restore(
    logger: StepStatisticsLogger | None, *, step: int, directory: Any,
    started: float, checkpointer_started: float,
) -> None:
  """Logs v0's RestoreStepStatistics of one restore (before its result is picked)."""
  if logger is None:
    return
  now = time.time()
  logger.logger.log_entry(dataclasses.asdict(step_statistics.RestoreStepStatistics(
      step=step,
      directory=str(directory),
      checkpointer_start_time=checkpointer_started,
      checkpointer_duration_secs=now - checkpointer_started,
      checkpoint_manager_start_time=started,
      checkpoint_manager_duration_secs=now - started,
  )))
