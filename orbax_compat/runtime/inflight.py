"""The save in flight: v0's reporting of a background save error, on v1.

v0 (`checkpoint_manager.py`) finishes an async save in a finalize thread.
Its error is raised once per calling thread, by the first of
`wait_until_finished`, the next `save` or `close` in that thread
(`_FinalizeThread.join`), and the failed step stays listed until some thread
has raised it; `check_for_errors`, `restore`, `delete` and the queries never
raise it. A synchronous save raises its error from `save`, and nowhere else.

A save can fail twice: on a full or read-only disk both its data and its
metadata file fail. v0's finalize thread then raises the metadata error (it
waits for the manager's metadata store first) and leaves the data error with
its checkpointer, where the next of `check_for_errors`, `save` (after the
first error), `restore` or `close` (after the first error) raises it, once.

v1 runs on an inner v0 manager, so one error reaches the shim several ways:
the save's response (a v1 thread waits for the inner manager), the inner
manager's own wait in each calling thread, and the inner manager drops the
failed step as soon as v1's thread sees the error. v1 also gives each save
a checkpointer and metadata store of its own, and of two errors reports the
data error and holds the metadata error. `SaveInFlight` takes the error from
the response alone and swaps a pair back into v0's order; the runtime raises
each where v0 does, ignore the inner manager's copies (`is_inner_error`), and
list the failed step until its error is raised.
"""

from __future__ import annotations

import datetime
import threading
from typing import Any

from orbax.checkpoint import checkpoint_manager as v0_manager

from orbax_compat.compat import orbax as compat

_MAX_HELD = 8  # A save holds at most a few errors (one per metadata write).


class SaveInFlight:
  """The last save started: its outcome, and which threads were told of it."""

  def __init__(self, step: int, response: Any, ckptr: Any, infos: Any):
    self.step = step
    self._response = response
    self._ckptr = ckptr
    self._lock = threading.Lock()
    self._finished = False
    self._inner_error: BaseException | None = None  # As v1 raises it.
    self._error: BaseException | None = None  # v0's finalize error.
    self._held: BaseException | None = None  # v0's checkpointer's error.
    self._told = threading.local()
    self.reported = False  # Raised in some thread: v0 drops the step then.
    self.info = self._listed_info(infos)  # None: not listed.

  def finish(self) -> None:
    """Blocks until the save's background part ends; learns its errors."""
    with self._lock:
      if self._finished:
        return
      try:
        self._response.result()
      except Exception as e:  # pylint: disable=broad-exception-caught
        self._inner_error = self._error = e
        held = _drain(self._ckptr)
        if held is not None:  # v0's order: the metadata error first.
          self._error, self._held = held, e
      self._finished = True

  @property
  def failed(self) -> bool:
    return self._inner_error is not None

  @property
  def succeeded(self) -> bool:
    return self._finished and self._inner_error is None

  def finish_if_done(self) -> None:
    """`finish`, only if the background part has ended (never blocks long)."""
    if not self._finished and not self._ckptr.is_saving_in_progress():
      self.finish()  # v1's thread is at most a moment behind.

  def is_inner_error(self, error: BaseException) -> bool:
    """Whether `error` is this save's, raised again by v1 or its manager."""
    return error is self._inner_error

  def raise_for_this_thread(self) -> None:
    """v0's finalize error: raised once in each thread that waits."""
    if self._error is None or getattr(self._told, 'told', False):
      return
    self._told.told = True
    self.reported = True
    raise self._error

  def raise_held(self) -> None:
    """v0's checkpointer's error: raised once, in whichever thread asks."""
    with self._lock:
      held, self._held = self._held, None
    if held is not None:
      raise held

  def settle_sync(self) -> BaseException | None:
    """A synchronous save: its first error is raised by `save`, only there."""
    self.finish()
    error, self._error, self._held = self._error, None, None
    self.reported = True
    return error

  def _listed_info(self, infos: Any) -> Any:
    """The step's CheckpointInfo if v0 lists it after the save, else None.

    The inner manager lists the new step unless its preservation policy
    dropped it at once; v1's thread removes it once the save has failed,
    which may already have happened (a failing disk fails fast).
    """
    latest = infos.latest()
    if latest is not None and latest.step == self.step:
      return latest
    if self._ckptr.is_saving_in_progress():
      return None  # Not failed (v0 ends a save before it drops the step).
    self.finish()
    if not self.failed:
      return None  # Dropped by the preservation policy.
    return v0_manager.CheckpointInfo(
        self.step, datetime.datetime.now(tz=datetime.UTC), None
    )

  def unlist(self) -> None:
    """The step is no longer listed (deleted, or the list was reloaded)."""
    self.info = None


def _drain(ckptr: Any) -> BaseException | None:
  """The first error the save's checkpointer still holds; clears them all."""
  first = None
  for _ in range(_MAX_HELD):
    try:
      compat.check_for_errors(ckptr)
    except Exception as e:  # pylint: disable=broad-exception-caught
      first = first or e
      continue
    break
  return first
