"""orbax_compat: Orbax's legacy v0 CheckpointManager API on Orbax v1.

`import orbax_compat as ocp` works wherever `import orbax.checkpoint as ocp`
did: `CheckpointManager` is the shim's, every other name is Orbax's own,
resolved lazily.
"""

from __future__ import annotations

import importlib
from typing import Any

from orbax_compat.deprecation import OrbaxCompatDeprecationWarning
from orbax_compat.deprecation import get_warning_policy
from orbax_compat.deprecation import set_warning_policy
from orbax_compat.deprecation import usage_report
from orbax_compat.manager import CheckpointManager
from orbax_compat.manager import from_v1
from orbax_compat.profiles import get_performance_profile
from orbax_compat.profiles import set_performance_profile
from orbax_compat.v1_config import v1_source

__version__ = '0.1.0'

__all__ = [
    'CheckpointManager', 'OrbaxCompatDeprecationWarning', 'get_warning_policy',
    'set_warning_policy', 'usage_report', 'get_performance_profile',
    'set_performance_profile', 'v1_source', 'from_v1',
]


def _orbax():
  return importlib.import_module('orbax.checkpoint')


def __getattr__(name: str) -> Any:
  """Every other public name of `orbax.checkpoint` (PEP 562)."""
  if name.startswith('__'):
    raise AttributeError(name)
  try:
    value = getattr(_orbax(), name)
  except AttributeError:
    raise AttributeError(
        f'module {__name__!r} has no attribute {name!r} (nor does '
        'orbax.checkpoint)'
    ) from None
  globals()[name] = value
  return value


def __dir__() -> list[str]:
  return sorted(set(globals()) | {n for n in dir(_orbax()) if not n.startswith('_')})
