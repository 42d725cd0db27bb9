"""Locates Orbax's v1 API and keeps every touch of Orbax internals in one place.

orbax_compat prefers v1's public API. The few private details it needs are
reached only through the functions below, each with the reason beside it, and
`tests/test_orbax_internals.py` fails loudly (naming the Orbax version) when an
Orbax release moves them.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any

from orbax.checkpoint import version as _version

SUPPORTED_ORBAX = ('0.12.8',)
"""orbax-checkpoint releases this shim is tested against."""

ORBAX_VERSION: str = _version.__version__


def _import_v1():
  for name in ('orbax.checkpoint.v1', 'orbax.checkpoint.experimental.v1'):
    try:
      return importlib.import_module(name)
    except ImportError:
      continue
  raise ImportError(
      f'orbax_compat needs the Orbax v1 API (orbax.checkpoint.v1 or '
      f'orbax.checkpoint.experimental.v1); orbax-checkpoint {ORBAX_VERSION} '
      f'has neither. Supported releases: {", ".join(SUPPORTED_ORBAX)}.'
  )


v1 = _import_v1()
training = v1.training
save_decision_policies = training.save_decision_policies
preservation_policies = training.preservation_policies


def orbax_version_note() -> str:
  """A sentence for errors caused by Orbax internals that moved."""
  return (
      f'orbax-checkpoint {ORBAX_VERSION} (orbax_compat is tested with '
      f'{", ".join(SUPPORTED_ORBAX)})'
  )


# --- Private touches -------------------------------------------------------


def _no_entry_error() -> type:
  """v1's error for a checkpointable it could not load.

  Why: v1 wraps every item's load failure into this (private) error with a
  message blaming the handler; the shim catches it to recover the item or
  to raise the real cause, as v0 does.
  """
  module = importlib.import_module(f'{v1.__name__}._src.handlers.registration')
  return module.NoEntryError


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
        f'update orbax_compat._v1 for {orbax_version_note()}.'
    ) from e


def checkpoint_infos(ckptr: Any) -> Any:
  """v1's cached, step-sorted `CheckpointInfos` (see `inner_manager`)."""
  return inner_manager(ckptr)._checkpoints  # pylint: disable=protected-access


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
        f'orbax_compat._v1 for {orbax_version_note()}.'
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
        f'update orbax_compat._v1 for {orbax_version_note()}.'
    ) from e
  old.close()
  manager._checkpoint_deleter = deleter.create_checkpoint_deleter(  # pylint: disable=protected-access
      manager.directory,
      name_format=name_format,
      primary_host=options.multiprocessing_options.primary_host,
      todelete_subdir=options.todelete_subdir,
      todelete_full_path=options.todelete_full_path,
      enable_background_delete=options.enable_background_delete,
      num_threads=options.num_deletion_threads,
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
        f'`_get_internal_metadata`; update orbax_compat._v1 for '
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
        f'settings where it did; update orbax_compat._v1 for '
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
        f'orbax_compat._v1 for {orbax_version_note()}.'
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
  the subclass's override at v0's point (orbax_compat/subclassing.py).
  """
  manager = inner_manager(ckptr)
  if not callable(getattr(type(manager), name, None)):  # pragma: no cover
    raise RuntimeError(
        f'orbax_compat: the v0 manager under v1 has no `{name}`; update '
        f'orbax_compat._v1 for {orbax_version_note()}.'
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
