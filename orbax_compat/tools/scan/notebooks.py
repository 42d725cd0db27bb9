"""Jupyter notebooks: scanned and rewritten cell by cell.

A notebook's code cells are joined into one module (names flow from cell to
cell, as they do when the notebook runs), each cell after a marker comment
line, so a finding maps back to its cell (its index in the notebook's
`cells`, markdown cells included, as nbformat counts them) and its line in
that cell. IPython lines that are not Python (`%magic`, `!shell`, `x = !ls`,
`help?`) become a placeholder statement carrying their text, and come back
unchanged; a cell magic (`%%bash`, ...) makes its whole cell opaque. After a
rewrite only the changed cells' sources change: outputs, metadata, key order
and the file's JSON layout (indent, `ensure_ascii`, final newline) are kept.
"""

from __future__ import annotations

import json
import re
from typing import Any

from orbax_compat.tools.scan.findings import Unscannable

MARKER = '# orbax-compat:cell '
_MAGIC = re.compile(r'^(\s*)(?:[%!]|\S.*=\s*!|\S.*\?\s*$)')
_PLACEHOLDER = 'pass  # orbax-compat:magic '
_PLACEHOLDER_LINE = re.compile(r'^(\s*)' + re.escape(_PLACEHOLDER) + r'(\d+)$')
_PYTHON_CELL_MAGICS = ('%%time', '%%timeit', '%%capture', '%%prun')


class Notebook:
  """A notebook's JSON and the one module its code cells make."""

  def __init__(self, raw: bytes):
    try:
      self.text = raw.decode('utf-8-sig')
      self.data = json.loads(self.text)
      cells = self.data['cells']
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as e:
      raise Unscannable(f'not a Jupyter notebook (JSON with cells): {e}') from None
    if not isinstance(cells, list):
      raise Unscannable('not a Jupyter notebook: "cells" is not a list')
    self.cells = cells
    self.magics: list[str] = []
    lines: list[str] = []
    self.starts: list[tuple[int, int]] = []  # (first line of a cell in the module, cell index)
    for i, cell in enumerate(cells):
      if not isinstance(cell, dict) or cell.get('cell_type') != 'code':
        continue
      src = cell.get('source', '')
      src = ''.join(src) if isinstance(src, list) else str(src)
      lines.append(f'{MARKER}{i}')
      self.starts.append((len(lines) + 1, i))
      lines.extend(self._python(src))
    self.source = '\n'.join(lines) + '\n' if lines else ''

  def _python(self, src: str) -> list[str]:
    out = []
    raw = src.split('\n')
    if raw and raw[0].strip().startswith('%%') and not raw[0].strip().startswith(
        _PYTHON_CELL_MAGICS):
      self.magics.append(src)  # A cell magic: the whole cell is opaque.
      return [f'{_PLACEHOLDER}{len(self.magics) - 1}']
    for line in raw:
      match = _MAGIC.match(line)
      if match and not line.strip().startswith('#'):
        self.magics.append(line[len(match.group(1)):])
        out.append(f'{match.group(1)}{_PLACEHOLDER}{len(self.magics) - 1}')
      else:
        out.append(line)
    return out

  def locate(self, line: int) -> tuple[int, int]:
    """(cell index, line in the cell) of a line of the joined module."""
    cell, first = self.starts[0][1], self.starts[0][0]
    for start, index in self.starts:
      if start > line:
        break
      cell, first = index, start
    return cell, line - first + 1

  def _restore(self, line: str) -> str:
    match = _PLACEHOLDER_LINE.match(line)
    if match is None:
      return line
    text = self.magics[int(match.group(2))]
    return match.group(1) + text if '\n' not in text else text

  def rewritten(self, new_source: str) -> bytes | None:
    """The notebook with its cells' sources from a rewrite of the joined module
    (None: nothing changed)."""
    parts: dict[int, list[str]] = {}
    current: list[str] | None = None
    preamble: list[str] = []
    for line in new_source.split('\n'):
      if line.startswith(MARKER) and line[len(MARKER):].strip().isdigit():
        current = parts.setdefault(int(line[len(MARKER):].strip()), [])
        continue
      (preamble if current is None else current).append(line)
    if preamble and any(p.strip() for p in preamble) and parts:
      first = min(parts)
      parts[first] = [*(p for p in preamble if p.strip()), *parts[first]]
    changed = False
    for index, lines in parts.items():
      cell = self.cells[index]
      old = cell.get('source', '')
      old_text = ''.join(old) if isinstance(old, list) else str(old)
      if index == max(parts) and lines and lines[-1] == '':
        lines = lines[:-1]  # The module's final newline.
      text = '\n'.join(self._restore(ln) for ln in lines)
      if old_text.endswith('\n') and not text.endswith('\n'):
        text += '\n'
      if text != old_text:
        changed = True
        cell['source'] = text.splitlines(keepends=True) if isinstance(old, list) else text
    if not changed:
      return None
    return self.dumps().encode('utf-8')

  def dumps(self) -> str:
    """The JSON, laid out as the file was (nbformat writes indent=1)."""
    indent = _indent(self.text)
    ascii_only = '\\u' in self.text and not any(ord(ch) > 127 for ch in self.text)
    out = json.dumps(self.data, indent=indent, ensure_ascii=ascii_only,
                     separators=(',', ': ') if indent is not None else (',', ':'))
    return out + ('\n' if self.text.endswith('\n') else '')


def _indent(text: str) -> Any:
  match = re.search(r'\n( +)"', text)
  if match is None:
    return None if '\n' not in text.strip() else 1
  return len(match.group(1))
