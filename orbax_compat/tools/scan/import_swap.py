"""`--fix`: the one-import swap to orbax_compat, as a libcst codemod.

`ImportSwapCommand` rewrites each import the scan marked fixable
(`import orbax.checkpoint as X`, `from orbax import checkpoint [as X]`,
`from orbax.checkpoint import A, B`) and nothing else, keeping comments and
formatting. It is also the base of the `--to-v1` command: both run on a
planned scan (`engine.FileScan`: findings holding the nodes of the tree they
transform); run alone (as libcst's `CodemodTest` runs it) a command scans the
module it is given first.
"""

from __future__ import annotations

from collections.abc import Callable

import libcst as cst
from libcst import matchers as m
from libcst.codemod import CodemodContext
from libcst.codemod import VisitorBasedCodemodCommand
from libcst.codemod.visitors import AddImportsVisitor
from libcst.codemod.visitors import RemoveImportsVisitor

from orbax_compat.tools.scan import nodes
from orbax_compat.tools.scan.findings import SHIM
from orbax_compat.tools.scan.findings import V0
from orbax_compat.tools.scan.findings import FileScan
from orbax_compat.tools.scan.index import dotted

# An edit replaces one node of the planned tree: (original, updated) -> new node.
Edit = Callable[[cst.CSTNode, cst.CSTNode], cst.CSTNode]


class PlannedCommand(VisitorBasedCodemodCommand):
  """A codemod applying edits keyed by the identity of the planned tree's nodes.

  With a `FileScan` of the very tree it is given (the scan's own parse, with
  its metadata), it transforms that tree without the copy libcst's
  `MetadataWrapper` makes; otherwise (a tree parsed elsewhere, e.g. by
  `CodemodTest`) it scans the tree first, through the same codemod path.
  AddImportsVisitor / RemoveImportsVisitor run after it, as for any
  `CodemodCommand`.

  The visit enters only the nodes that contain an edited node: libcst rebuilds
  each node it visits, and the rest of the tree is kept as it is (the same
  code; most of a module has no edit). An edit gets the node's children as
  they are when none of them is edited.
  """

  DESCRIPTION = 'orbax_compat scan codemod'

  def __init__(self, context: CodemodContext, scan: FileScan | None = None):
    super().__init__(context)
    self.scan = scan
    self.edits: dict[int, Edit] = {}
    self.counts: dict[str, int] = {}
    self._ways: set[int] | None = None  # ids of the edited nodes' ancestors; None: all.

  def transform_module(self, tree: cst.Module) -> cst.Module:
    if self.scan is None or self.scan.module is not tree:
      return super().transform_module(tree)
    tree = self.transform_module_impl(tree)
    for key, transform in ((AddImportsVisitor.CONTEXT_KEY, AddImportsVisitor),
                           (RemoveImportsVisitor.CONTEXT_KEY, RemoveImportsVisitor)):
      if key in self.context.scratch:
        tree = self._instantiate_and_run(transform, tree)
    return tree

  def transform_module_impl(self, tree: cst.Module) -> cst.Module:
    if self.scan is None or self.scan.module is not tree:
      from orbax_compat.tools.scan import engine  # pylint: disable=import-outside-toplevel
      self.scan = engine.scan_tree(tree, self.context.filename or '<string>')
    self.edits = self.plan(self.scan)
    if not self.edits:
      return tree
    self._ways = _ancestors(tree, self.edits.keys())
    return tree.visit(self)

  def plan(self, scan: FileScan) -> dict[int, Edit]:
    raise NotImplementedError

  def on_visit(self, node: cst.CSTNode) -> bool:
    enter = super().on_visit(node)
    return enter and (self._ways is None or id(node) in self._ways)

  def on_leave(self, original_node, updated_node):
    updated = super().on_leave(original_node, updated_node)
    edit = self.edits.get(id(original_node))
    return edit(original_node, updated) if edit is not None else updated


def _ancestors(tree: cst.Module, edited) -> set[int] | None:
  """The ids of the nodes that contain an edited node (by id), through the
  syntax fields (`nodes.children`); None when some edited node is not reached
  that way (then the whole tree is visited)."""
  todo = set(edited)
  ways: set[int] = set()
  path: list[cst.CSTNode] = []

  def walk(node: cst.CSTNode) -> None:
    if id(node) in todo:
      todo.discard(id(node))
      ways.update(id(n) for n in path)
    path.append(node)
    for child in nodes.children(node):
      if not todo:
        break
      walk(child)
    path.pop()

  walk(tree)
  return None if todo else ways


_SHIM = cst.Name(SHIM)


def swap(original: cst.CSTNode, updated: cst.CSTNode) -> cst.CSTNode:
  """The swap of one fixable import statement."""
  if m.matches(updated, m.Import()):
    names = [a.with_changes(name=_SHIM) if dotted(a.name) == V0 and a.asname is not None else a
             for a in updated.names]
    return updated.with_changes(names=names)
  if dotted(updated.module) == V0:  # from orbax.checkpoint import A, B
    return updated.with_changes(module=_SHIM)
  # from orbax import checkpoint [as X]  ->  import orbax_compat as X
  (alias,) = updated.names
  asname = alias.asname or cst.AsName(name=cst.Name('checkpoint'))
  return cst.Import(names=[cst.ImportAlias(name=_SHIM, asname=asname, comma=alias.comma)],
                    semicolon=updated.semicolon,
                    whitespace_after_import=updated.whitespace_after_import)


class ImportSwapCommand(PlannedCommand):
  """`import orbax.checkpoint as X` -> `import orbax_compat as X`, where it stays correct."""

  DESCRIPTION = 'Swap orbax.checkpoint imports to orbax_compat (the v0 API on v1).'

  def plan(self, scan: FileScan) -> dict[int, Edit]:
    edits = {}
    for f in scan.findings:
      if f.kind == 'import' and f.fixable and f.node is not None:
        edits[id(f.node)] = swap
    self.counts['swapped'] = len(edits)
    return edits
