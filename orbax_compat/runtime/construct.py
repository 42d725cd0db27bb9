"""Construction: a v0 manager's arguments become a v1 Checkpointer and its state.

`init` (the manager's `__init__`) builds the v1 `training.Checkpointer` with
the policies and Context options v0's options ask for; `wrap` (behind
`from_v1`) runs a manager on a Checkpointer built elsewhere. Either way the
manager gets one `ManagerState`.
"""

from __future__ import annotations

import dataclasses
import weakref

from absl import logging as absl_logging
from etils import epath

from orbax_compat.compat import orbax as compat
from orbax_compat.compat import profiles
from orbax_compat.compat.orbax import v1
from orbax_compat.handlers import bridges
from orbax_compat.handlers import settings as settings_lib
from orbax_compat.handlers import table
from orbax_compat.runtime import legacy as legacy_lib
from orbax_compat.runtime import options as options_lib
from orbax_compat.runtime import state as state_lib
from orbax_compat.runtime import step_logging
from orbax_compat.runtime import subclassing


def init(
    m,
    directory,
    checkpointers=None,
    options=None,
    metadata=None,
    item_names=None,
    item_handlers=None,
    logger=None,
    handler_registry=None,
):
  """Builds the v1 Checkpointer for a v0 manager's arguments."""
  if metadata is not None and not isinstance(metadata, dict):
    metadata = dict(metadata)  # v0 takes any Mapping.
  options = options_lib.validate(options)
  legacy = legacy_lib.configure(
      options, checkpointers, item_names, item_handlers, handler_registry
  )
  use_async = legacy.use_async if legacy else options.enable_async_checkpointing
  options_lib.check_async(options, use_async)
  if use_async != options.enable_async_checkpointing:  # Legacy checkpointers.
    options = dataclasses.replace(options, enable_async_checkpointing=use_async)
  context = _start(m, directory, options, metadata)
  # v0 writes zarr2 arrays; v1 defaults to zarr3 (another on-disk format).
  context.array.saving.use_zarr3 = False
  settings_lib.set_v0_pytree_defaults(context)  # v0's bounds on bytes in flight.
  profiles.apply(context)  # Opt-in; the default profile changes nothing.
  options_lib.configure_context(options, context, legacy=legacy is not None)
  m._state.legacy = legacy
  if legacy is not None:
    m._state.single_item = legacy.default_item
    for name, handler_type in legacy.handlers.items():
      state_lib.register(m._state, name, None, handler_type)
  if options.enable_per_process_directory_creation:
    compat.add_per_process_signal_prefix()
  if options.read_only:
    absl_logging.warning('Given directory is read only=%s', m._directory)
  existed = m._directory.exists()
  ckptr = compat.Checkpointer(
      m._directory,
      context=context,
      custom_metadata=(
          None if options.read_only or not options.save_root_metadata
          else metadata
      ),
      logger=_step_logger(m, logger),
      **options_lib.checkpointer_kwargs(options),
  )
  _attach(m, ckptr)
  if not compat.V0_ITEM_DIRECTORIES_TAKE_MANAGER_OPTIONS:  # Before 0.12.3.
    # v0 keeps file_options for items only in its item-handler forms.
    compat.v0_item_directories(ckptr, file_options=any(
        x is not None for x in (checkpointers, item_names, item_handlers)))
  _apply_manager_options(m, options)
  if not options.create and not existed and m._directory.exists():
    if not any(m._directory.iterdir()):
      m._directory.rmdir()  # v1 always creates the root; v0 did not.
  subclassing.wire(m)  # A subclass's overrides of v0's hooks.


def _start(m, directory, options, metadata, base_context=None):
  """v0's protected attributes, the manager's state, and the v1 Context its
  saves and loads enter (returned)."""
  m._options = options
  m._directory = epath.Path(directory)
  registry = v1.handlers.local_registry(include_global_registry=False)
  # v1's global registry binds the name `state` to PyTreeHandler; v0 item
  # names are free, so the manager binds names itself (`state.register`).
  global_registry = v1.handlers.global_registry()
  for handler_type, name in global_registry.get_all_entries():
    if name is None:
      registry.add(
          handler_type,
          checkpointable_name=name,
          secondary_typestrs=global_registry.get_secondary_typestrs(handler_type),
      )
  # A step's metrics, in v0's file, for the shim's saves and for v1 calls
  # through `v1_checkpointer` (which copies this registry when constructed).
  registry.add(bridges.MetricsHandler, checkpointable_name=table.METRICS_ITEM)
  # v1 deep-copies a Checkpointer's context; the shim's own context stays
  # live (item names are bound as they appear) and is entered around saves
  # and loads, where v1 resolves handlers.
  context = v1.Context(base_context)
  context.checkpointables.registry = registry
  m._state = state_lib.ManagerState(
      ckptr=None, infos=None, context=context, registry=registry,
      root_metadata=dict(metadata) if metadata is not None else None,
  )
  return context


# v1 Checkpointer -> the manager running on it (one each).
_MANAGERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _attach(m, ckptr) -> None:
  owner = _MANAGERS.get(ckptr)
  if owner is not None:
    raise ValueError(
        f'This v1 Checkpointer already runs {owner!r}: use that manager (or its '
        '`v1_checkpointer`), not a second one.'
    )
  _MANAGERS[ckptr] = m
  m._state.ckptr = ckptr
  m._state.infos = compat.checkpoint_infos(ckptr)  # Updated in place by v1.


def wrap(m, ckptr, options=None) -> None:
  """Runs manager `m` on an existing v1 Checkpointer (see `from_v1`).

  Save and keep decisions stay the Checkpointer's policies; `options` serve
  what v1 has no place for (`best_fn`/`best_mode` for `best_step`, ...),
  taken from the Checkpointer's BestN policy when not given.
  """
  if not isinstance(ckptr, compat.training.Checkpointer):
    raise TypeError(
        '`ckptr` must be an orbax.checkpoint.experimental.v1.training.Checkpointer; '
        f'got {type(ckptr).__name__}.'
    )
  if compat.is_closed(ckptr):
    raise ValueError(f'The v1 Checkpointer of {ckptr.directory} is closed; wrap an open one.')
  if options is None:
    best = compat.best_n_policy(ckptr)
    options = options_lib.CheckpointManagerOptions(
        best_fn=best.get_metric_fn if best else None,
        best_mode='min' if best is not None and best.reverse else 'max',
    )
  options = options_lib.validate(options)
  _start(m, ckptr.directory, options, None, base_context=compat.checkpointer_context(ckptr))
  _attach(m, ckptr)


def _step_logger(m, logger) -> step_logging.StepStatisticsLogger:
  """The logger v1 gets: the user's (v0's default: StandardLogger), through
  which the shim logs v0's step statistics (see `step_logging`)."""
  m._state.step_logger = step_logging.StepStatisticsLogger(logger)
  return m._state.step_logger


def _apply_manager_options(m, options) -> None:
  """Options with no v1 equivalent, set on the v0 manager v1 runs on."""
  if options_lib.custom_deleter(options):
    compat.replace_step_deleter(m._state.ckptr, options)
  if not options.enable_should_save_is_saving_in_progress_check:
    compat.set_saving_in_progress_check(m._state.ckptr, False)
