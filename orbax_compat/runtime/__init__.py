"""The runtime: each v0 member performed on v1, one function per member name.

`manager.py` binds `mapping.members.MEMBERS` to these functions by name
(`__init__` -> `init`, `__contextmanager__` -> `contextmanager`);
`tests/test_mapping.py` checks that every row has one and every one a row.
"""

from orbax_compat.runtime.adapters import all_steps
from orbax_compat.runtime.adapters import best_step
from orbax_compat.runtime.adapters import check_for_errors
from orbax_compat.runtime.adapters import close
from orbax_compat.runtime.adapters import contextmanager
from orbax_compat.runtime.adapters import delete
from orbax_compat.runtime.adapters import directory
from orbax_compat.runtime.adapters import init
from orbax_compat.runtime.adapters import is_saving_in_progress
from orbax_compat.runtime.adapters import item_metadata
from orbax_compat.runtime.adapters import latest_step
from orbax_compat.runtime.adapters import metadata
from orbax_compat.runtime.adapters import metrics
from orbax_compat.runtime.adapters import reached_preemption
from orbax_compat.runtime.adapters import reload
from orbax_compat.runtime.adapters import restore
from orbax_compat.runtime.adapters import save
from orbax_compat.runtime.adapters import should_save
from orbax_compat.runtime.adapters import wait_until_finished
from orbax_compat.runtime.adapters import wrap

# The implementations of the mapping's members (and `wrap`, behind `from_v1`).
__all__ = [
    'init', 'directory', 'all_steps', 'latest_step', 'best_step', 'reload',
    'reached_preemption', 'should_save', 'delete', 'save', 'restore', 'item_metadata',
    'metrics', 'metadata', 'wait_until_finished', 'is_saving_in_progress',
    'check_for_errors', 'close', 'contextmanager', 'wrap',
]
