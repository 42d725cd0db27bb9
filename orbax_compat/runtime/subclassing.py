"""Subclasses of the manager: v0's protected hooks, honoured or refused by name.

Public codebases subclass v0's `CheckpointManager` and override protected
methods that v0 calls through `self` (axlearn: `_load_checkpoint_infos` and
`_finalize_checkpoint` for a tracker file; t5x: `_get_old_steps_to_remove`).
`HOOKS` says, per protected method or property of v0's manager, what the shim
does with an override:

* honoured: v1's `training.Checkpointer` runs v0's own manager code on an
  inner v0 manager, which calls these hooks at v0's points (the finalize
  thread, construction and `reload()`, each save). The override is put there
  (`wire`), and `super()` runs v0's own implementation on that manager.
* refused: the class definition raises `TypeError` naming the hook. Skipping
  the override would change what is written or where, which steps are listed
  or kept, or what the manager returns.
* warned: an `UnhonouredHookWarning` (and a log line) at class definition.
  Skipping the override changes only argument checks, waiting or monitoring.

A protected method or property of v0's manager that `HOOKS` does not list (a
newer Orbax release) is refused. Names v0 does not define are not checked: v0
does not call them either.

`ProtectedMembers` gives subclasses v0's protected members that the honoured
hooks and the surveyed code read, with v0's meaning (see README, "Subclasses").
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from typing import Any
import warnings

from etils import epath
from orbax.checkpoint import checkpoint_manager as v0_manager
from orbax.checkpoint import path as v0_path

from orbax_compat.compat import orbax as compat
from orbax_compat.runtime import options as options_lib

logger = logging.getLogger('orbax_compat')

HONOURED, REFUSED, WARNED = 'honoured', 'refused', 'warned'


class UnhonouredHookWarning(UserWarning):
  """A subclass overrides a v0 hook that orbax_compat does not call."""


@dataclasses.dataclass(frozen=True)
class Hook:
  name: str
  treatment: str  # honoured | refused | warned
  reason: str


_STEP_PATHS = (
    'where steps are written and read: v1 builds step paths from a NameFormat;'
    ' give CheckpointManagerOptions(step_name_format=...) instead'
)
_HANDLERS = (
    'v0 builds its item handlers here; the shim binds item handlers to v1'
    ' handlers itself (orbax_compat/legacy.py), so what the override builds'
    ' would not be what is written'
)

HOOKS = (
    Hook('_finalize_checkpoint', HONOURED,
         'runs on the v0 manager v1 runs on, in the finalize thread, after the'
         ' items committed and before old steps are deleted; super() runs v0\'s'
         ' (error check and preemption metrics on the primary host)'),
    Hook('_load_checkpoint_infos', HONOURED,
         'decides the steps listed at construction (skip_metadata_read='
         'options.lightweight_initialize) and on reload(); super() returns'
         ' v0\'s list of CheckpointInfo'),
    Hook('_get_old_steps_to_remove', HONOURED,
         'called on each save once the new step is listed; the steps it returns'
         ' are deleted after finalize; super() applies the options\''
         ' preservation policy'),
    Hook('_get_save_directory', REFUSED, _STEP_PATHS),
    Hook('_get_write_step_directory', REFUSED, _STEP_PATHS),
    Hook('_get_read_step_directory', REFUSED, _STEP_PATHS),
    Hook('_add_checkpoint_info', REFUSED,
         'which steps are listed after a save, with which metrics: v1 lists'
         ' the saved step itself'),
    Hook('_finalize', REFUSED,
         'finalizes a save and deletes old steps; override _finalize_checkpoint'
         ' or _get_old_steps_to_remove instead (both honoured)'),
    Hook('_configure_checkpointer_common', REFUSED, _HANDLERS),
    Hook('_configure_checkpointer_legacy_init', REFUSED, _HANDLERS),
    Hook('_configure_checkpointer_from_item_names_and_handlers', REFUSED,
         _HANDLERS),
    Hook('_configure_checkpointer_from_handler_registry', REFUSED, _HANDLERS),
    Hook('_metrics_handler', REFUSED,
         'how metrics are written and read: v1 writes them with its own JSON'
         ' handler'),
    Hook('_track_best', REFUSED,
         'whether metrics are written and best_fn decides which steps are kept:'
         ' the shim follows options.best_fn'),
    Hook('_get_metrics', REFUSED,
         'the metrics of listed steps, from which best_fn chooses the steps'
         ' kept: the shim reads them with v0\'s handler'),
    Hook('_sort_checkpoints_by_metrics', REFUSED,
         'the order best_step() answers from: the shim ranks by'
         ' options.best_fn'),
    Hook('_maybe_get_default_item', REFUSED,
         'what restore() and item_metadata() return for a single item'),
    Hook('_get_step_metadata', REFUSED, 'what metadata(step) returns'),
    Hook('_get_root_metadata', REFUSED, 'what metadata() returns'),
    Hook('_root_metadata_file_path', REFUSED,
         'where root metadata is written and read: v1 writes it'),
    Hook('_maybe_save_root_metadata', REFUSED,
         'whether and how root metadata is written: v1 writes it'),
    Hook('_validate_args', WARNED,
         'the shim checks save and restore arguments with v0\'s own checks;'
         ' an override\'s own checks do not run'),
    Hook('_wait_for_checkpointers', WARNED,
         'v1 waits for the items to commit before finalizing, itself'),
    Hook('_maybe_await_cleanup_tmp_directory', WARNED,
         'v1 awaits its own cleanup of temporary directories'),
    Hook('_is_continuous_checkpointing_enabled', WARNED,  # v0 0.12.2+
         'only labels v0\'s monitoring metrics'),
)
BY_NAME = {hook.name: hook for hook in HOOKS}


def _v0_hook_names() -> tuple[str, ...]:
  """v0's protected methods and properties: the hooks a subclass can override."""
  return tuple(
      name
      for name, value in vars(v0_manager.CheckpointManager).items()
      if name.startswith('_') and not name.startswith('__')
      and (callable(value) or isinstance(value, property))
  )


V0_HOOKS = _v0_hook_names()


def treatment(name: str) -> Hook:
  """What the shim does with an override of v0's hook `name`."""
  return BY_NAME.get(name) or Hook(
      name, REFUSED,
      f'orbax_compat does not know this hook of {compat.orbax_version_note()}'
  )


class ProtectedMembers:
  """v0's protected members that subclasses commonly read or extend.

  Each keeps v0's meaning. `_options` (the `CheckpointManagerOptions` given)
  and `_directory` are plain attributes set at construction, as in v0.
  """

  @property
  def _checkpoints(self):
    """v0's `CheckpointInfos`: the steps the manager lists, oldest first."""
    return compat.checkpoint_infos(self._state.ckptr)

  @property
  def _multiprocessing_options(self):
    return self._options.multiprocessing_options

  @property
  def _track_best(self) -> bool:
    return self._options.best_fn is not None

  def _get_save_directory(self, step: int, directory: epath.PathLike) -> epath.Path:
    """The path of `step` under `directory`, named as the shim names steps."""
    name_format = options_lib.step_name_format(self._options)
    return v0_path.step.build_step_path(directory, name_format, step)

  def _get_write_step_directory(self, step: int, root_dir: epath.PathLike) -> epath.Path:
    return self._get_save_directory(step, root_dir)

  def _get_read_step_directory(self, step: int, root_dir: epath.PathLike) -> epath.Path:
    if self._options.step_name_format is not None:  # As v0: an existing step.
      return self._options.step_name_format.find_step(epath.Path(root_dir), step).path
    return self._get_save_directory(step, root_dir)

  # Honoured hooks: v0's own implementation, on the v0 manager v1 runs on.

  def _finalize_checkpoint(self, step: int) -> None:
    return compat.run_v0_hook(self._state.ckptr, '_finalize_checkpoint', step)

  def _load_checkpoint_infos(self, skip_metadata_read: bool = False) -> list[Any]:
    return compat.run_v0_hook(
        self._state.ckptr, '_load_checkpoint_infos', skip_metadata_read=skip_metadata_read
    )

  def _get_old_steps_to_remove(self) -> list[int]:
    return compat.run_v0_hook(self._state.ckptr, '_get_old_steps_to_remove')


def _overrides(cls: type, name: str) -> bool:
  return getattr(cls, name, None) is not getattr(ProtectedMembers, name, None)


def _owner(cls: type, name: str) -> type | None:
  return next((k for k in cls.__mro__ if name in vars(k)), None)


def _message(cls: type, names: list[str], what: str) -> str:
  lines = '\n'.join(f'  {n}: {treatment(n).reason}' for n in names)
  return (
      f'{cls.__module__}.{cls.__qualname__} overrides '
      f'{", ".join(names)} of Orbax\'s v0 CheckpointManager, {what}:\n{lines}\n'
      'See orbax_compat\'s README, "Subclasses".'
  )


def _stacklevel() -> int:
  """The stack level of the class statement (past `__init_subclass__`s and
  metaclasses' `__new__`, such as ABCMeta's)."""
  frame, level = sys._getframe(1), 1
  while frame is not None and (
      frame.f_code.co_name in ('__init_subclass__', '__new__')
      or frame.f_globals.get('__name__') == __name__
  ):
    frame, level = frame.f_back, level + 1
  return level


def check(cls: type) -> None:
  """At class definition: refuses or warns about hooks the shim cannot honour."""
  refused, warned = [], []
  for name in V0_HOOKS:
    if not _overrides(cls, name):
      continue
    kind = treatment(name).treatment
    if kind == REFUSED:
      refused.append(name)
    elif kind == WARNED:
      owner = _owner(cls, name)
      # A shim subclass reported its own overrides when it was defined.
      if owner is cls or not issubclass(owner, ProtectedMembers):
        warned.append(name)
  if refused:
    raise TypeError(_message(
        cls, refused, 'which orbax_compat cannot honour on Orbax v1 (refused, so'
        ' that they are not silently skipped)'))
  if warned:
    message = _message(cls, warned, 'which orbax_compat does not call')
    logger.warning('%s', message)
    warnings.warn(message, UnhonouredHookWarning, stacklevel=_stacklevel())


def honoured_overrides(cls: type) -> tuple[str, ...]:
  return tuple(
      name for name in V0_HOOKS
      if _overrides(cls, name) and treatment(name).treatment == HONOURED
  )


def wire(m: Any) -> None:
  """At construction: puts the honoured overrides where v0 calls them."""
  names = honoured_overrides(type(m))
  for name in names:
    compat.set_v0_hook(m._state.ckptr, name, getattr(m, name))
  if '_load_checkpoint_infos' in names:
    # v0 lists steps through the hook in __init__; v1's manager has listed
    # them its own way already, so the hook's list replaces that one.
    try:
      infos = m._load_checkpoint_infos(
          skip_metadata_read=m._options.lightweight_initialize
      )
    except BaseException:
      m._state.ckptr.close()  # The constructor fails, as v0's: release v1's manager.
      raise
    m._checkpoints.set(infos or [])
