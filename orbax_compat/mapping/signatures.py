"""v0's own signatures, as source text: the manager's members and the args types.

The shim's members carry them (`inspect.signature`, `help`, the type stub),
and the scanner binds calls to them without importing Orbax.
`tests/test_mapping.py` checks each against the installed Orbax's.
"""

from __future__ import annotations

MEMBERS = {
    '__init__': "(self, directory: 'epath.PathLike', checkpointers: 'Optional[Union["
                "AbstractCheckpointer, CheckpointersDict]]' = None, options: 'Optional["
                "CheckpointManagerOptions]' = None, metadata: 'Optional[Mapping[str, Any]]' = "
                "None, item_names: 'Optional[Sequence[str]]' = None, item_handlers: 'Optional["
                "Union[CheckpointHandler, CheckpointHandlersDict]]' = None, logger: 'Optional["
                "abstract_logger.AbstractLogger]' = None, handler_registry: 'Optional["
                "CheckpointHandlerRegistry]' = None)",
    'directory': "(self) -> 'epath.Path'",
    'all_steps': "(self, read: 'bool' = False) -> 'Sequence[int]'",
    'latest_step': "(self) -> 'Optional[int]'",
    'best_step': "(self) -> 'Optional[int]'",
    'reload': '(self)',
    'reached_preemption': "(self, step: 'int') -> 'bool'",
    'should_save': "(self, step: 'int') -> 'bool'",
    'delete': "(self, step: 'int')",
    'save': "(self, step: 'int', items: 'Optional[Union[Any, Mapping[str, Any]]]' = None, "
            "save_kwargs: 'Optional[Union[SaveParams, Mapping[str, SaveParams]]]' = None, "
            "metrics: 'Optional[PyTree]' = None, force: 'Optional[bool]' = False, args: "
            "'Optional[args_lib.CheckpointArgs]' = None, custom_metadata: 'dict[str, Any] | "
            "None' = None) -> 'bool'",
    'restore': "(self, step: 'Optional[int]', items: 'Optional[Union[Any, Mapping[str, Any]]]'"
               " = None, restore_kwargs: 'Optional[Union[RestoreParams, Mapping[str, "
               "RestoreParams]]]' = None, directory: 'Optional[epath.PathLike]' = None, args: "
               "'Optional[args_lib.CheckpointArgs]' = None) -> 'Union[Any, Mapping[str, Any]]'",
    'item_metadata': "(self, step: 'int') -> 'Union[Any, args_lib.Composite, ItemMetadata]'",
    'metrics': "(self, step: 'int') -> 'Optional[PyTree]'",
    'metadata': "(self, step: 'int | None' = None) -> 'RootMetadata | StepMetadata'",
    'wait_until_finished': '(self)',
    'is_saving_in_progress': "(self) -> 'bool'",
    'check_for_errors': '(self)',
    'close': '(self)',
}

# `orbax.checkpoint.args.<name>`: the parameters of each args type (no annotations).
ARGS_TYPES = {
    'StandardSave': '(item, save_args=None, custom_metadata=None)',
    'StandardRestore': '(item=None, strict=True, support_layout=False, fallback_sharding=None)',
    'PyTreeSave': '(item, save_args=None, ocdbt_target_data_file_size=None, '
                  'custom_metadata=None)',
    'PyTreeRestore': '(item=None, restore_args=None, transforms=None, '
                     'transforms_default_to_original=True, legacy_transform_fn=None, '
                     'partial_restore=False)',
    'JsonSave': '(item)',
    'JsonRestore': '(item=None)',
    'ProtoSave': '(item)',
    'ProtoRestore': '(item)',
    'ArraySave': '(item, save_args=None)',
    'ArrayRestore': '(item=None, restore_args=None)',
    'Composite': '(**items)',
}

# `CheckpointManagerOptions`' fields in declaration order (positional arguments).
OPTIONS_FIELDS = (
    'save_interval_steps', 'max_to_keep', 'keep_time_interval', 'keep_period', 'best_fn',
    'best_mode', 'keep_checkpoints_without_metrics', 'step_prefix', 'step_format_fixed_length',
    'step_name_format', 'create', 'cleanup_tmp_directories', 'save_on_steps',
    'single_host_load_and_broadcast', 'todelete_subdir', 'todelete_full_path',
    'enable_background_delete', 'num_deletion_threads', 'read_only',
    'enable_async_checkpointing', 'async_options', 'multiprocessing_options', 'should_save_fn',
    'file_options', 'atomicity_options', 'save_root_metadata', 'temporary_path_class',
    'save_decision_policy', 'preservation_policy', 'prevent_write_metrics',
    'enable_should_save_is_saving_in_progress_check', 'enable_per_process_directory_creation',
    'lightweight_initialize',
)
