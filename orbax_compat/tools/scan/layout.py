"""How a file is laid out, so rewrites keep it: line length, wrapping, pragmas, imports.

- `Style.of(path, module)`: the file's maximum line length (its project's
  `pyproject.toml` (ruff, black, yapf, pylint, flake8), `ruff.toml`,
  `setup.cfg` / `tox.ini` / `.flake8` (flake8, pycodestyle, yapf, pylint),
  `.style.yapf`, the nearest one up from the file, as ruff looks; else the
  file's longest line, and at least PEP 8's 79), its indentation unit, and
  how it wraps calls (a hanging indent, or arguments aligned with the open
  bracket).
- `wrap`: an expression rewrapped within the line length, as the file wraps.
- `is_pragma`: a comment that applies to the next line (`# pylint:
  disable-next=...`, `# type: ignore`, `# noqa`, `# pragma: no cover`,
  `# fmt: off`, ...): nothing may come between it and its statement.
- `add_imports`: imports placed where isort would put them: the section
  (standard library, third party, first party) and the order the file's
  imports show (`force_sort_within_sections` or not).
"""

from __future__ import annotations

import configparser
import dataclasses
import functools
import os
import re
import sys

import libcst as cst

PEP8_MAX = 79

_CONFIGS = ('pyproject.toml', 'ruff.toml', '.ruff.toml', 'setup.cfg', 'tox.ini', '.flake8',
            '.style.yapf')
_INI_KEYS = (('flake8', 'max-line-length'), ('flake8', 'max_line_length'),
             ('pycodestyle', 'max-line-length'), ('pycodestyle', 'max_line_length'),
             ('yapf', 'column_limit'), ('style', 'column_limit'),
             ('pylint.format', 'max-line-length'), ('isort', 'line_length'))
_TOML_KEYS = (('tool', 'ruff', 'line-length'), ('tool', 'ruff', 'line_length'),
              ('tool', 'black', 'line-length'), ('tool', 'black', 'line_length'),
              ('tool', 'yapf', 'column_limit'),
              ('tool', 'pylint', 'format', 'max-line-length'),
              ('tool', 'flake8', 'max-line-length'), ('line-length',), ('line_length',))


def _toml(text: str) -> dict:
  try:
    import tomllib  # pylint: disable=import-outside-toplevel
  except ImportError:  # Python 3.10: the keys we read are simple `key = int` lines.
    out: dict = {}
    section: list[str] = []
    for line in text.splitlines():
      line = line.split('#', 1)[0].strip()
      header = re.fullmatch(r'\[([^\]]+)\]', line)
      if header:
        section = [p.strip().strip('"') for p in header.group(1).split('.')]
        continue
      match = re.fullmatch(r'([\w-]+)\s*=\s*(\d+)', line)
      if match:
        node = out
        for part in section:
          node = node.setdefault(part, {})
        node[match.group(1)] = int(match.group(2))
    return out
  try:
    return tomllib.loads(text)
  except tomllib.TOMLDecodeError:
    return {}


def _from_file(path: str) -> int | None:
  try:
    with open(path, encoding='utf-8') as f:
      text = f.read()
  except (OSError, UnicodeDecodeError):
    return None
  name = os.path.basename(path)
  if name.endswith('.toml'):
    data = _toml(text)
    for keys in _TOML_KEYS:
      if name == 'pyproject.toml' and keys[0] != 'tool':
        continue
      node = data
      for key in keys:
        node = node.get(key) if isinstance(node, dict) else None
      if isinstance(node, int):
        return node
    return None
  parser = configparser.ConfigParser()
  try:
    parser.read_string(text)
  except configparser.Error:
    return None
  for section, key in _INI_KEYS:
    if parser.has_option(section, key):
      try:
        return int(parser.get(section, key))
      except ValueError:
        continue
  return None


@functools.cache
def configured_line_length(directory: str) -> int | None:
  """The line length the nearest configuration at or above `directory` sets."""
  directory = os.path.abspath(directory)
  while True:
    for name in _CONFIGS:
      path = os.path.join(directory, name)
      if os.path.isfile(path):
        found = _from_file(path)
        if found is not None:
          return found
    parent = os.path.dirname(directory)
    if parent == directory:
      return None
    directory = parent


@dataclasses.dataclass(frozen=True)
class Style:
  max_line: int
  indent: str  # One level of indentation.
  aligned: bool  # Continuation lines align with the open bracket (else a hanging indent).

  @classmethod
  def of(cls, path: str, module: cst.Module) -> Style:
    code = module.code
    lines = code.splitlines()
    configured = configured_line_length(os.path.dirname(os.path.abspath(path))) if (
        path and not path.startswith('<')) else None
    longest = max((len(ln) for ln in lines), default=0)
    return cls(configured or max(longest, PEP8_MAX), module.default_indent,
               _aligned(lines))


def _aligned(lines: list[str]) -> bool:
  """Whether the file continues calls aligned with the open bracket
  (`f(a,\n  b)`) more often than with a hanging indent (`f(\n    a)`)."""
  aligned = hanging = 0
  for i, line in enumerate(lines[:-1]):
    stripped = line.rstrip()
    if stripped.endswith(('(', '[', '{')):
      hanging += 1
      continue
    depth, column = 0, None
    for j, ch in enumerate(stripped):
      if ch in '([{':
        depth += 1
        column = j
      elif ch in ')]}':
        depth -= 1
    if depth > 0 and column is not None and stripped.endswith(','):
      nxt = lines[i + 1]
      if len(nxt) - len(nxt.lstrip()) == column + 1:
        aligned += 1
  return aligned > hanging


# --------------------------------------------------------------------------
# Pragmas.

_PRAGMA = re.compile(
    r'#\s*(?:pylint:\s*disable-next|type:\s*ignore|noqa|nosec|pragma:|fmt:\s*(?:off|skip)'
    r'|isort:\s*skip|pyright:\s*ignore|mypy:|pytype:|ruff:\s*noqa|yapf:\s*disable'
    r'|NOLINT|lint:)', re.IGNORECASE)


def is_pragma(comment: str) -> bool:
  """A comment of its own line that a tool applies to the next line."""
  return bool(_PRAGMA.match(comment.strip()))


def insert_before_pragmas(lines: list[cst.EmptyLine], new: list[cst.EmptyLine]
                          ) -> list[cst.EmptyLine]:
  """`new` comment lines among a statement's leading lines: last, but above
  the pragmas that end them (never between a pragma and its statement)."""
  end = len(lines)
  while end and lines[end - 1].comment is not None and is_pragma(lines[end - 1].comment.value):
    end -= 1
  return [*lines[:end], *new, *lines[end:]]


# --------------------------------------------------------------------------
# Wrapping.

_EMPTY = cst.Module([])


@functools.lru_cache(maxsize=4096)
def code_of(node: cst.CSTNode) -> str:
  """A node's code (nodes hash by identity and never change: wrapping asks
  for the same subexpressions' code again and again)."""
  return _EMPTY.code_for_node(node)


def _newline(column: int) -> cst.ParenthesizedWhitespace:
  return cst.ParenthesizedWhitespace(
      first_line=cst.TrailingWhitespace(), empty_lines=[], indent=False,
      last_line=cst.SimpleWhitespace(' ' * column))


def _fits(node: cst.CSTNode, column: int, style: Style, tail: int = 0) -> bool:
  lines = code_of(node).split('\n')
  if len(lines) == 1:
    return column + len(lines[0]) + tail <= style.max_line
  return (column + len(lines[0]) <= style.max_line
          and all(len(ln) <= style.max_line for ln in lines[1:-1])
          and len(lines[-1]) + tail <= style.max_line)


def wrap(expr: cst.BaseExpression, column: int, indent: int, style: Style, tail: int = 0,
         bracketed: bool = False) -> cst.BaseExpression:
  """`expr`, starting at `column` of a line indented by `indent` and followed
  by `tail` characters, rewrapped to fit `style.max_line` where it can be:
  inside its calls' and displays' brackets, as the file wraps
  (`style.aligned`); `bracketed`: it already sits inside brackets (a break
  may come anywhere). Already multi-line code is left as it is."""
  if '\n' in code_of(expr) or _fits(expr, column, style, tail):
    return expr
  if not bracketed and isinstance(expr, (cst.BooleanOperation, cst.IfExp)) and not expr.lpar:
    expr = expr.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
    bracketed = True
  return _wrap(expr, column, indent, style, tail, bracketed)


def hanging(indent: int, style: Style) -> int:
  """The column of a hanging indent's lines: four spaces in (two levels of a
  two-space file, one of a four-space file)."""
  return indent + max(4, len(style.indent))


def _wrap(expr: cst.BaseExpression, column: int, indent: int, style: Style, tail: int,
          bracketed: bool) -> cst.BaseExpression:
  if _fits(expr, column, style, tail):
    return expr
  if isinstance(expr, cst.Call) and expr.args:
    return _wrap_call(expr, column, indent, style, tail)
  inner = bracketed or bool(expr.lpar)
  step = 1 if expr.lpar else 0
  if isinstance(expr, cst.Attribute):
    return expr.with_changes(value=_wrap(expr.value, column, indent, style, 0, bracketed))
  if isinstance(expr, cst.Comparison):
    left = _wrap(expr.left, column + step, indent, style, 0, inner)
    col = _end_column(left, column + step)
    comparisons = []
    for c in expr.comparisons:
      col += len(code_of(c.operator))
      comparator = _wrap(c.comparator, col, indent, style,
                         tail if c is expr.comparisons[-1] else 0, inner)
      comparisons.append(c.with_changes(comparator=comparator))
      col = _end_column(comparator, col)
    return expr.with_changes(left=left, comparisons=comparisons)
  if isinstance(expr, (cst.BooleanOperation, cst.IfExp)) and inner:
    return _wrap_operands(expr, column + step, indent, style, tail)
  if isinstance(expr, (cst.ListComp, cst.SetComp, cst.GeneratorExp, cst.DictComp)):
    return _wrap_comprehension(expr, column, indent, style, tail)
  if isinstance(expr, cst.Tuple) and expr.elements:
    if not expr.lpar:
      expr = expr.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
    if style.aligned:
      return _wrap_elements(expr, 'elements', column, column + 1, False, style, tail)
    return _wrap_elements(expr, 'elements', column, hanging(indent, style), True, style, tail)
  return expr


def _end_column(node: cst.CSTNode, column: int) -> int:
  text = code_of(node)
  return len(text.split('\n')[-1]) if '\n' in text else column + len(text)


def _wrap_comprehension(expr, column: int, indent: int, style: Style, tail: int):
  """`[x for x in xs]` too long: a break before its `for`, aligned with the
  bracket; where the `for` does not fit there, a hanging indent after the
  bracket (and a break before the `for` if it still does not fit)."""
  start = column + 1
  for_text = code_of(expr.for_in).strip()
  close = 1 + tail  # The bracket and what follows it.
  opening = getattr(expr, 'lbracket', None) or getattr(expr, 'lbrace', None)
  if start + len(for_text) + close <= style.max_line or opening is None:
    for_in = expr.for_in.with_changes(whitespace_before=_newline(start))
    if not isinstance(expr, cst.DictComp):  # The element too, where it is too long.
      expr = expr.with_changes(elt=_wrap(expr.elt, start, indent, style, 0, True))
    return expr.with_changes(for_in=for_in)
  start = hanging(indent, style)
  head = (f'{code_of(expr.key)}: {code_of(expr.value)}' if isinstance(expr, cst.DictComp)
          else code_of(expr.elt))
  field = 'lbracket' if hasattr(expr, 'lbracket') else 'lbrace'
  expr = expr.with_changes(**{field: opening.with_changes(whitespace_after=_newline(start))})
  if start + len(head) + 1 + len(for_text) + close > style.max_line:
    expr = expr.with_changes(for_in=expr.for_in.with_changes(whitespace_before=_newline(start)))
  return expr


def _wrap_operands(expr, column: int, indent: int, style: Style, tail: int):
  """`a and b` / `a if c else b` inside brackets: a break before each keyword
  that does not fit, the operands wrapped in turn (lines after a break start
  at `column`)."""
  if isinstance(expr, cst.BooleanOperation):
    parts = [('left', expr.left), ('right', expr.right)]
    operator = expr.operator
  else:
    parts = [('body', expr.body), ('test', expr.test), ('orelse', expr.orelse)]
    operator = None
  changes = {}
  col, line_indent = column, indent
  for i, (field, part) in enumerate(parts):
    text = code_of(part)
    last = i == len(parts) - 1
    if i:
      keyword = (code_of(operator).strip() if operator is not None
                 else 'if' if field == 'test' else 'else')
      if col + len(keyword) + 2 + len(text) > style.max_line:
        col = line_indent = column
        space = _newline(col)
        if operator is not None:
          operator = operator.with_changes(whitespace_before=space)
        else:
          changes['whitespace_before_if' if field == 'test' else 'whitespace_before_else'] = (
              space)
        col += len(keyword) + 1
      else:
        col += len(keyword) + 2
    wrapped = _wrap(part, col, line_indent, style, tail if last else 0, True)
    changes[field] = wrapped
    col = _end_column(wrapped, col)
  if operator is not None:
    changes['operator'] = operator
  return expr.with_changes(**changes)


def _wrap_call(call: cst.Call, column: int, indent: int, style: Style, tail: int) -> cst.Call:
  func = code_of(call.func)
  open_col = column + len(func)
  widest = max(len(code_of(a.with_changes(comma=cst.MaybeSentinel.DEFAULT)).strip())
               for a in call.args)
  if style.aligned and open_col + 1 + min(widest, 40) < style.max_line:
    start, first_break = open_col + 1, False  # Aligned with the bracket, where it fits.
  else:
    start, first_break = hanging(indent, style), True
  return _wrap_elements(call, 'args', column, start, first_break, style, tail)


def _wrap_elements(node, field: str, column: int, start: int, first_break: bool,
                   style: Style, tail: int):
  """A call's arguments or a tuple's elements, packed on lines from `start`."""
  args = list(getattr(node, field))
  out, col = [], start
  for i, arg in enumerate(args):
    last = i == len(args) - 1
    text = code_of(arg.with_changes(comma=cst.MaybeSentinel.DEFAULT)).strip()
    need = len(text) + (1 if not last else 1 + tail)  # The comma, or `)` and the tail.
    breaks = i > 0 and col + need > style.max_line
    if breaks:
      col = start
    keyword = getattr(arg, 'keyword', None)
    star = getattr(arg, 'star', '') or ''
    value = _wrap(arg.value, col + (len(keyword.value) + 1 if keyword else 0) + len(star),
                  start, style, 0 if not last else 1 + tail, True)
    arg = arg.with_changes(value=value)
    if i > 0:
      previous = out[-1]
      space = _newline(start) if breaks else cst.SimpleWhitespace(' ')
      comma = previous.comma if isinstance(previous.comma, cst.Comma) else cst.Comma()
      out[-1] = previous.with_changes(comma=comma.with_changes(
          whitespace_before=cst.SimpleWhitespace(''), whitespace_after=space))
    out.append(arg)
    rendered = code_of(arg.with_changes(comma=cst.MaybeSentinel.DEFAULT)).strip()
    col = (len(rendered.split('\n')[-1]) if '\n' in rendered else col + len(rendered)) + 2
  if isinstance(out[-1].comma, cst.Comma) and field == 'args':
    out[-1] = out[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
  before = _newline(start) if first_break else cst.SimpleWhitespace('')
  if field == 'args':
    return node.with_changes(args=out, whitespace_before_args=before)
  lpar = node.lpar[0].with_changes(whitespace_after=before)
  return node.with_changes(elements=out, lpar=[lpar])


_LINE = re.compile(r'^(\s*)((?:\w+=)?)(.*?)(,?)$')


def wrap_lines(code: str, style: Style, max_line: int) -> str:
  """Code whose lines (inside brackets) are each one argument or element,
  e.g. `v1_source`'s: each line longer than `max_line` rewrapped."""
  narrow = dataclasses.replace(style, max_line=max_line)
  out = []
  for line in code.split('\n'):
    match = _LINE.match(line)
    if len(line) <= max_line or not match or not match.group(3):
      out.append(line)
      continue
    indent, keyword, body, comma = match.groups()
    try:
      expr = cst.parse_expression(body)
    except cst.ParserSyntaxError:
      out.append(line)
      continue
    column = len(indent) + len(keyword)
    wrapped = code_of(wrap(expr, column, len(indent), narrow, len(comma), True))
    out.append(f'{indent}{keyword}{wrapped}{comma}')
  return '\n'.join(out)


# --------------------------------------------------------------------------
# Imports, where isort would put them.

FUTURE, STDLIB, THIRD_PARTY, FIRST_PARTY, LOCAL = range(5)


def _stdlib() -> frozenset[str]:
  names = getattr(sys, 'stdlib_module_names', None)
  if names:
    return frozenset(names)
  return frozenset({'abc', 'argparse', 'ast', 'collections', 'contextlib', 'dataclasses',
                    'datetime', 'functools', 'io', 'itertools', 'json', 'logging', 'math',
                    'os', 'pathlib', 're', 'shutil', 'string', 'subprocess', 'sys', 'tempfile',
                    'threading', 'time', 'typing', 'unittest', 'warnings'})


_STDLIB = _stdlib()


def _statement_imports(stmt: cst.CSTNode) -> list[cst.Import | cst.ImportFrom]:
  if isinstance(stmt, cst.SimpleStatementLine):
    found = [s for s in stmt.body if isinstance(s, (cst.Import, cst.ImportFrom))]
    return found if len(found) == len(stmt.body) else []
  return []


def _module_of(node: cst.Import | cst.ImportFrom) -> str:
  if isinstance(node, cst.Import):
    return code_of(node.names[0].name)
  if node.relative:
    return '.' * len(node.relative) + (code_of(node.module) if node.module else '')
  return code_of(node.module)


def section_of(module: str, first_party: frozenset[str]) -> int:
  if module.startswith('.'):
    return LOCAL
  top = module.split('.')[0]
  if top == '__future__':
    return FUTURE
  if top in _STDLIB:
    return STDLIB
  if top in first_party:
    return FIRST_PARTY
  return THIRD_PARTY


def _key(node: cst.Import | cst.ImportFrom, within: bool) -> tuple:
  module = _module_of(node).lower()
  if within:
    return (module, isinstance(node, cst.ImportFrom))
  return (isinstance(node, cst.ImportFrom), module)


def add_imports(module: cst.Module, statements: list[str],
                first_party: frozenset[str] = frozenset()) -> cst.Module:
  """`statements` (each one import, e.g. `import jax`) added to the module's
  leading import block where isort would put them; ones already there are
  skipped."""
  body = list(module.body)
  start = 0
  if body and isinstance(body[0], cst.SimpleStatementLine) and len(body[0].body) == 1 and (
      isinstance(body[0].body[0], cst.Expr)) and isinstance(
          body[0].body[0].value, (cst.SimpleString, cst.ConcatenatedString)):
    start = 1  # The docstring.
  # The block: the first imports of the module, before any definition; `pass`
  # lines among them (a notebook's IPython lines stand in as `pass`) belong to it.
  first = start
  while first < len(body) and _is_pass(body[first]):
    first += 1
  if first < len(body) and _statement_imports(body[first]):
    start = first
  end = start
  while end < len(body) and (_statement_imports(body[end]) or (
      _is_pass(body[end]) and end + 1 < len(body) and _statement_imports(body[end + 1]))):
    end += 1
  existing = {code_of(s).strip() for s in body[start:end]}
  block = [(i, n) for i in range(start, end) for n in _statement_imports(body[i])]
  sections = [section_of(_module_of(n), first_party) for _, n in block]
  within = _sorted_within_sections(block, sections)
  for text in statements:
    if text in existing:
      continue
    stmt = cst.parse_statement(text + '\n')
    node = stmt.body[0]
    section = section_of(_module_of(node), first_party)
    key = _key(node, within)
    index = None
    same = [(i, n) for (i, n), sec in zip(block, sections, strict=True) if sec == section]
    for i, n in same:
      if _key(n, within) > key:
        index = i
        break
    blank_before = False
    if index is None and same:
      index = same[-1][0] + 1
    elif index is None:
      earlier = [i for (i, _), sec in zip(block, sections, strict=True) if sec < section]
      later = [i for (i, _), sec in zip(block, sections, strict=True) if sec > section]
      if earlier:
        index, blank_before = max(earlier) + 1, True
      elif later:
        index = min(later)
        body[index] = _with_blank_line(body[index])
      else:
        index, blank_before = start, start > 0
    if blank_before:
      stmt = _with_blank_line(stmt)
    if index in [i for i, _ in same] and body[index].leading_lines:
      # Blank lines and comments above the statement it goes before are the
      # section's: they stay above the section.
      stmt = stmt.with_changes(leading_lines=body[index].leading_lines)
      body[index] = body[index].with_changes(leading_lines=())
    body.insert(index, stmt)
    existing.add(text)
    if not block and index + 1 < len(body) and not body[index + 1].leading_lines:
      body[index + 1] = body[index + 1].with_changes(leading_lines=[cst.EmptyLine()])
    end += 1
    block = [(i, n) for i in range(start, end) for n in _statement_imports(body[i])]
    sections = [section_of(_module_of(n), first_party) for _, n in block]
  return module.with_changes(body=body)


def _is_pass(stmt: cst.CSTNode) -> bool:
  return isinstance(stmt, cst.SimpleStatementLine) and all(
      isinstance(s, cst.Pass) for s in stmt.body)


def _with_blank_line(stmt: cst.CSTNode) -> cst.CSTNode:
  lines = list(stmt.leading_lines)
  if not lines or lines[0].comment is not None:
    lines.insert(0, cst.EmptyLine())
  return stmt.with_changes(leading_lines=lines)


def _sorted_within_sections(block, sections) -> bool:
  """Whether the file sorts `from` and plain imports together by module
  (isort's force_sort_within_sections), as its imports show."""
  pairs = list(zip(block, sections, strict=True))
  for ((_, a), sa), ((_, b), sb) in zip(pairs, pairs[1:], strict=False):
    if sa == sb and isinstance(a, cst.ImportFrom) and isinstance(b, cst.Import):
      return True
  return False
