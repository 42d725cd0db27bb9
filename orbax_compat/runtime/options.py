"""v0 `CheckpointManagerOptions` -> v1 Checkpointer settings.

`mapping.options.OPTIONS` says, per field, where it goes in v1 (data);
`checkpointer_kwargs` builds v1's save-decision and preservation policies
exactly as v0 derives them from the same options, so both make the same
decisions, and `configure_context` sets v1's Context options.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
import dataclasses
from typing import Any

from orbax.checkpoint import checkpoint_manager as _v0_manager
from orbax.checkpoint import options as v0_options
from orbax.checkpoint import path as v0_path

from orbax_compat.compat.orbax import ORBAX_VERSION
from orbax_compat.compat.orbax import preservation_policies as pp
from orbax_compat.compat.orbax import save_decision_policies as sdp
from orbax_compat.compat.orbax import v1
from orbax_compat.mapping.options import BY_FIELD
from orbax_compat.mapping.options import OPTIONS

CheckpointManagerOptions = _v0_manager.CheckpointManagerOptions


def _refuse(field: str, value: Any, reason: str) -> None:
  raise NotImplementedError(
      f'CheckpointManagerOptions.{field}={value!r} cannot run on Orbax v1: '
      f'{reason}'
  )


# Options that differ between Orbax releases: one check each, with the
# release that introduced it (v0's options and v1's Context change together).
# Fields only some releases have (`num_deletion_threads`: 0.12.1+;
# `should_keep_fn`: 0.12.0-0.12.1; `FileOptions.skip_sync_file_validations`:
# 0.12.5+) are read where the user's options have them.

ATOMICITY = hasattr(v0_options, 'AtomicityOptions') and hasattr(v1.Context, 'atomicity')
"""v0 `atomicity_options` and v1 `Context().atomicity`: 0.12.3."""

V1_TEMPORARY_PATH_CLASS = 'temporary_path_class' in {
    f.name for f in dataclasses.fields(v1.options.FileOptions)
}
"""v1 `Context().file_options.temporary_path_class`: 0.12.0 only."""


def _v1_file_option(context: Any, field: str, value: Any, default: Any, since: str) -> None:
  """Sets v1's `file_options.<field>`; refuses a value v1 here cannot take."""
  if hasattr(context.file_options, field):
    setattr(context.file_options, field, value)
  elif value != default:
    _refuse(f'file_options.{field}', value,
            f'v1 of orbax-checkpoint {ORBAX_VERSION} has no '
            f'FileOptions.{field}; it arrives in orbax-checkpoint {since}.')


def temporary_path_modes() -> dict[type, Any]:
  atomicity = v0_path.atomicity
  return {
      atomicity.AtomicRenameTemporaryPath: v0_options.AtomicityMode.ATOMIC_RENAME,
      atomicity.CommitFileTemporaryPath: v0_options.AtomicityMode.COMMIT_FILE,
  }


def _check_type(options: Any, field: str, types: tuple[type, ...]) -> None:
  value = getattr(options, field)
  if value is not None and not isinstance(value, types):
    # v0 fails on the first attribute it reads: an AttributeError.
    raise AttributeError(
        f'CheckpointManagerOptions.{field} must be a '
        f'{" or ".join(t.__qualname__ for t in types)}; got '
        f'{type(value).__name__}.'
    )


def validate(options: Any) -> Any:
  """Returns `options` (or v0's defaults); raises where v0 or v1 would."""
  if options is None:
    return CheckpointManagerOptions()
  if not isinstance(options, CheckpointManagerOptions):
    raise ValueError(
        '`options` must be an orbax.checkpoint.CheckpointManagerOptions; got '
        f'{type(options).__name__}.'
    )
  if options.preservation_policy and (
      options.keep_time_interval or options.max_to_keep or options.keep_period
  ):
    raise ValueError(
        '`preservation_policy` and `delete options` are mutually exclusive'
        ' - do not use together.'
    )
  if options.best_mode not in ('min', 'max'):
    raise ValueError('`best_mode` must be one of: "min", "max"')
  _check_type(options, 'async_options', (v0_options.AsyncOptions,))
  _check_type(options, 'file_options', (v0_options.FileOptions,))
  if ATOMICITY:
    _check_type(options, 'atomicity_options', (v0_options.AtomicityOptions,))
  _check_type(
      options, 'multiprocessing_options', (v0_options.MultiprocessingOptions,)
  )
  for field in refused(options):
    if field != 'temporary_path_class' or ATOMICITY:
      _refuse(field, _value(options, field), BY_FIELD[field].refused)
  cls = options.temporary_path_class
  if temporary_path_class_refused(cls):
    _refuse('temporary_path_class', cls,
            f'v1 of orbax-checkpoint {ORBAX_VERSION} takes no TemporaryPath '
            'class (0.12.0 did) and has no Context().atomicity.mode yet; it '
            'arrives in orbax-checkpoint 0.12.3.')
  return options


def _value(options: Any, field: str) -> Any:
  """The value of a field or sub-field (`group.field`; None if the group is)."""
  value = options
  for part in field.split('.'):
    value = getattr(value, part, None) if value is not None else None
  return value


def is_set(options: Any, field: str) -> bool:
  """Whether `options` sets `field` (or a sub-field) to other than v0's default."""
  row = BY_FIELD[field]
  if row.factory:
    return False  # Compared field by field (their sub-field rows).
  if field == 'temporary_path_class':
    return temporary_path_class_refused(options.temporary_path_class)
  return _value(options, field) != row.default


def refused(options: Any) -> list[str]:
  """The fields with a `refused` reason that `options` sets."""
  fields = [row.field for row in OPTIONS if row.refused and is_set(options, row.field)]
  return sorted(fields, key=lambda field: '.' not in field)  # Sub-fields first.


def temporary_path_class_refused(cls: Any) -> bool:
  """Whether v1 of this Orbax cannot take v0's `temporary_path_class`."""
  if cls is None or V1_TEMPORARY_PATH_CLASS:  # 0.12.0: v1 takes any class.
    return False
  return not ATOMICITY or cls not in temporary_path_modes()


def check_async(options: Any, use_async: bool) -> None:
  """v0's check that a post-finalization callback has an async save."""
  async_options = options.async_options
  if (
      async_options is not None
      and async_options.post_finalization_callback is not None
      and not use_async
  ):
    raise ValueError(
        'AsyncOptions.post_finalization_callback is only supported with'
        ' AsyncCheckpointer (CheckpointManagerOptions.async_options with'
        ' a synchronous Checkpointer or enable_async_checkpointing=False).'
    )


def configure_context(options: Any, context: Any, *, legacy: bool = False) -> None:
  """Sets v1 `Context` options from v0's (before the Checkpointer copies it)."""
  async_options = options.async_options or v0_options.AsyncOptions()
  if not legacy:
    # v0 narrows the user's own AsyncOptions in place, as mirrored here.
    async_options.create_directories_asynchronously &= (
        options.enable_async_checkpointing
    )
  context.async_options.timeout_secs = async_options.timeout_secs
  context.async_options.post_finalization_callback = (
      async_options.post_finalization_callback
  )
  context.async_options.create_directories_asynchronously = (
      async_options.create_directories_asynchronously
  )
  file_options = options.file_options or v0_options.FileOptions()
  context.file_options.path_permission_mode = file_options.path_permission_mode
  if hasattr(file_options, 'skip_sync_file_validations'):  # 0.12.5 (v0 and v1)
    _v1_file_option(context, 'skip_sync_file_validations',
                    file_options.skip_sync_file_validations, False, '0.12.5')
  mp = options.multiprocessing_options or v0_options.MultiprocessingOptions()
  context.multiprocessing_options.primary_host = mp.primary_host
  context.multiprocessing_options.active_processes = mp.active_processes
  context.multiprocessing_options.barrier_sync_key_prefix = (
      mp.barrier_sync_key_prefix
  )
  if mp.primary_host is None:
    # v0's handlers keep primary_host=0 for arrays; v1's take the manager's
    # and refuse replica-parallel saving without a primary host.
    context.array_options.saving.use_replica_parallel = False
  if ATOMICITY:
    atomicity = options.atomicity_options or v0_options.AtomicityOptions()
    context.atomicity.mode = atomicity.mode
    context.atomicity.allow_legacy_atomic_rename = (
        atomicity.allow_legacy_atomic_rename
    )
    if options.temporary_path_class is not None:  # v0: the class wins.
      context.atomicity.mode = temporary_path_modes()[options.temporary_path_class]
  elif options.temporary_path_class is not None:  # 0.12.0 (see `validate`).
    context.file_options.temporary_path_class = options.temporary_path_class
  context.deletion_options.gcs_deletion_options.todelete_full_path = (
      options.todelete_full_path
  )


def custom_deleter(options: Any) -> bool:
  """Whether v1's step deleter must be rebuilt for these options."""
  return bool(
      options.todelete_subdir is not None
      or options.enable_background_delete
      or getattr(options, 'num_deletion_threads', None) is not None  # 0.12.1
  )


@dataclasses.dataclass
class ShouldSaveFnPolicy:
  """v0's `should_save_fn(step, last_saved_step)` as a v1 save policy."""

  should_save_fn: Callable[[int, int | None], bool]

  def should_save(self, step: Any, previous_steps: Sequence[Any], *, context: Any) -> bool:
    del context
    return self.should_save_fn(
        step.step, previous_steps[-1].step if previous_steps else None
    )


@dataclasses.dataclass
class ShouldKeepFnPolicy:
  """v0's `should_keep_fn(step)` (0.12.0-0.12.1) beside its other policies.

  As v0, a step the policy would not preserve is kept when `should_keep_fn`
  returns True (asked only for those steps).
  """

  policy: Any
  should_keep_fn: Callable[[int], bool]

  def should_preserve(self, checkpoints: Sequence[Any], *, context: Any) -> list[bool]:
    preserved = self.policy.should_preserve(checkpoints, context=context)
    return [
        bool(kept) or bool(self.should_keep_fn(info.step))
        for kept, info in zip(preserved, checkpoints, strict=True)
    ]


def save_decision_policy(options: Any) -> Any:
  """The policy v0 derives from `options` (its `_get_default_...` twin)."""
  if options.save_decision_policy is not None:
    return options.save_decision_policy
  if options.should_save_fn is not None:
    policies = [
        ShouldSaveFnPolicy(options.should_save_fn),
        sdp.PreemptionCheckpointingPolicy(),
    ]
  else:
    policies = []
    if options.save_interval_steps is not None:
      policies.append(sdp.FixedIntervalPolicy(options.save_interval_steps))
    if options.save_on_steps is not None:
      policies.append(sdp.SpecificStepsPolicy(options.save_on_steps))
    policies += [sdp.PreemptionCheckpointingPolicy(), sdp.InitialSavePolicy()]
  return sdp.AnySavePolicy(policies)


def preservation_policy(options: Any) -> Any:
  """The preservation policy v0 derives from `options`."""
  policy = _preservation_policy(options)
  should_keep_fn = getattr(options, 'should_keep_fn', None)  # 0.12.0-0.12.1
  if should_keep_fn is not None:
    return ShouldKeepFnPolicy(policy, should_keep_fn)
  return policy


def _preservation_policy(options: Any) -> Any:
  if options.preservation_policy is not None:
    return options.preservation_policy
  policies = []
  if options.keep_period is not None:
    policies.append(pp.EveryNSteps(options.keep_period))
  if options.keep_time_interval is not None:
    seconds = int(options.keep_time_interval.total_seconds())
    policies.append(pp.EveryNSeconds(interval_secs=seconds))
  if options.best_fn is not None:
    policies.append(
        pp.BestN(
            get_metric_fn=options.best_fn,
            reverse=(options.best_mode == 'min'),
            n=options.max_to_keep,
            keep_checkpoints_without_metrics=options.keep_checkpoints_without_metrics,
        )
    )
  else:
    policies.append(pp.LatestN(n=options.max_to_keep))
  return pp.AnyPreservationPolicy(policies)


def step_name_format(options: Any) -> Any:
  return options.step_name_format or v1.path.step.standard_name_format(
      step_prefix=options.step_prefix,
      step_format_fixed_length=options.step_format_fixed_length,
      single_host_load_and_broadcast=options.single_host_load_and_broadcast,
  )


def _custom_step_names(options: Any) -> bool:
  return options.single_host_load_and_broadcast or any(
      x is not None
      for x in (options.step_name_format, options.step_prefix, options.step_format_fixed_length)
  )


def checkpointer_kwargs(options: Any) -> dict[str, Any]:
  """Keyword arguments for v1 `training.Checkpointer` (besides directory)."""
  return dict(
      save_decision_policy=save_decision_policy(options),
      preservation_policy=preservation_policy(options),
      # None keeps v0's own default naming inside v1; any NameFormat object
      # makes v1 read every step's metadata while listing steps.
      step_name_format=step_name_format(options) if _custom_step_names(options) else None,
      cleanup_tmp_directories=options.cleanup_tmp_directories,
      lightweight_initialize=options.lightweight_initialize,
  )
