"""Files: finding them, the project root, reading, decoding and parsing them.

Every file is parsed with libcst's native parser, which knows the grammar of
every Python release it supports (3.12's PEP 695 and PEP 701 included),
whatever Python runs the tool.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from collections.abc import Iterator
import os
import re
import tokenize
import warnings

import libcst as cst

from orbax_compat.tools.scan import nodes
from orbax_compat.tools.scan.findings import ScanError
from orbax_compat.tools.scan.findings import Unscannable

SKIP_DIRS = frozenset({'site-packages', 'venv', '.venv', '__pycache__', 'node_modules'})
SUFFIXES = ('.py', '.ipynb')
# What marks a project's root, nearest first (as ruff and pyright look for it).
ROOT_MARKERS = ('pyproject.toml', 'setup.py', 'setup.cfg', '.git')


def check_binary(source: bytes) -> None:
  nul = source.find(b'\0')
  if nul >= 0:
    raise Unscannable(f'binary file (NUL byte at offset {nul}), not Python source')


def decode(source: bytes) -> str:
  """The source as text, decoded as Python does (PEP 263 cookie, BOM)."""
  try:
    encoding, _ = tokenize.detect_encoding(iter(source.splitlines(keepends=True)).__next__)
    return source.decode(encoding)
  except (SyntaxError, LookupError, UnicodeDecodeError) as e:
    raise Unscannable(f'cannot decode as Python source: {e}') from None


def parse(source: bytes | str) -> cst.Module:
  """Parses Python source (any grammar libcst knows); raises Unscannable.

  When libcst cannot parse it, the message is Python's own where Python
  cannot parse it either (its familiar wording and position), else libcst's.
  """
  if isinstance(source, bytes):
    check_binary(source)
  try:
    return nodes.parse_module(source)
  except RecursionError:
    raise Unscannable('too deeply nested to parse') from None
  except cst.ParserSyntaxError as e:
    python = _python_error(source)
    raise python or Unscannable(f'syntax error: {_first_line(e.message)}', e.raw_line,
                                e.raw_column + 1) from None
  except (UnicodeDecodeError, LookupError, SyntaxError, ValueError) as e:
    raise _python_error(source) or Unscannable(
        f'cannot decode as Python source: {e}') from None


def python_ast(source: bytes | str) -> ast.Module:
  """Python's own parse (C, some ten times faster than libcst's), without the
  warnings it prints for some code (Python 3.12's invalid escape sequences);
  raises what `compile` raises."""
  with warnings.catch_warnings():
    warnings.simplefilter('ignore')
    return compile(source, '<scan>', 'exec', ast.PyCF_ONLY_AST, dont_inherit=True)


def check_parses(source: bytes | str) -> None:
  """Raises Unscannable unless `source` parses: by Python's own parser, or
  else (a later grammar than this Python's) by libcst's, as `parse`."""
  try:
    python_ast(source)
    return
  except (SyntaxError, ValueError, UnicodeDecodeError, LookupError, RecursionError,
          MemoryError):
    pass
  parse(source)


_LINE_BREAK = re.compile(r'\r\n|\r|\n')


def import_statements(text: str, word: str = 'orbax') -> list[tuple[str, int, int]] | None:
  """The import statements of `text` that name `word`, located by Python's own
  parser (C, some ten times faster than libcst's): (the statement's source, its
  line, its 0-based column in characters). None when Python cannot parse the
  text (libcst may: a later grammar), or when a statement's source cannot be cut
  out exactly.
  """
  if word not in text:
    return []
  try:
    tree = python_ast(text)
  except (SyntaxError, ValueError, RecursionError, MemoryError):
    return None
  lines = _LINE_BREAK.split(text)
  out = []
  todo = [tree.body]
  while todo:
    for stmt in todo.pop():
      if isinstance(stmt, (ast.Import, ast.ImportFrom)):
        if stmt.end_lineno is None or stmt.end_col_offset is None:
          return None
        first, last = stmt.lineno - 1, stmt.end_lineno - 1
        start = _column(lines[first], stmt.col_offset)
        end = _column(lines[last], stmt.end_col_offset)
        if start is None or end is None:
          return None
        code = (lines[first][start:end] if first == last else '\n'.join(
            [lines[first][start:], *lines[first + 1:last], lines[last][:end]]))
        if word in code:
          out.append((code, stmt.lineno, start))
        continue
      for field in ('body', 'orelse', 'finalbody', 'handlers', 'cases'):
        block = getattr(stmt, field, None)
        if isinstance(block, list) and block and isinstance(block[0], ast.AST):
          todo.append(block)
  return out


def _column(line: str, offset: int) -> int | None:
  """The character column of a UTF-8 byte offset into `line`."""
  try:
    return len(line.encode('utf-8')[:offset].decode('utf-8'))
  except UnicodeError:
    return None


def _python_error(source: bytes | str) -> Unscannable | None:
  """Python's own error for a source libcst refused (None: Python parses it)."""
  try:
    python_ast(source)
  except SyntaxError as e:
    if isinstance(e.__context__, UnicodeDecodeError) or 'decod' in str(e.msg):
      return Unscannable(f'cannot decode as Python source: {e.msg}')
    return Unscannable(f'syntax error: {e.msg}', e.lineno, e.offset)
  except (ValueError, UnicodeDecodeError, LookupError) as e:
    return Unscannable(f'cannot decode as Python source: {e}')
  except (RecursionError, MemoryError):
    return Unscannable('too deeply nested to parse')
  return None


def _first_line(message: str) -> str:
  return message.strip().splitlines()[0] if message.strip() else 'invalid syntax'


def read(path: str) -> bytes:
  try:
    with open(path, 'rb') as f:
      return f.read()
  except IsADirectoryError:
    raise Unscannable('is a directory') from None
  except OSError as e:
    raise Unscannable(f'cannot read: {e.strerror or e}') from None


def skipped(path: str, name: str) -> bool:
  return (name.startswith('.') or name in SKIP_DIRS
          or os.path.isfile(os.path.join(path, 'pyvenv.cfg')))


def iter_files(paths: Iterable[str], errors: list[ScanError] | None,
               include_skipped: bool = False) -> Iterator[str]:
  """The Python files and notebooks under `paths` (files given explicitly are
  always included).

  Directories walk sorted; hidden directories, virtualenvs (a `pyvenv.cfg`
  inside, or named venv/.venv) and site-packages are skipped unless
  `include_skipped`. `errors` None: report nothing (the project index).
  """
  seen = set()

  def once(path: str) -> bool:
    key = os.path.realpath(path)
    if key in seen:
      return False
    seen.add(key)
    return True

  for root in paths:
    if not os.path.lexists(root):
      if errors is not None:
        errors.append(ScanError(root, 'no such file or directory'))
      continue
    if not os.path.isdir(root):
      if once(root):
        yield root
      continue

    def onerror(e: OSError, root=root) -> None:
      if errors is not None:
        errors.append(ScanError(e.filename or root, f'cannot list directory: {e.strerror or e}'))

    for dirpath, dirnames, filenames in os.walk(root, onerror=onerror):
      if not include_skipped:
        dirnames[:] = [d for d in dirnames if not skipped(os.path.join(dirpath, d), d)]
      dirnames.sort()
      for name in sorted(filenames):
        path = os.path.join(dirpath, name)
        if name.endswith(SUFFIXES) and once(path):
          yield path


def project_root(path: str) -> str | None:
  """The nearest directory at or above `path` holding a pyproject.toml,
  setup.py, setup.cfg or .git (None: none up to the filesystem root)."""
  current = os.path.abspath(path)
  if not os.path.isdir(current):
    current = os.path.dirname(current)
  while True:
    if any(os.path.exists(os.path.join(current, m)) for m in ROOT_MARKERS):
      return current
    parent = os.path.dirname(current)
    if parent == current:
      return None
    current = parent


def module_name(path: str, root: str) -> str:
  """The dotted name of a file relative to `root` (`src/pkg/mod.py` ->
  `src.pkg.mod`; a package's `__init__.py` names the package). Imports are
  matched against its dotted suffixes (`pkg.mod`), so `src/` layouts and
  namespace packages resolve without configuration."""
  rel = os.path.relpath(os.path.abspath(path), root)
  if rel.startswith('..'):
    rel = os.path.abspath(path).lstrip(os.sep)
  stem = rel[:-len('.ipynb')] if rel.endswith('.ipynb') else rel[:-len('.py')] if rel.endswith(
      '.py') else rel
  parts = [p for p in stem.split(os.sep) if p]
  if parts and parts[-1] == '__init__':
    parts.pop()
  return '.'.join(parts)
