"""Touches of storage libraries' internals (beside Orbax's, in `orbax.py`).

Each with its reason, tested on a real filesystem backend (the gs:// tier,
`tests/test_gcs.py`: `stale_listing`).
"""

from __future__ import annotations

import os
import sys
from typing import Any


def forget_cached_listings(step_dir: Any) -> None:
  """Drops fsspec's cached listings of `step_dir` and its parents (gs://).

  On gs:// (and other fsspec-backed URIs) epath lists through gcsfs, which
  caches each listing; TensorStore writes a step's arrays past gcsfs. Orbax
  later asks whether `<step>/<item>` exists, and gcsfs answers "no" from the
  root's listing cached when the manager opened (v0's ValueError `Checkpoint
  directory does not exist`). v0's synchronous save never sees that: its
  first write, `<step>/_CHECKPOINT_METADATA`, goes through gcsfs, which drops
  those listings, and blocks before any array is written. The shim saves
  through v1's asynchronous save, whose metadata write races the arrays
  (as v0's asynchronous save does). Dropping the listings when the save
  starts has v0's synchronous effect, for both kinds of save.

  Only filesystems already built are touched (no client is created here).
  """
  text = os.fspath(step_dir)
  scheme, sep, _ = text.partition('://')
  fsspec = sys.modules.get('fsspec')
  if not sep or scheme == 'file' or fsspec is None:
    return  # Local paths list through os; without fsspec nothing is cached.
  for cls in set(fsspec.registry.values()):
    protocols = cls.protocol if isinstance(cls.protocol, tuple) else (cls.protocol,)
    if scheme not in protocols:
      continue
    for fs in list(getattr(cls, '_cache', {}).values()):  # fsspec's instances.
      fs.invalidate_cache(text)
