"""v0 `CheckpointManagerOptions` -> v1 Checkpointer settings, as data.

`OPTION_ROWS` says, per option field, where it goes in v1. `checkpointer_kwargs`
builds v1's save-decision and preservation policies exactly as v0 derives them
from the same options, so both make the same decisions.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
import dataclasses
from typing import Any

from orbax.checkpoint import checkpoint_manager as _v0_manager

from orbax_compat._v1 import preservation_policies as pp
from orbax_compat._v1 import save_decision_policies as sdp
from orbax_compat._v1 import v1

CheckpointManagerOptions = _v0_manager.CheckpointManagerOptions


@dataclasses.dataclass(frozen=True)
class OptionRow:
  field: str
  v1: str  # Where the option lives in v1, as a user writes it.
  note: str = ''
  supported: bool = True


OPTION_ROWS = (
    OptionRow('save_interval_steps', 'save_decision_policy=FixedIntervalPolicy(n)'),
    OptionRow('save_on_steps', 'save_decision_policy=SpecificStepsPolicy(steps)'),
    OptionRow('should_save_fn', 'save_decision_policy=<your SaveDecisionPolicy>',
              'wrapped in a policy calling fn(step, last_saved_step)'),
    OptionRow('save_decision_policy', 'save_decision_policy=...'),
    OptionRow('max_to_keep', 'preservation_policy=LatestN(n)'),
    OptionRow('keep_period', 'preservation_policy=EveryNSteps(n)'),
    OptionRow('keep_time_interval', 'preservation_policy=EveryNSeconds(secs)'),
    OptionRow('best_fn', 'preservation_policy=BestN(get_metric_fn=fn, n=...)',
              'metrics are written only when best_fn is set, as in v0'),
    OptionRow('best_mode', 'BestN(reverse=(mode == "min"))'),
    OptionRow('keep_checkpoints_without_metrics',
              'BestN(keep_checkpoints_without_metrics=...)'),
    OptionRow('preservation_policy', 'preservation_policy=...'),
    OptionRow('step_prefix', 'step_name_format=standard_name_format(step_prefix=...)'),
    OptionRow('step_format_fixed_length',
              'step_name_format=standard_name_format(step_format_fixed_length=...)'),
    OptionRow('step_name_format', 'step_name_format=...'),
    OptionRow('create', '(v1 always creates the root)',
              'emulated: an empty root v1 created is removed again'),
    OptionRow('read_only', '(none)',
              'emulated: save and delete skipped with v0\'s warning'),
    OptionRow('enable_async_checkpointing', 'save_checkpointables_async vs save_checkpointables'),
    OptionRow('cleanup_tmp_directories', 'Checkpointer(cleanup_tmp_directories=...)'),
    OptionRow('lightweight_initialize', 'Checkpointer(lightweight_initialize=...)'),
)
SUPPORTED_FIELDS = frozenset(r.field for r in OPTION_ROWS if r.supported)


def _is_default(options: Any, field: dataclasses.Field) -> bool:
  value = getattr(options, field.name)
  if field.default is not dataclasses.MISSING:
    default = field.default
  elif field.default_factory is not dataclasses.MISSING:
    default = field.default_factory()
  else:  # pragma: no cover - every v0 option has a default.
    return False
  if field.name == 'save_on_steps':  # v0's __post_init__ makes it a frozenset.
    return not value
  return value is default or value == default


def validate(options: Any) -> Any:
  """Returns `options` (or v0's defaults); raises on what the shim lacks."""
  if options is None:
    return CheckpointManagerOptions()
  if not isinstance(options, CheckpointManagerOptions):
    raise ValueError(
        '`options` must be an orbax.checkpoint.CheckpointManagerOptions; got '
        f'{type(options).__name__}.'
    )
  for field in dataclasses.fields(options):
    if field.name not in SUPPORTED_FIELDS and not _is_default(options, field):
      raise NotImplementedError(
          f'CheckpointManagerOptions.{field.name} is not yet supported by '
          f'orbax_compat (got {getattr(options, field.name)!r}); leave it at '
          'its default.'
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
  return options


@dataclasses.dataclass
class ShouldSaveFnPolicy:
  """v0's `should_save_fn(step, last_saved_step)` as a v1 save policy."""

  should_save_fn: Callable[[int, int | None], bool]

  def should_save(self, step: Any, previous_steps: Sequence[Any], *, context: Any) -> bool:
    del context
    return self.should_save_fn(
        step.step, previous_steps[-1].step if previous_steps else None
    )


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
  )


def _custom_step_names(options: Any) -> bool:
  return any(
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
