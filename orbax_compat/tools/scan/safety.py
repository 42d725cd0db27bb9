"""When `--to-v1` may rewrite a use: the safety rules, as named checks.

A rewrite never changes behaviour. `plan_v1` runs `CHECKS` in order; the
first that objects gives the reason the use is kept (`Finding.reason`, the
text output's `[kept: ...]`). Each check reads a `Use`: the finding's
module, its table row and matched form (`templates.Template`), the nodes,
and the manager's origins from the whole-repo analysis (`index.Analysis`).
A new rule is one more function in `CHECKS`.
"""

from __future__ import annotations

from collections.abc import Callable
import dataclasses
from typing import Any

import libcst as cst
from libcst import metadata as md

from orbax_compat.mapping.schema import Member
from orbax_compat.tools.scan import index as index_lib
from orbax_compat.tools.scan import templates
from orbax_compat.tools.scan.index import DECLARED
from orbax_compat.tools.scan.index import NATIVE
from orbax_compat.tools.scan.index import NEW
from orbax_compat.tools.scan.index import NEW_ITEMS
from orbax_compat.tools.scan.index import OPTION
from orbax_compat.tools.scan.index import PARAM
from orbax_compat.tools.scan.index import SUBCLASS


@dataclasses.dataclass(frozen=True)
class Plan:
  ok: bool
  reason: str = ''
  imports: tuple[str, ...] = ()  # jax / np / ocp_v1: the v1 code needs an import.


@dataclasses.dataclass
class Use:
  """One member use, as the checks see it."""

  finder: Any  # detect.ModuleFindings
  row: Member
  template: templates.Template
  node: cst.CSTNode  # The Call, or the Attribute for a property or uncalled method.
  attribute: cst.Attribute
  origins: set[str]
  imports: list[str] = dataclasses.field(default_factory=list)

  @property
  def mod(self) -> index_lib.Module:
    return self.finder.mod

  @property
  def form(self):
    return self.template.form

  @property
  def info(self) -> templates.CodeInfo:
    return templates.code_info(self.form.v1)

  @property
  def scope(self):
    return self.mod.scopes.get(self.node)


Check = Callable[[Use], str | None]


def no_form(use: Use) -> str | None:
  if use.form is None:
    return 'no form of the table matches this use statically'
  return None


def attribute_written(use: Use) -> str | None:
  if id(use.attribute) in use.mod.c.stores:
    return 'the attribute is assigned or deleted here, not read'
  return None


def not_mechanical(use: Use) -> str | None:
  if not use.form.mechanical:
    return 'the table has no mechanical rewrite for this form'
  return None


def release_lacks_it(use: Use) -> str | None:
  from orbax_compat.tools.scan import capabilities  # pylint: disable=import-outside-toplevel
  return capabilities.capability_missing(use.form.needs) or None


def several_lines(use: Use) -> str | None:
  if not use.info.expression:
    return 'the v1 code has several lines'
  return None


def value_used(use: Use) -> str | None:
  """A 'statement' form only as a statement of its own."""
  parent = use.mod.c.parent.get(id(use.node))
  if use.form.mechanical == 'statement' and not (
      isinstance(parent, cst.Expr) and parent.value is use.node):
    return 'the v1 code does the same only as a statement of its own; here the value is used'
  return None


def options_differ(use: Use) -> str | None:
  """`Form.unless`: the v1 code differs from v0 under some options."""
  options = {o[len(OPTION):] for o in use.origins if o.startswith(OPTION)}
  form = use.form
  risky = sorted(set(form.unless) & options) or (['?'] if form.unless and '?' in options else [])
  if risky:
    shown = 'options this file does not show' if risky == ['?'] else ', '.join(risky)
    return (f'the v1 code differs from v0 under {", ".join(form.unless)}; the manager may '
            f'set {shown}')
  return None


_FOREIGN = {
    NATIVE: 'built by Orbax\'s own CheckpointManager (no v1_checkpointer)',
    SUBCLASS: 'of a subclass defined here (it may override members)',
    DECLARED: 'known only by an annotation (its class is not visible here)',
    PARAM: 'a parameter (callers outside the paths scanned may pass another manager)',
}


def not_orbax_compats(use: Use) -> str | None:
  """Only managers built by orbax_compat's own class have `v1_checkpointer`."""
  options = {o for o in use.origins if o.startswith(OPTION)}
  foreign = use.origins - {NEW, NEW_ITEMS} - options
  if len(foreign) > 1:
    foreign.discard(PARAM)  # What it is received as says more.
  if foreign:
    return 'the manager may be ' + '; or '.join(_FOREIGN.get(o, o) for o in sorted(foreign))
  return None


def named_items(use: Use) -> str | None:
  if use.info.default_item and NEW_ITEMS in use.origins:
    return 'the v1 code reads the single item "default"; this manager is built with items'
  return None


def inexact(use: Use) -> str | None:
  if not use.template.exact:
    return 'the args call gives arguments the form leaves out'
  return None


def _exprs(use: Use) -> dict[str, cst.BaseExpression]:
  return {'ckptr': use.attribute.value, **use.template.nodes}


def placeholders_missing(use: Use) -> str | None:
  missing = sorted({o.name for o in use.info.occurrences} - set(_exprs(use)))
  if missing:
    return f'the v1 code needs {", ".join(missing)}, which the call does not give'
  return None


def dropped_impure(use: Use) -> str | None:
  if not all(templates.is_pure(e) for e in use.template.dropped):
    return 'an argument the v1 code drops is not a plain name or literal'
  return None


def evaluation(use: Use) -> str | None:
  """Each argument evaluated once, in the same order, in the same scope."""
  info, impure = use.info, []
  for name, expr in _exprs(use).items():
    occurrences = [o for o in info.occurrences if o.name == name]
    shown = templates.first_line(use.finder.segment(expr))
    if not templates.is_pure(expr):
      if len(occurrences) != 1 or occurrences[0].guarded:
        return f'`{shown}` would be evaluated a different number of times'
      impure.append((expr, info.occurrences.index(occurrences[0])))
    names = index_lib.names_in(expr)
    for o in occurrences:
      if names & o.around:
        return f'`{shown}` would see a name the v1 code binds'
      if o.scoped and isinstance(use.scope, md.ClassScope) and names:
        return 'the v1 code would evaluate an argument in its own scope inside a class body'
  positions = use.mod.positions
  by_source = sorted(impure, key=lambda e: (positions[e[0]].start.line,
                                            positions[e[0]].start.column))
  if [e for e, _ in by_source] != [e for e, _ in sorted(impure, key=lambda e: e[1])]:
    return 'the v1 code evaluates the arguments in another order'
  return None


def in_fstring(use: Use) -> str | None:
  if id(use.node) in use.mod.c.in_fstring:
    return 'inside an f-string (the v1 code\'s quotes may not nest there)'
  return None


def names_shadowed(use: Use) -> str | None:
  """`jax` / `np` / `ocp_v1` must name what the v1 code means (or nothing: imported)."""
  scope = use.scope
  for name in sorted(use.info.free):
    module = templates.V1_IMPORTS[name][0]
    assignments = scope[name] if scope is not None and name in scope else set()
    if not assignments:
      use.imports.append(name)
      continue
    for a in assignments:
      if not (isinstance(a, md.ImportAssignment)
              and index_lib._import_qname(a.node, name, use.mod) == module):  # pylint: disable=protected-access
        return f'`{name}` names something else here than in the v1 code'
  return None


CHECKS: tuple[Check, ...] = (
    no_form, attribute_written, not_mechanical, release_lacks_it, several_lines, value_used,
    not_orbax_compats, options_differ, named_items, inexact, placeholders_missing,
    dropped_impure, evaluation, in_fstring, names_shadowed,
)


def plan_v1(finder, row: Member, template: templates.Template, node: cst.CSTNode,
            attribute: cst.Attribute, origins: set[str]) -> Plan:
  """Whether --to-v1 rewrites this use, why not, and the imports its v1 code needs."""
  use = Use(finder, row, template, node, attribute, origins)
  for check in CHECKS:
    reason = check(use)
    if reason:
      return Plan(False, reason)
  return Plan(True, '', tuple(use.imports))
