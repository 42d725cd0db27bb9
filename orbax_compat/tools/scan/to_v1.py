"""`--to-v1`: the swap, mechanical calls moved to v1, TODOs above the rest.

`ToV1Command` (a libcst codemod) makes the `--fix` swap, replaces each use
the scan marked `to_v1` with the v1 code of its form (placeholders bound to
the call's own argument expressions, `ckptr` to
`<manager>.v1_checkpointer`), moves comments the rewrite drops above the
statement, adds `import jax` / `import numpy as np` where the v1 code needs
them (libcst's `AddImportsVisitor`), and leaves a `# TODO(orbax-v1)` comment
above every other manager use, once.
"""

from __future__ import annotations

import functools
from typing import Any

import libcst as cst
from libcst import matchers as m

from orbax_compat.tools.scan import templates
from orbax_compat.tools.scan.findings import TODO
from orbax_compat.tools.scan.findings import FileScan
from orbax_compat.tools.scan.findings import Finding
from orbax_compat.tools.scan.import_swap import Edit
from orbax_compat.tools.scan.import_swap import ImportSwapCommand
from orbax_compat.tools.scan.templates import MANAGER_KINDS

V1_CHECKPOINTER = 'v1_checkpointer'
_IMPORTS = {'jax': ('jax', None), 'np': ('numpy', 'np'),
            'ocp_v1': ('orbax.checkpoint.experimental', 'v1')}

# Nodes that never need parentheses as an operand.
_ATOMS = (cst.Name, cst.Attribute, cst.Call, cst.Subscript, cst.SimpleString, cst.Integer,
          cst.Float, cst.Imaginary, cst.List, cst.Dict, cst.Set, cst.ListComp, cst.SetComp,
          cst.DictComp, cst.GeneratorExp, cst.FormattedString, cst.Ellipsis)


def needs_parens(expr: cst.BaseExpression, parent: cst.CSTNode | None,
                 child: cst.CSTNode) -> bool:
  """`expr`, put where `child` is under `parent`, needs parentheses."""
  if isinstance(expr, _ATOMS) or getattr(expr, 'lpar', ()):
    return False
  if isinstance(parent, cst.Arg):
    return not (parent.value is child and not parent.star)
  if isinstance(parent, (cst.Element, cst.Index)):
    return parent.value is not child
  if isinstance(parent, cst.DictElement):
    return child is not parent.value and child is not parent.key
  if isinstance(parent, (cst.Expr, cst.Assign, cst.AnnAssign, cst.AugAssign, cst.Return)):
    return parent.value is not child
  if isinstance(parent, (cst.If, cst.While, cst.Assert)):
    return parent.test is not child
  return True


def parenthesized(expr: cst.BaseExpression) -> cst.BaseExpression:
  return expr.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])


class Substitute(cst.CSTTransformer):
  """Puts expressions in place of a v1 code's placeholders."""

  def __init__(self, values: dict[str, cst.BaseExpression]):
    super().__init__()
    self.values = values
    self.used: set[str] = set()
    self._parents: list[cst.CSTNode] = []

  def on_visit(self, node: cst.CSTNode) -> bool:
    self._parents.append(node)
    return True

  def on_leave(self, original_node, updated_node):
    self._parents.pop()
    parent = self._parents[-1] if self._parents else None
    if not m.matches(original_node, m.Name()) or original_node.value not in self.values:
      return updated_node
    if m.matches(parent, m.Attribute()) and parent.attr is original_node:
      return updated_node
    if m.matches(parent, m.Arg()) and parent.keyword is original_node:
      return updated_node
    value = self.values[original_node.value]
    if original_node.value in self.used:
      value = value.deep_clone()
    self.used.add(original_node.value)
    return parenthesized(value) if needs_parens(value, parent, original_node) else value


@functools.cache
def _v1_expression(code: str) -> cst.BaseExpression:
  return cst.parse_expression(code.strip())


def follow(call: cst.Call, path: tuple[tuple[str, Any], ...]) -> cst.BaseExpression:
  """The argument at `path` (see `templates.Template.bindings`) of a libcst call."""
  node: cst.BaseExpression = call
  for kind, key in path:
    assert isinstance(node, cst.Call), node
    if kind == 'pos':
      node = [a for a in node.args if a.keyword is None and not a.star][key].value
    else:
      node = next(a.value for a in node.args if a.keyword is not None and a.keyword.value == key)
  return node


def _discarded(expr: cst.BaseExpression) -> cst.BaseExpression:
  """What an expression statement of `expr` must still evaluate: an identity
  test (`E is not None`) has no effect of its own, so the statement is `E`."""
  while (isinstance(expr, cst.Comparison) and not expr.lpar
         and all(isinstance(t.operator, (cst.Is, cst.IsNot)) for t in expr.comparisons)
         and all(isinstance(t.comparator, cst.Name) for t in expr.comparisons)):
    expr = expr.left
  return expr


def v1_edit(finding: Finding) -> Edit:
  """The v1 code of the finding's form, its placeholders bound to the call's
  arguments and `ckptr` to `<receiver>.v1_checkpointer`."""

  def edit(original: cst.CSTNode, updated: cst.CSTNode) -> cst.CSTNode:
    attribute = updated.func if isinstance(updated, cst.Call) else updated
    values = {'ckptr': cst.Attribute(value=attribute.value, attr=cst.Name(V1_CHECKPOINTER))}
    for name, path in finding.bindings:
      values[name] = follow(updated, path)
    new = _v1_expression(finding.v1).visit(Substitute(values))
    if isinstance(finding.parent, cst.Expr):
      new = _discarded(new)
    if updated.lpar:
      return new.with_changes(lpar=updated.lpar, rpar=updated.rpar)
    return parenthesized(new) if needs_parens(new, finding.parent, original) else new

  return edit


def dropped_comments(finding: Finding) -> list[str]:
  """Comments of a rewritten call outside what the rewrite keeps (the receiver and
  the arguments): they move above the statement."""
  kept = [finding.receiver_node] if finding.receiver_node is not None else []
  if isinstance(finding.node, cst.Call):
    kept += [follow(finding.node, path) for _, path in finding.bindings]
  keep = {id(c) for node in kept for c in m.findall(node, m.Comment())}
  return [c.value for c in m.findall(finding.node, m.Comment()) if id(c) not in keep]


def lines_edit(comments: list[str]) -> Edit:
  def edit(original: cst.CSTNode, updated: cst.CSTNode) -> cst.CSTNode:
    lines = [cst.EmptyLine(comment=cst.Comment(c)) for c in comments]
    return updated.with_changes(leading_lines=[*updated.leading_lines, *lines])
  return edit


def encodable(text: str, encoding: str) -> str:
  try:
    text.encode(encoding)
    return text
  except UnicodeEncodeError:
    return text.replace('\N{EM DASH}', '--').encode(encoding, 'replace').decode(encoding)


class ToV1Command(ImportSwapCommand):
  """The swap, then each mechanical use to v1 and a TODO above every other."""

  DESCRIPTION = ('Swap orbax.checkpoint imports to orbax_compat, rewrite the calls the '
                 'table marks mechanical into v1, and leave a TODO above the others.')

  def plan(self, scan: FileScan) -> dict[int, Edit]:
    edits = super().plan(scan)
    module = scan.module
    comments: dict[int, tuple[cst.CSTNode, list[str]]] = {}

    def comment(statement: cst.CSTNode, text: str) -> None:
      existing = {ln.comment.value for ln in statement.leading_lines if ln.comment}
      if module.body and statement is module.body[0]:
        existing |= {ln.comment.value for ln in module.header if ln.comment}
      _, texts = comments.setdefault(id(statement), (statement, []))
      if text not in existing and text not in texts:
        texts.append(text)

    rewritten, needed = 0, set()
    for f in scan.findings:
      if f.node is None or f.kind not in MANAGER_KINDS or f.statement is None:
        continue
      if f.to_v1:
        edits[id(f.node)] = v1_edit(f)
        rewritten += 1
        needed.update(f.imports)
        for text in dropped_comments(f):
          comment(f.statement, text)
      else:
        comment(f.statement, encodable(f.todo, module.encoding))
    todos = 0
    for statement, texts in comments.values():
      if texts:
        edits[id(statement)] = lines_edit(texts)
        todos += sum(t.startswith(f'# {TODO}') for t in texts)
    for name in sorted(needed):
      module_name, asname = _IMPORTS[name]
      if name == 'ocp_v1':
        self.add_needed_import(module_name, 'v1', asname='ocp_v1')
      else:
        self.add_needed_import(module_name, asname=asname)
    self.counts.update(rewritten=rewritten, todos=todos)
    return edits


_ = templates  # The templates' placeholders are bound by `Finding.bindings`.
