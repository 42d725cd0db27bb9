"""The public names of `orbax.checkpoint`, as data (for the static tools).

`from orbax_compat import NAME` gives what `from orbax.checkpoint import NAME`
gave when NAME is a public attribute of `orbax.checkpoint` (orbax_compat
resolves every name it does not define from it, PEP 562) and orbax_compat
does not define it differently. The scanner decides that without importing
Orbax from these lists. `PUBLIC_NAMES` is `dir(orbax.checkpoint)` less the
names starting with `_`, the same for every release of the supported range
(checked on 0.12.0, 0.12.4 and 0.12.8); it includes the submodules that
`orbax.checkpoint` imports itself. `tests/test_mapping.py` checks it against
the installed Orbax, and `SHIM_NAMES` against orbax_compat's own.
"""

from __future__ import annotations

RELEASES_CHECKED = ('0.12.0', '0.12.4', '0.12.8')

PUBLIC_NAMES = frozenset({
    'AbstractCheckpointManager', 'AbstractCheckpointer', 'ArrayCheckpointHandler',
    'ArrayRestoreArgs', 'AsyncCheckpointHandler', 'AsyncCheckpointer', 'AsyncOptions',
    'BasePyTreeCheckpointHandler', 'CheckpointHandler', 'CheckpointHandlerRegistry',
    'CheckpointManager', 'CheckpointManagerOptions', 'Checkpointer',
    'CompositeCheckpointHandler', 'CompositeOptions', 'DefaultCheckpointHandlerRegistry',
    'Future', 'JaxRandomKeyCheckpointHandler', 'JsonCheckpointHandler',
    'NumpyRandomKeyCheckpointHandler', 'PLACEHOLDER', 'ProtoCheckpointHandler',
    'PyTreeCheckpointHandler', 'PyTreeCheckpointer', 'RestoreArgs', 'RestoreTransform',
    'SaveArgs', 'StandardCheckpointHandler', 'StandardCheckpointer', 'Transform',
    'abstract_checkpoint_manager', 'aggregate_handlers', 'apply_transformations', 'args',
    'arrays', 'checkpoint_args', 'checkpoint_manager', 'checkpoint_managers',
    'checkpoint_utils', 'checkpointers', 'contextlib', 'experimental', 'functools', 'future',
    'handlers', 'logging', 'merge_trees', 'metadata', 'msgpack_utils', 'multihost', 'options',
    'path', 'pathways', 'serialization', 'step', 'test_utils', 'transform_utils', 'tree',
    'type_handlers', 'utils', 'v1',
})

# orbax_compat's own public names (`orbax_compat._OWN`): every other name it
# has is Orbax's. Only `CheckpointManager` is also one of Orbax's (the point).
SHIM_NAMES = frozenset({
    'CheckpointManager', 'from_v1', 'OrbaxCompatDeprecationWarning', 'get_warning_policy',
    'set_warning_policy', 'usage_report', 'get_performance_profile',
    'set_performance_profile', 'v1_source',
})
# orbax_compat's own submodules: `from orbax_compat import handlers` imports
# orbax_compat.handlers, not Orbax's `handlers`, so such names are not swapped.
SHIM_SUBMODULES = frozenset({'compat', 'handlers', 'manager', 'mapping', 'runtime', 'tools'})


# Submodules that export Orbax's CheckpointManager, and the public names each
# shares with `orbax.checkpoint` (the same objects): `from <submodule> import
# CheckpointManager, CheckpointManagerOptions` becomes `from orbax_compat import
# ...` when every name is one of these (checked on the releases above).
SUBMODULE_REEXPORTS = {
    'orbax.checkpoint.checkpoint_manager': frozenset({
        'AbstractCheckpointManager', 'AbstractCheckpointer', 'AsyncCheckpointer',
        'AsyncOptions', 'CheckpointHandler', 'CheckpointHandlerRegistry', 'CheckpointManager',
        'CheckpointManagerOptions', 'Checkpointer', 'CompositeCheckpointHandler',
        'JsonCheckpointHandler', 'ProtoCheckpointHandler', 'abstract_checkpoint_manager',
        'checkpoint_args', 'multihost', 'utils',
    }),
    'orbax.checkpoint.checkpoint_managers': frozenset({
        'AbstractCheckpointManager', 'CheckpointManager', 'CheckpointManagerOptions',
    }),
}


def fixable_name(name: str) -> bool:
  """`from orbax_compat import name` gives what `from orbax.checkpoint import name` gave."""
  if name.startswith('_') or name not in PUBLIC_NAMES:
    return False
  return name == 'CheckpointManager' or name not in SHIM_NAMES | SHIM_SUBMODULES
