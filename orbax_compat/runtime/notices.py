"""Deprecation notices for v0 calls: one per call site, in logs and as warnings.

The policy comes from `ORBAX_COMPAT_WARNINGS` (off | once | always | error,
default once) or `set_warning_policy(...)`. `once` reports the first call from
each site, a site being (member, file, line); a call site inside a loop, or in
code that `exec`/`eval` compiles again and again, therefore reports once.

The shim's own calls of members (v0's `save` asking `self.should_save`) are
neither reported nor counted: they run the implementation, or a subclass's
override (`runtime.state.own`), never the public member.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import sys
import threading
from typing import Any
import warnings
import weakref

from orbax_compat.mapping import forms
from orbax_compat.mapping.schema import Form
from orbax_compat.mapping.schema import Member

logger = logging.getLogger('orbax_compat')

POLICIES = ('off', 'once', 'always', 'error')
ENV_VAR = 'ORBAX_COMPAT_WARNINGS'
UNKNOWN_CALLER = '(unknown caller)'


class OrbaxCompatDeprecationWarning(DeprecationWarning):
  """A v0 CheckpointManager member was called through orbax_compat."""


def _print_notices_once() -> None:
  """A plain run prints each notice once, as the log line.

  Python's default filters show DeprecationWarnings raised in `__main__`, so
  a script's notice would print twice: logged, then warned. An `ignore` entry
  for this category just above that default entry hides the second print
  only; filters added by the user (-W, PYTHONWARNINGS, filterwarnings,
  catch_warnings, pytest -W error::DeprecationWarning) stand above it and
  still see every notice.
  """
  ours = ('ignore', None, OrbaxCompatDeprecationWarning, None, 0)
  for i, (action, message, category, module, _) in enumerate(warnings.filters):
    if ours == warnings.filters[i]:
      return
    pattern = getattr(module, 'pattern', module)
    if (action, message, category, pattern) == ('default', None, DeprecationWarning, '__main__'):
      warnings.filters.insert(i, ours)
      # A public call that resets the module's caches after the edit above.
      warnings.filterwarnings('ignore', category=OrbaxCompatDeprecationWarning, append=True)
      return


_print_notices_once()


def _validated(policy: Any, source: str) -> str:
  value = str(policy).strip().lower()
  if value not in POLICIES:
    raise ValueError(
        f'{source} must be one of {", ".join(POLICIES)}; got {policy!r}.'
    )
  return value


class Site:
  """One call site `(member, file, line)`: its calls, whether reported, and the
  form of its first call (v0 pattern, v1 code, table row) for the report."""

  __slots__ = ('member', 'file', 'line', 'calls', 'reported', 'form', 'anchor')

  def __init__(self, member: str, file: str, line: int, form: Any, anchor: str):
    self.member, self.file, self.line = member, file, line
    self.form, self.anchor = form, anchor
    self.calls = 0
    self.reported = False


class _State:
  """Mutable module state; one instance, read on every shim call.

  Finding a frame's line walks its code's line table (microseconds in a long
  function), so each code location `(id(code), bytecode offset, member)`
  remembers its `Site`, next to a weak reference to the code: no code object
  is kept alive, and an id that a new code object reuses is told apart.
  """

  __slots__ = ('policy', 'once', 'off', 'locations', 'sites', 'lock')

  def __init__(self):
    self.policy = _validated(os.environ.get(ENV_VAR, 'once'), ENV_VAR)
    self.once = self.policy == 'once'  # Read on every call.
    self.off = self.policy == 'off'
    self.locations: dict[tuple[str, int, int], tuple[Any, Site]] = {}
    self.sites: dict[tuple[str, str, int], Site] = {}
    self.lock = threading.Lock()


state = _State()


def set_warning_policy(policy: str) -> str:
  """Sets the policy (off | once | always | error); returns the previous one."""
  previous, state.policy = state.policy, _validated(policy, 'policy')
  state.once = state.policy == 'once'
  state.off = state.policy == 'off'
  return previous


def get_warning_policy() -> str:
  return state.policy


def reset() -> None:
  """Forgets reported call sites and counts (tests, long-lived notebooks)."""
  with state.lock:
    state.locations.clear()
    state.sites.clear()


def form_for(member: Member, mngr: Any, args: tuple, kwargs: dict) -> Form:
  """The form a call `member(*args, **kwargs)` on `mngr` is in."""
  try:
    bound = forms.signature(member.name).bind(mngr, *args, **kwargs).arguments
  except TypeError:
    bound = None
  state = getattr(mngr, '_state', None)  # None: a subclass before super().__init__.
  return forms.form_for(member, bound, state.kind if state else '', _is_args_type)


def _is_args_type(value: Any, name: str) -> bool:
  """Whether `value` is an instance of v0's `ocp.args.<name>`."""
  from orbax.checkpoint import args as v0_args  # pylint: disable=g-import-not-at-top

  cls = getattr(v0_args, name, None)
  return isinstance(value, cls) if isinstance(cls, type) else type(value).__name__ == name


def message(member: Member, form: Form | None = None) -> str:
  """The notice of a call in `form` (the member's first form by default),
  saying so where the installed Orbax lacks what its v1 code needs."""
  from orbax_compat.compat import orbax as compat  # pylint: disable=g-import-not-at-top

  form = form or member.forms[0]
  return forms.message(member, form, missing=compat.capability_missing(form.needs))


def _site_of(member: Member, frame: Any, call: tuple[Any, tuple, dict]) -> Site:
  """The Site of a call `call` = (manager, args, kwargs) of `member` from
  `frame` (None: a call from C), registering it."""
  name = member.name
  if frame is None:  # Called from C: atexit, a raw thread's target.
    key = (name, UNKNOWN_CALLER, 0)
  else:
    key = (name, frame.f_code.co_filename, frame.f_lineno or 0)
  site = state.sites.get(key)
  form = form_for(member, *call) if site is None else None  # Outside the lock: runs user code.
  with state.lock:
    site = state.sites.get(key)
    if site is None:
      site = state.sites[key] = Site(*key, form, forms.anchor(name))
    if frame is not None:
      code = frame.f_code
      location = (id(code), frame.f_lasti, name)

      def forget(_, location=location, locations=state.locations):
        locations.pop(location, None)

      state.locations[location] = (weakref.ref(code, forget), site)
  return site


# A public member, generated per member with v0's own parameters (so a bad
# call raises v0's TypeError, and a call passes its arguments on without
# packing them). The hot path, a known site whose notice is not due, only
# finds the site and counts the call (bench/queries.py `overhead`).
_MEMBER_SOURCE = """
def member(self{params}):
  try:
    frame = _getframe(1)
  except ValueError:  # No Python caller: atexit, a raw thread's target.
    return _noticed(self, None, ({args}))
  code = frame.f_code
  known = _locations.get((id(code), frame.f_lasti, _name))
  if known is not None and known[0]() is code:
    site = known[1]
    site.calls += 1
    if _state.off or (site.reported and _state.once):
      return _implementation(self{passed})
  return _noticed(self, frame, ({args}))
"""


def noticing(member: Member, implementation: Any) -> Any:
  """`implementation` as a public member: each call is counted and noticed
  per site. The shim's own calls never come here (`runtime.state.own`)."""
  name = member.name
  params = [p for p in forms.signature(name).parameters.values() if p.name != 'self']

  def noticed(self, frame: Any, args: tuple) -> Any:
    """A call from a new site, or whose notice is due: count, report, run."""
    if frame is None:
      site = _site_of(member, None, (self, args, {}))
    else:
      code = frame.f_code
      known = state.locations.get((id(code), frame.f_lasti, name))
      if known is not None and known[0]() is code:
        site = known[1]
      else:
        site = _site_of(member, frame, (self, args, {}))
    # No lock: an attribute increment runs no Python code, so no other thread
    # runs inside it (tests/test_warnings.py counts calls from 8 threads).
    site.calls += 1
    policy = state.policy
    if policy != 'off' and not (site.reported and policy == 'once'):
      site.reported = True
      _report(message(member, form_for(member, self, args, {})), site, frame, policy)
    return implementation(self, *args)

  source = _MEMBER_SOURCE.format(
      params=''.join(f', {p.name}' + (f'={p.default!r}' if p.default is not p.empty else '')
                     for p in params),
      args=''.join(f'{p.name}, ' for p in params),
      passed=''.join(f', {p.name}' for p in params),
  )
  namespace = {'_getframe': sys._getframe, '_locations': state.locations, '_name': name,
               '_state': state, '_noticed': noticed, '_implementation': implementation}
  exec(compile(source, f'<orbax_compat member {name}>', 'exec'), namespace)  # pylint: disable=exec-used
  return namespace['member']


def _report(text: str, site: Site, frame: Any, policy: str) -> None:
  where = f'{site.file}:{site.line}' if site.line else site.file
  if policy == 'error':
    raise OrbaxCompatDeprecationWarning(f'{where}: {text}')
  logger.warning('%s: %s', where, text)
  warnings.warn_explicit(
      text,
      OrbaxCompatDeprecationWarning,
      site.file,
      site.line,
      module=frame.f_globals.get('__name__') if frame is not None else None,
  )


def usage_report() -> list[tuple[str, str, int, int]]:
  """(member, file, line, calls) for every v0 call seen, most called first."""
  with state.lock:
    sites = list(state.sites.values())
  return sorted(
      ((s.member, s.file, s.line, s.calls) for s in sites if s.calls),
      key=lambda r: (-r[3], r[0], r[1], r[2]),
  )


REPORT_VAR = 'ORBAX_COMPAT_REPORT'


def report() -> dict[str, Any]:
  """Each v0 member used: its calls, call sites and the v1 code replacing it.

  The sites' v1 code is that of the form of each site's first call.
  """
  with state.lock:
    sites = [s for s in state.sites.values() if s.calls]
  members: dict[str, dict[str, Any]] = {}
  for site in sorted(sites, key=lambda s: (s.member, s.file, s.line)):
    entry = members.setdefault(site.member, {
        'member': site.member, 'calls': 0, 'table': site.anchor, 'sites': []})
    entry['calls'] += site.calls
    entry['sites'].append({
        'file': site.file, 'line': site.line, 'calls': site.calls,
        'v0': site.form.v0, 'v1': site.form.v1})
  return {'members': sorted(members.values(), key=lambda m: (-m['calls'], m['member']))}


def _report_at_exit() -> None:
  """`ORBAX_COMPAT_REPORT=path.json` writes `report()` at exit; `=log` logs it.

  Never raises: an unwritable path logs one error.
  """
  target = os.environ.get(REPORT_VAR, '').strip()
  if not target:
    return
  try:
    data = report()
    if target.lower() == 'log':
      lines = [f'orbax_compat: v0 CheckpointManager calls in this run ({REPORT_VAR}=log):']
      for m in data['members']:
        lines.append(f'  {m["member"]}: {m["calls"]} call(s) [{m["table"]}]')
        lines += [f'    {s["file"]}:{s["line"]} x{s["calls"]}: {s["v0"]}  ->  {s["v1"]}'
                  for s in m['sites']]
      logger.warning('\n'.join(lines))
      return
    with open(target, 'w', encoding='utf-8') as f:
      json.dump(data, f, indent=2)
  except Exception as e:  # pylint: disable=broad-except
    logger.error('orbax_compat: could not write the %s report to %r: %s', REPORT_VAR, target, e)


atexit.register(_report_at_exit)
