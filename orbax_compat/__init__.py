"""orbax_compat: Orbax's legacy v0 CheckpointManager API on Orbax v1.

`import orbax_compat as ocp` works wherever `import orbax.checkpoint as ocp`
did: `CheckpointManager` is the shim's, every other name is Orbax's own.
Everything is resolved lazily (PEP 562), so `orbax_compat.mapping` and the
static tools import neither jax nor Orbax.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING
from typing import Any

if TYPE_CHECKING:  # Type checkers see the names; the run resolves them lazily.
  from orbax_compat.compat.profiles import get_performance_profile
  from orbax_compat.compat.profiles import set_performance_profile
  from orbax_compat.manager import CheckpointManager
  from orbax_compat.manager import from_v1
  from orbax_compat.runtime.notices import OrbaxCompatDeprecationWarning
  from orbax_compat.runtime.notices import get_warning_policy
  from orbax_compat.runtime.notices import set_warning_policy
  from orbax_compat.runtime.notices import usage_report
  from orbax_compat.tools.v1_config import v1_source

from orbax_compat.compat import release as _release

__version__ = '0.1.0'

# An Orbax older than the floor fails here, not at the first manager.
_release.refuse_below_floor(_release.installed_orbax())

# orbax_compat's own public names -> the module defining each.
_OWN = {
    'CheckpointManager': 'orbax_compat.manager',
    'from_v1': 'orbax_compat.manager',
    'OrbaxCompatDeprecationWarning': 'orbax_compat.runtime.notices',
    'get_warning_policy': 'orbax_compat.runtime.notices',
    'set_warning_policy': 'orbax_compat.runtime.notices',
    'usage_report': 'orbax_compat.runtime.notices',
    'get_performance_profile': 'orbax_compat.compat.profiles',
    'set_performance_profile': 'orbax_compat.compat.profiles',
    'v1_source': 'orbax_compat.tools.v1_config',
}
__all__ = [
    'CheckpointManager', 'from_v1', 'OrbaxCompatDeprecationWarning', 'get_warning_policy',
    'set_warning_policy', 'usage_report', 'get_performance_profile',
    'set_performance_profile', 'v1_source',
]


def _orbax():
  return importlib.import_module('orbax.checkpoint')


def __getattr__(name: str) -> Any:
  """orbax_compat's own names, then every other public name of `orbax.checkpoint`."""
  if name.startswith('__'):
    raise AttributeError(name)
  if name in _OWN:
    value = getattr(importlib.import_module(_OWN[name]), name)
  else:
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
  return sorted(set(globals()) | set(_OWN) | {n for n in dir(_orbax()) if not n.startswith('_')})
