"""Opt-in performance profiles: v1 Context settings the shim applies.

The default, `v0`, writes exactly what native v0 writes. `fast` trades disk
space for speed on the data path and stays readable by plain v0 and v1 (it
only changes zarr2 compression and chunking, which every reader takes from
the array's own metadata); see BENCHMARKS.md for what it gains. Choose with
`ORBAX_COMPAT_PROFILE=fast` or `orbax_compat.set_performance_profile('fast')`
before constructing a CheckpointManager.
"""

from __future__ import annotations

import os
from typing import Any

MiB = 1024 * 1024
ENV_VAR = 'ORBAX_COMPAT_PROFILE'

PROFILES: dict[str, dict[str, Any]] = {
    'v0': {},
    'fast': {
        # Float data barely compresses (~8%), and zstd runs on one core per chunk.
        'array.saving.use_compression': False,
        # Several chunks per large array: encoded and read in parallel.
        'array.saving.storage_options.chunk_byte_size': 16 * MiB,
    },
}


def _validated(name: Any, source: str) -> str:
  value = str(name).strip().lower()
  if value not in PROFILES:
    raise ValueError(f'{source} must be one of {", ".join(PROFILES)}; got {name!r}.')
  return value


_active = _validated(os.environ.get(ENV_VAR, 'v0'), ENV_VAR)


def set_performance_profile(name: str) -> str:
  """Sets the profile for managers constructed from now on; returns the old one."""
  global _active
  previous, _active = _active, _validated(name, 'profile')
  return previous


def get_performance_profile() -> str:
  return _active


def apply(context: Any) -> None:
  """Sets the active profile's options on a v1 Context."""
  for dotted, value in PROFILES[_active].items():
    *parents, last = dotted.split('.')
    target = context
    for part in parents:
      target = getattr(target, part)
    setattr(target, last, value)
