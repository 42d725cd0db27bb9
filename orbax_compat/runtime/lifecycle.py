"""Waiting, errors of the save in flight, closing: v0's members on v1.

A background save's error is raised where v0 raises it (see `inflight`);
`quietly` runs a v1 call that may raise that error again and lets
`inflight.SaveInFlight` decide.
"""

from __future__ import annotations

from typing import Any

from orbax_compat.runtime import state as state_lib


def quietly(m, fn, *a, **kw) -> Any:
  """Runs a v1 call, ignoring the error of the save in flight.

  v1's waits raise that save's error again (in each thread, through the inner
  v0 manager); `inflight.SaveInFlight` decides where it is raised, as v0 does.
  """
  try:
    return fn(*a, **kw)
  except Exception as e:  # pylint: disable=broad-exception-caught
    save = m._state.in_flight
    if save is not None and save.is_inner_error(e):
      return None
    if save is not None and not save.failed:
      save.finish()  # The error may have just been learnt by v1's thread.
      if save.is_inner_error(e):
        return None
    raise


def wait_until_finished(m) -> None:
  save = m._state.in_flight
  quietly(m, m._state.ckptr.wait)
  if save is not None:
    save.finish()
    save.raise_for_this_thread()  # Once in each thread, as v0.


def is_saving_in_progress(m) -> bool:
  return m._state.ckptr.is_saving_in_progress()


def check_for_errors(m) -> None:
  save = m._state.in_flight
  if save is not None:  # Never blocks: only a save that has ended.
    save.finish_if_done()
    save.raise_held()


def close(m) -> None:
  try:
    state_lib.own(m, 'wait_until_finished', wait_until_finished)
  finally:
    # Even when the wait raised: v1 releases its threads and files.
    quietly(m, m._state.ckptr.wait)
    quietly(m, m._state.ckptr.close)
    m._state.closed = True
  if m._state.in_flight is not None:
    m._state.in_flight.raise_held()  # v0: its checkpointer's error, on closing.


def contextmanager(m):
  """`with mngr:` (v0's `__contextmanager__`): closes as v0's `self.close()`."""
  try:
    yield m
  finally:
    state_lib.own(m, 'close', close)
