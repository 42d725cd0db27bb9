"""The runtime: each v0 member performed on v1, one function per member name.

`manager.py` binds `mapping.members.MEMBERS` to these functions by name
(`__init__` -> `init`, `__contextmanager__` -> `contextmanager`);
`tests/test_mapping.py` checks that every row has one and every one a row.
Modules, in the order data flows down: `construct` (a manager's arguments ->
a v1 Checkpointer and its `state.ManagerState`), `saving` and `restoring` (v0
args -> the handlers layer -> one v1 call), `steps`, `step_metadata`,
`lifecycle`; beside them `notices` (the per-site deprecation notices),
`options` (v0 options -> v1 policies and Context), `legacy` (v0's legacy
construction forms), `inflight` (a background save's errors, where v0
raises them) and `step_logging` (v0's step statistics).
"""

from orbax_compat.runtime.construct import init
from orbax_compat.runtime.construct import wrap
from orbax_compat.runtime.lifecycle import check_for_errors
from orbax_compat.runtime.lifecycle import close
from orbax_compat.runtime.lifecycle import contextmanager
from orbax_compat.runtime.lifecycle import is_saving_in_progress
from orbax_compat.runtime.lifecycle import wait_until_finished
from orbax_compat.runtime.restoring import restore
from orbax_compat.runtime.saving import save
from orbax_compat.runtime.step_metadata import item_metadata
from orbax_compat.runtime.step_metadata import metadata
from orbax_compat.runtime.step_metadata import metrics
from orbax_compat.runtime.steps import all_steps
from orbax_compat.runtime.steps import best_step
from orbax_compat.runtime.steps import delete
from orbax_compat.runtime.steps import directory
from orbax_compat.runtime.steps import latest_step
from orbax_compat.runtime.steps import reached_preemption
from orbax_compat.runtime.steps import reload
from orbax_compat.runtime.steps import should_save

# The implementations of the mapping's members (and `wrap`, behind `from_v1`).
__all__ = [
    'init', 'directory', 'all_steps', 'latest_step', 'best_step', 'reload',
    'reached_preemption', 'should_save', 'delete', 'save', 'restore', 'item_metadata',
    'metrics', 'metadata', 'wait_until_finished', 'is_saving_in_progress',
    'check_for_errors', 'close', 'contextmanager', 'wrap',
]
