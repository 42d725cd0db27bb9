"""The row types of the mapping: frozen, plain data (no jax, no Orbax).

A `Member` is one v0 `CheckpointManager` member and the *forms* it is called
in. A `Form` is two pieces of code with the same named placeholders
(`members.PLACEHOLDERS`): the v0 call, and the v1 code that does the same on
the checkpoints users already have. Everything a form says is data: `when`
names the manager kind the runtime chooses it for, `unless` the options under
which a rewrite would change behaviour, `requires` the options a rewrite is
exact only with (set to a non-default value), `needs` a v1 surface only some
releases have (`members.CAPABILITIES`). The runtime binds each member's
implementation by its name (`orbax_compat.runtime.members`).
"""

from __future__ import annotations

import dataclasses

STATUSES = ('direct', 'adapted', 'emulated', 'unsupported-in-v1')
KINDS = ('method', 'property', 'init', 'protocol')  # protocol: `with`, no notice.
MECHANICAL = ('', 'expression', 'statement')
# Manager kinds a form may be chosen for at run time (v0 decides a manager's
# kind on its first save or restore: one unnamed item, or named items).
WHEN = ('', 'single_item', 'named_items')


@dataclasses.dataclass(frozen=True)
class Form:
  """One way of calling a v0 member, and the v1 code that replaces it.

  `mechanical`: where a tool may rewrite the v0 call into the v1 code without
  changing behaviour: 'expression' (same value, anywhere), 'statement' (same
  effect, only as a statement of its own) or '' (never: the v1 code needs a
  decision the call alone does not show).
  """

  v0: str
  v1: str
  mechanical: str = ''
  note: str = ''
  when: str = ''
  unless: tuple[str, ...] = ()  # CheckpointManagerOptions fields.
  requires: tuple[str, ...] = ()  # CheckpointManagerOptions fields.
  needs: str = ''  # A key of members.CAPABILITIES.

  def __post_init__(self):
    assert self.mechanical in MECHANICAL, self.mechanical
    assert self.when in WHEN, self.when


@dataclasses.dataclass(frozen=True)
class Member:
  """One v0 member: its status, kind, note and forms (the first is general)."""

  name: str
  status: str
  forms: tuple[Form, ...]
  note: str = ''
  kind: str = 'method'

  def __post_init__(self):
    assert self.status in STATUSES, self.status
    assert self.kind in KINDS, self.kind
    assert self.forms, self.name

  @property
  def v0(self) -> str:
    """The member as v0 code calls it (its first, general form)."""
    return self.forms[0].v0

  @property
  def v1(self) -> str:
    """The v1 code of its first form."""
    return self.forms[0].v1


@dataclasses.dataclass(frozen=True)
class ArgsType:
  """One v0 args type: the v1 checkpointable (or abstract) it becomes.

  `v1` is code whose value is what v1 saves (a save type) or loads with (a
  restore type) under the item's name; `context` is code, if any, whose value
  is a v1 Context to enter (`with context:`) around the v1 call.
  """

  v0: str
  v1: str
  note: str = ''
  context: str = ''


@dataclasses.dataclass(frozen=True)
class Option:
  """One `CheckpointManagerOptions` field (or sub-field, `group.field`).

  `v1`: where it lives in v1, as a user writes it; `instead`: set where the
  v1 constructor has no form for a non-default value, what v1 code does
  instead; `refused`: why the shim refuses a non-default value (empty: it
  runs); `default`: v0's default, for tools that read source, or `factory`:
  the class v0 builds the default with.
  """

  field: str
  v1: str = ''
  note: str = ''
  instead: str = ''
  refused: str = ''
  default: object = None
  factory: str = ''


@dataclasses.dataclass(frozen=True)
class Capability:
  """A v1 surface the v1 code of some form needs, and the release bringing it."""

  what: str  # The v1 call, as the table's code spells it.
  release: str
