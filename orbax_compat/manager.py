"""`CheckpointManager`: v0's surface, every member generated from the table."""

from __future__ import annotations

import functools

from orbax_compat import deprecation
from orbax_compat import table


def _member(row: table.Row):
  """One public member: notice the v0 call site, then run the adapter."""
  adapter = row.adapter
  if row.kind == 'protocol':
    return adapter
  member = functools.wraps(adapter)(deprecation.noticing(row, adapter))
  member.__name__ = member.__qualname__ = row.member
  member.__doc__ = f'v0 `{row.v0}` on v1: `{row.v1}`.'
  if row.kind == 'property':
    return property(member, doc=member.__doc__)
  return member


def from_table(rows):
  """Class decorator: installs one member per table row."""

  def install(cls):
    for row in rows:
      setattr(cls, row.member, _member(row))
    return cls

  return install


@from_table(table.ROWS)
class CheckpointManager:
  """Orbax v0 `CheckpointManager`, running on v1 `training.Checkpointer`.

  Construct it exactly as `orbax.checkpoint.CheckpointManager`; each v0 call
  site reports (once, by default) the v1 call that replaces it.
  """

  def __repr__(self):
    return f'orbax_compat.CheckpointManager({str(self._directory)!r})'
