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

from orbax_compat.mapping import members as members_lib
from orbax_compat.mapping import options as mapping_options
from orbax_compat.mapping.schema import Member
from orbax_compat.tools.scan import collect
from orbax_compat.tools.scan import index as index_lib
from orbax_compat.tools.scan import sites as sites_lib
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
  helpers: tuple[str, ...] = ()  # `members.HELPERS` the module needs defined.
  statement_form: str = ''  # 'if' / 'try' (see `statement_form`).
  # Placeholders bound from the manager's options: (name, source code).
  option_values: tuple[tuple[str, str], ...] = ()


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
  helpers: list[str] = dataclasses.field(default_factory=list)
  option_values: dict[str, str] = dataclasses.field(default_factory=dict)
  statement_form: str = ''  # 'if' / 'try': a guarded save as a statement of its own.

  @property
  def mod(self) -> collect.Module:
    return self.finder.mod

  @property
  def form(self):
    return self.template.form

  @property
  def info(self) -> templates.CodeInfo:
    if self.statement_form == 'try':  # Only the save call runs, once.
      return templates.code_info(templates.guarded(self.form.v1)[1])
    return templates.code_info(self.form.v1)

  @property
  def scope(self):
    return self.mod.scopes.get(self.node)

  @property
  def analysis(self) -> index_lib.Analysis:
    return self.finder.analysis


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


def statement_form(use: Use) -> str | None:
  """A save's v1 code guards a step v1 would refuse (`new_step and save`). As
  a statement of its own it becomes `if new_step: save` where skipping the
  arguments changes nothing, else `try: save except ...StepAlreadyExistsError`."""
  parent = use.mod.c.parent.get(id(use.node))
  if templates.guarded(use.form.v1) is None or not (
      isinstance(parent, cst.Expr) and parent.value is use.node):
    return None
  effects = [templates.effects(e) for e in use.template.nodes.values()]
  use.statement_form = 'if' if templates.IMPURE not in effects else 'try'
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
  foreign = {o for o in use.origins if not index_lib.is_origin_fact(o)} - {NEW, NEW_ITEMS}
  if len(foreign) > 1:
    foreign.discard(PARAM)  # What it is received as says more.
  if foreign:
    return 'the manager may be ' + '; or '.join(_FOREIGN.get(o, o) for o in sorted(foreign))
  return None


def options_required(use: Use) -> str | None:
  """`Form.requires`: each construction must set those options, visibly."""
  if not use.form.requires:
    return None
  sites = sites_lib.sites_of(use.analysis, use.origins)
  for site in sites:
    fields = use.analysis.option_fields(site.mod, site.call)
    missing = [f for f in use.form.requires if f not in fields]
    if missing or '?' in fields:
      return (f'the v1 code equals v0 only with {", ".join(use.form.requires)} set; the '
              f'manager\'s options {"do not show it" if "?" in fields else "leave it unset"}')
  if not sites:
    return f'the v1 code equals v0 only with {", ".join(use.form.requires)} set'
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
  return {'ckptr': use.attribute.value, **use.template.nodes,
          **{n: _parsed(code) for n, code in use.option_values.items()}}


def _parsed(code: str) -> cst.BaseExpression:
  return cst.parse_expression(code)


def _option_value(use: Use, field: str) -> str | None:
  """The source of the manager's value of option `field`, as the call site can
  evaluate it (its default where no construction sets it), or None."""
  if not sites_lib.only_sites(use.origins):
    return None
  codes = set()
  for site in sites_lib.sites_of(use.analysis, use.origins):
    options = sites_lib.options_of(use.analysis, site)
    if not options.readable:
      return None
    value = options.fields.get(field)
    if value is None:
      codes.add(repr(templates.OPTION_DEFAULTS.get(field)))
      continue
    if not (templates.literal(value)[0] or isinstance(value, (cst.Name, cst.Lambda))):
      return None
    if isinstance(value, cst.Lambda):
      params = {p.name.value for p in value.params.params}
      names = index_lib.names_in(value.body) - params
    else:
      names = set() if templates.literal(value)[0] else {value.value}
    if not all(sites_lib.same_binding(options.mod, value, use.mod, use.node, n)
               for n in names):
      return None
    codes.add(options.mod.tree.code_for_node(value).strip())
  return codes.pop() if len(codes) == 1 else None


def placeholders_missing(use: Use) -> str | None:
  missing = sorted({o.name for o in use.info.occurrences} - set(_exprs(use)))
  for name in list(missing):
    if name in mapping_options.BY_FIELD:
      code = _option_value(use, name)
      if code is not None:
        use.option_values[name] = code
        missing.remove(name)
  if missing:
    fields = [m for m in missing if m in mapping_options.BY_FIELD]
    if fields:
      return (f'the v1 code needs the manager\'s {", ".join(fields)}, which its options do '
              'not show in a form the call site can name')
    return f'the v1 code needs {", ".join(missing)}, which the call does not give'
  return None


def dropped_impure(use: Use) -> str | None:
  if any(templates.effects(e) == templates.IMPURE for e in use.template.dropped):
    return 'an argument the v1 code drops may have effects (a call)'
  return None


def evaluation(use: Use) -> str | None:
  """Each argument evaluated as often as v0 does, in the same order, in the
  same scope: a name, literal or attribute any number of times; operators on
  those any number of times (same value, no effects); a display (`{...}`,
  `[...]`) at most once (a new object each time); anything else (a call)
  exactly once, unconditionally, in source order."""
  info, impure = use.info, []
  exprs = _exprs(use)
  for name, expr in exprs.items():
    occurrences = [o for o in info.occurrences if o.name == name]
    shown = templates.first_line(use.finder.segment(expr)) if name not in use.option_values \
        else use.option_values[name]
    effects = templates.effects(expr)
    if effects == templates.IMPURE:
      if len(occurrences) != 1 or occurrences[0].guarded:
        return f'`{shown}` would be evaluated a different number of times'
      impure.append((expr, info.occurrences.index(occurrences[0])))
    elif effects == templates.FRESH and len(occurrences) > 1:
      return f'`{shown}` would be evaluated more than once (a new object each time)'
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
  """Inside an f-string, the v1 code may not hold its quote or a backslash
  (before Python 3.12); string literals bound from the manager's options take
  the other quote where they can."""
  quote = use.mod.c.in_fstring.get(id(use.node))
  if quote is None:
    return None
  other = '"' if quote[0] == "'" else "'"
  for name, code in use.option_values.items():
    if quote[0] in code and _simple_string(code) and other not in code[1:-1]:
      use.option_values[name] = other + code[1:-1] + other
  written = ' '.join([use.form.v1, *use.option_values.values()])
  if quote[0] in written or '\\' in written:
    return 'inside an f-string (the v1 code\'s quotes may not nest there)'
  return None


def _simple_string(code: str) -> bool:
  """`'text'` / `"text"`: one quote each side, no prefix, escape or quote inside."""
  return (len(code) >= 2 and code[0] == code[-1] and code[0] in '\'"'
          and not any(c in code[1:-1] for c in '\'"\\'))


def names_shadowed(use: Use) -> str | None:
  """`jax` / `np` / `ocp_v1` must name what the v1 code means (or nothing:
  imported); a helper the v1 code calls, the helper (or nothing: defined)."""
  scope = use.scope
  module_scope = use.mod.scopes.get(use.mod.tree)
  free = set(use.info.free) | ({'ocp_v1'} if use.statement_form == 'try' else set())
  module_free = set(use.info.helper_free) | free  # Imports go at the top of the module.
  for name in sorted(module_free):
    module = templates.V1_IMPORTS[name][0]
    assignments = (scope[name] if scope is not None and name in scope else set()) if (
        name in free) else set()
    module_level = set(module_scope.assignments[name]) if module_scope is not None else set()
    if not assignments and not module_level:
      if name not in use.imports:
        use.imports.append(name)
      continue
    for a in assignments | module_level:
      if not (isinstance(a, md.ImportAssignment)
              and index_lib._import_qname(a.node, name, use.mod) == module):  # pylint: disable=protected-access
        where = 'here' if a in assignments else 'in this module'
        return f'`{name}` names something else {where} than in the v1 code'
  for name in use.info.helpers:
    assignments = scope[name] if scope is not None and name in scope else set()
    module_level = module_scope.assignments[name] if module_scope is not None else set()
    if not assignments and not module_level:
      use.helpers.append(name)
      continue
    if not all(isinstance(a.node, cst.FunctionDef) and a.scope is module_scope
               and templates.same_code(use.mod.tree.code_for_node(a.node),
                                       members_lib.HELPERS[name])
               for a in assignments | set(module_level)):
      return f'`{name}` names something else here than the helper the v1 code calls'
  return None


CHECKS: tuple[Check, ...] = (
    no_form, attribute_written, not_mechanical, release_lacks_it, several_lines, value_used,
    not_orbax_compats, statement_form, options_differ, options_required, named_items, inexact,
    placeholders_missing, dropped_impure, evaluation, in_fstring, names_shadowed,
)


def plan_v1(finder, row: Member, template: templates.Template, node: cst.CSTNode,
            attribute: cst.Attribute, origins: set[str]) -> Plan:
  """Whether --to-v1 rewrites this use, why not, and the imports its v1 code needs."""
  use = Use(finder, row, template, node, attribute, origins)
  for check in CHECKS:
    reason = check(use)
    if reason:
      return Plan(False, reason)
  return Plan(True, '', tuple(use.imports), tuple(use.helpers),
              statement_form=use.statement_form,
              option_values=tuple(sorted(use.option_values.items())))
