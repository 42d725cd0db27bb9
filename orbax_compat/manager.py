"""`CheckpointManager`: v0's surface, every member generated from the table.

Each member is the row's adapter behind `deprecation.noticing` (the per-site
notice and count), with v0's own signature and annotations (for
`inspect.signature` and `help`) and PEP 702's `__deprecated__` (the table's
message; type checkers read the same from the generated stub,
`manager.pyi`). The class is an `AbstractCheckpointManager` and an
`epy.ContextManager`, as v0's, and is registered as a virtual subclass of
v0's `CheckpointManager`, so `isinstance` checks in code that expects a v0
manager pass.
"""

from __future__ import annotations

import abc
import contextlib
import functools
import inspect
from typing import Any

from etils import epy
from orbax.checkpoint import abstract_checkpoint_manager as _v0_abstract
from orbax.checkpoint import checkpoint_manager as _v0_manager
import typing_extensions

from orbax_compat import adapters
from orbax_compat import deprecation
from orbax_compat import subclassing
from orbax_compat import table


def _member(row: table.Row):
  """One public member: the adapter, noticed per call site, dressed as v0's."""
  adapter = row.adapter
  if row.kind == 'protocol':  # Called by Python (`with`), not by user code.
    if inspect.isgeneratorfunction(adapter):
      adapter = contextlib.contextmanager(adapter)
      adapter._cm_added = True  # epy.ContextManager: already a context manager.  # pylint: disable=protected-access
    return adapter
  member = functools.wraps(adapter)(deprecation.noticing(row, adapter))
  del member.__wrapped__  # The signature is v0's, not the adapter's.
  member.__name__ = row.member
  member.__qualname__ = f'CheckpointManager.{row.member}'
  member.__signature__ = row.signature
  member.__annotations__ = dict(getattr(row.v0_function, '__annotations__', {}))
  member.__doc__ = f'v0 `{row.v0}`; in v1: `{row.v1}` ({row.anchor}).'
  member = typing_extensions.deprecated(row.deprecation_message(), category=None)(member)
  if row.kind == 'property':
    return property(member, doc=member.__doc__)
  return member


def from_table(rows):
  """Class decorator: installs one member per table row."""

  def install(cls):
    for row in rows:
      setattr(cls, row.member, _member(row))
    abc.update_abstractmethods(cls)  # The members implement v0's abstract ones.
    return cls

  return install


@from_table(table.ROWS)
class CheckpointManager(
    subclassing.ProtectedMembers,
    _v0_abstract.AbstractCheckpointManager,
    epy.ContextManager,
):
  """Orbax v0 `CheckpointManager`, running on v1 `training.Checkpointer`.

  Construct it exactly as `orbax.checkpoint.CheckpointManager`; each v0 call
  site reports (once, by default) the v1 call that replaces it.
  `v1_checkpointer` is the live v1 `training.Checkpointer` it runs on: v1
  calls through it and v0 calls through the manager share one state.
  Subclasses' overrides of v0's protected hooks are honoured, or refused or
  warned about at class definition (subclassing.py).
  """

  def __init_subclass__(cls, **kwargs):
    super().__init_subclass__(**kwargs)
    subclassing.check(cls)

  @property
  def v1_checkpointer(self) -> Any:
    """The v1 `training.Checkpointer` this manager runs on (see README, Migrating)."""
    return self._ckptr

  def __repr__(self):
    return f'orbax_compat.CheckpointManager({str(self._directory)!r})'


def from_v1(ckptr: Any, options: Any = None) -> CheckpointManager:
  """A v0 CheckpointManager running on an existing v1 `training.Checkpointer`.

  For code that has moved to v1 and still calls helpers taking a v0 manager:
  both views share one state (steps, in-flight saves, close). Decisions stay
  the Checkpointer's policies; `options` (v0's CheckpointManagerOptions) serve
  what v1 has no place for, e.g. `best_fn` for `best_step()` (by default, the
  Checkpointer's BestN policy's). A Checkpointer runs one manager: wrapping
  it twice, or wrapping a closed one, raises ValueError.
  """
  mngr = CheckpointManager.__new__(CheckpointManager)
  adapters.wrap(mngr, ckptr, options)
  return mngr


# Code that checks `isinstance(m, orbax.checkpoint.CheckpointManager)` takes the
# shim (ABC virtual subclass; v0's class is unchanged otherwise).
_v0_manager.CheckpointManager.register(CheckpointManager)
