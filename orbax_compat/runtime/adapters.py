"""Adapters: each performs one v0 CheckpointManager member on v1.

Every adapter takes the shim manager `m` first and returns what v0 returns.
Where v0 calls one of its public members through `self` (`save` asks
`self.should_save(step)`), the adapter calls it through `own`: a subclass's
override where the class has one, else the implementation itself, never the
public (noticed) member.
"""

from __future__ import annotations

import contextlib
import dataclasses
import operator
import time
from typing import Any
import warnings
import weakref

from absl import logging as absl_logging
from etils import epath
from orbax.checkpoint import args as v0_args
from orbax.checkpoint import checkpoint_manager as v0_manager
from orbax.checkpoint import handlers as v0_handlers
from orbax.checkpoint import metadata as v0_metadata
from orbax.checkpoint import path as v0_path
from orbax.checkpoint import utils as v0_utils

from orbax_compat.compat import orbax as _v1
from orbax_compat.compat import profiles
from orbax_compat.compat import subclassing
from orbax_compat.compat.orbax import NoEntryError
from orbax_compat.compat.orbax import v1
from orbax_compat.handlers import bridges
from orbax_compat.handlers import checkpointables as args_lib
from orbax_compat.handlers import recovery
from orbax_compat.handlers import transforms as transforms_lib
from orbax_compat.mapping import forms
from orbax_compat.runtime import inflight
from orbax_compat.runtime import legacy as legacy_lib
from orbax_compat.runtime import options as options_lib
from orbax_compat.runtime import step_logging

StepAlreadyExistsError = v0_manager.StepAlreadyExistsError


_PROPERTIES = frozenset(m.name for m in forms.MEMBERS if m.kind == 'property')


def own(m, name: str, implementation, *args):
  """v0's `self.<name>(*args)`: the subclass's override where `type(m)` has
  one (it then runs as in v0), else `implementation(m, *args)`, no notice."""
  if name in type(m).overridden_members:
    member = getattr(m, name)
    return member if name in _PROPERTIES else member(*args)
  return implementation(m, *args)


# --- Construction -----------------------------------------------------------


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
  bridges.set_v0_pytree_defaults(context)  # v0's bounds on bytes in flight.
  profiles.apply(context)  # Opt-in; the default profile changes nothing.
  options_lib.configure_context(options, context, legacy=legacy is not None)
  m._legacy = legacy
  if legacy is not None:
    m._default_item = legacy.default_item
    for name, handler_type in legacy.handlers.items():
      _register(m, name, None, handler_type)
  if options.enable_per_process_directory_creation:
    _v1.add_per_process_signal_prefix()
  if options.read_only:
    absl_logging.warning('Given directory is read only=%s', m._directory)
  existed = m._directory.exists()
  m._ckptr = ckptr = _v1.Checkpointer(
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
  if not _v1.V0_ITEM_DIRECTORIES_TAKE_MANAGER_OPTIONS:  # Before 0.12.3.
    # v0 keeps file_options for items only in its item-handler forms.
    _v1.v0_item_directories(ckptr, file_options=any(
        x is not None for x in (checkpointers, item_names, item_handlers)))
  _apply_manager_options(m, options)
  if not options.create and not existed and m._directory.exists():
    if not any(m._directory.iterdir()):
      m._directory.rmdir()  # v1 always creates the root; v0 did not.
  subclassing.wire(m)  # A subclass's overrides of v0's hooks.


def _start(m, directory, options, metadata, base_context=None):
  """The manager's own state, and the v1 Context its saves and loads enter."""
  m._options = options
  m._directory = epath.Path(directory)
  m._default_item = None  # v0 decides single vs. composite on first use.
  m._known_items = {}  # item name -> v1 handler type, as v0's registry.
  m._in_flight = None  # inflight.SaveInFlight of the last save started.
  m._step_logger = None  # Set by `init`; a wrapped v1 Checkpointer logs as v1.
  m._closed = False
  m._root_metadata = dict(metadata) if metadata is not None else None
  m._registry = v1.handlers.local_registry(include_global_registry=False)
  # v1's global registry binds the name `state` to PyTreeHandler; v0 item
  # names are free, so the manager binds names itself (see `_register`).
  global_registry = v1.handlers.global_registry()
  for handler_type, name in global_registry.get_all_entries():
    if name is None:
      m._registry.add(
          handler_type,
          checkpointable_name=name,
          secondary_typestrs=global_registry.get_secondary_typestrs(handler_type),
      )
  # A step's metrics, in v0's file, for the shim's saves and for v1 calls
  # through `v1_checkpointer` (which copies this registry when constructed).
  m._registry.add(bridges.MetricsHandler, checkpointable_name=args_lib.METRICS_ITEM)
  # v1 deep-copies a Checkpointer's context; the shim's own context stays
  # live (item names are bound as they appear) and is entered around saves
  # and loads, where v1 resolves handlers.
  m._context = context = v1.Context(base_context)
  context.checkpointables.registry = m._registry
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
  m._ckptr = ckptr
  m._infos = _v1.checkpoint_infos(ckptr)  # Updated in place by v1.


def wrap(m, ckptr, options=None) -> None:
  """Runs manager `m` on an existing v1 Checkpointer (see `from_v1`).

  Save and keep decisions stay the Checkpointer's policies; `options` serve
  what v1 has no place for (`best_fn`/`best_mode` for `best_step`, ...),
  taken from the Checkpointer's BestN policy when not given.
  """
  if not isinstance(ckptr, _v1.training.Checkpointer):
    raise TypeError(
        '`ckptr` must be an orbax.checkpoint.experimental.v1.training.Checkpointer; '
        f'got {type(ckptr).__name__}.'
    )
  if _v1.is_closed(ckptr):
    raise ValueError(f'The v1 Checkpointer of {ckptr.directory} is closed; wrap an open one.')
  if options is None:
    best = _v1.best_n_policy(ckptr)
    options = options_lib.CheckpointManagerOptions(
        best_fn=best.get_metric_fn if best else None,
        best_mode='min' if best is not None and best.reverse else 'max',
    )
  options = options_lib.validate(options)
  _start(m, ckptr.directory, options, None, base_context=_v1.checkpointer_context(ckptr))
  _attach(m, ckptr)


def _step_logger(m, logger) -> step_logging.StepStatisticsLogger:
  """The logger v1 gets: the user's (v0's default: StandardLogger), through
  which the shim logs v0's step statistics (see `step_logging`)."""
  m._step_logger = step_logging.StepStatisticsLogger(logger)
  return m._step_logger


# --- Steps ------------------------------------------------------------------


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
  save = m._in_flight
  if save is None or save.reported or save.info is None or save.succeeded:
    return None
  return save.info


def _listed_infos(m) -> list[Any]:
  infos = list(m._infos)
  failed = _unreported_failure(m)
  if failed is not None and not any(info is failed for info in infos):
    at = len(infos)  # Where v0 appended it: after the steps saved before it.
    while at and infos[at - 1].time > failed.time:
      at -= 1  # Saved later (through the v1 Checkpointer).
    infos.insert(at, failed)
  return infos


def latest_step(m) -> int | None:
  latest = m._infos.latest()
  failed = _unreported_failure(m)
  if failed is not None and latest is not failed:  # Rare: look closer.
    latest = _listed_infos(m)[-1]
  return latest.step if latest else None


def best_step(m) -> int | None:
  best_fn = m._options.best_fn
  if best_fn is None:
    return own(m, 'latest_step', latest_step)
  ranked = sorted(
      (info for info in _listed_infos(m) if info.metrics is not None),
      key=lambda info: best_fn(info.metrics),
      reverse=(m._options.best_mode == 'min'),
  )
  return ranked[-1].step if ranked else None


def reload(m) -> None:
  m._ckptr.reload()
  if m._in_flight is not None:
    m._in_flight.unlist()  # v0 lists what is on disk now.


def reached_preemption(m, step: int) -> bool:
  return v0_utils.reached_preemption(step)


def should_save(m, step: int) -> bool:
  if m._options.read_only:
    absl_logging.warning('%s is read only, save will be skipped', m._directory)
    return False
  return _v1.should_save(m._ckptr, operator.index(step))


def _step_path(m, step: int, root: epath.Path | None = None) -> epath.Path:
  return (root or m._directory) / options_lib.step_name_format(
      m._options
  ).build_name(step)


def delete(m, step: int) -> None:
  if m._options.read_only:
    absl_logging.warning('%s is read only, delete will be skipped', m._directory)
    return
  if step not in own(m, 'all_steps', all_steps):
    raise FileNotFoundError(f'Requested deleting a non-existent step: {step}.')
  save = m._in_flight
  if save is not None and save.step == step:
    # v0 deletes a step under the save still writing it (which then fails,
    # or commits a step it no longer lists); the shim lets that save end.
    _quietly(m, m._ckptr.wait)
    save.finish()
    save.unlist()
    if save.failed:  # Listed only until its error is raised; no step files.
      return
  # v0 deletes at once; v1's `delete` would wait for the save in flight.
  _v1.delete_step(m._ckptr, operator.index(step))


# --- Save and restore -------------------------------------------------------


def _validate_args(m, items: Any, args: Any) -> None:
  """v0's checks of `items`/`args` (messages name the argument)."""
  if isinstance(items, v0_args.CheckpointArgs):
    raise ValueError(
        'Found an instance of `CheckpointArgs` provided for `items`. This may'
        ' be due to misuse of the newer API - make sure to specify the'
        ' argument keyword (e.g. `args=args`).'
    )
  if args is None:
    return
  if not isinstance(args, v0_args.CheckpointArgs):
    raise ValueError(
        f'Expected `args` of type `CheckpointArgs`; found {type(args)}.'
    )
  composite = isinstance(args, v0_args.Composite)
  if m._default_item and composite:
    raise ValueError(
        'Cannot provide `args` of type `Composite` when dealing with a'
        ' single, unnamed (default) checkpointable object.'
    )
  if not m._default_item and not composite:
    raise ValueError(
        'Must provide `args` of type `Composite` when dealing with'
        ' multiple checkpointable objects.'
    )


def _handler_for(m, name: str, arg: Any) -> type | None:
  """The handler `arg` saves or loads item `name` with (v0's registry lookup).

  With `item_names`/`item_handlers`/`checkpointers`, v0 knows only those
  item names and refuses others, before anything is written.
  """
  legacy = getattr(m, '_legacy', None)
  if legacy is not None and legacy.item_names is not None and arg is not None:
    if name not in legacy.item_names and name != args_lib.METRICS_ITEM:
      raise ValueError(
          f'Item "{name}" and args "{args_lib.shown(arg)}" does not match with any registered'
          f' handler! The manager was configured with items '
          f'{sorted(legacy.item_names)} (`item_names`, `item_handlers` or '
          '`checkpointers`); add the item there.'
      )
  return args_lib.handler_for(
      arg, m._known_items.get(name), legacy.by_args if legacy else None
  )


def _register(m, name: str, arg: Any, handler_type: type | None) -> None:
  """Binds an item name to a handler on first use, like v0's registry.

  As in v0, an item keeps the handler its first save or restore chose; args
  of another handler for it later are refused.
  """
  if handler_type is None:
    return
  known = m._known_items.get(name)
  if known is not None:
    if known is not handler_type:
      raise ValueError(
          f'Item "{name}" and args "{args_lib.shown(arg)}" does not match with any registered'
          f' handler! Item {name!r} is handled by {known.__qualname__}; pass'
          f' args of that handler for it.'
      )
    return
  m._registry.add(handler_type, checkpointable_name=name)
  m._known_items[name] = handler_type


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
  if m._default_item is None and args is not None:
    m._default_item = not isinstance(args, v0_args.Composite)
  _validate_args(m, items, args)
  args = legacy_lib.save_args(m, items, save_kwargs, args)
  named = args_lib.as_items(args, m._default_item)
  if args_lib.METRICS_ITEM in named:
    raise ValueError(
        "Item name 'metrics' in `args` is reserved by Orbax v1 for a step's"
        ' metrics (v0 allowed it without best_fn); rename the item.'
    )
  for name, arg in named.items():
    _handler_for(m, name, arg)  # v0 refuses unknown items and args first.
  if not force and not own(m, 'should_save', should_save, step):
    return False
  if m._closed:
    raise RuntimeError(
        f'save({step}) called after close(): this CheckpointManager is closed;'
        ' construct a new one to save more steps.'
    )
  own(m, 'wait_until_finished', wait_until_finished)  # v0: the last save's error, once a thread.
  previous = m._in_flight
  if previous is not None:
    _quietly(m, m._ckptr.wait)  # Even if a subclass's wait did not wait.
    previous.finish()
  if step in own(m, 'all_steps', all_steps):
    raise StepAlreadyExistsError(f'Checkpoint for step {step} already exists.')
  for name, arg in named.items():
    _register(m, name, arg, _handler_for(m, name, arg))
  # A None entry: v0 saves the item with its known handler and args None.
  for name, arg in named.items():
    if arg is None:
      if _item_handler(m, name) is None:
        raise ValueError(_NONE_FOR_UNKNOWN_ITEM.format(name=name))
      named[name] = args_lib.none_entry(_item_handler(m, name))
  tracked = m._options.best_fn is not None
  if tracked and metrics is None:
    absl_logging.warning('Requested `tracked_metric`; did not provide metrics.')
  write_metrics = tracked and not m._options.prevent_write_metrics
  if previous is not None:
    previous.raise_held()  # v0: its checkpointer's error, before saving.
  checkpointables = args_lib.save_checkpointables(named)
  inflight.forget_cached_listings(_step_path(m, step))  # gs://: as v0's sync save.
  # Args fields (save_args, ...) become v1 options of this save's Context.
  with (args_lib.save_context(m._context, named, checkpointables),
        step_logging.holding(m._step_logger) as statistics):
    args_lib.check_leaf_types(checkpointables, m._known_items)
    response = m._ckptr.save_checkpointables_async(
        step,
        checkpointables,
        force=True,  # The decision above is v0's; v1 must not decide again.
        # The step is known not to exist (checked above); without this, v1
        # checks again by building metadata for every existing step.
        overwrite=True,
        # v0 keeps metrics in memory for any preservation policy, and writes
        # them (falsy ones too) only with best_fn and no prevent_write_metrics.
        metrics=_v1.metrics_for_save(metrics, write=write_metrics),
        custom_metadata=custom_metadata,
    )
  m._in_flight = save = inflight.SaveInFlight(step, response, m._ckptr, m._infos)
  if save.info is not None and save.info.metrics is not None:
    save.info.metrics = metrics  # The caller's object, as v0 keeps it.
  if not m._options.enable_async_checkpointing:
    error = save.settle_sync()
    if error is not None:
      _keep_committed_step(m, save)
      raise error  # v0's synchronous save raises its error here, only here.
  step_logging.log_save(
      m._step_logger, statistics, step=step, directory=own(m, 'directory', directory),
      started=started, synchronous=not m._options.enable_async_checkpointing,
  )
  return True


def _is_committed(m, step_dir: epath.Path) -> bool:
  """v0's Checkpointer's test of a step directory: committed (on gs://, it
  holds `commit_success.txt`; elsewhere, it has its final name)."""
  kwargs = {}
  if options_lib.ATOMICITY:  # 0.12.3: v0's Checkpointer passes both.
    kwargs = {'temporary_path_cls': m._options.temporary_path_class,
              'atomicity_options': m._options.atomicity_options}
  return v0_path.step.is_path_finalized(step_dir, **kwargs)


def _keep_committed_step(m, save: inflight.SaveInFlight) -> None:
  """A synchronous save that failed after its step was committed (deleting
  old steps, `_finalize_checkpoint`): v0 added the step to its list before
  that cleanup, so it stays listed, and the next save's garbage collection
  meets the same step again. v1's inner manager drops a failed step; the
  shim lists it again, there, so that both hold."""
  info = save.info
  if info is None or any(i.step == save.step for i in m._infos):
    return
  step_dir = _step_path(m, save.step)
  if step_dir.exists() and _is_committed(m, step_dir):
    _v1.relist_step(m._ckptr, info)


# v0's CompositeCheckpointHandler, for a None entry of an item it knows no handler for.
_NONE_FOR_UNKNOWN_ITEM = (
    'Provided `None` for `CheckpointArgs`, and the `CheckpointHandler`'
    ' for item "{name}" was not configured. If saving, this'
    ' indicates that "{name}" was saved with `None` (an instance'
    ' of `CheckpointArgs` was expected). If restoring, providing'
    ' `None` for the item is valid, but only if the `CheckpointHandler'
    ' was already configured. Provide a `CheckpointArgs` subclass so'
    ' that `CompositeCheckpointHandler` will know how to restore the'
    ' item.'
)


def _quietly(m, fn, *a, **kw) -> Any:
  """Runs a v1 call, ignoring the error of the save in flight.

  v1's waits raise that save's error again (in each thread, through the inner
  v0 manager); `inflight.SaveInFlight` decides where it is raised, as v0 does.
  """
  try:
    return fn(*a, **kw)
  except Exception as e:  # pylint: disable=broad-exception-caught
    save = m._in_flight
    if save is not None and save.is_inner_error(e):
      return None
    if save is not None and not save.failed:
      save.finish()  # The error may have just been learnt by v1's thread.
      if save.is_inner_error(e):
        return None
    raise


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
      step = own(m, 'latest_step', latest_step)
    else:
      steps = v0_utils.checkpoint_steps(root)
      step = max(steps) if steps else None
    if step is None:
      raise FileNotFoundError(f'No steps found in {directory or m._directory}.')
  started = time.time()  # v0's step statistics time the restore from here.
  step_dir = _step_path(m, step, root)
  if m._default_item is None:
    m._default_item = (step_dir / args_lib.DEFAULT_ITEM).exists()
  _validate_args(m, items, args)
  args = legacy_lib.restore_args(m, items, restore_kwargs, args)
  # v0's restore waits for the save in flight to commit, and raises the
  # error its checkpointer still holds (not the save's own error).
  _quietly(m, m._ckptr.wait)
  if m._in_flight is not None:
    m._in_flight.finish()
    m._in_flight.raise_held()
  if not step_dir.exists():
    raise FileNotFoundError(f'Checkpoint at {step_dir} not found.')
  if not _is_committed(m, step_dir):  # v0's Checkpointer, before any item.
    raise ValueError(f'Found incomplete checkpoint at {step_dir}.')
  if args is None:
    wanted = _saved_items(m, step_dir)
  else:
    wanted = args_lib.as_items(args, m._default_item)
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
      if arg is None and args is not None and _item_handler(m, name) is None:
        raise ValueError(_NONE_FOR_UNKNOWN_ITEM.format(name=name))
      _register(m, name, arg, _handler_for(m, name, arg))
      args_lib.check_restore_arg(arg, name)
      recovery.check_restorable_types(step_dir / name, arg, m._known_items.get(name))
      if isinstance(arg, v0_args.JsonRestore):
        _require_v0_json_file(step_dir / name, m._known_items.get(name))
    plans = transforms_lib.plan(wanted, step_dir)
    wanted = transforms_lib.loads(wanted, plans)
    abstract = args_lib.restore_abstract(
        wanted,
        lambda name: recovery.restore_metadata(step_dir / name, m._known_items.get(name)),
        m._known_items,
        lambda name: _v1.pytree_structure(step_dir / name)[0],
    )
  # v1 reserves `metrics`; v0 returns it among the items of a bare restore.
  with_metrics = abstract is not None and args_lib.METRICS_ITEM in abstract
  if with_metrics:
    del abstract[args_lib.METRICS_ITEM]
  targets = {n: getattr(a, 'item', None) for n, a in (wanted or {}).items()}
  # Args fields (partial_restore, strict) become v1 options of this load.
  context = args_lib.load_context(m._context, wanted or {})
  loading = time.time()
  restored = args_lib.finish_restore(
      wanted or {}, _load(m, step_dir, abstract, targets, context)
  )
  restored = transforms_lib.finish(plans, restored)
  if with_metrics:
    restored[args_lib.METRICS_ITEM] = own(m, 'metrics', metrics, step)
  step_logging.log_restore(
      m._step_logger, step=step, directory=root, started=started,
      checkpointer_started=loading,
  )
  if m._default_item:
    if args_lib.DEFAULT_ITEM not in restored:
      raise ValueError(
          'Unable to retrieve default item. Please ensure that a handler for'
          ' the default item is registered using `handler_registry` when'
          ' initializing the `CheckpointManager`.'
      )
    return restored[args_lib.DEFAULT_ITEM]
  return v0_args.Composite(**restored)


def _recorded_handler(typestr: Any) -> type | None:
  """The shim's handler for a recorded v0 handler type name, chosen as v0's
  restore without args chooses: the handler class's registered restore args,
  default-constructed, select the handler (a user-written one's bridge)."""
  bridged = bridges.bridge_for_typestr(typestr)
  if bridged is not None or not isinstance(typestr, str):
    return bridged
  handler_cls = _v1.v0_handler_type(typestr)
  registered = bridges.registered_args(handler_cls) if handler_cls else None
  return args_lib.RECORDED_HANDLER.get(registered[1]) if registered else None


def _saved_items(m, step_dir: epath.Path) -> dict[str, None] | None:
  """What v0's `restore(step)` without args restores: every item it holds.

  Recorded items, as v0; v1 would leave out `metrics`, which v0 returns. Items
  older steps do not record are recognized by their files (v0 cannot).
  """
  recorded = recovery.recorded_items(step_dir) or {}
  existing = _existing_items(step_dir)
  unknown = [name for name in existing if _item_handler(m, name) is None]
  if unknown:  # v0 reads the step's metadata, warning twice per unknown item.
    for name in unknown + unknown:
      absl_logging.warning(_UNRESTORABLE, name)
  if m._default_item:
    wanted = {args_lib.DEFAULT_ITEM: None}
  else:
    wanted = {name: None for name in recorded}
  # v0 binds each item it restores to the handler its recorded type name
  # selects, so later metadata and restores know it.
  for name in existing:
    if name in recorded and name in unknown and name != args_lib.METRICS_ITEM:
      _register(m, name, None, _recorded_handler(recorded[name]))
  for name, handler_type in recovery.unrecorded_items(step_dir).items():
    if m._default_item and name != args_lib.DEFAULT_ITEM:
      continue
    if bridges.is_bridge(m._known_items.get(name)):
      continue  # A user-written handler's files.
    _register(m, name, f'(recognized by its files as {handler_type.__qualname__})',
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
  handlers = [_item_handler(m, n) for n in names]
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
  names = list(abstract) if abstract is not None else _existing_items(step_dir)
  with context or m._context, _warnings_as_v0(m, names):
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


# --- Metadata and metrics ---------------------------------------------------


def metrics(m, step: int) -> Any:
  path = _step_path(m, step) / args_lib.METRICS_ITEM
  try:
    return v0_handlers.JsonCheckpointHandler(
        filename=args_lib.METRICS_ITEM
    ).restore(path)
  except FileNotFoundError:
    return None


# v0's CompositeCheckpointHandler, for an item whose handler it does not know.
_UNRESTORABLE = (
    'Item "%s" was found in the checkpoint, but could not be restored. Please'
    ' provide a `CheckpointHandlerRegistry`, or call `restore` with an'
    ' appropriate `CheckpointArgs` subclass.'
)


def _existing_items(step_dir: epath.Path) -> list[str]:
  return sorted(p.name for p in step_dir.iterdir() if p.is_dir())


def _item_handler(m, name: str) -> type | None:
  """The handler v0's registry holds for an item (v0 always registers metrics)."""
  if name == args_lib.METRICS_ITEM:
    return bridges.MetricsHandler
  return m._known_items.get(name)


def _item_metadata_of(m, step_dir: epath.Path, name: str) -> Any:
  """v0: the item's handler's metadata; None, with v0's warning, where v0
  knows no handler for the item or its metadata file is missing."""
  handler_type = _item_handler(m, name)
  try:
    if bridges.is_bridge(handler_type):
      return handler_type.v0_handler.metadata(step_dir / name)
    if handler_type is not None:
      if issubclass(handler_type, v1.handlers.PyTreeHandler):
        return recovery.pytree_metadata(
            step_dir / name, bridges.item_type_handler_registry(handler_type))
      return None  # v0's JSON, Array and Proto handlers have no item metadata.
  except FileNotFoundError:
    pass
  absl_logging.warning(_UNRESTORABLE, name)
  return None


def _item_handlers(m, names: list[str], recorded: Any) -> dict[str, Any]:
  """v0's `StepMetadata.item_handlers`: the recorded names, completed with
  the known handlers' (None, with v0's warning, for unknown items)."""
  item_handlers = dict(recorded or {})
  for name in names:
    handler_type = _item_handler(m, name)
    if handler_type is None:
      absl_logging.warning(_UNRESTORABLE, name)
      item_handlers.setdefault(name, None)
    elif item_handlers.get(name) is None:
      item_handlers[name] = f'{handler_type.__module__}.{handler_type.__qualname__}'
  return item_handlers


def metadata(m, step: int | None = None):
  if step is None:
    return _root_metadata(m)
  step_dir = _step_path(m, step)
  if not step_dir.exists():
    raise FileNotFoundError(f'Checkpoint at {step_dir} not found.')
  step_metadata = v0_metadata.get_step_metadata(step_dir)
  # v0's CompositeCheckpointHandler.metadata: every item directory, read by
  # the handler this manager knows for it (from init, a save or a restore).
  names = _existing_items(step_dir)
  item_metadata = {name: _item_metadata_of(m, step_dir, name) for name in names}
  step_metadata.item_handlers = _item_handlers(m, names, step_metadata.item_handlers)
  if m._default_item is None:
    m._default_item = (step_dir / args_lib.DEFAULT_ITEM).exists()
  if m._default_item:
    if args_lib.DEFAULT_ITEM not in item_metadata:
      raise ValueError(
          'Unable to retrieve default item. Please ensure that a handler for'
          ' the default item is registered using `handler_registry` when'
          ' initializing the `CheckpointManager`.'
      )
    step_metadata.item_metadata = item_metadata[args_lib.DEFAULT_ITEM]
  else:
    step_metadata.item_metadata = _v1.ItemMetadataComposite(**item_metadata)
  if args_lib.METRICS_ITEM in step_metadata.item_handlers:
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
  return own(m, 'metadata', metadata, step).item_metadata


def _root_metadata(m):
  metadata_dir = m._directory / v0_manager.METADATA_ITEM_NAME
  if m._options.read_only and not metadata_dir.exists():
    return v0_metadata.RootMetadata(custom_metadata=m._root_metadata or {})
  return v0_metadata.RootMetadata(
      custom_metadata=dict(m._ckptr.root_metadata().custom_metadata or {})
  )


# --- Async and lifecycle ----------------------------------------------------


def wait_until_finished(m) -> None:
  save = m._in_flight
  _quietly(m, m._ckptr.wait)
  if save is not None:
    save.finish()
    save.raise_for_this_thread()  # Once in each thread, as v0.


def is_saving_in_progress(m) -> bool:
  return m._ckptr.is_saving_in_progress()


def check_for_errors(m) -> None:
  save = m._in_flight
  if save is not None:  # Never blocks: only a save that has ended.
    save.finish_if_done()
    save.raise_held()


def close(m) -> None:
  try:
    own(m, 'wait_until_finished', wait_until_finished)
  finally:
    # Even when the wait raised: v1 releases its threads and files.
    _quietly(m, m._ckptr.wait)
    _quietly(m, m._ckptr.close)
    m._closed = True
  if m._in_flight is not None:
    m._in_flight.raise_held()  # v0: its checkpointer's error, on closing.


def contextmanager(m):
  """`with mngr:` (v0's `__contextmanager__`): closes as v0's `self.close()`."""
  try:
    yield m
  finally:
    own(m, 'close', close)


# --- Option plumbing (see option_map.OPTION_ROWS) ---------------------------


def _apply_manager_options(m, options) -> None:
  """Options with no v1 equivalent, set on the v0 manager v1 runs on."""
  if options_lib.custom_deleter(options):
    _v1.replace_step_deleter(m._ckptr, options)
  if not options.enable_should_save_is_saving_in_progress_check:
    _v1.set_saving_in_progress_check(m._ckptr, False)
