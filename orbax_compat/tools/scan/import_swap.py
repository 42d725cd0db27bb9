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

from orbax_compat.mapping import orbax_names
from orbax_compat.tools.scan import layout
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
    self.imports_needed: set[str] = set()  # Import statements the edits need.
    self.done: set[int] = set()  # Findings' nodes this run rewrites (or removes).

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
    if self.edits:
      self._ways = _ancestors(tree, self.edits.keys())
      tree = tree.visit(self)
    return self.finish_module(tree)

  def finish_module(self, tree: cst.Module) -> cst.Module:
    """After the edits: the imports they need, where isort would put them."""
    if self.imports_needed:
      tree = layout.add_imports(tree, sorted(self.imports_needed))
    return tree

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


def add_edit(edits: dict[int, Edit], key: int, edit: Edit) -> None:
  """`edit` on a node, after any edit it already has (edits compose)."""
  before = edits.get(key)
  if before is None:
    edits[key] = edit
    return

  def both(original: cst.CSTNode, updated: cst.CSTNode) -> cst.CSTNode:
    middle = before(original, updated)
    if isinstance(middle, cst.FlattenSentinel):
      return middle  # A split import line: nothing else edits it.
    return edit(original, middle)

  edits[key] = both


def reference_edit(replacement: str) -> Edit:
  """A reference to Orbax's manager class, to the shim's (`replacement`)."""
  new = cst.parse_expression(replacement)

  def edit(original: cst.CSTNode, updated: cst.CSTNode) -> cst.CSTNode:
    return new.with_changes(lpar=updated.lpar, rpar=updated.rpar)

  return edit


_SHIM = cst.Name(SHIM)


def _alias_name(alias: cst.ImportAlias) -> str:
  return alias.name.value if isinstance(alias.name, cst.Name) else dotted(alias.name) or ''


def _split(node: cst.ImportFrom) -> tuple[list[cst.ImportAlias], list[cst.ImportAlias]]:
  """(names orbax_compat gives the same, names that stay) of a `from` import."""
  module = dotted(node.module)
  if module == 'orbax':
    moved = [a for a in node.names if _alias_name(a) == 'checkpoint']
  else:
    reexported = orbax_names.SUBMODULE_REEXPORTS.get(module, frozenset())
    moved = [a for a in node.names if _alias_name(a) in reexported]
  kept = [a for a in node.names if all(a is not b for b in moved)]
  return moved, kept


def _names(aliases: list[cst.ImportAlias]) -> list[cst.ImportAlias]:
  return [a.with_changes(comma=cst.MaybeSentinel.DEFAULT) if i == len(aliases) - 1 else a
          for i, a in enumerate(aliases)]


def _swapped(node: cst.CSTNode) -> list[cst.BaseSmallStatement]:
  """One fixable import as the statements that replace it."""
  if m.matches(node, m.Import()):
    names = [a.with_changes(name=_SHIM) if dotted(a.name) == V0 and a.asname is not None else a
             for a in node.names]
    return [node.with_changes(names=names)]
  if dotted(node.module) == V0:  # from orbax.checkpoint import A, B
    return [node.with_changes(module=_SHIM)]
  moved, kept = _split(node)
  if dotted(node.module) == 'orbax':  # from orbax import checkpoint [as X][, export]
    (alias,) = moved
    asname = alias.asname or cst.AsName(name=cst.Name('checkpoint'))
    out = [cst.Import(names=[cst.ImportAlias(name=_SHIM, asname=asname)],
                      whitespace_after_import=node.whitespace_after_import)]
  else:  # from orbax.checkpoint.checkpoint_manager import CheckpointManager, ...
    out = [node.with_changes(module=_SHIM, names=_names(moved), lpar=None, rpar=None)
           if kept else node.with_changes(module=_SHIM)]
  if kept:
    out.append(node.with_changes(names=_names(kept), lpar=None, rpar=None))
  return out


def swap(original: cst.CSTNode, updated: cst.CSTNode) -> cst.CSTNode:
  """The swap of one fixable import statement (a small statement)."""
  (node,) = _swapped(updated) if len(_swapped(updated)) == 1 else (updated,)
  return node.with_changes(semicolon=updated.semicolon) if hasattr(node, 'semicolon') else node


def splits(node: cst.CSTNode) -> bool:
  return len(_swapped(node)) > 1


def swap_line(import_node: cst.CSTNode) -> Edit:
  """The swap of an import that becomes two (a line of its own): two lines."""

  def edit(original: cst.CSTNode, updated: cst.CSTNode) -> cst.CSTNode:
    index = next(i for i, small in enumerate(original.body) if small is import_node)
    parts = _swapped(updated.body[index])
    if len(updated.body) != 1:  # Beside other statements: `a; b` on the line.
      body = list(updated.body)
      body[index:index + 1] = [p.with_changes(semicolon=cst.Semicolon(
          whitespace_after=cst.SimpleWhitespace(' '))) for p in parts[:-1]] + [
              parts[-1].with_changes(semicolon=updated.body[index].semicolon)]
      return updated.with_changes(body=body)
    first = updated.with_changes(body=[parts[0]], trailing_whitespace=cst.TrailingWhitespace(
        newline=updated.trailing_whitespace.newline))
    rest = [cst.SimpleStatementLine(body=[p]) for p in parts[1:-1]]
    last = cst.SimpleStatementLine(body=[parts[-1]],
                                   trailing_whitespace=updated.trailing_whitespace)
    return cst.FlattenSentinel([first, *rest, last] if len(parts) > 1 else [first])

  return edit


class ImportSwapCommand(PlannedCommand):
  """`import orbax.checkpoint as X` -> `import orbax_compat as X`, where it stays correct."""

  DESCRIPTION = 'Swap orbax.checkpoint imports to orbax_compat (the v0 API on v1).'

  def plan(self, scan: FileScan) -> dict[int, Edit]:
    edits: dict[int, Edit] = {}
    swapped = references = 0
    for f in scan.findings:
      if f.kind == 'import' and f.fixable and f.needed and f.node is not None:
        swapped += 1
        self.done.add(id(f.node))
        if splits(f.node) and f.statement is not None:
          add_edit(edits, id(f.statement), swap_line(f.node))
        else:
          add_edit(edits, id(f.node), swap)
      elif f.kind == 'reference' and f.fixable and f.node is not None:
        references += 1
        self.done.add(id(f.node))
        add_edit(edits, id(f.node), reference_edit(f.v1))
        if f.v1.startswith(SHIM + '.'):
          self.imports_needed.add(f'import {SHIM}')
    self.counts.update(swapped=swapped, references=references)
    return edits
