"""Locates Orbax's v1 API and keeps every touch of Orbax internals in one place.

orbax_compat prefers v1's public API. The few private details it needs are
reached only through the functions below, each with the reason beside it, and
`tests/test_orbax_internals.py` fails loudly (naming the Orbax version) when an
Orbax release moves them.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
from typing import Any
import warnings

from orbax.checkpoint import version as _version

from orbax_compat.compat import release

ORBAX_VERSION: str = _version.__version__
SUPPORTED_ORBAX = release.SUPPORTED_ORBAX
_INSTALL = release.INSTALL


class UnsupportedOrbaxWarning(UserWarning):
  """orbax_compat runs on an Orbax outside its supported range."""


def unsupported_orbax(problem: str) -> str:
  """The one message for an Orbax the shim cannot run on."""
  return release.unsupported_orbax(ORBAX_VERSION, problem)


def _import_v1():
  """Orbax's v1 API: `orbax.checkpoint.experimental.v1` in the range.

  A later major release is expected to move it to `orbax.checkpoint.v1`; the
  shim then runs on it if it has everything the shim needs (checked below),
  with one warning, rather than failing in the middle of a training run.
  """
  try:
    moved = importlib.import_module('orbax.checkpoint.v1')
  except ImportError:
    moved = None
  if moved is not None:
    warnings.warn(
        f'orbax_compat: orbax-checkpoint {ORBAX_VERSION} has moved Orbax v1 to'
        f' orbax.checkpoint.v1, outside the supported range {SUPPORTED_ORBAX};'
        ' orbax_compat runs on it untested. Pin a supported release'
        f' ({_INSTALL}) or upgrade orbax_compat.',
        UnsupportedOrbaxWarning,
        stacklevel=2,
    )
    return moved
  try:
    return importlib.import_module('orbax.checkpoint.experimental.v1')
  except ImportError as e:
    raise ImportError(unsupported_orbax(
        'has no Orbax v1 API (orbax.checkpoint.experimental.v1)')) from e


def _missing_floor_features(v1_module: Any) -> list[str]:
  """What the shim needs from v1 that this Orbax lacks (all there in 0.12.0)."""
  missing = []
  training_module = getattr(v1_module, 'training', None)
  if not hasattr(training_module, 'Checkpointer'):  # 0.11.13
    missing.append('v1 training.Checkpointer')
  handlers = getattr(v1_module, 'handlers', None)
  registry = getattr(handlers, 'global_registry', lambda: None)()
  if not hasattr(registry, 'get_secondary_typestrs'):
    missing.append('v1 handler registry get_secondary_typestrs')
  try:  # v1's Context options became mutable in 0.12.0 (frozen before).
    context = v1_module.Context()
    context.file_options.path_permission_mode = (
        context.file_options.path_permission_mode
    )
  except (AttributeError, TypeError, dataclasses.FrozenInstanceError):
    missing.append('a mutable v1 Context')
  return missing


v1 = _import_v1()
_missing = _missing_floor_features(v1)
if _missing:
  raise ImportError(unsupported_orbax(
      f'lacks what orbax_compat needs ({", ".join(_missing)})'))
training = v1.training
save_decision_policies = training.save_decision_policies
preservation_policies = training.preservation_policies


def orbax_version_note() -> str:
  """A sentence for errors caused by Orbax internals that moved."""
  return (
      f'orbax-checkpoint {ORBAX_VERSION} (orbax_compat supports '
      f'{SUPPORTED_ORBAX})'
  )


# --- Public v1 surfaces that differ between releases -------------------------
#
# One capability per difference, detected (never by version string), with the
# release that introduced it.


def _takes(fn: Any, name: str) -> bool:
  return name in inspect.signature(fn).parameters


CHECKPOINTER_TAKES_LOGGER = _takes(training.Checkpointer.__init__, 'logger')
"""`training.Checkpointer(logger=)`: 0.12.8."""


V1_DELETES = callable(getattr(v1, 'delete', None))
"""v1 deletion (`v1.delete`; `training.Checkpointer.delete` runs on it): 0.12.8.

0.12.7 declares `training.Checkpointer.delete` but raises NotImplementedError;
earlier releases have none. (The shim deletes as v0 does on every release,
through the inner manager: `delete_step`.)
"""


# Capabilities the mapping's v1 code needs (mapping.members.CAPABILITIES),
# detected here: name -> whether the installed Orbax has it.
CAPABILITIES = {
    'v1_delete': V1_DELETES,
}


def capability_missing(name: str) -> str:
  """Why v1 code needing capability `name` does not run on the installed
  Orbax ('' where it does, or for no capability)."""
  if not name or CAPABILITIES[name]:
    return ''
  from orbax_compat.mapping import members  # pylint: disable=g-import-not-at-top

  needs = members.CAPABILITIES[name]
  return (f'{needs.what} needs orbax-checkpoint {needs.release}; the installed '
          f'{ORBAX_VERSION} has none: keep the v0 call until you upgrade')


def Checkpointer(directory: Any, *, logger: Any = None, **kwargs: Any) -> Any:  # pylint: disable=invalid-name
  """v1's `training.Checkpointer(directory, logger=logger, **kwargs)`.

  Before 0.12.8 (no `logger=`), the logger is set on the v0 manager v1 runs
  on (see `set_manager_logger`), which logs each save to it, as v0 does.
  """
  if CHECKPOINTER_TAKES_LOGGER:
    return training.Checkpointer(directory, logger=logger, **kwargs)
  ckptr = training.Checkpointer(directory, **kwargs)
  if logger is not None:
    set_manager_logger(ckptr, logger)
  return ckptr


# --- Private touches -------------------------------------------------------


def _no_entry_error() -> type:
  """v1's error for a checkpointable it could not load.

  Why: v1 wraps every item's load failure into this (private) error with a
  message blaming the handler; the shim catches it to recover the item or
  to raise the real cause, as v0 does.
  """
  try:
    module = importlib.import_module(f'{v1.__name__}._src.handlers.registration')
    return module.NoEntryError
  except (ImportError, AttributeError) as e:
    raise ImportError(unsupported_orbax(
        f'has no {v1.__name__}._src.handlers.registration.NoEntryError')) from e


NoEntryError = _no_entry_error()


def active_context() -> Any:
  """The v1 Context active where v1 constructs a handler (its `with ctx:`).

  Why: `v1.Context()` is a new Context with default options, not the active
  one, and v1 exports no accessor for the active one; v1's own handlers
  capture it at construction through this private function. The shim's
  bridges need the manager's primary host, barrier key prefix and timeout
  in the save's background part, in a thread the active Context does not
  reach, so they capture it the same way.
  """
  module = importlib.import_module(f'{v1.__name__}._src.context.context')
  return module.get_context()


def inner_manager(ckptr: Any) -> Any:
  """The v0 CheckpointManager that v1's training.Checkpointer runs on.

  Why: v1 answers `latest` and `checkpoints` by sorting and rebuilding its
  whole list of checkpoints on every call (O(n log n)), where v0 answers
  `latest_step()` in O(1). The shim reads the same cached list v1 reads.
  """
  try:
    return ckptr._manager  # pylint: disable=protected-access
  except AttributeError as e:  # pragma: no cover - only on an Orbax change.
    raise RuntimeError(
        'orbax_compat: v1 training.Checkpointer no longer has `_manager`; '
        f'update orbax_compat.compat.orbax for {orbax_version_note()}.'
    ) from e


def checkpoint_infos(ckptr: Any) -> Any:
  """v1's cached, step-sorted `CheckpointInfos` (see `inner_manager`)."""
  return inner_manager(ckptr)._checkpoints  # pylint: disable=protected-access


def listed_infos(infos: Any) -> list[Any]:
  """A snapshot of a `CheckpointInfos`' list, oldest first, without its lock.

  Why: `CheckpointInfos` takes a Python-level `TimeoutRLock` for every read
  (`latest()`, iteration), which costs more than v0's whole `latest_step()`
  answer besides; the shim asks on every step query. Its writers replace
  the list (`set`) or append to it (`append`), each one bytecode under the
  GIL, so copying the current list is as consistent as a locked read.
  """
  return list(infos._checkpoint_infos)  # pylint: disable=protected-access


def latest_info(infos: Any) -> Any:
  """The last `CheckpointInfo` of a `CheckpointInfos`, or None (no lock: see
  `listed_infos`)."""
  listed = infos._checkpoint_infos  # pylint: disable=protected-access
  return listed[-1] if listed else None


def relist_step(ckptr: Any, info: Any) -> None:
  """Lists a step again on the inner v0 manager (appended: the latest step),
  once its failed save's error has been raised.

  Why: the inner manager's `wait_until_finished` drops a step whose save
  failed (`_checkpoints.delete_if`), also when only the cleanup after the
  commit failed (deleting old steps), and it does so again at each later
  wait, as long as it holds the failed finalize thread. v0's synchronous
  save has no finalize thread and keeps such a step listed; its next save
  garbage-collects with it. v1 has no call that lists a step.
  """
  manager = inner_manager(ckptr)
  manager._finalize_thread.set(None)  # pylint: disable=protected-access
  checkpoint_infos(ckptr).append(info)


def should_save(ckptr: Any, step: int) -> bool:
  """v1's `should_save`, without entering the Checkpointer's Context.

  Why: `ckptr.should_save` enters a copy of its Context on every call (about
  60 us, 6x v0's whole answer, measured in bench/), only to call this same
  v0 manager method, whose options v1 already derived from that Context.
  """
  return inner_manager(ckptr).should_save(step)


def check_for_errors(ckptr: Any) -> None:
  """Raises an error the last save's checkpointer still holds, without waiting.

  Why: v1 reports a save's errors only through the AsyncResponse of the save
  (or `wait`), which blocks, and only the first of them; v0's
  `check_for_errors()` never blocks. v1 gives each save a checkpointer of its
  own (with its own metadata store), which the inner manager holds until the
  next save: when a save fails twice (its data and its metadata file, on a
  full disk), the second error stays there (see `inflight.SaveInFlight`).
  Each call raises one held error and clears it.
  """
  inner_manager(ckptr).check_for_errors()


def _item_metadata_composite() -> type:
  """v0's plain `Composite` (the base of `args.Composite`), for item metadata.

  Why: v0's `item_metadata()` returns this base class, which Orbax does not
  export; `args.Composite` is a subclass and would compare as another type.
  """
  from orbax.checkpoint import args as v0_args  # pylint: disable=g-import-not-at-top

  base = v0_args.Composite.__mro__[1]
  if base.__name__ != 'Composite':  # pragma: no cover - only on an Orbax change.
    raise RuntimeError(
        'orbax_compat: args.Composite no longer derives from Composite; update '
        f'orbax_compat.compat.orbax for {orbax_version_note()}.'
    )
  return base


ItemMetadataComposite = _item_metadata_composite()


def replace_step_deleter(ckptr: Any, options: Any) -> None:
  """Rebuilds v1's step deleter with v0's deletion options.

  Why: v1 builds the deleter of the v0 manager it runs on with
  `enable_background_delete=False` and no `todelete_subdir`; v0's options
  `todelete_subdir`, `enable_background_delete` and `num_deletion_threads`
  have no v1 equivalent. v1 deletes (on `delete` and garbage collection)
  through this same deleter, so rebuilding it honours them.
  """
  from orbax.checkpoint._src.path import deleter  # pylint: disable=g-import-not-at-top

  manager = inner_manager(ckptr)
  try:
    old = manager._checkpoint_deleter  # pylint: disable=protected-access
    name_format = manager._step_name_format  # pylint: disable=protected-access
  except AttributeError as e:  # pragma: no cover - only on an Orbax change.
    raise RuntimeError(
        'orbax_compat: the v0 manager under v1 has no `_checkpoint_deleter`; '
        f'update orbax_compat.compat.orbax for {orbax_version_note()}.'
    ) from e
  threads = {}
  # `num_deletion_threads` (and the deleter's `num_threads`): 0.12.1.
  if getattr(options, 'num_deletion_threads', None) is not None:
    threads['num_threads'] = options.num_deletion_threads
  old.close()
  manager._checkpoint_deleter = deleter.create_checkpoint_deleter(  # pylint: disable=protected-access
      manager.directory,
      name_format=name_format,
      primary_host=options.multiprocessing_options.primary_host,
      todelete_subdir=options.todelete_subdir,
      todelete_full_path=options.todelete_full_path,
      enable_background_delete=options.enable_background_delete,
      **threads,
  )


def set_saving_in_progress_check(ckptr: Any, enabled: bool) -> None:
  """v0's `enable_should_save_is_saving_in_progress_check`, on v1's manager.

  Why: v1 always checks for a save in progress before deciding to save;
  the option only exists on the v0 manager's options that v1 builds.
  """
  inner_manager(ckptr)._options.enable_should_save_is_saving_in_progress_check = enabled  # pylint: disable=protected-access


def add_per_process_signal_prefix() -> None:
  """v0's `enable_per_process_directory_creation`: per-process signal keys.

  Why: v0 appends the process index to Orbax's global awaitable-signals
  prefix on each such construction; v1 has no option for it.
  """
  import jax  # pylint: disable=g-import-not-at-top
  from orbax.checkpoint._src.futures import future  # pylint: disable=g-import-not-at-top

  future.AwaitableSignalsContract.awaitable_signals_contract_prefix += (
      f'_{jax.process_index()}'
  )


@functools.cache
def _with_truth(cls: type, truth: bool) -> type:
  """`cls` with a fixed truth value (see `metrics_for_save`)."""
  return type(cls.__name__, (cls,), {'__bool__': lambda self: truth})


def metrics_for_save(metrics: Any, *, write: bool) -> Any:
  """Metrics as v1's save must get them to write them exactly when v0 does.

  Why: v1 writes a step's metrics when they are truthy and only then
  (`saving.execution.add_internal_checkpointables`: `if metrics:`), and keeps
  them in memory for its preservation policy either way. v0 keeps any given
  metrics in memory (a `preservation_policy` ranking by metrics sees them
  even without `best_fn`), and writes them, falsy ones (`0.0`, `{}`) too,
  exactly when `best_fn` is set and `prevent_write_metrics` is not. Metrics
  whose truth value disagrees with `write` are passed as an equal value of
  a subclass of their type with the wanted truth value (the caller puts the
  original object back in the step's `CheckpointInfo`). A type that cannot
  be subclassed so (bool, jax arrays, classes with other constructors) is
  passed as it is when writing, and dropped from memory otherwise.
  """
  if metrics is None:
    return None
  try:
    if bool(metrics) == write:
      return metrics
    return _with_truth(type(metrics), write)(metrics)
  except Exception:  # pylint: disable=broad-exception-caught
    return metrics if write else None


def delete_step(ckptr: Any, step: int) -> None:
  """v0's `delete(step)`, on the v0 manager v1 runs on.

  Why: v1's `Checkpointer.delete` first waits for the save in flight to
  finish (`delete_async` calls the inner manager's `wait_until_finished`),
  raises that save's error, and refuses negative steps; v0's `delete` does
  none of these (deleting an old step never waits for the save in flight).
  The inner manager's own `delete` is v0's: the same deleter (with v0's
  deletion options, see `replace_step_deleter`), the same barrier across
  processes, and the same update of the list of steps.
  """
  inner_manager(ckptr).delete(step)


def async_checkpointer_timeout(checkpointer: Any) -> int:
  """A v0 AsyncCheckpointer's timeout, which v0's legacy init adopts.

  Why: v0's manager reads it from the same private field to build its
  AsyncOptions when given legacy `checkpointers`; Orbax has no accessor.
  """
  return checkpointer._async_manager._timeout_secs  # pylint: disable=protected-access


def v0_handler_type(typestr: str) -> type | None:
  """The v0 handler class a recorded handler type name resolves to, or None.

  Why: restoring without args, v0 resolves a step's item handlers by their
  recorded names through this (private) registry; the shim resolves
  user-written handlers' names the same way.
  """
  from orbax.checkpoint._src.handlers import handler_type_registry  # pylint: disable=g-import-not-at-top

  try:
    return handler_type_registry.get_handler_type(typestr)
  except (KeyError, ValueError):
    return None


def legacy_handler_wrapper(handler: Any) -> Any:
  """v0's wrapper of a handler that has no registered args classes.

  Why: v0's manager wraps such handlers (legacy `items=` use) with this
  private helper; the shim must wrap them identically to save the same files.
  """
  from orbax.checkpoint._src.handlers import composite_checkpoint_handler  # pylint: disable=g-import-not-at-top

  return composite_checkpoint_handler.get_legacy_handler_wrapper(handler)


def pytree_structure(item_dir: Any) -> tuple[Any, bool | None]:
  """The tree v0's PyTreeCheckpointHandler reads a pytree item into.

  Why: restoring with `transforms` or `legacy_transform_fn`, v0 reads the
  checkpoint into this tree (v0's containers, a `ValueMetadataEntry` per
  leaf, which says whether v0 reads it) and hands it to `multi_value_fn`s
  and to `legacy_transform_fn`; the public `metadata()` describes the same
  leaves with other types. Also returns whether the arrays are zarr3 (from
  the same file), which v0 puts into the ParamInfos it builds.
  """
  from orbax.checkpoint import handlers  # pylint: disable=g-import-not-at-top

  handler = handlers.PyTreeCheckpointHandler()
  try:
    return handler._get_internal_metadata(item_dir)  # pylint: disable=protected-access
  except AttributeError as e:  # pragma: no cover - only on an Orbax change.
    raise RuntimeError(
        'orbax_compat: PyTreeCheckpointHandler no longer has '
        f'`_get_internal_metadata`; update orbax_compat.compat.orbax for '
        f'{orbax_version_note()}.'
    ) from e
  finally:
    handler.close()


def checkpointer_context(ckptr: Any) -> Any:
  """The v1 Context a training.Checkpointer runs its calls in.

  Why: `orbax_compat.from_v1` runs v0 calls on an existing Checkpointer with
  that Checkpointer's own options (array format, async and file options);
  v1 keeps its Context private.
  """
  return ckptr._context  # pylint: disable=protected-access


def is_closed(ckptr: Any) -> bool:
  """Whether `ckptr.close()` ran.

  Why: v1 keeps no closed flag (and still saves after close, half-working);
  closing shuts the executor of the inner v0 manager's metadata store.
  """
  store = inner_manager(ckptr)._non_blocking_metadata_store  # pylint: disable=protected-access
  executor = getattr(store, '_single_thread_executor', None)
  return bool(getattr(executor, '_shutdown', False))


def best_n_policy(ckptr: Any) -> Any:
  """The BestN preservation policy of a Checkpointer (alone or in an Any), or None.

  Why: `from_v1` answers v0's `best_step()` with the policy's metric function;
  the Checkpointer keeps its policies on the inner v0 manager's options.
  """
  policy = inner_manager(ckptr)._options.preservation_policy  # pylint: disable=protected-access
  for candidate in [policy, *getattr(policy, 'policies', ())]:
    if isinstance(candidate, preservation_policies.BestN):
      return candidate
  return None


def v0_handler_settings(handler: Any) -> dict[str, Any] | None:
  """The constructor settings an instance of one of Orbax's own v0 handlers holds.

  Why: v0's handlers keep their constructor arguments only in private fields
  (PyTree/Standard: on the handler and its `BasePyTreeCheckpointHandler`;
  Json/Proto: `_filename`, `_primary_host`; Array: `_checkpoint_name`), and
  Orbax has no accessor. The shim carries each setting of the instance a user
  configured for an item over to that item's v1 handler and Context. None for
  other handler classes. `multiprocessing_options` only leaves `primary_host`
  behind in v0's handlers, so that is the one part of it reported.
  """
  from orbax.checkpoint import handlers  # pylint: disable=g-import-not-at-top
  from orbax.checkpoint._src.handlers import base_pytree_checkpoint_handler as base  # pylint: disable=g-import-not-at-top

  # pylint: disable=protected-access
  try:
    cls = type(handler)
    if cls is handlers.StandardCheckpointHandler:
      return v0_handler_settings(handler._impl)
    if cls is handlers.PyTreeCheckpointHandler:
      impl = handler._handler_impl
      if type(impl) is not base.BasePyTreeCheckpointHandler:
        return {'handler_impl': impl}
      return {
          'aggregate_filename': handler._aggregate_filename,
          'save_concurrent_bytes': impl._save_concurrent_bytes,
          'restore_concurrent_bytes': impl._restore_concurrent_bytes,
          'save_device_host_concurrent_bytes': impl._save_device_host_concurrent_bytes,
          'memory_limit_bytes': impl._max_save_device_host_concurrent_bytes,
          'use_ocdbt': impl._use_ocdbt,
          'use_zarr3': impl._use_zarr3,
          'use_compression': impl._use_compression,
          'primary_host': impl._primary_host,
          'type_handler_registry': impl._type_handler_registry,
          'enable_post_merge_validation': impl._enable_post_merge_validation,
          'pytree_metadata_options': impl._pytree_metadata_options,
          'array_metadata_validator': impl._array_metadata_validator,
          'enable_pinned_host_transfer': impl._enable_pinned_host_transfer,
          'is_prioritized_key_fn': impl._is_prioritized_key_fn,
      }
    if cls in (handlers.JsonCheckpointHandler, handlers.ProtoCheckpointHandler):
      return {'filename': handler._filename, 'primary_host': handler._primary_host}
    if cls is handlers.ArrayCheckpointHandler:
      return {'checkpoint_name': handler._checkpoint_name}
  except AttributeError as e:  # pragma: no cover - only on an Orbax change.
    raise RuntimeError(
        f'orbax_compat: {type(handler).__qualname__} no longer keeps its '
        f'settings where it did; update orbax_compat.compat.orbax for '
        f'{orbax_version_note()}.'
    ) from e
  # pylint: enable=protected-access
  return None


# v0 ArrayHandler (jax.Array TypeHandler) field -> its constructor argument.
_ARRAY_HANDLER_FIELDS = {
    '_primary_host': 'primary_host',
    '_replica_id': 'replica_id',
    '_use_replica_parallel': 'use_replica_parallel',
    '_min_slice_bytes_for_replica_parallel': 'min_slice_bytes_for_replica_parallel',
    '_max_replicas_for_replica_parallel': 'max_replicas_for_replica_parallel',
    '_enable_write_sharding_file': 'enable_write_sharding_file',
    '_array_metadata_store': 'array_metadata_store',
    '_enable_replica_parallel_separate_folder': 'enable_replica_parallel_separate_folder',
    '_metadata_key': 'metadata_key',
    '_dispatcher': 'dispatcher',
    '_callback': 'callback',
}


def array_type_handler_settings(handler: Any) -> dict[str, Any]:
  """The constructor settings of a v0 `type_handlers.ArrayHandler` instance.

  Why: v0 serializes jax.Array leaves through the ArrayHandler registered for
  them (`register_type_handler`, or a PyTree handler's `type_handler_registry`),
  whose settings (array metadata store, replica parallelism, primary host ...)
  live in private fields; v1 builds its ArrayHandler from Context options, so
  the shim reads them to set those options.
  """
  # pylint: disable=protected-access
  missing = [f for f in _ARRAY_HANDLER_FIELDS if not hasattr(handler, f)]
  if missing:  # pragma: no cover - only on an Orbax change.
    raise RuntimeError(
        f'orbax_compat: ArrayHandler no longer has {missing}; update '
        f'orbax_compat.compat.orbax for {orbax_version_note()}.'
    )
  return {arg: getattr(handler, f) for f, arg in _ARRAY_HANDLER_FIELDS.items()}


def array_metadata_store() -> Any:
  """A new v0 ArrayMetadata `Store`, as v0's default jax.Array handler has.

  Why: the Store class lives in a private module; the shim compares a
  registered jax.Array TypeHandler with v0's default one
  (`ArrayHandler(array_metadata_store=Store())`).
  """
  from orbax.checkpoint._src.metadata import array_metadata_store as store  # pylint: disable=g-import-not-at-top

  return store.Store()


def set_v0_hook(ckptr: Any, name: str, hook: Any) -> None:
  """Makes the v0 manager v1 runs on call `hook` where v0 calls `self.<name>`.

  Why: v0 subclasses override protected hooks that v0's manager calls through
  `self` at fixed points (`_finalize_checkpoint` in the finalize thread after
  commit, `_load_checkpoint_infos` on reload, `_get_old_steps_to_remove` on
  each save). v1's training.Checkpointer runs that same v0 code on its inner
  manager and has no public hook for them; an instance attribute there puts
  the subclass's override at v0's point (orbax_compat/runtime/subclassing.py).
  """
  manager = inner_manager(ckptr)
  if not callable(getattr(type(manager), name, None)):  # pragma: no cover
    raise RuntimeError(
        f'orbax_compat: the v0 manager under v1 has no `{name}`; update '
        f'orbax_compat.compat.orbax for {orbax_version_note()}.'
    )
  setattr(manager, name, hook)


def run_v0_hook(ckptr: Any, name: str, *args: Any, **kwargs: Any) -> Any:
  """v0's own implementation of hook `name`, on the v0 manager v1 runs on.

  Why: a subclass's `super()._finalize_checkpoint(step)` (and the like) must
  do what v0's does, with the state v0's has: that manager's steps, options
  and primary host. Looked up on its class, past an override `set_v0_hook`
  installed on the instance.
  """
  manager = inner_manager(ckptr)
  return getattr(type(manager), name)(manager, *args, **kwargs)


def set_manager_logger(ckptr: Any, logger: Any) -> None:
  """`logger=` before 0.12.8: the logger of the v0 manager v1 runs on.

  Why: v1's `training.Checkpointer` takes no logger before 0.12.8. The v0
  manager it builds logs each save's step statistics to its `_logger` (what
  v0's `logger=` sets), so setting it logs the saves v0 would log.
  """
  manager = inner_manager(ckptr)
  if not hasattr(manager, '_logger'):  # pragma: no cover - only on an Orbax change.
    raise RuntimeError(
        'orbax_compat: the v0 manager under v1 has no `_logger`; update '
        f'orbax_compat.compat.orbax for {orbax_version_note()}.'
    )
  manager._logger = logger  # pylint: disable=protected-access


def _v0_item_directories_take_manager_options() -> bool:
  """v0's manager hands item directories its file options in every form: 0.12.3.

  0.12.3 added `CompositeOptions.atomicity_options` and, in the same change,
  passes the manager's `file_options`, `temporary_path_class` and
  `atomicity_options` to its CompositeCheckpointHandler in every init form.
  """
  from orbax.checkpoint._src.handlers import composite_checkpoint_handler  # pylint: disable=g-import-not-at-top

  return 'atomicity_options' in {
      f.name for f in dataclasses.fields(composite_checkpoint_handler.CompositeOptions)
  }


V0_ITEM_DIRECTORIES_TAKE_MANAGER_OPTIONS = _v0_item_directories_take_manager_options()


def v0_item_directories(ckptr: Any, *, file_options: bool) -> None:
  """Before 0.12.3: item directories made as that release's v0 manager makes them.

  Why: v0 before 0.12.3 builds its CompositeCheckpointHandler without the
  manager's `temporary_path_class` (in every init form) and, for a manager
  built from a handler registry (neither `checkpointers` nor `item_names` nor
  `item_handlers`), without its `file_options`: item directories get Orbax's
  default temporary path class and permission mode. v1 hands both to the
  CompositeCheckpointHandler it builds for each save and sets on the v0
  manager it runs on; the shim clears them on that handler before each save.
  `file_options` says whether v0's init form keeps them.
  """
  manager = inner_manager(ckptr)
  save = type(manager).save

  def save_with_v0_item_directories(*args: Any, **kwargs: Any) -> Any:
    handler = manager._checkpointer.handler  # pylint: disable=protected-access
    handler._temporary_path_class = None  # pylint: disable=protected-access
    if not file_options:
      handler._file_options = None  # pylint: disable=protected-access
    return save(manager, *args, **kwargs)

  manager.save = save_with_v0_item_directories


# Checked at import, so an Orbax that moved them fails there, with one clear
# message, never inside a save: the private names the touches above reach
# through modules (attributes of objects are checked when a manager is built).
_PRIVATE_NAMES = (
    ('orbax.checkpoint._src.path.deleter', 'create_checkpoint_deleter'),
    ('orbax.checkpoint._src.futures.future', 'AwaitableSignalsContract'),
    ('orbax.checkpoint._src.handlers.handler_type_registry', 'get_handler_type'),
    ('orbax.checkpoint._src.handlers.composite_checkpoint_handler',
     'get_legacy_handler_wrapper'),
    ('orbax.checkpoint.handlers', 'PyTreeCheckpointHandler._get_internal_metadata'),
    (f'{v1.__name__}._src.context.context', 'get_context'),
)


def _missing_private_names() -> list[str]:
  missing = []
  for module, name in _PRIVATE_NAMES:
    try:
      target = importlib.import_module(module)
      for part in name.split('.'):
        target = getattr(target, part)
    except (ImportError, AttributeError):
      missing.append(f'{module}.{name}')
  return missing


if _missing_private_names():
  raise ImportError(unsupported_orbax(
      'lacks Orbax internals orbax_compat relies on '
      f'({", ".join(_missing_private_names())})'))


def global_type_handler_registry() -> Any:
  """v0's global TypeHandlerRegistry (what `register_type_handler` adds to).

  Why: it lives in a private module, and its class (which the public
  `TypeHandlerRegistry` Protocol cannot check at run time) tells a registry
  from other settings.
  """
  from orbax.checkpoint._src.serialization import type_handler_registry  # pylint: disable=g-import-not-at-top

  return type_handler_registry.GLOBAL_TYPE_HANDLER_REGISTRY


def v0_type_handler_entries(registry: Any) -> list[tuple[Any, Any]]:
  """The (type predicate, TypeHandler) entries of a v0 TypeHandlerRegistry, in order.

  `registry` None is v0's global one (`register_type_handler`). Why: v0's
  registry keeps what `register_type_handler` adds only in its private
  `_type_registry` (predicates, not types) and has no listing, and the global
  one lives in a private module; the shim runs the user's own TypeHandlers
  for the types v1 has no LeafHandler for (`add_v0_type_handlers`).
  """
  if registry is None:
    registry = global_type_handler_registry()
  entries = getattr(registry, '_type_registry', None)
  if entries is None:  # pragma: no cover - only on an Orbax change.
    raise RuntimeError(
        'orbax_compat: the v0 TypeHandlerRegistry has no `_type_registry`; '
        f'update orbax_compat.compat.orbax for {orbax_version_note()}.'
    )
  return list(entries)


def v0_standard_type_handler_classes() -> tuple[type, ...]:
  """The classes of v0's own TypeHandlers (its default registry's).

  Why: the default registry (`_DEFAULT_TYPE_HANDLERS`) is private; the shim
  tells the user's TypeHandlers from v0's own, which v1 replaces.
  """
  from orbax.checkpoint._src.serialization import type_handler_registry  # pylint: disable=g-import-not-at-top

  return tuple({type(h) for _, h in type_handler_registry._DEFAULT_TYPE_HANDLERS})  # pylint: disable=protected-access


@dataclasses.dataclass(frozen=True, eq=False)
class RecordedType:
  """An abstract leaf v1 restores by the typestr the checkpoint records.

  v1 derives a leaf's v0 `restore_type` from its abstract leaf, and leaves it
  None (v0 then picks the TypeHandler by the recorded typestr) only for
  leaves that look like neither arrays nor scalars: this one. It carries the
  leaf's v0 `RestoreArgs` (None: v0's default `RestoreArgs()`), which v0
  hands to the user's TypeHandler (see `_OwnRestoreArgs`).
  """

  restore_args: Any = None


RECORDED_TYPE = RecordedType()


class _OwnRestoreArgs:
  """A user's v0 TypeHandler, deserializing with the RestoreArgs v0 gives it.

  Why: v1 hands each leaf's TypeHandler the `V0RestoreArgs` it builds from
  the leaf's abstract leaf (`pytree_handler.create_v0_restore_args`); v0
  hands it the user's own RestoreArgs object (a subclass with fields of its
  own, e.g. the live object to restore into), or `RestoreArgs()`. Every
  other member is the handler's own.
  """

  def __init__(self, handler: Any):
    self._handler = handler

  def __getattr__(self, name: str) -> Any:
    return getattr(self._handler, name)

  async def deserialize(self, infos: Any, args: Any = None) -> Any:
    if args is not None:
      args = [_own_restore_args(a) for a in args]
    return await self._handler.deserialize(infos, args)


def _own_restore_args(arg: Any) -> Any:
  recorded = getattr(arg, 'abstract_leaf', None)
  if not isinstance(recorded, RecordedType):
    return arg
  if recorded.restore_args is None:
    from orbax.checkpoint import type_handlers  # pylint: disable=g-import-not-at-top

    return type_handlers.RestoreArgs()
  return recorded.restore_args


class _LeafTypes:
  """v1's LeafHandlerRegistry for validation, plus the types of added TypeHandlers."""

  def __init__(self, registry: Any, predicates: list[Any]):
    self._registry = registry
    self._predicates = predicates

  def _added(self, ty: Any) -> bool:
    return isinstance(ty, type) and (
        issubclass(ty, RecordedType) or any(matches(p, ty) for p in self._predicates))

  def is_handleable(self, ty: Any) -> bool:
    return self._added(ty) or self._registry.is_handleable(ty)

  def is_abstract_handleable(self, ty: Any) -> bool:
    return self._added(ty) or self._registry.is_abstract_handleable(ty)

  def __getattr__(self, name: str) -> Any:
    return getattr(self._registry, name)


def matches(predicate: Any, ty: type) -> bool:
  """Whether a v0 registry entry's predicate takes type `ty` (False if it raises)."""
  try:
    return bool(predicate(ty))
  except Exception:  # pylint: disable=broad-except
    return False


def add_v0_type_handlers(handler: Any, entries: list[tuple[Any, Any]]) -> None:
  """Makes v1's PyTreeHandler `handler` serialize some leaf types with v0 TypeHandlers.

  Why: v1's PyTreeHandler runs v0's BasePyTreeCheckpointHandler on a v0
  TypeHandlerRegistry it builds from v1's LeafHandlers (`_handler_impl.
  _type_handler_registry`), and checks each leaf type against its
  LeafHandlerRegistry first (`_leaf_handler_registry`). A v0 user's
  `register_type_handler(T, MyHandler())` has no place in either, so the
  shim appends the user's entries to the first (as v0's registry holds them:
  after the standard ones, found by type or by typestr; each handler wrapped
  to get its own RestoreArgs, `_OwnRestoreArgs`) and lets the second accept
  their types.
  """
  # pylint: disable=protected-access
  try:
    registry = handler._handler_impl._type_handler_registry
    leaf_registry = handler._leaf_handler_registry
    type_entries, typestr_entries = registry._type_registry, registry._typestr_registry
  except AttributeError as e:  # pragma: no cover - only on an Orbax change.
    raise RuntimeError(
        'orbax_compat: v1\'s PyTreeHandler no longer keeps its v0 TypeHandler '
        f'registry where it did; update orbax_compat.compat.orbax for {orbax_version_note()}.'
    ) from e
  for predicate, type_handler in entries:
    type_handler = _OwnRestoreArgs(type_handler)
    type_entries.append((predicate, type_handler))
    typestr_entries[type_handler.typestr()] = type_handler
  handler._leaf_handler_registry = _LeafTypes(leaf_registry, [p for p, _ in entries])
  # pylint: enable=protected-access
