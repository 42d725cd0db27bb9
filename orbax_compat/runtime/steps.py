"""The steps a manager lists and keeps: v0's step queries and decisions on v1.

v1's inner v0 manager keeps the list (`ManagerState.infos`); the shim lists a
failed save's step until its error is raised, as v0 does.
"""

from __future__ import annotations

import operator
from typing import Any

from absl import logging as absl_logging
from etils import epath
from orbax.checkpoint import path as v0_path
from orbax.checkpoint import utils as v0_utils

from orbax_compat.compat import orbax as compat
from orbax_compat.runtime import lifecycle
from orbax_compat.runtime import options as options_lib
from orbax_compat.runtime import state as state_lib


def directory(m) -> epath.Path:
  # v0's `self._directory`: a subclass may set and read it before
  # `super().__init__` (paxml), when no v1 Checkpointer exists yet.
  return m._directory


def all_steps(m, read: bool = False) -> list[int]:
  if read:
    absl_logging.warning(
        '`read` option is deprecated. Use `reload` to read from disk.'
    )
    reload(m)  # v0 relists here without calling self.reload().
  return [info.step for info in _listed_infos(m)]


def _unreported_failure(m) -> Any:
  """The CheckpointInfo of a failed save whose error no thread has raised yet.

  v0 lists that step until then; v1's inner manager has already dropped it.
  """
  save = m._state.in_flight
  if save is None or save.reported or save.info is None or save.succeeded:
    return None
  return save.info


def _listed_infos(m) -> list[Any]:
  infos = compat.listed_infos(m._state.infos)
  failed = _unreported_failure(m)
  if failed is not None and not any(info is failed for info in infos):
    at = len(infos)  # Where v0 appended it: after the steps saved before it.
    while at and infos[at - 1].time > failed.time:
      at -= 1  # Saved later (through the v1 Checkpointer).
    infos.insert(at, failed)
  return infos


def latest_step(m) -> int | None:
  latest = compat.latest_info(m._state.infos)
  failed = _unreported_failure(m)
  if failed is not None and latest is not failed:  # Rare: look closer.
    latest = _listed_infos(m)[-1]
  return latest.step if latest else None


def best_step(m) -> int | None:
  best_fn = m._options.best_fn
  if best_fn is None:
    return state_lib.own(m, 'latest_step', latest_step)
  ranked = sorted(
      (info for info in _listed_infos(m) if info.metrics is not None),
      key=lambda info: best_fn(info.metrics),
      reverse=(m._options.best_mode == 'min'),
  )
  return ranked[-1].step if ranked else None


def reload(m) -> None:
  m._state.ckptr.reload()
  if m._state.in_flight is not None:
    m._state.in_flight.unlist()  # v0 lists what is on disk now.


def reached_preemption(m, step: int) -> bool:
  return v0_utils.reached_preemption(step)


def should_save(m, step: int) -> bool:
  if m._options.read_only:
    absl_logging.warning('%s is read only, save will be skipped', m._directory)
    return False
  return compat.should_save(m._state.ckptr, operator.index(step))


def delete(m, step: int) -> None:
  if m._options.read_only:
    absl_logging.warning('%s is read only, delete will be skipped', m._directory)
    return
  if step not in state_lib.own(m, 'all_steps', all_steps):
    raise FileNotFoundError(f'Requested deleting a non-existent step: {step}.')
  save = m._state.in_flight
  if save is not None and save.step == step:
    # v0 deletes a step under the save still writing it (which then fails,
    # or commits a step it no longer lists); the shim lets that save end.
    lifecycle.quietly(m, m._state.ckptr.wait)
    save.finish()
    save.unlist()
    if save.failed:  # Listed only until its error is raised; no step files.
      return
  # v0 deletes at once; v1's `delete` would wait for the save in flight.
  compat.delete_step(m._state.ckptr, operator.index(step))


def is_committed(m, step_dir: epath.Path) -> bool:
  """v0's Checkpointer's test of a step directory: committed (on gs://, it
  holds `commit_success.txt`; elsewhere, it has its final name)."""
  kwargs = {}
  if options_lib.ATOMICITY:  # 0.12.3: v0's Checkpointer passes both.
    kwargs = {'temporary_path_cls': m._options.temporary_path_class,
              'atomicity_options': m._options.atomicity_options}
  return v0_path.step.is_path_finalized(step_dir, **kwargs)
