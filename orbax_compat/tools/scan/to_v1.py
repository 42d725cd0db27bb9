"""`--to-v1`: the swap, mechanical calls moved to v1, TODOs above the rest.

`ToV1Command` (a libcst codemod) makes the `--fix` changes, then:

- replaces each use the scan marked `to_v1` with the v1 code of its form
  (placeholders bound to the call's own argument expressions, option
  placeholders to the manager's options as written, `ckptr` to
  `<manager>.v1_checkpointer`), in the simplest form that is still exact
  (`m.latest_step() is not None` -> `m.v1_checkpointer.latest is not None`; a
  save whose value is unused -> `if <new step>: <save>`), wrapped within the
  file's line length as the file wraps (`layout`);
- finishes the managers `finish.decide` says it can: the construction becomes
  the v1 Checkpointer for its options, calls on it plain v1 calls, `X.v1_checkpointer`
  `X`, an options statement nothing else reads goes, and a module left with no
  v0 use drops (or, for Orbax's own names, swaps back) its orbax_compat import;
- moves comments the rewrite drops above the statement, adds the imports the
  v1 code needs where isort would put them, and the helpers it calls
  (`members.HELPERS`) after the imports;
- leaves a short `# TODO(orbax-v1)` comment above every other manager use,
  once, above any next-line pragma of the statement: the v1 code with the
  call's arguments where it fits, and the MIGRATION_TABLE.md anchor.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import libcst as cst
from libcst import matchers as m
from libcst import metadata as md

from orbax_compat.mapping import forms
from orbax_compat.mapping import members as members_lib
from orbax_compat.mapping import orbax_names
from orbax_compat.tools.scan import finish as finish_lib
from orbax_compat.tools.scan import layout
from orbax_compat.tools.scan import templates
from orbax_compat.tools.scan.findings import SHIM
from orbax_compat.tools.scan.findings import TODO
from orbax_compat.tools.scan.findings import V0
from orbax_compat.tools.scan.findings import FileScan
from orbax_compat.tools.scan.findings import Finding
from orbax_compat.tools.scan.import_swap import Edit
from orbax_compat.tools.scan.import_swap import ImportSwapCommand
from orbax_compat.tools.scan.import_swap import add_edit
from orbax_compat.tools.scan.index import SITE
from orbax_compat.tools.scan.index import dotted
from orbax_compat.tools.scan.templates import MANAGER_KINDS

V1_CHECKPOINTER = 'v1_checkpointer'
_IMPORTS = {name: statement for name, (_, statement) in templates.V1_IMPORTS.items()}

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
  """Puts expressions in place of a v1 code's placeholders; with `drop`, a
  keyword argument whose value is a placeholder not given goes."""

  def __init__(self, values: dict[str, cst.BaseExpression], drop: frozenset[str] = frozenset()):
    super().__init__()
    self.values = values
    self.drop = drop
    self.used: set[str] = set()
    self._parents: list[cst.CSTNode] = []

  def on_visit(self, node: cst.CSTNode) -> bool:
    self._parents.append(node)
    return True

  def leave_Call(self, original_node, updated_node):
    if not self.drop:
      return updated_node
    args = [a for a in updated_node.args if not (
        a.keyword is not None and isinstance(a.value, cst.Name) and a.value.value in self.drop)]
    if len(args) == len(updated_node.args):
      return updated_node
    if args and isinstance(args[-1].comma, cst.Comma):
      args[-1] = args[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
    return updated_node.with_changes(args=args)

  def on_leave(self, original_node, updated_node):
    self._parents.pop()
    updated_node = super().on_leave(original_node, updated_node)
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


def _is_identity_test(expr: cst.BaseExpression) -> bool:
  return (isinstance(expr, cst.Comparison) and not expr.lpar
          and all(isinstance(t.operator, (cst.Is, cst.IsNot)) for t in expr.comparisons)
          and all(isinstance(t.comparator, cst.Name) for t in expr.comparisons))


def _discarded(expr: cst.BaseExpression) -> cst.BaseExpression:
  """What an expression statement of `expr` must still evaluate: an identity
  test (`E is not None`) has no effect of its own, so the statement is `E`;
  in `A and E is not None`, `A and E`."""
  while _is_identity_test(expr):
    expr = expr.left
  if isinstance(expr, cst.BooleanOperation) and isinstance(expr.operator, cst.And) and (
      not expr.lpar):
    return expr.with_changes(right=_discarded(expr.right))
  return expr


def _values(finding: Finding, call: cst.CSTNode, ckptr: cst.BaseExpression
            ) -> dict[str, cst.BaseExpression]:
  values = {'ckptr': ckptr}
  for name, path in finding.bindings:
    values[name] = follow(call, path)
  for name, code in finding.option_values:
    values[name] = cst.parse_expression(code)
  return values


def _ckptr(receiver: cst.BaseExpression, finished: bool) -> cst.BaseExpression:
  if finished:
    return receiver
  return cst.Attribute(value=receiver, attr=cst.Name(V1_CHECKPOINTER))


class _Where:
  """Columns and indentation of original nodes (for wrapping and comments)."""

  def __init__(self, scan: FileScan):
    self.module = scan.module
    self.positions = scan.positions
    self.lines = scan.module.code.split('\n')

  def of(self, node: cst.CSTNode) -> tuple[int, int, int]:
    """(start column, indentation of its first line, characters after it on its last line)."""
    if self.positions is None:
      return 0, 0, 0
    where = self.positions[node]
    line = self.lines[where.start.line - 1]
    indent = len(line) - len(line.lstrip())
    tail = len(self.lines[where.end.line - 1].rstrip()) - where.end.column
    return where.start.column, indent, max(tail, 0)

  def spans_lines(self, statement: cst.CSTNode, node: cst.CSTNode) -> bool:
    """A simple statement over several lines, `node` on one of them."""
    if self.positions is None or not isinstance(statement, cst.SimpleStatementLine):
      return False
    lines, inside = self.positions[statement], self.positions[node]
    return lines.start.line != lines.end.line and inside.start.line == inside.end.line

  def one_line(self, node: cst.CSTNode) -> bool:
    if self.positions is None:
      return False
    where = self.positions[node]
    return where.start.line == where.end.line

  def within(self, outer: cst.CSTNode, inner: cst.CSTNode) -> bool:
    """`inner` lies inside `outer` (by their positions)."""
    if self.positions is None:
      return True
    o, i = self.positions[outer], self.positions[inner]
    return ((o.start.line, o.start.column) <= (i.start.line, i.start.column)
            and (i.end.line, i.end.column) <= (o.end.line, o.end.column))

  def indent_of(self, statement: cst.CSTNode) -> str:
    if self.positions is None:
      return ''
    line = self.lines[self.positions[statement].start.line - 1]
    return line[:len(line) - len(line.lstrip())]


def v1_edit(finding: Finding, finished: bool, code: str = '',
            place: tuple[int, int, int, layout.Style] | None = None) -> Edit:
  """The v1 code of the finding's form (or `code`), its placeholders bound to
  the call's arguments and `ckptr` to `<receiver>.v1_checkpointer` (the
  receiver itself, for a finished manager). Its statement wraps it
  (`wrap_edit`), unless the statement spans lines already: then it is wrapped
  where it stands, `place` (its column, its line's indentation, the
  characters after it, the style)."""

  def edit(original: cst.CSTNode, updated: cst.CSTNode) -> cst.CSTNode:
    attribute = updated.func if isinstance(updated, cst.Call) else updated
    values = _values(finding, updated, _ckptr(attribute.value, finished))
    new = _v1_expression(code or finding.v1).visit(Substitute(values))
    statement = isinstance(finding.parent, cst.Expr)
    if statement:
      new = _discarded(new)
    if updated.lpar:
      new = new.with_changes(lpar=updated.lpar, rpar=updated.rpar)
    elif needs_parens(new, finding.parent, original):
      new = parenthesized(new)
    if place is not None:
      column, indent, tail, style = place
      new = layout.wrap(new, column, indent, style, tail)
    return new

  return edit


def wrap_edit(style: layout.Style, indent: int) -> Edit:
  """A statement holding rewritten code, rewrapped within the line length
  where a line of it is too long: its value (an assignment's, a return's, an
  expression statement's), an `if`/`while` test, a `for` iterable."""

  def edit(original: cst.CSTNode, updated: cst.CSTNode) -> cst.CSTNode:
    if isinstance(updated, cst.SimpleStatementLine) and len(updated.body) == 1:
      small = updated.body[0]
      if isinstance(small, (cst.Assign, cst.AnnAssign, cst.AugAssign, cst.Return, cst.Expr)) \
          and small.value is not None:
        prefix = len(layout.code_of(small)) - len(layout.code_of(small.value))
        if '\n' in layout.code_of(small)[:prefix]:
          return updated
        value = layout.wrap(small.value, indent + prefix, indent, style)
        return updated.with_changes(body=[small.with_changes(value=value)])
      return updated
    if isinstance(updated, (cst.If, cst.While)):
      keyword = 3 if isinstance(updated, cst.If) else 6
      return updated.with_changes(test=layout.wrap(updated.test, indent + keyword,
                                                   header_indent(indent, style), style, 1))
    if isinstance(updated, cst.For):
      prefix = 4 + len(layout.code_of(updated.target)) + 4
      return updated.with_changes(iter=layout.wrap(updated.iter, indent + prefix,
                                                   header_indent(indent, style), style, 1))
    return updated

  return edit


def header_indent(indent: int, style: layout.Style) -> int:
  """The indent to hang an `if`/`while`/`for` header's lines from: one level
  more where a hanging indent would line up with the block's body (four-space
  files, as PEP 8 asks)."""
  body = indent + len(style.indent)
  return indent + len(style.indent) if layout.hanging(indent, style) == body else indent


def _as_if(finding: Finding, new: cst.BaseExpression) -> bool:
  """A statement `mngr.save(...)` whose v1 code is `A and B`: `if A: B`."""
  statement = finding.statement
  return (isinstance(new, cst.BooleanOperation) and isinstance(new.operator, cst.And)
          and not new.lpar and isinstance(statement, cst.SimpleStatementLine)
          and len(statement.body) == 1 and isinstance(statement.body[0], cst.Expr)
          and statement.body[0].value is finding.node)


def if_edit(style: layout.Style, indent: int) -> Edit:
  """`A and B` as a statement -> `if A:\\n  B` (comments kept above)."""

  def edit(original: cst.CSTNode, updated: cst.CSTNode) -> cst.CSTNode:
    expr = updated.body[0].value
    if not (isinstance(expr, cst.BooleanOperation) and isinstance(expr.operator, cst.And)):
      return updated
    inner = indent + len(style.indent)
    test = layout.wrap(expr.left, indent + 3, header_indent(indent, style), style, 1)
    body = layout.wrap(expr.right, inner, inner, style)
    return cst.If(
        test=test, body=cst.IndentedBlock(body=[cst.SimpleStatementLine(
            body=[cst.Expr(body)], trailing_whitespace=updated.trailing_whitespace)]),
        leading_lines=updated.leading_lines)

  return edit


def try_edit(style: layout.Style, indent: int) -> Edit:
  """A save as a statement of its own, whose arguments may have effects:
  `try: <save> except StepAlreadyExistsError: pass` (v0 returned False)."""

  def edit(original: cst.CSTNode, updated: cst.CSTNode) -> cst.CSTNode:
    inner = indent + len(style.indent)
    small = updated.body[0]
    body = updated.with_changes(
        leading_lines=(), body=[small.with_changes(
            value=layout.wrap(small.value, inner, inner, style))])
    handler = cst.ExceptHandler(
        type=cst.parse_expression(templates.STEP_EXISTS),
        body=cst.IndentedBlock(body=[cst.SimpleStatementLine(body=[cst.Pass()])]))
    return cst.Try(body=cst.IndentedBlock(body=[body]), handlers=[handler],
                   leading_lines=updated.leading_lines)

  return edit


def latest_test_edit(finding: Finding, finished: bool) -> Edit:
  """`m.latest_step() is None` -> `m.v1_checkpointer.latest is None` (the
  simplest exact code: latest_step() is None exactly when latest is)."""

  def edit(original: cst.CSTNode, updated: cst.CSTNode) -> cst.CSTNode:
    call = updated.left
    attribute = call.func
    latest = cst.Attribute(value=_ckptr(attribute.value, finished), attr=cst.Name('latest'))
    return updated.with_changes(left=latest.with_changes(lpar=call.lpar, rpar=call.rpar))

  return edit


def _is_latest_test(finding: Finding) -> bool:
  parent = finding.parent
  return (finding.member == 'latest_step' and isinstance(parent, cst.Comparison)
          and parent.left is finding.node and len(parent.comparisons) == 1
          and isinstance(parent.comparisons[0].operator, (cst.Is, cst.IsNot))
          and templates.literal(parent.comparisons[0].comparator) == (True, None))


def unwrap_edit(original: cst.CSTNode, updated: cst.CSTNode) -> cst.CSTNode:
  """`X.v1_checkpointer` of a finished manager (X is the Checkpointer) -> X."""
  return updated.value.with_changes(lpar=updated.lpar, rpar=updated.rpar)


def construction_edit(decision: finish_lib.Decision, style: layout.Style, indent: str) -> Edit:
  # Its lines continue the statement's: libcst indents them with the block.
  code = finish_lib.reindented(decision.code, '', style.indent)
  code = layout.wrap_lines(code, style, style.max_line - len(indent))
  new = cst.parse_expression(code)

  def edit(original: cst.CSTNode, updated: cst.CSTNode) -> cst.CSTNode:
    return new.with_changes(lpar=updated.lpar, rpar=updated.rpar)

  return edit


def _remove(original: cst.CSTNode, updated: cst.CSTNode):
  return cst.RemovalSentinel.REMOVE


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
    return updated.with_changes(
        leading_lines=layout.insert_before_pragmas(list(updated.leading_lines), lines))
  return edit


def encodable(text: str, encoding: str) -> str:
  try:
    text.encode(encoding)
    return text
  except UnicodeEncodeError:
    return text.replace('\N{EM DASH}', '--').encode(encoding, 'replace').decode(encoding)


# --------------------------------------------------------------------------
# TODO comments.


def filled_code(finding: Finding) -> list[str]:
  """The finding's v1 code with the call's own arguments in place (and
  keyword arguments of placeholders the call does not give left out); the
  table's code on one line where it does not parse as a module."""
  code = finding.v1.strip()
  try:
    module = cst.parse_module(code)
  except cst.ParserSyntaxError:
    return [templates.one_line(finding.v1)]
  call = finding.node if isinstance(finding.node, cst.Call) else None
  receiver = finding.receiver_node
  values: dict[str, cst.BaseExpression] = {}
  if receiver is not None:
    values['ckptr'] = _ckptr(receiver, False)
  if call is not None:
    for name, path in finding.bindings:
      try:
        values[name] = follow(call, path)
      except (StopIteration, IndexError, AssertionError):
        pass
  unbound = frozenset(forms.names_in(code) & set(forms.PLACEHOLDERS)) - set(values)
  out = []
  for statement in module.body:
    if finding.kind == 'init' and isinstance(statement, cst.SimpleStatementLine) and (
        isinstance(statement.body[0], cst.Assign)):
      statement = statement.with_changes(body=[cst.Expr(statement.body[0].value)])
    new = statement.visit(Substitute(values, unbound))
    out.append(layout.code_of(new).strip())
  return out


def _anchor_of(comment: str) -> str | None:
  """The table anchor a TODO comment points to."""
  if not comment.startswith(f'# {TODO}:'):
    return None
  found = re.search(r'MIGRATION_TABLE\.md#[\w-]+', comment)
  return found.group(0) if found else None


# The last line of a construction's TODO: the v1 code above is the table's;
# the exact arguments for the manager's options (even none: v0's defaults are
# not v1's) are what v1_source writes.
INIT_POINTER = 'exact arguments: orbax_compat.v1_source(mngr)'


def todo_lines(finding: Finding, style: layout.Style, indent: str) -> list[str]:
  """Short TODO lines: the filled v1 code where it fits, and the table's anchor."""
  anchor = forms.anchor(finding.member)
  head = f'# {TODO}: '
  def fitted(text: str) -> list[str]:
    """`# TODO(orbax-v1): <text>; see <anchor>`, the anchor on a line of its own
    where one line is too long."""
    line = f'{head}{text}; see {anchor}'
    if len(indent) + len(line) <= style.max_line:
      return [line]
    return [f'{head}{text};', f'#   see {anchor}']

  if not finding.form and finding.kind != 'init':
    lines = fitted('no form of the table matches this call')
    if finding.note and 'this manager has' in finding.note:
      kind = finding.note.split('this manager has ', 1)[1].split(':', 1)[0]
      code = filled_code(finding)
      joined = f'#   {kind}: {"; ".join(code)}'
      if len(indent) + len(joined) <= style.max_line:
        lines.append(joined)
      else:
        lines.append(f'#   {kind}:')
        for c in code:
          lines.extend(_comment_code(c, indent, style))
    return lines
  code = filled_code(finding)
  single = f'{head}{"; ".join(code)}; see {anchor}'
  if len(indent) + len(single) <= style.max_line:
    lines = [single]
  else:
    lines = [f'{head}see {anchor}; in v1:']
    if len(indent) + len(lines[0]) > style.max_line:
      lines = [f'{head}{anchor}:']
    for c in code:
      lines.extend(_comment_code(c, indent, style))
  if finding.kind == 'init':  # v0's defaults are not v1's: v1_source spells them out.
    lines.append(f'#   {INIT_POINTER}')
  return lines


def _comment_code(code: str, indent: str, style: layout.Style) -> list[str]:
  """A line of code as comment lines `#   ...`, wrapped within the line length."""
  body, _, comment = code.partition('  # ')
  try:
    expr = cst.parse_expression(body)
  except cst.ParserSyntaxError:
    return [f'#   {code}']
  column = len(indent) + 4
  wrapped = layout.code_of(layout.wrap(expr, column, column, style)).split('\n')
  out = [f'#   {wrapped[0]}']
  for line in wrapped[1:]:
    out.append('#' + line[len(indent) + 1:] if len(line) > len(indent) + 1 else '#')
  if comment:
    out[-1] += f'  # {comment}'
  return out


# --------------------------------------------------------------------------
# The codemod.


class ToV1Command(ImportSwapCommand):
  """The swap, then each mechanical use to v1, finished managers to v1
  Checkpointers, and a TODO above every other use."""

  DESCRIPTION = ('Swap orbax.checkpoint imports to orbax_compat, rewrite the calls the '
                 'table marks mechanical into v1 (finishing managers that can be), and '
                 'leave a TODO above the others.')

  def plan(self, scan: FileScan) -> dict[int, Edit]:
    edits = super().plan(scan)
    module = scan.module
    style = layout.Style.of(scan.path, module)
    where = _Where(scan)
    decisions = scan.finished
    finished_keys = {k for k, d in decisions.items() if d.finished}
    comments: dict[int, tuple[cst.CSTNode, list[str]]] = {}
    self.helpers_needed: set[str] = set()
    self.finished_here = False

    def comment(statement: cst.CSTNode, texts: list[str]) -> None:
      existing = {ln.comment.value for ln in statement.leading_lines if ln.comment}
      if module.body and statement is module.body[0]:
        existing |= {ln.comment.value for ln in module.header if ln.comment}
      _, known = comments.setdefault(id(statement), (statement, []))
      if texts and texts[0] in existing:
        return
      anchor = _anchor_of(texts[0]) if texts else None
      if anchor and any(_anchor_of(e) == anchor for e in existing):
        return  # This TODO is there already (perhaps wrapped for another line length).
      for text in texts:
        if text not in known:
          known.append(text)

    by_statement: dict[int, list[Finding]] = {}  # The uses rewritten in each statement.
    for f in scan.findings:
      if f.to_v1 and f.node is not None and f.statement is not None:
        by_statement.setdefault(id(f.statement), []).append(f)
    rewritten = 0
    wrapped: set[int] = set()
    wrap_last: list[tuple[int, Edit]] = []
    for f in scan.findings:
      if f.node is None or f.kind not in MANAGER_KINDS or f.statement is None:
        continue
      if f.kind == 'init':
        decision = decisions.get(SITE + str(id(f.node)))
        if decision is not None and decision.finished:
          add_edit(edits, id(f.node),
                   construction_edit(decision, style, where.indent_of(f.statement)))
          self.done.add(id(f.node))
          self.imports_needed.update(decision.imports)
          self.finished_here = True
          rewritten += 1
          continue
      elif f.to_v1:
        finished = bool(f.sites) and all(k in finished_keys for k in f.sites)
        self.finished_here |= finished
        _, indent, _ = where.of(f.statement)
        if _is_latest_test(f):
          add_edit(edits, id(f.parent), latest_test_edit(f, finished))
        elif f.statement_form == 'try':
          add_edit(edits, id(f.node), v1_edit(f, finished, templates.guarded(f.v1)[1]))
          add_edit(edits, id(f.statement), try_edit(style, indent))
          wrapped.add(id(f.statement))
        else:
          place = None
          if not f.statement_form and where.spans_lines(f.statement, f.node) and all(
              where.one_line(g.node) and not where.within(g.node, f.node)
              for g in by_statement[id(f.statement)] if g is not f):
            place = (*where.of(f.node), style)  # Its line breaks stay: wrap it there.
          add_edit(edits, id(f.node), v1_edit(f, finished, place=place))
          if f.statement_form == 'if':
            add_edit(edits, id(f.statement), if_edit(style, indent))
        if id(f.statement) not in wrapped:
          wrapped.add(id(f.statement))
          wrap_last.append((id(f.statement), wrap_edit(style, indent)))
        self.done.add(id(f.node))
        rewritten += 1
        self.imports_needed.update(_IMPORTS[name] for name in f.imports)
        self.helpers_needed.update(f.helpers)
        for text in dropped_comments(f):
          comment(f.statement, [text])
        continue
      lines = [encodable(t, module.encoding) for t in todo_lines(
          f, style, where.indent_of(f.statement))]
      comment(f.statement, lines)
    for decision in decisions.values():
      if not decision.finished or decision.path != scan.path:
        continue
      for node_id in decision.unwrap:
        add_edit(edits, node_id, unwrap_edit)
      for node_id in decision.remove:
        add_edit(edits, node_id, _remove)
      self.done.update(decision.gone)
    for f in scan.findings:  # Options of finished managers, and their uses elsewhere.
      if f.kind == 'option' and id(f.node) in self.done:
        continue
      if f.sites and all(k in finished_keys for k in f.sites):
        self.finished_here = True
    for key, edit in wrap_last:  # After the statement's other edits.
      add_edit(edits, key, edit)
    todos = 0
    for statement, texts in comments.values():
      if texts:
        add_edit(edits, id(statement), lines_edit(texts))
        todos += sum(t.startswith(f'# {TODO}') for t in texts)
    self.counts.update(rewritten=rewritten, todos=todos)
    return edits

  def finish_module(self, tree: cst.Module) -> cst.Module:
    tree = super().finish_module(tree)
    if getattr(self, 'helpers_needed', None):
      tree = add_helpers(tree, self.helpers_needed)
    if getattr(self, 'finished_here', False):
      tree = drop_shim_import(tree)
    return tree


def add_helpers(tree: cst.Module, names: set[str]) -> cst.Module:
  """The helpers (and the helpers they call) after the module's imports,
  unless a module-level function of that name is already there."""
  defined = {s.name.value for s in tree.body if isinstance(s, cst.FunctionDef)}
  wanted = [n for n in forms.helper_order(forms.helpers_needed(*names)) if n not in defined]
  if not wanted:
    return tree
  body = list(tree.body)
  index = 0
  while index < len(body) and (_is_docstring(body[index]) and index == 0 or _is_import(
      body[index])):
    index += 1
  new = []
  for name in wanted:
    # Written with two-space indentation; its blocks take the module's own
    # (libcst indents them with the module's default, continuation lines relative).
    helper = cst.parse_module(members_lib.HELPERS[name]).body[0]
    new.append(helper.with_changes(leading_lines=[cst.EmptyLine()] * 2))
  if index < len(body):
    lines = list(body[index].leading_lines)
    blank = 0
    while blank < len(lines) and lines[blank].comment is None:
      blank += 1
    body[index] = body[index].with_changes(
        leading_lines=[cst.EmptyLine()] * max(0, 2 - blank) + lines)
  body[index:index] = new
  return tree.with_changes(body=body)


def _is_import(stmt: cst.CSTNode) -> bool:
  return isinstance(stmt, cst.SimpleStatementLine) and all(
      isinstance(s, (cst.Import, cst.ImportFrom)) for s in stmt.body)


def _is_docstring(stmt: cst.CSTNode) -> bool:
  return (isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1
          and isinstance(stmt.body[0], cst.Expr)
          and isinstance(stmt.body[0].value, (cst.SimpleString, cst.ConcatenatedString)))


def drop_shim_import(tree: cst.Module) -> cst.Module:
  """A module left with no v0 use needs no orbax_compat: its imports of it go
  (nothing reads them), or become Orbax's (only Orbax's own names are read)."""
  wrapper = md.MetadataWrapper(tree, unsafe_skip_copy=True)
  scopes = wrapper.resolve(md.ScopeProvider)
  parents = wrapper.resolve(md.ParentNodeProvider)
  scope = scopes.get(tree)
  if scope is None:
    return tree
  edits: dict[int, Any] = {}
  for stmt in tree.body:
    if not _is_import(stmt):
      continue
    for small in stmt.body:
      if isinstance(small, cst.Import):
        for alias in small.names:
          if dotted(alias.name) != SHIM:
            continue
          name = alias.asname.name.value if alias.asname else SHIM
          reads = _reads(scope, name)
          if reads is None:
            continue
          attrs = {_attribute_read(r, parents) for r in reads}
          if not reads:
            edits[id(alias)] = 'drop'
          elif alias.asname is not None and all(a is not None and _orbax_own(a) for a in attrs):
            edits[id(alias)] = 'unswap'
      elif isinstance(small, cst.ImportFrom) and dotted(small.module) == SHIM and not (
          isinstance(small.names, cst.ImportStar)):
        for alias in small.names:
          name = alias.asname.name.value if alias.asname else alias.name.value
          reads = _reads(scope, name)
          if reads is not None and not reads:
            edits[id(alias)] = 'drop'
        if all(edits.get(id(a)) == 'drop' for a in small.names):
          edits[id(small)] = 'drop'
        elif all(_orbax_own(a.name.value) or edits.get(id(a)) == 'drop' for a in small.names):
          edits[id(small)] = 'unswap'
  if not edits:
    return tree
  return tree.visit(_ImportEdits(edits))


def _reads(scope, name: str):
  if name not in scope.assignments:
    return None
  out = []
  for assignment in scope.assignments[name]:
    out.extend(assignment.references)
  return out


def _attribute_read(access, parents) -> str | None:
  """`ocp.NAME` read: NAME (None for any other read of `ocp`)."""
  parent = parents.get(access.node)
  if isinstance(parent, cst.Attribute) and parent.value is access.node:
    return parent.attr.value
  return None


def _orbax_own(name: str | None) -> bool:
  return name is not None and name != 'CheckpointManager' and name not in (
      orbax_names.SHIM_NAMES) and orbax_names.fixable_name(name)


class _ImportEdits(cst.CSTTransformer):
  def __init__(self, edits):
    super().__init__()
    self.edits = edits

  def leave_Import(self, original_node, updated_node):
    names = []
    for original, alias in zip(original_node.names, updated_node.names, strict=True):
      action = self.edits.get(id(original))
      if action == 'drop':
        continue
      if action == 'unswap':
        alias = alias.with_changes(name=cst.parse_expression(V0))
      names.append(alias)
    if not names:
      return cst.RemovalSentinel.REMOVE
    if len(names) != len(updated_node.names):
      names[-1] = names[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
    return updated_node.with_changes(names=names)

  def leave_ImportFrom(self, original_node, updated_node):
    action = self.edits.get(id(original_node))
    if action == 'drop':
      return cst.RemovalSentinel.REMOVE
    names = updated_node.names
    if not isinstance(names, cst.ImportStar):
      kept = [a for o, a in zip(original_node.names, names, strict=True)
              if self.edits.get(id(o)) != 'drop']
      if not kept:
        return cst.RemovalSentinel.REMOVE
      if len(kept) != len(names):
        kept[-1] = kept[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
        updated_node = updated_node.with_changes(names=kept)
    if action == 'unswap':
      return updated_node.with_changes(module=cst.parse_expression(V0))
    return updated_node

  def leave_SimpleStatementLine(self, original_node, updated_node):
    if not updated_node.body:
      return cst.RemovalSentinel.REMOVE
    return updated_node
