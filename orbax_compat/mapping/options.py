"""Every v0 `CheckpointManagerOptions` field: where it goes in v1, as data.

One row per field, in the order MIGRATION_TABLE.md lists them: where the
option lives in v1 (`v1`), a note, what v1 code does instead where the v1
constructor has no form for a non-default value (`instead`; `v1_source` names
it in a comment), why the shim refuses a value (`refused`), and v0's default.
Sub-fields (`group.field`) are rows where they alone have no v1 form.
`runtime.options` builds v1's policies and Context from the same options.
"""

from __future__ import annotations

from orbax_compat.mapping.schema import Option as O

OPTIONS = (
    O('save_interval_steps', 'save_decision_policy=FixedIntervalPolicy(n)', default=1),
    O('save_on_steps', 'save_decision_policy=SpecificStepsPolicy(steps)'),
    O('should_save_fn', 'save_decision_policy=<your SaveDecisionPolicy>',
      'wrapped in a policy calling fn(step, last_saved_step)'),
    O('save_decision_policy', 'save_decision_policy=...'),
    O('max_to_keep', 'preservation_policy=LatestN(n)'),
    O('keep_period', 'preservation_policy=EveryNSteps(n)'),
    O('keep_time_interval', 'preservation_policy=EveryNSeconds(secs)'),
    O('best_fn', 'preservation_policy=BestN(get_metric_fn=fn, n=...)',
      'metrics are written only when best_fn is set, as in v0'),
    O('best_mode', 'BestN(reverse=(mode == "min"))', default='max'),
    O('keep_checkpoints_without_metrics', 'BestN(keep_checkpoints_without_metrics=...)',
      default=True),
    O('preservation_policy', 'preservation_policy=...'),
    O('should_keep_fn', 'preservation_policy=<your PreservationPolicy>',
      'orbax-checkpoint 0.12.0-0.12.1 only: a policy keeping the steps fn(step) keeps, '
      'beside the others'),
    O('step_prefix', 'step_name_format=standard_name_format(step_prefix=...)'),
    O('step_format_fixed_length',
      'step_name_format=standard_name_format(step_format_fixed_length=...)'),
    O('step_name_format', 'step_name_format=...'),
    O('create', '(v1 always creates the root)',
      'emulated: an empty root v1 created is removed again',
      instead='v1 always creates the root directory', default=True),
    O('read_only', '(none)', 'emulated: save and delete skipped with v0\'s warning',
      instead='v1 has no read-only mode: do not call save or delete', default=False),
    O('enable_async_checkpointing', 'save_checkpointables_async vs save_checkpointables',
      instead='save with ckptr.save_checkpointables (blocking), not the *_async calls',
      default=True),
    O('cleanup_tmp_directories', 'Checkpointer(cleanup_tmp_directories=...)', default=False),
    O('lightweight_initialize', 'Checkpointer(lightweight_initialize=...)', default=False),
    O('single_host_load_and_broadcast',
      'step_name_format=standard_name_format(single_host_load_and_broadcast=...)',
      default=False),
    O('async_options', 'Context().async_options (timeout_secs, post_finalization_callback, '
      'create_directories_asynchronously)', 'barrier_sync_fn has no v1 field and is refused'),
    O('multiprocessing_options', 'Context().multiprocessing_options',
      'active_processes is refused: v1 always creates the root, which Orbax does not support '
      'with active_processes; primary_host=None also sets '
      'Context().array_options.saving.use_replica_parallel=False',
      factory='MultiprocessingOptions'),
    O('file_options', 'Context().file_options (path_permission_mode, '
      'skip_sync_file_validations)', 'skip_sync_file_validations: 0.12.5+ (v0 and v1)',
      factory='FileOptions'),
    O('atomicity_options', 'Context().atomicity (mode, allow_legacy_atomic_rename)',
      '0.12.3+ (v0 and v1)'),
    O('temporary_path_class', 'Context().atomicity.mode',
      'AtomicRenameTemporaryPath -> ATOMIC_RENAME, CommitFileTemporaryPath -> COMMIT_FILE; '
      'other classes have no v1 hook and are refused. 0.12.0: '
      'Context().file_options.temporary_path_class (any class); 0.12.1-0.12.2: refused (v1 '
      'has neither)', instead='v1 takes no TemporaryPath class',
      refused='v1 takes no TemporaryPath class; set Context().atomicity.mode '
              '(AtomicityMode.ATOMIC_RENAME or COMMIT_FILE) instead.'),
    O('todelete_full_path', 'Context().deletion_options.gcs_deletion_options.todelete_full_path',
      'GCS only: off GCS, v0 logs the deleter\'s error, v1 raises it'),
    O('todelete_subdir', '(none; v1 deletes or uses todelete_full_path)',
      'emulated: v1\'s step deleter is built with the subdir',
      instead='v1 deletes steps (or moves them to todelete_full_path on GCS)'),
    O('enable_background_delete', '(none; v1 deletes in the background through delete_async)',
      'emulated: v1\'s step deleter is threaded',
      instead='v1 deletes in the background only through delete_async', default=False),
    O('num_deletion_threads', '(none)', 'emulated: passed to v1\'s step deleter (0.12.1+)',
      instead='v1 has no deletion thread count'),
    O('save_root_metadata', 'Checkpointer(custom_metadata=None)',
      'emulated: False writes no root metadata', default=True),
    O('prevent_write_metrics', 'save(..., metrics=None)',
      'emulated: metrics still drive best_fn in memory, as in v0, but are not written',
      instead='v1 writes the metrics it is given; pass none to write none', default=False),
    O('enable_should_save_is_saving_in_progress_check', '(none; v1 always checks)',
      'emulated on the v0 manager v1 runs on (ContinuousCheckpointingPolicy only)',
      instead='v1 always waits for a save in progress', default=True),
    O('enable_per_process_directory_creation', '(none)',
      'emulated: Orbax\'s per-process signal prefix, as v0',
      instead='v1 has no per-process directory creation', default=False),
    # Sub-fields with no v1 form (their groups have one).
    O('async_options.barrier_sync_fn',
      instead='v1 synchronizes hosts through JAX\'s distributed client',
      refused='v1 AsyncOptions has no barrier_sync_fn; v1 synchronizes hosts through JAX\'s '
              'distributed client.'),
    O('multiprocessing_options.active_processes',
      instead='v1 always creates its root, which Orbax does not support with active_processes',
      refused='v1\'s training.Checkpointer always creates its root, which Orbax does not '
              'support with active_processes; use v1 directly.'),
)
BY_FIELD = {row.field: row for row in OPTIONS}
