"""What the constructions a manager comes from say, read statically.

A manager's origins (`index.Analysis.origins`) name the constructions it may
come from (`index.SITE` keys). For each: the manager's *kind* (one unnamed
item, or named items: v0 decides the item layout from `item_names`,
`item_handlers`, legacy `checkpointers=` or, for a plain construction, the
first save), and its options as written (`CheckpointManagerOptions(...)`
inline or through a name assigned once), field by field. The `--to-v1`
checks bind option placeholders (`best_fn`) from them, and finishing renders
the v1 constructor from them.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import libcst as cst
from libcst import metadata as md

from orbax_compat.mapping import forms
from orbax_compat.tools.scan import collect
from orbax_compat.tools.scan import index as index_lib
from orbax_compat.tools.scan import templates
from orbax_compat.tools.scan.index import SITE

SINGLE, NAMED = 'single_item', 'named_items'


@dataclasses.dataclass(frozen=True)
class Site:
  mod: collect.Module
  call: cst.Call

  @property
  def key(self) -> str:
    return SITE + str(id(self.call))


def sites_of(analysis: index_lib.Analysis, origins: set[str]) -> list[Site]:
  """The constructions a manager with `origins` may come from (orbax_compat's)."""
  out = []
  for o in sorted(origins):
    if o.startswith(SITE):
      found = analysis.sites.get(int(o[len(SITE):]))
      if found is not None:
        out.append(Site(*found))
  return out


def only_sites(origins: set[str]) -> bool:
  """Every origin is a construction this scan sees (no parameter, annotation...)."""
  return all(index_lib.is_origin_fact(o) or o in (index_lib.NEW, index_lib.NEW_ITEMS)
             for o in origins)


def _value(analysis: index_lib.Analysis, mod: collect.Module,
           expr: cst.BaseExpression | None) -> tuple[collect.Module, Any]:
  """An expression, or the value a name is assigned once (else None)."""
  if isinstance(expr, cst.Name):
    targets = analysis.resolve(mod, expr)
    if len(targets) == 1 and isinstance(targets[0], index_lib.Local):
      t = targets[0]
      return t.mod, t.mod.c.assigned.get(id(t.node))
    return mod, None
  return mod, expr


def kind_of_site(analysis: index_lib.Analysis, site: Site) -> str:
  """'single_item', 'named_items', or '' (decided by the first save)."""
  bound = templates.bind_call(forms.signature('__init__'), site.call)
  if bound is None:
    return ''
  given = {k: v for k, v in bound.items() if not templates.is_none(v)}
  if 'item_names' in given:
    return NAMED
  for name in ('item_handlers', 'checkpointers'):
    if name in given:
      _, value = _value(analysis, site.mod, given[name].node)
      if isinstance(value, cst.Dict):
        return NAMED
      if isinstance(value, cst.Call):
        return SINGLE
      return ''
  return ''


def kind_of(analysis: index_lib.Analysis, origins: set[str]) -> str:
  """The kind every construction of a manager shows, or ''."""
  kinds = {kind_of_site(analysis, s) for s in sites_of(analysis, origins)}
  return kinds.pop() if len(kinds) == 1 and only_sites(origins) else ''


@dataclasses.dataclass
class Options:
  """A construction's options as written: `fields` {field: value node} of a
  `CheckpointManagerOptions(...)` call (none: v0's defaults), or `readable`
  False with `why`."""

  readable: bool
  fields: dict[str, cst.BaseExpression] = dataclasses.field(default_factory=dict)
  mod: collect.Module | None = None
  call: cst.Call | None = None  # The options call, if any.
  name: cst.Name | None = None  # The name it is assigned to, if through one.
  why: str = ''


def options_of(analysis: index_lib.Analysis, site: Site) -> Options:
  """The options a construction passes, as written."""
  bound = templates.bind_call(forms.signature('__init__'), site.call)
  if bound is None:
    return Options(False, why='the construction passes *args or **kwargs')
  slot = bound.get('options')
  if slot is None or templates.is_none(slot):
    return Options(True, mod=site.mod)
  name = slot.node if isinstance(slot.node, cst.Name) else None
  mod, value = _value(analysis, site.mod, slot.node)
  if not (isinstance(value, cst.Call)
          and analysis.api(mod, value.func, 'CheckpointManagerOptions') is not None):
    return Options(False, why='they are not a CheckpointManagerOptions(...) call this '
                   'scan can read')
  fields = {}
  for arg in value.args:
    if arg.keyword is None:
      return Options(False, why='they pass positional or ** arguments')
    fields[arg.keyword.value] = arg.value
  return Options(True, fields, mod, value, name)


def same_binding(mod_a: collect.Module, node_a: cst.CSTNode, mod_b: collect.Module,
                 node_b: cst.CSTNode, name: str) -> bool:
  """`name` at `node_a` and at `node_b` is one binding, assigned once: a def,
  a class, an import or one assignment (so it holds the same value at both)."""
  if mod_a is not mod_b:
    return False
  scope_a, scope_b = mod_a.scopes.get(node_a), mod_b.scopes.get(node_b)
  if scope_a is None or scope_b is None:
    return False
  found_a = scope_a[name] if name in scope_a else set()
  found_b = scope_b[name] if name in scope_b else set()
  if len(found_a) != 1 or set(found_a) != set(found_b):
    return False
  (assignment,) = found_a
  if isinstance(assignment, md.BuiltinAssignment):
    return True
  return isinstance(assignment, (md.Assignment, md.ImportAssignment)) and len(
      assignment.scope.assignments[name]) == 1
