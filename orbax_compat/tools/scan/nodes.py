"""Fast, read-only access to a libcst tree: child fields, positions on demand.

libcst's visitors rebuild every node they pass (`_visit_and_replace_children`
constructs a new node, even for a read-only `CSTVisitor`), and
`PositionProvider` records a position for every node of a module. The scan
reads much and reports little, so:

- `child_fields(cls)`: the fields of a node class that hold syntax (not
  whitespace, parentheses, commas or operators), in the order libcst's own
  visit takes them (read from `_visit_and_replace_children`'s constants, so a
  new libcst release brings its own order; `tests/test_scan_nodes.py` checks
  the order against `CSTNode.children`). A walk over them reads the tree
  without rebuilding it.
- `Positions`: `PositionProvider`'s `CodeRange`s (the same syntactic rules,
  through the nodes' own `_codegen`), computed on demand by code generations
  that record token indices only; lines and columns are worked out for the
  nodes asked for. Given the module's text, one top-level statement is
  generated at a time (the one holding the node asked for), placed at its
  line by Python's own parse of the text and checked against the text; else
  (or when that check fails) the whole module at once.
- `parse_module(source)`: libcst's parse, without running every node's
  `_validate` on what its own parser built (about 12% of the parse; libcst's
  `CSTNode.__post_init__` notes the same cost). Nodes built later, by the
  codemods, are validated as ever; `tests/test_scan_nodes.py` checks that the
  trees are equal to validated ones.
"""

from __future__ import annotations

import ast
import bisect
from collections.abc import Iterator
import contextlib
import dataclasses
import re
import threading
import warnings

import libcst as cst
from libcst._nodes.internal import CodegenState  # pylint: disable=protected-access
from libcst.metadata import CodePosition
from libcst.metadata import CodeRange

# Fields that hold only whitespace, comments, parentheses, brackets, commas,
# colons, dots or operators: nothing a name or a call can be in.
_LAYOUT = frozenset({
    'lpar', 'rpar', 'comma', 'semicolon', 'colon', 'first_colon', 'second_colon', 'dot', 'equal',
    'lbrace', 'rbrace', 'lbracket', 'rbracket', 'relative', 'leading_lines',
    'lines_after_decorators', 'header', 'footer', 'empty_lines', 'first_line', 'last_line',
    'newline', 'trailing_whitespace', 'trailing_comma', 'comment', 'leading_whitespace',
    'operator', 'separator', 'asynchronous', 'posonly_ind',
})

_FIELDS: dict[type, tuple[str, ...]] = {}


def _unvalidated(self) -> None:  # pylint: disable=unused-argument
  """`CSTNode.__post_init__` while libcst's parser builds a tree."""


_VALIDATING = cst.CSTNode.__dict__['__post_init__']
_PARSING = threading.Lock()
_parses = 0  # Parses under way (in any thread); validation is off while any is.


def parse_module(source: bytes | str) -> cst.Module:
  """`cst.parse_module(source)` (raising what it raises), with node
  validation off while the parser builds the tree: its output is valid by
  construction. Validation is back once no parse is under way in any thread
  (nodes another thread builds meanwhile are not validated)."""
  global _parses
  with _PARSING:
    if not _parses:
      cst.CSTNode.__post_init__ = _unvalidated
    _parses += 1
  try:
    return cst.parse_module(source)
  finally:
    with _PARSING:
      _parses -= 1
      if not _parses:
        cst.CSTNode.__post_init__ = _VALIDATING


def visit_order(cls: type) -> tuple[str, ...]:
  """Every child field of a node class, in the order libcst visits them."""
  names = {f.name for f in dataclasses.fields(cls)}
  consts = cls._visit_and_replace_children.__code__.co_consts  # pylint: disable=protected-access
  out: list[str] = []
  for c in consts:
    if isinstance(c, str) and c in names and c not in out:
      out.append(c)
  return tuple(out)


def child_fields(cls: type) -> tuple[str, ...]:
  """The fields of `cls` that may hold syntax, in libcst's visit order."""
  fields = _FIELDS.get(cls)
  if fields is None:
    fields = _FIELDS[cls] = tuple(
        f for f in visit_order(cls) if f not in _LAYOUT and not f.startswith('whitespace'))
  return fields


def children(node: cst.CSTNode) -> Iterator[cst.CSTNode]:
  """The syntax children of `node` (no layout nodes), in libcst's visit order."""
  for name in child_fields(type(node)):
    value = getattr(node, name)
    if isinstance(value, cst.CSTNode):
      yield value
    elif isinstance(value, (tuple, list)):
      for item in value:
        if isinstance(item, cst.CSTNode):
          yield item


# --------------------------------------------------------------------------
# Positions.

_NEWLINE = re.compile(r'\r\n?|\n')


@dataclasses.dataclass(frozen=False)
class _RecordingState(CodegenState):
  """A codegen state recording, per node, the token indices `PositionProvider`
  would take its line and column from (syntactic range; else the range
  including the whitespace the node owns)."""

  ranges: dict[int, tuple[int, int]] = dataclasses.field(default_factory=dict)
  stack: list[int] = dataclasses.field(default_factory=list)

  def before_codegen(self, node: cst.CSTNode) -> None:
    self.stack.append(len(self.tokens))

  def pop_trailing_newline(self) -> None:
    pass  # libcst's positions count the module's last newline before it drops it.

  def after_codegen(self, node: cst.CSTNode) -> None:
    start = self.stack.pop()
    self.ranges.setdefault(id(node), (start, len(self.tokens)))

  @contextlib.contextmanager
  def record_syntactic_position(self, node, *, start_node=None, end_node=None):
    start = len(self.tokens)
    try:
      yield
    finally:
      end = len(self.tokens)
      if start_node is not None:
        start = self.ranges[id(start_node)][0]
      if end_node is not None:
        end = self.ranges[id(end_node)][1]
      self.ranges[id(node)] = (start, end)


class _Tokens:
  """One code generation's tokens, from line `line`, column 0."""

  def __init__(self, tokens: list[str], line: int):
    self.tokens = tokens
    self.line = line
    self.breaks: list[int] = []  # Indices of the tokens holding line breaks.
    self.lines: list[int] = []  # Line of the token after each of those.
    self.tails: list[int] = []  # Column after each of those.
    for i, token in enumerate(tokens):
      if '\n' in token or '\r' in token:
        segments = _NEWLINE.split(token)
        line += len(segments) - 1
        self.breaks.append(i)
        self.lines.append(line)
        self.tails.append(len(segments[-1]))

  def position(self, index: int) -> CodePosition:
    """Line and column before the token `index` (as libcst counts them)."""
    k = bisect.bisect_left(self.breaks, index) - 1
    if k < 0:
      return CodePosition(self.line, sum(len(t) for t in self.tokens[:index]))
    start = self.breaks[k]
    return CodePosition(self.lines[k], self.tails[k] + sum(
        len(t) for t in self.tokens[start + 1:index]))


class Positions:
  """`PositionProvider`'s ranges for one module, computed on demand.

  `text`: the module's source as parsed (then statements are generated one at
  a time); `top`: id(node) -> the top-level statement holding it, for the
  nodes likely to be asked for (others: the statements are generated in order
  until the node is met).
  """

  def __init__(self, module: cst.Module, text: str | None = None,
               top: dict[int, cst.CSTNode] | None = None):
    self.module = module
    self._text = text
    self._top = top if top is not None else {}
    self._where: dict[int, tuple[_Tokens, int, int]] = {}
    self.whole = False  # Whether the whole module was generated (then `_where` is all of it).
    self._starts: list[int] | None = None  # First line of each top-level statement.
    self._offsets: list[int] = []  # Offset in `text` of each line's start.
    self._index: dict[int, int] = {}  # id(top-level statement) -> its index.
    self._done: set[int] = set()  # Top-level statements generated.

  def _generate(self) -> None:
    """The whole module in one code generation."""
    state = _RecordingState(default_indent=self.module.default_indent,
                            default_newline=self.module.default_newline)
    self.module._codegen(state)  # pylint: disable=protected-access
    tokens = _Tokens(state.tokens, 1)
    self._where = {i: (tokens, start, end) for i, (start, end) in state.ranges.items()}
    self.whole = True

  def _statement_starts(self) -> bool:
    """The first line of each top-level statement (its leading blank and
    comment lines included), from Python's parse of the text; False when
    Python cannot parse it, or its statements do not line up with libcst's."""
    if self._starts is not None:
      return bool(self._starts) or not self.module.body
    self._starts = []
    try:
      with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        tree = compile(self._text, '<positions>', 'exec', ast.PyCF_ONLY_AST, dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
      return False
    body, k, starts = tree.body, 0, []
    for stmt in self.module.body:
      if k >= len(body):
        return False
      first = body[k]
      line = first.lineno
      leading = len(stmt.leading_lines)
      decorators = getattr(first, 'decorator_list', None)
      if decorators:
        line = min([line, *(d.lineno for d in decorators)])
        leading += len(stmt.decorators[0].leading_lines) if getattr(stmt, 'decorators', ()) else 0
      starts.append(line - leading)
      k += len(stmt.body) if type(stmt) is cst.SimpleStatementLine else 1
    if k != len(body):
      return False
    self._starts = starts
    self._offsets = [0, *(m.end() for m in _NEWLINE.finditer(self._text))]
    self._index = {id(stmt): i for i, stmt in enumerate(self.module.body)}
    return True

  def _statement(self, k: int) -> bool:
    """Generates top-level statement `k` alone; False when its code is not the
    text at the line found for it."""
    self._done.add(k)
    line = self._starts[k]
    if not 1 <= line <= len(self._offsets):
      return False
    state = _RecordingState(default_indent=self.module.default_indent,
                            default_newline=self.module.default_newline)
    self.module.body[k]._codegen(state)  # pylint: disable=protected-access
    tokens = state.tokens
    if (k == len(self.module.body) - 1 and not self.module.has_trailing_newline
        and not self.module.footer and tokens and tokens[-1] in ('\n', '\r\n', '\r')):
      tokens = tokens[:-1]  # The module's code drops its last newline.
    if not self._text.startswith(''.join(tokens), self._offsets[line - 1]):
      return False
    generated = _Tokens(state.tokens, line)
    where = self._where
    for i, (start, end) in state.ranges.items():
      where[i] = (generated, start, end)
    return True

  def _find(self, node: cst.CSTNode) -> tuple[_Tokens, int, int]:
    if not self.whole and self._text is not None and self._statement_starts():
      top = self._top.get(id(node))
      k = self._index.get(id(top)) if top is not None else None
      if k is not None:
        ok = k in self._done or self._statement(k)
      else:
        ok = True
        for k in range(len(self.module.body)):
          if k not in self._done:
            ok = self._statement(k)
            if not ok or id(node) in self._where:
              break
      found = self._where.get(id(node)) if ok else None
      if found is not None:
        return found
    if not self.whole:
      self._generate()
    return self._where[id(node)]

  def __getitem__(self, node: cst.CSTNode) -> CodeRange:
    found = self._where.get(id(node))
    if found is None:
      found = self._find(node)
    tokens, start, end = found
    return CodeRange(tokens.position(start), tokens.position(end))
