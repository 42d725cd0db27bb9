"""Scopes of one module, built during the collector's single walk.

The objects are libcst's own (`libcst.metadata.GlobalScope`, `FunctionScope`,
`ClassScope`, `ComprehensionScope`, `Assignment`, `ImportAssignment`,
`Access`), recorded with the rules and in the order of libcst's
`ScopeProvider` (its `ScopeVisitor` and `ExpressionContextProvider`), so that
`scope[name]`, `scope.assignments`, `ClassScope`, and the referents of a name
are what `ScopeProvider` gives. What differs is how they are built: the
`collect.Collector` walk records them while it collects everything else,
reading the tree without rebuilding it (`nodes.child_fields`), and the
accesses are resolved only for the names the analysis asks about. Run by
libcst, `ScopeProvider` costs two extra visits of the module (its own and
`ExpressionContextProvider`'s), each rebuilding every node, and resolves every
access: about 200-300 µs per line, against some 10-20 µs here
(docs/scanner.md, speed).

Left out: names inside string annotations (`x: "Foo"`), which `ScopeProvider`
parses and records as accesses of the string; the analysis reads quoted
annotations itself (`index.Analysis.annotation`).
"""

from __future__ import annotations

import collections
from typing import Any

import libcst as cst
from libcst import metadata as md
from libcst.helpers import get_full_name_for_node
from libcst.metadata import scope_provider as _sp

AnnotationScope = getattr(_sp, 'AnnotationScope', md.FunctionScope)  # PEP 695 (libcst 1.1+).

# Nodes after which libcst's ScopeVisitor counts an assignment (`Access` and
# `Assignment` compare these counts: a use before an assignment in the same
# scope does not see it).
ASSIGNMENT_LIKE = frozenset({
    cst.AnnAssign, cst.AsName, cst.Assign, cst.AugAssign, cst.ClassDef, cst.CompFor,
    cst.FunctionDef, cst.Global, cst.Import, cst.ImportFrom, cst.NamedExpr, cst.Nonlocal,
    cst.Parameters, cst.WithItem, *(getattr(cst, n) for n in (
        'TypeVar', 'TypeAlias', 'TypeVarTuple', 'ParamSpec') if hasattr(cst, n)),
})


def dotted_names(node: cst.CSTNode) -> list[tuple[str, cst.CSTNode]]:
  """libcst's `_gen_dotted_names`: ('a.b.c', node), ('a.b', ...), ('a', ...) of an
  attribute chain (through calls: `a.b().c` gives 'a.b', 'a')."""
  if isinstance(node, cst.Name):
    return [(node.value, node)]
  value = node.value
  if isinstance(value, cst.Call):
    value = value.func
    return dotted_names(value) if isinstance(value, (cst.Attribute, cst.Name)) else []
  if isinstance(value, (cst.Attribute, cst.Name)):
    inner = dotted_names(value)
    if not inner:
      return []
    return [(f'{inner[0][0]}.{node.attr.value}', node), *inner]
  return []


class Scopes:
  """The scopes of one module: `get(node)` is the scope `ScopeProvider` gives the
  node; `assignments(node)` what a name (or a dotted import name) may refer to."""

  def __init__(self):
    self.of: dict[int, md.Scope] = {}  # id(node) -> scope.
    # Per scope: (Access, enclosing top-level attribute) in walk order.
    self.raw: dict[md.Scope, list[tuple[md.Access, cst.Attribute | None]]] = (
        collections.defaultdict(list))
    self._groups: dict[md.Scope, dict[str, list[md.Access]]] = {}
    self._referents: dict[tuple[md.Scope, str], list[md.BaseAssignment]] = {}
    self._recorded: set[str] = set()  # Names whose assignments know their references.

  def get(self, node: cst.CSTNode, default: Any = None) -> md.Scope | None:
    return self.of.get(id(node), default)

  def _by_name(self, scope: md.Scope) -> dict[str, list[md.Access]]:
    """The scope's accesses by the name libcst records them under (a dotted import
    name when the chain starts with one: `import a.b` then `a.b.c`)."""
    groups = self._groups.get(scope)
    if groups is None:
      groups = self._groups[scope] = collections.defaultdict(list)
      for access, enclosing in self.raw.pop(scope, ()):
        name = access.node.value
        if enclosing is not None:
          for dotted, node in dotted_names(enclosing):
            if dotted in scope:
              access.node, name = node, dotted
              break
        groups[name].append(access)
    return groups

  def assignments(self, node: cst.CSTNode) -> list[md.BaseAssignment]:
    """The referents of every access of `node`'s name in `node`'s scope
    (`scope.accesses[node]`, flow-insensitive within the scope)."""
    scope = self.of.get(id(node))
    if scope is None:
      return []
    name = get_full_name_for_node(node)
    key = (scope, name)
    found = self._referents.get(key)
    if found is None:
      found, seen = [], set()
      for access in self._by_name(scope).get(name, ()):
        access.record_assignments(name)
        for a in access.referents:
          if id(a) not in seen:
            seen.add(id(a))
            found.append(a)
      self._referents[key] = found
    return found

  def references(self, assignment: md.BaseAssignment) -> set[md.Access]:
    """`assignment.references` as `ScopeProvider` gives it: the accesses of its
    name, in every scope of the module, that may refer to it (libcst's
    `ScopeVisitor.infer_accesses` records them on the assignments of every
    name; here only for the names asked about)."""
    name = assignment.name
    if name not in self._recorded:
      self._recorded.add(name)
      for scope in {id(s): s for s in self.of.values()}.values():
        accesses = self._by_name(scope).get(name)
        if not accesses:
          continue
        for access in accesses:
          access.record_assignments(name)
        for referent in scope._resolve_scope_for_access(name, scope):  # pylint: disable=protected-access
          referent.record_accesses(set(accesses))
    return assignment.references
