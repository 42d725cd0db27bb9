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
  through the nodes' own `_codegen`), computed on the first lookup for a
  module with one code generation that records token indices only; lines
  and columns are worked out for the nodes asked for.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
import contextlib
import dataclasses
import re

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


class Positions:
  """`PositionProvider`'s ranges for one module, computed on the first lookup."""

  def __init__(self, module: cst.Module):
    self.module = module
    self._ranges: dict[int, tuple[int, int]] | None = None
    self._tokens: list[str] = []
    self._breaks: list[int] = []  # Indices of the tokens holding line breaks.
    self._lines: list[int] = []  # Line of the token after each of those.
    self._tails: list[int] = []  # Column after each of those.

  def _generate(self) -> None:
    state = _RecordingState(default_indent=self.module.default_indent,
                            default_newline=self.module.default_newline)
    self.module._codegen(state)  # pylint: disable=protected-access
    self._ranges, self._tokens = state.ranges, state.tokens
    line = 1
    for i, token in enumerate(self._tokens):
      if '\n' in token or '\r' in token:
        segments = _NEWLINE.split(token)
        line += len(segments) - 1
        self._breaks.append(i)
        self._lines.append(line)
        self._tails.append(len(segments[-1]))

  def _position(self, index: int) -> CodePosition:
    """Line and column before the token `index` (as libcst counts them)."""
    k = bisect.bisect_left(self._breaks, index) - 1
    if k < 0:
      return CodePosition(1, sum(len(t) for t in self._tokens[:index]))
    start = self._breaks[k]
    return CodePosition(self._lines[k], self._tails[k] + sum(
        len(t) for t in self._tokens[start + 1:index]))

  def __getitem__(self, node: cst.CSTNode) -> CodeRange:
    if self._ranges is None:
      self._generate()
    start, end = self._ranges[id(node)]
    return CodeRange(self._position(start), self._position(end))
