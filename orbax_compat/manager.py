"""`CheckpointManager`: v0's surface, every member bound by name from the mapping.

For each `mapping.members.MEMBERS` row, the implementation of the same name in
`runtime` (`__init__` -> `runtime.init`) becomes a public member behind
`runtime.notices.noticing` (the per-site notice and count), with v0's own
signature and annotations (for `inspect.signature` and `help`) and PEP 702's
`__deprecated__` (the row's message; type checkers read the same from the
generated stub, `manager.pyi`). The class is an `AbstractCheckpointManager`
and an `epy.ContextManager`, as v0's, and is registered as a virtual subclass
of v0's `CheckpointManager`, so `isinstance` checks in code that expects a v0
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

from orbax_compat import runtime
from orbax_compat.mapping import forms
from orbax_compat.mapping.schema import Member
from orbax_compat.runtime import notices
from orbax_compat.runtime import subclassing


def implementation(member: Member) -> Any:
  """The runtime function performing `member` (bound by name)."""
  return getattr(runtime, member.name.strip('_'))


def _member(member: Member):
  """One public member: the implementation, noticed per call site, dressed as v0's."""
  fn = implementation(member)
  if member.kind == 'protocol':  # Called by Python (`with`), not by user code.
    if inspect.isgeneratorfunction(fn):
      fn = contextlib.contextmanager(fn)
      fn._cm_added = True  # epy.ContextManager: already a context manager.  # pylint: disable=protected-access
    return fn
  public = functools.wraps(fn)(notices.noticing(member, fn))
  del public.__wrapped__  # The signature is v0's, not the implementation's.
  signature = forms.signature(member.name)
  public.__name__ = member.name
  public.__qualname__ = f'CheckpointManager.{member.name}'
  public.__signature__ = signature
  public.__annotations__ = {
      name: p.annotation for name, p in signature.parameters.items()
      if p.annotation is not inspect.Parameter.empty}
  if signature.return_annotation is not inspect.Signature.empty:
    public.__annotations__['return'] = signature.return_annotation
  first = member.forms[0]
  public.__doc__ = f'v0 `{first.v0}`; in v1: `{first.v1}` ({forms.anchor(member.name)}).'
  public = typing_extensions.deprecated(notices.message(member), category=None)(public)
  if member.kind == 'property':
    return property(public, doc=public.__doc__)
  return public


def from_mapping(members):
  """Class decorator: installs one public member per mapping row."""

  def install(cls):
    for member in members:
      setattr(cls, member.name, _member(member))
    abc.update_abstractmethods(cls)  # The members implement v0's abstract ones.
    return cls

  return install


@from_mapping(forms.MEMBERS)
class CheckpointManager(
    subclassing.ProtectedMembers,
    _v0_abstract.AbstractCheckpointManager,
    epy.ContextManager,
):
  """Orbax v0 `CheckpointManager`, running on v1 `training.Checkpointer`.

  Construct it exactly as `orbax.checkpoint.CheckpointManager`; each v0 call
  site reports (once, by default) the v1 call that replaces it.
  `v1_checkpointer` is the live v1 `training.Checkpointer` it runs on: v1
  calls through it and v0 calls through the manager share one state
  (`runtime.state.ManagerState`). Subclasses' overrides of v0's protected
  hooks are honoured, or refused or warned about at class definition
  (runtime/subclassing.py); overrides of public members are called where v0
  calls them through `self` (`runtime.own`).
  """

  # The public members a subclass overrides (runtime.own calls those).
  overridden_members: frozenset[str] = frozenset()

  def __init_subclass__(cls, **kwargs):
    super().__init_subclass__(**kwargs)
    subclassing.check(cls)
    cls.overridden_members = frozenset(
        m.name for m in forms.MEMBERS
        if getattr(cls, m.name, None) is not getattr(CheckpointManager, m.name))

  @property
  def v1_checkpointer(self) -> Any:
    """The v1 `training.Checkpointer` this manager runs on (see README, Migrating)."""
    return self._state.ckptr

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
  runtime.wrap(mngr, ckptr, options)
  return mngr


# Code that checks `isinstance(m, orbax.checkpoint.CheckpointManager)` takes the
# shim (ABC virtual subclass; v0's class is unchanged otherwise).
_v0_manager.CheckpointManager.register(CheckpointManager)
