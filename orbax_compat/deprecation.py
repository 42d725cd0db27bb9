"""Deprecation notices for v0 calls: one per call site, in logs and as warnings.

The policy comes from `ORBAX_COMPAT_WARNINGS` (off | once | always | error,
default once) or `set_warning_policy(...)`. `once` reports the first call from
each (member, file, line); a call site inside a loop therefore reports once.
"""

from __future__ import annotations

import collections
import logging
import os
from typing import Any
import warnings

logger = logging.getLogger('orbax_compat')

POLICIES = ('off', 'once', 'always', 'error')
ENV_VAR = 'ORBAX_COMPAT_WARNINGS'


class OrbaxCompatDeprecationWarning(DeprecationWarning):
  """A v0 CheckpointManager member was called through orbax_compat."""


def _validated(policy: Any, source: str) -> str:
  value = str(policy).strip().lower()
  if value not in POLICIES:
    raise ValueError(
        f'{source} must be one of {", ".join(POLICIES)}; got {policy!r}.'
    )
  return value


class _State:
  """Mutable module state; one instance, read on every shim call."""

  __slots__ = ('policy', 'seen', 'calls', 'codes')

  def __init__(self):
    self.policy = _validated(os.environ.get(ENV_VAR, 'once'), ENV_VAR)
    # Call sites are keyed by (member, id(code), bytecode offset): a frame's
    # line number walks its line table and hashing a code object walks its
    # bytecode, on every call (microseconds in a long function).
    self.seen: set[tuple[str, int, int]] = set()
    self.calls: dict[tuple[str, int, int], int] = {}
    self.codes: dict[int, Any] = {}  # Keeps each code object (and its id) alive.


state = _State()


def set_warning_policy(policy: str) -> str:
  """Sets the policy (off | once | always | error); returns the previous one."""
  previous, state.policy = state.policy, _validated(policy, 'policy')
  return previous


def get_warning_policy() -> str:
  return state.policy


def reset() -> None:
  """Forgets reported call sites and counts (tests, long-lived notebooks)."""
  state.seen.clear()
  state.calls.clear()
  state.codes.clear()


def notify(row: Any, frame: Any) -> None:
  """Reports a call of `row`'s v0 member from `frame`, per the policy."""
  code = frame.f_code
  key = (row.member, id(code), frame.f_lasti)
  calls = state.calls.get(key)
  if calls is None:
    state.codes[id(code)] = code
  state.calls[key] = (calls or 0) + 1
  policy = state.policy
  if policy == 'off':
    return
  line = None
  if policy == 'once':
    if key in state.seen:
      return
    state.seen.add(key)
    # Two calls of a member on one line (say, in an f-string) are one site.
    line = frame.f_lineno
    if (row.member, id(code), -line) in state.seen:
      return
    state.seen.add((row.member, id(code), -line))
  line = line or frame.f_lineno
  message = row.deprecation_message()
  if policy == 'error':
    raise OrbaxCompatDeprecationWarning(f'{code.co_filename}:{line}: {message}')
  logger.warning('%s:%d: %s', code.co_filename, line, message)
  warnings.warn_explicit(
      message,
      OrbaxCompatDeprecationWarning,
      code.co_filename,
      line,
      module=frame.f_globals.get('__name__'),
  )


def _line_of(code: Any, offset: int) -> int:
  for start, end, line in code.co_lines():
    if start <= offset < end and line is not None:
      return line
  return code.co_firstlineno


def usage_report() -> list[tuple[str, str, int, int]]:
  """(member, file, line, calls) for every v0 call seen, most called first."""
  per_line: collections.Counter = collections.Counter()
  for (member, code_id, offset), calls in state.calls.items():
    code = state.codes[code_id]
    per_line[(member, code.co_filename, _line_of(code, offset))] += calls
  return sorted(
      ((m, f, ln, n) for (m, f, ln), n in per_line.items()),
      key=lambda r: (-r[3], r[0], r[1], r[2]),
  )
