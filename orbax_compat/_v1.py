"""Locates Orbax's v1 API and keeps every touch of Orbax internals in one place.

orbax_compat prefers v1's public API. The few private details it needs are
reached only through the functions below, each with the reason beside it, and
`tests/test_orbax_internals.py` fails loudly (naming the Orbax version) when an
Orbax release moves them.
"""

from __future__ import annotations

import importlib
from typing import Any

from orbax.checkpoint import version as _version

SUPPORTED_ORBAX = ('0.12.8',)
"""orbax-checkpoint releases this shim is tested against."""

ORBAX_VERSION: str = _version.__version__


def _import_v1():
  for name in ('orbax.checkpoint.v1', 'orbax.checkpoint.experimental.v1'):
    try:
      return importlib.import_module(name)
    except ImportError:
      continue
  raise ImportError(
      f'orbax_compat needs the Orbax v1 API (orbax.checkpoint.v1 or '
      f'orbax.checkpoint.experimental.v1); orbax-checkpoint {ORBAX_VERSION} '
      f'has neither. Supported releases: {", ".join(SUPPORTED_ORBAX)}.'
  )


v1 = _import_v1()
training = v1.training
save_decision_policies = training.save_decision_policies
preservation_policies = training.preservation_policies


def orbax_version_note() -> str:
  """A sentence for errors caused by Orbax internals that moved."""
  return (
      f'orbax-checkpoint {ORBAX_VERSION} (orbax_compat is tested with '
      f'{", ".join(SUPPORTED_ORBAX)})'
  )


# --- Private touches -------------------------------------------------------


def _no_entry_error() -> type:
  """v1's error for a checkpointable it could not load.

  Why: v1 wraps every item's load failure into this (private) error with a
  message blaming the handler; the shim catches it to recover the item or
  to raise the real cause, as v0 does.
  """
  module = importlib.import_module(f'{v1.__name__}._src.handlers.registration')
  return module.NoEntryError


NoEntryError = _no_entry_error()


def inner_manager(ckptr: Any) -> Any:
  """The v0 CheckpointManager that v1's training.Checkpointer runs on.

  Why: v1 answers `latest` and `checkpoints` by sorting and rebuilding its
  whole list of checkpoints on every call (O(n log n)), where v0 answers
  `latest_step()` in O(1). The shim reads the same cached list v1 reads.
  """
  try:
    return ckptr._manager  # pylint: disable=protected-access
  except AttributeError as e:  # pragma: no cover - only on an Orbax change.
    raise RuntimeError(
        'orbax_compat: v1 training.Checkpointer no longer has `_manager`; '
        f'update orbax_compat._v1 for {orbax_version_note()}.'
    ) from e


def checkpoint_infos(ckptr: Any) -> Any:
  """v1's cached, step-sorted `CheckpointInfos` (see `inner_manager`)."""
  return inner_manager(ckptr)._checkpoints  # pylint: disable=protected-access


def should_save(ckptr: Any, step: int) -> bool:
  """v1's `should_save`, without entering the Checkpointer's Context.

  Why: `ckptr.should_save` enters a copy of its Context on every call (about
  60 us, 6x v0's whole answer, measured in bench/), only to call this same
  v0 manager method, whose options v1 already derived from that Context.
  """
  return inner_manager(ckptr).should_save(step)


def check_for_errors(ckptr: Any) -> None:
  """Raises the error of a finished background save, without waiting.

  Why: v1 reports save errors only through the AsyncResponse of the save (or
  `wait`), which blocks; v0's `check_for_errors()` never blocks.
  """
  inner_manager(ckptr).check_for_errors()


def _item_metadata_composite() -> type:
  """v0's plain `Composite` (the base of `args.Composite`), for item metadata.

  Why: v0's `item_metadata()` returns this base class, which Orbax does not
  export; `args.Composite` is a subclass and would compare as another type.
  """
  from orbax.checkpoint import args as v0_args  # pylint: disable=g-import-not-at-top

  base = v0_args.Composite.__mro__[1]
  if base.__name__ != 'Composite':  # pragma: no cover - only on an Orbax change.
    raise RuntimeError(
        'orbax_compat: args.Composite no longer derives from Composite; update '
        f'orbax_compat._v1 for {orbax_version_note()}.'
    )
  return base


ItemMetadataComposite = _item_metadata_composite()
