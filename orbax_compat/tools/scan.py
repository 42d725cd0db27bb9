"""`orbax-compat scan PATH... [--fix] [--to-v1] [--diff] [--format json]`: find v0 usage.

Reads Python files; never imports or runs them. It finds, driven by the
mapping (`mapping.members`, `mapping.options`):

- imports of `orbax.checkpoint` (any alias, `from ... import`, submodules);
- `CheckpointManager(...)` constructions (through `orbax.checkpoint`,
  `orbax_compat` or a subclass defined in the file) and each
  `CheckpointManagerOptions(...)` field;
- uses of v0 members (`save`, `restore`, ..., the `directory` property) on
  expressions bound to a manager: names assigned from a construction or from
  another manager name, `with ... as m`, parameters and attributes annotated
  with `CheckpointManager` (also as a string, `Optional[...]`, `X | None`),
  `self.x` attributes set in any method (or declared in the class body) and
  used in the class's methods, and functions or properties returning one.

Each member use reports the *form* of the table its call matches statically
(`_template_of`), that form's v1 code and the table's note.

The analysis runs on Python's own `ast` (one parse per file, which also checks
that the file is Python) with its own name resolution (`_Collector`: scopes,
bindings, imports); libcst parses only the files a rewrite touches, and the
findings are located in its tree by their order among the nodes of their type
(`_attach`, checked against their code; by position where that fails).

`--fix` does exactly the one-import swap to orbax_compat, where it stays
correct. `--to-v1` does the swap too, rewrites the calls whose form the table
marks mechanical into v1 code on `<manager>.v1_checkpointer` (`_plan_v1` says
when that is safe), and leaves a `# TODO(orbax-v1)` comment above every other
manager call. `--diff` prints either instead of writing. Writes are atomic.

Columns are 1-based. The JSON output (`--format json`) is:

    {"schema": "orbax_compat.scan/2",
     "findings": [{"path", "line", "col", "end_line", "end_col", "kind",
                   "member", "label", "v0", "v1", "note", "status", "code",
                   "receiver", "form", "mechanical", "to_v1", "reason",
                   "fixable", "fixed"}, ...],
     "summary": {"findings", "remaining", "files_scanned", "files_with_findings",
                 "errors", "files_changed", "by_member": {label: n},
                 "by_file": {path: n}},
     "errors": [{"path", "line", "col", "message"}, ...],
     "changes": [{"path", "edits", "swapped", "rewritten", "todos", "written",
                  "diff"}, ...]}

`kind` is import | init | option | method | property; `member` is the table's
key (`__init__`, `save`, an option field, or the imported module); `label` is
what the text output shows; for imports `v1` is the import to write. For
constructions and members, `form` is the v0 pattern of the table's form the
call matches statically ('' when none does: `v0` and `v1` are then the row's
first form), `mechanical` that form's flag, `to_v1` whether `--to-v1`
rewrites the use, and `reason` why not. `line` and `col` of an error are null
unless it is a syntax error.

Exit status: 0 nothing found (or everything found was fixed), 1 findings
remain, 2 usage error or nothing could be scanned.
"""

from __future__ import annotations

import argparse
import ast
import collections
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
import concurrent.futures
import dataclasses
import difflib
import functools
import importlib
import importlib.metadata
import inspect
import json
import multiprocessing
import os
import re
import sys
import tempfile
import tokenize
from typing import Any

import libcst as cst
from libcst import metadata as cst_metadata

from orbax_compat.mapping import forms
from orbax_compat.mapping import members as mapping_members
from orbax_compat.mapping import options as mapping_options
from orbax_compat.mapping import signatures
from orbax_compat.mapping.schema import Form
from orbax_compat.mapping.schema import Member
from orbax_compat.mapping.schema import Option

SCHEMA = 'orbax_compat.scan/2'
SHIM = 'orbax_compat'
V0 = 'orbax.checkpoint'
_EXPERIMENTAL = 'orbax.checkpoint.experimental'
_V1_MODULES = ('orbax.checkpoint.v1', _EXPERIMENTAL + '.v1')
_SKIP_DIRS = frozenset({'site-packages', 'venv', '.venv', '__pycache__'})
_TYPING_WRAPPERS = frozenset({'Optional', 'Union', 'Annotated', 'Final', 'ClassVar'})
_MANAGER_KINDS = ('init', 'method', 'property')
TODO = 'TODO(orbax-v1)'
V1_CHECKPOINTER = 'v1_checkpointer'
# Names the v1 code may use besides placeholders: (module they must name, import).
_V1_IMPORTS = {
    'jax': ('jax', 'import jax'),
    'np': ('numpy', 'import numpy as np'),
    'ocp_v1': (_EXPERIMENTAL + '.v1', forms.V1_IMPORT),
}


# --------------------------------------------------------------------------
# The table, read in one place each.


@dataclasses.dataclass(frozen=True)
class _Template:
  """What the table says of one use: the form its call matches statically.

  `bindings` maps each placeholder of the form's v0 pattern that the call
  gives to the path of the argument (`('pos', i)` / `('kw', name)` steps, a
  second step inside an args call); `nodes` the same placeholders to their
  `ast` expressions. `exact` says the call's args call (if any) gives nothing
  the pattern leaves out, so a rewrite drops nothing.
  """

  form: Form | None
  v0: str
  v1: str
  note: str
  bindings: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...] = ()
  nodes: dict[str, ast.expr] = dataclasses.field(default_factory=dict)
  exact: bool = True
  dropped: tuple[ast.expr, ...] = ()  # Given expressions the v1 code does not use.


def _template_of(row: Member, call: ast.Call | None,
                 called_name: Callable[[ast.expr], str | None]) -> _Template:
  """The first form of `row` without `when` whose pattern `call` matches.

  The rules of `mapping.forms.matches`, on the call's syntax: a Name placeholder
  matches any argument or none; an args call `ocp.args.X(...)` an argument
  that is a call of a name whose last attribute is `X` (`called_name`
  resolves import aliases); a constant an equal literal; parameters the
  pattern leaves out must be absent, `None` or their default. A call with
  `*`/`**` arguments matches no form. No match: the row's first form, with
  `form` None (the runtime falls back to it too).
  """
  signature = forms.signature(row.name)
  if (call is None) == (row.kind == 'property'):
    bound = _bind_call(signature, call) if call is not None else {}
  else:
    bound = None  # A method used without a call, or a property called.
  for form in row.forms if bound is not None else ():
    if form.when:
      continue
    if _form_matches(form, signature, bound, called_name):
      return _bound_template(row, form, signature, bound, called_name)
  first = row.forms[0]
  return _Template(None, first.v0, first.v1, _note(row, first))


def _option_template_of(row: Option) -> str:
  return row.v1


def _note(row: Member, form: Form) -> str:
  return '; '.join(n for n in (form.note, row.note) if n)


class _Slot:
  """An argument of a call, as bound by `inspect.Signature.bind`."""

  __slots__ = ('node', 'step')

  def __init__(self, node: ast.expr, step: tuple[str, Any]):
    self.node, self.step = node, step


def _bind_call(signature: inspect.Signature, call: ast.Call) -> dict[str, _Slot] | None:
  """{parameter: argument} of `call` for `signature`, or None if it cannot bind."""
  if any(isinstance(a, ast.Starred) for a in call.args) or any(
      k.arg is None for k in call.keywords):
    return None
  positional = [_Slot(a, ('pos', i)) for i, a in enumerate(call.args)]
  keywords = {k.arg: _Slot(k.value, ('kw', k.arg)) for k in call.keywords}
  first = next(iter(signature.parameters), None)
  receiver = [None] if first == 'self' else []
  try:
    bound = signature.bind(*receiver, *positional, **keywords).arguments
  except TypeError:
    return None
  return {k: v for k, v in bound.items() if isinstance(v, _Slot)}


def _literal(node: ast.expr) -> tuple[bool, Any]:
  if isinstance(node, ast.Constant):
    return True, node.value
  if (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub)
      and isinstance(node.operand, ast.Constant)
      and isinstance(node.operand.value, (int, float))):
    return True, -node.operand.value
  return False, None


def _given(slot: _Slot | None, default: Any) -> bool:
  """As `_matches`: an argument that is its parameter's default is not given."""
  if slot is None:
    return False
  is_literal, value = _literal(slot.node)
  return not (is_literal and value is default)


def _is_none(slot: _Slot) -> bool:
  return _literal(slot.node) == (True, None)


def _form_matches(form: Form, signature: inspect.Signature, bound: dict[str, _Slot],
                  called_name: Callable[[ast.expr], str | None]) -> bool:
  pattern = forms.pattern_arguments(form, signature)  # pylint: disable=protected-access
  for name, param in signature.parameters.items():
    if name == 'self' or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
      continue
    slot = bound.get(name)
    given = _given(slot, param.default)
    node = pattern.get(name)
    if node is None:
      if given and not _is_none(slot):
        return False
      continue
    if isinstance(node, ast.Constant):
      is_literal, value = _literal(slot.node) if given else (False, None)
      if not is_literal or value != node.value:
        return False
    elif forms.type_name(node) is not None:  # pylint: disable=protected-access
      if not given or not isinstance(slot.node, ast.Call) or (
          called_name(slot.node.func) != forms.type_name(node)):  # pylint: disable=protected-access
        return False
  return True


def _args_signature(name: str) -> inspect.Signature | None:
  return forms.args_signature(name)


def _bound_template(row, form, signature, bound, called_name) -> _Template:
  """The placeholders of `form`'s pattern, bound to the call's arguments."""
  pattern = forms.pattern_arguments(form, signature)  # pylint: disable=protected-access
  bindings, nodes, dropped, exact = [], {}, [], True
  for name, slot in bound.items():
    node = pattern.get(name)
    if isinstance(node, ast.Name):
      bindings.append((node.id, (slot.step,)))
      nodes[node.id] = slot.node
    elif isinstance(node, ast.Call):
      dropped.append(slot.node.func)
      inner_signature = _args_signature(forms.type_name(node))  # pylint: disable=protected-access
      inner_pattern = _bind_call(inner_signature, node) if inner_signature else None
      inner = _bind_call(inner_signature, slot.node) if inner_signature else None
      if inner_pattern is None or inner is None:
        exact = False
        continue
      for inner_name, inner_slot in inner.items():
        placeholder = inner_pattern.get(inner_name)
        if placeholder is not None and isinstance(placeholder.node, ast.Name):
          bindings.append((placeholder.node.id, (slot.step, inner_slot.step)))
          nodes[placeholder.node.id] = inner_slot.node
        elif _given(inner_slot, inner_signature.parameters[inner_name].default):
          exact = False
        else:
          dropped.append(inner_slot.node)
    else:
      dropped.append(slot.node)  # None, a default, or the pattern's constant.
  return _Template(form, form.v0, form.v1, _note(row, form), tuple(bindings), nodes, exact,
                   tuple(dropped))


@dataclasses.dataclass(frozen=True)
class _Occurrence:
  name: str  # A placeholder.
  guarded: bool  # Evaluated conditionally or repeatedly (lambda, comprehension, if-else, and/or).
  scoped: bool  # Inside a lambda or comprehension (its own scope).
  around: frozenset[str]  # Names the v1 code binds around it.


@dataclasses.dataclass(frozen=True)
class _CodeInfo:
  """What a rewrite must know of a form's v1 code."""

  expression: bool  # One expression (inline-able).
  occurrences: tuple[_Occurrence, ...]  # Placeholders, in evaluation order.
  free: frozenset[str]  # jax / np / ocp_v1 used.
  default_item: bool  # Names the item 'default': needs a single-item manager.


@functools.cache
def _code_info(code: str) -> _CodeInfo:
  body = ast.parse(code.strip()).body
  expression = len(body) == 1 and isinstance(body[0], ast.Expr)
  occurrences: list[_Occurrence] = []

  def visit(node, guarded=False, scoped=False, around=frozenset()):
    if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
      if node.id in forms.PLACEHOLDERS and node.id not in around:
        occurrences.append(_Occurrence(node.id, guarded, scoped, around))
      return
    if isinstance(node, ast.Lambda):
      for d in [*node.args.defaults, *node.args.kw_defaults]:
        if d is not None:
          visit(d, guarded, scoped, around)
      params = {a.arg for a in ast.walk(node.args) if isinstance(a, ast.arg)}
      visit(node.body, True, True, around | params)
      return
    if isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
      visit(node.generators[0].iter, guarded, scoped, around)
      targets = {n.id for g in node.generators for n in ast.walk(g.target)
                 if isinstance(n, ast.Name)}
      inner = around | targets
      for i, g in enumerate(node.generators):
        if i:
          visit(g.iter, True, True, inner)
        for cond in g.ifs:
          visit(cond, True, True, inner)
      for part in ((node.key, node.value) if isinstance(node, ast.DictComp) else (node.elt,)):
        visit(part, True, True, inner)
      return
    if isinstance(node, ast.IfExp):
      visit(node.test, guarded, scoped, around)
      visit(node.body, True, scoped, around)
      visit(node.orelse, True, scoped, around)
      return
    if isinstance(node, ast.BoolOp):
      visit(node.values[0], guarded, scoped, around)
      for v in node.values[1:]:
        visit(v, True, scoped, around)
      return
    if isinstance(node, ast.Dict):
      for k, v in zip(node.keys, node.values, strict=True):
        if k is not None:
          visit(k, guarded, scoped, around)
        visit(v, guarded, scoped, around)
      return
    for child in ast.iter_child_nodes(node):
      visit(child, guarded, scoped, around)

  for stmt in body:
    visit(stmt)
  default_item = any(isinstance(n, ast.Constant) and n.value == 'default'
                     for n in ast.walk(ast.Module(body, [])))
  return _CodeInfo(expression, tuple(occurrences), frozenset(forms.names_in(code) & set(_V1_IMPORTS)),
                   default_item)


def _one_line(code: str) -> str:
  return '; '.join(line.strip() for line in code.strip().splitlines())


@functools.cache
def _member_rows() -> dict[str, Member]:
  return {r.name: r for r in forms.MEMBERS if r.kind in ('method', 'property')}


@functools.cache
def _option_rows() -> dict[str, Option]:
  return {r.field: r for r in mapping_options.OPTIONS if '.' not in r.field}


@functools.cache
def _option_fields() -> tuple[str, ...]:
  """CheckpointManagerOptions' fields in order, for positional arguments."""
  return signatures.OPTIONS_FIELDS


Span = tuple[str, int, int, int, int]  # (node type, start line, start col, end line, end col), 0-based cols.


@dataclasses.dataclass(frozen=True)
class Finding:
  """One v0 use in one file.

  When the file was parsed for a rewrite (`scan_source`, `--fix`, `--to-v1`),
  `node` is the libcst node of the use inside `FileScan.module` (the `Call`
  for a construction or method call, the `Attribute` for a property or an
  uncalled method, the `Arg` for an option field, the `Import`/`ImportFrom`
  for an import); `call` the enclosing call (for options, the
  `CheckpointManagerOptions` call); `receiver_node` the manager expression a
  member is used on; `statement` the statement above which a comment goes;
  `parent` the node's parent. A rewrite finds each use by the identity of
  these nodes, found by `ordinal` (or `span`, its position) in the tree.
  `bindings` (plain data) says where each placeholder of the matched form is
  among the call's arguments.
  """

  path: str
  line: int
  col: int  # 1-based.
  end_line: int
  end_col: int  # 1-based, exclusive.
  kind: str  # import | init | option | method | property
  member: str  # Table key ('__init__', 'save', ...), option field, or imported module.
  v0: str
  v1: str
  note: str
  status: str  # The table's status; '' for imports and options.
  code: str  # The use's source, first line only.
  receiver: str | None = None  # Source of the manager expression (members).
  form: str = ''  # The v0 pattern of the matched form ('' none matches statically).
  mechanical: str = ''  # That form's flag.
  to_v1: bool = False  # --to-v1 rewrites it.
  reason: str = ''  # Why --to-v1 does not (members and constructions).
  fixable: bool = False  # --fix rewrites it (imports).
  fixed: bool = False  # This run rewrote it.
  bindings: tuple = dataclasses.field(default=(), compare=False, repr=False)
  imports: tuple[str, ...] = dataclasses.field(default=(), compare=False, repr=False)
  span: Span | None = dataclasses.field(default=None, compare=False, repr=False)
  ordinal: tuple | None = dataclasses.field(default=None, compare=False, repr=False)
  node: cst.CSTNode | None = dataclasses.field(default=None, compare=False, repr=False)
  call: cst.Call | None = dataclasses.field(default=None, compare=False, repr=False)
  receiver_node: cst.BaseExpression | None = dataclasses.field(
      default=None, compare=False, repr=False)
  statement: cst.CSTNode | None = dataclasses.field(default=None, compare=False, repr=False)
  parent: cst.CSTNode | None = dataclasses.field(default=None, compare=False, repr=False)

  @property
  def label(self) -> str:
    if self.kind == 'init':
      return 'CheckpointManager'
    if self.kind == 'option':
      return f'options.{self.member}'
    if self.kind == 'import':
      return 'import'
    return self.member

  @property
  def row(self) -> Member | None:
    """The table row of a construction or member use."""
    return forms.BY_NAME.get(self.member) if self.kind in _MANAGER_KINDS else None

  @property
  def todo(self) -> str:
    """The `# TODO(orbax-v1)` comment --to-v1 leaves above a use it does not rewrite."""
    note = f' \N{EM DASH} {self.note}' if self.note else ''
    return f'# {TODO}: {_one_line(self.v1)}{note}'

  def detached(self) -> Finding:
    """A copy without the tree's nodes (plain data)."""
    return dataclasses.replace(self, node=None, call=None, receiver_node=None, statement=None,
                               parent=None)

  def to_json(self) -> dict[str, Any]:
    out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.compare}
    out['label'] = self.label
    return out

  def text(self) -> str:
    note = f'  ({self.note})' if self.note else ''
    if self.fixed:
      mark = '  [rewritten]' if self.kind in _MANAGER_KINDS else '  [fixed]'
    elif self.to_v1:
      mark = '  [--to-v1]'
    else:  # Why a mechanical form is kept (other reasons are the note's).
      mark = f'  [kept: {self.reason}]' if self.mechanical else ''
    return f'{self.path}:{self.line}:{self.col}: {self.label}: {_one_line(self.v1)}{note}{mark}'


@dataclasses.dataclass(frozen=True)
class ScanError:
  path: str
  message: str
  line: int | None = None
  col: int | None = None

  def text(self) -> str:
    where = f'{self.path}:{self.line}:{self.col}' if self.line is not None else self.path
    return f'{where}: error: {self.message}'


@dataclasses.dataclass
class FileScan:
  """One file and its findings; `module` is its libcst tree when it was parsed
  for a rewrite (findings then point into it)."""

  path: str
  source: bytes
  module: cst.Module | None
  findings: list[Finding]


# --------------------------------------------------------------------------
# Names


def _is_v1_module(module: str) -> bool:
  return any(module == m or module.startswith(m + '.') for m in _V1_MODULES)


def _is_v0_module(module: str) -> bool:
  return (module == V0 or module.startswith(V0 + '.')) and not _is_v1_module(module)


def _is_shim_module(module: str) -> bool:
  return module == SHIM or module.startswith(SHIM + '.')


def _is_api_qname(qname: str, leaf: str) -> bool:
  """`qname` names `leaf` (e.g. CheckpointManager) of v0 Orbax or of the shim.

  Not under `orbax.checkpoint.experimental`: its emergency CheckpointManager is
  another API, which orbax_compat does not stand in for.
  """
  module, _, name = qname.rpartition('.')
  if name != leaf or module == _EXPERIMENTAL or module.startswith(_EXPERIMENTAL + '.'):
    return False
  return _is_v0_module(module) or _is_shim_module(module)


@functools.cache
def _fixable_name(name: str) -> bool:
  """`from orbax_compat import name` gives what `from orbax.checkpoint import name` gave.

  orbax_compat resolves every other name lazily from `orbax.checkpoint` (PEP
  562), so a name is safe when it is a public attribute of `orbax.checkpoint`
  (a submodule not imported by `orbax.checkpoint` itself is not) and
  orbax_compat does not define it differently (`CheckpointManager` is the
  point of the swap).
  """
  if name.startswith('_'):
    return False
  v0 = importlib.import_module(V0)
  if not hasattr(v0, name):
    return False
  shim = sys.modules[SHIM].__dict__
  return name == 'CheckpointManager' or name not in shim or shim[name] is getattr(v0, name)


def _dotted(expr: ast.expr) -> str | None:
  """'a.b.c' for a Name or a chain of attributes on one, else None."""
  parts = []
  while isinstance(expr, ast.Attribute):
    parts.append(expr.attr)
    expr = expr.value
  if not isinstance(expr, ast.Name):
    return None
  parts.append(expr.id)
  return '.'.join(reversed(parts))


def _base_name(expr: ast.expr) -> ast.Name | None:
  while isinstance(expr, ast.Attribute):
    expr = expr.value
  return expr if isinstance(expr, ast.Name) else None


def _is_pure(expr: ast.expr) -> bool:
  """Evaluating it again, or not at all, or in another order changes nothing:
  a name, a literal, or attributes of a name."""
  if isinstance(expr, ast.Attribute):
    return _is_pure(expr.value)
  return isinstance(expr, ast.Name) or _literal(expr)[0]


# --------------------------------------------------------------------------
# Analysis of one module


class _Scope:
  """One scope's bindings: name -> the nodes that bind it (flow-insensitive)."""

  __slots__ = ('kind', 'parent', 'names', 'globals', 'nonlocals')

  def __init__(self, kind: str, parent: _Scope | None):
    self.kind = kind  # module | class | function | comprehension
    self.parent = parent
    self.names: dict[str, list[ast.AST]] = {}
    self.globals: set[str] = set()
    self.nonlocals: set[str] = set()

  def module(self) -> _Scope:
    scope = self
    while scope.parent is not None:
      scope = scope.parent
    return scope

  def bind(self, name: str, node: ast.AST) -> None:
    scope = self
    if name in self.globals:
      scope = self.module()
    elif name in self.nonlocals:
      scope = self.parent
      while scope is not None and scope.kind in ('class', 'comprehension'):
        scope = scope.parent
      scope = scope or self.module()
    scope.names.setdefault(name, []).append(node)

  def lookup(self, name: str) -> list[ast.AST]:
    """The bindings a use of `name` here may see (Python's LEGB; none: a builtin)."""
    if name in self.globals:
      return self.module().names.get(name, [])
    scope, first = self, True
    while scope is not None:
      if (first or scope.kind != 'class') and name in scope.names and (
          name not in scope.nonlocals):
        return scope.names[name]
      first = False
      scope = scope.parent
    return []


_Site = tuple[list[ast.expr], ast.expr | None, ast.expr | None, _Scope]


class _Collector:
  """One pass over the tree: scopes and bindings, imports, calls, attribute
  uses, and binding sites (what the analysis needs, nothing more)."""

  def __init__(self, tree: ast.Module):
    self.module_scope = _Scope('module', None)
    self.scope_of: dict[int, _Scope] = {}  # id(Name load) -> its scope.
    self.imported: dict[int, tuple[str | None, ast.stmt]] = {}  # id(alias) -> (qname, import).
    self.imports: list[tuple[ast.stmt, ast.stmt]] = []  # (node, statement)
    self.calls: list[tuple[ast.Call, ast.stmt, _Scope]] = []
    self.attributes: list[tuple[ast.Attribute, ast.stmt, _Scope]] = []
    self.call_of_func: dict[int, ast.Call] = {}
    self.super_calls: dict[int, int] = {}  # id(`super()` call) -> id(enclosing class).
    self.sites: list[_Site] = []  # (targets, value, annotation, scope)
    self.assigned: dict[int, ast.expr] = {}  # Name bound by `name = value` -> value.
    self.params: list[tuple[ast.arg, _Scope]] = []  # Annotated parameters.
    self.returns: list[tuple[ast.FunctionDef, ast.expr]] = []
    self.functions: list[tuple[ast.FunctionDef, _Scope]] = []
    self.classes: list[tuple[ast.ClassDef, _Scope]] = []
    self.class_of_self: dict[int, ast.ClassDef] = {}  # id(arg) -> class.
    self.methods: dict[int, dict[str, ast.FunctionDef]] = collections.defaultdict(dict)
    self.class_attrs: list[tuple[ast.ClassDef, str, ast.expr | None, ast.expr | None,
                                 _Scope]] = []
    self.in_fstring: set[int] = set()  # id() of calls and attributes inside f-strings.
    self._fstring = 0
    self._stmt: ast.stmt | None = None
    self._defs: list[ast.AST] = []  # Enclosing ClassDef / FunctionDef.
    for stmt in tree.body:
      self.visit(stmt, self.module_scope)

  def visit(self, node: ast.AST, scope: _Scope) -> None:
    handler = getattr(self, 'v_' + type(node).__name__, None)
    if isinstance(node, ast.stmt):
      outer, self._stmt = self._stmt, node
      if handler is None:
        self.children(node, scope)
      else:
        handler(node, scope)
      self._stmt = outer
    elif handler is None:
      self.children(node, scope)
    else:
      handler(node, scope)

  def children(self, node: ast.AST, scope: _Scope) -> None:
    for child in ast.iter_child_nodes(node):
      self.visit(child, scope)

  def visit_all(self, nodes: Iterable[ast.AST | None], scope: _Scope) -> None:
    for node in nodes:
      if node is not None:
        self.visit(node, scope)

  # Names and bindings.
  def v_Name(self, node: ast.Name, scope: _Scope) -> None:
    if isinstance(node.ctx, ast.Load):
      self.scope_of[id(node)] = scope
    else:
      scope.bind(node.id, node)

  def v_Global(self, node: ast.Global, scope: _Scope) -> None:
    scope.globals.update(node.names)

  def v_Nonlocal(self, node: ast.Nonlocal, scope: _Scope) -> None:
    scope.nonlocals.update(node.names)

  def v_Import(self, node: ast.Import, scope: _Scope) -> None:
    self.imports.append((node, self._stmt))
    for alias in node.names:
      top = alias.name.split('.')[0]
      self.imported[id(alias)] = (alias.name if alias.asname else top, node)
      scope.bind(alias.asname or top, alias)

  def v_ImportFrom(self, node: ast.ImportFrom, scope: _Scope) -> None:
    self.imports.append((node, self._stmt))
    for alias in node.names:
      if alias.name == '*':
        continue
      qname = f'{node.module}.{alias.name}' if node.module and not node.level else None
      self.imported[id(alias)] = (qname, node)
      scope.bind(alias.asname or alias.name, alias)

  def v_ExceptHandler(self, node: ast.ExceptHandler, scope: _Scope) -> None:
    if node.name:
      scope.bind(node.name, node)
    self.children(node, scope)

  # Definitions.
  def _arguments(self, args: ast.arguments, outer: _Scope, inner: _Scope,
                 owner: ast.ClassDef | None = None, method: bool = False) -> None:
    self.visit_all([*args.defaults, *args.kw_defaults], outer)
    every = [*args.posonlyargs, *args.args, args.vararg, *args.kwonlyargs, args.kwarg]
    for arg in every:
      if arg is None:
        continue
      inner.bind(arg.arg, arg)
      if arg.annotation is not None:
        self.visit(arg.annotation, outer)
        self.params.append((arg, outer))
    positional = [*args.posonlyargs, *args.args]
    if method and owner is not None and positional:
      self.class_of_self[id(positional[0])] = owner

  def v_FunctionDef(self, node: ast.FunctionDef, scope: _Scope) -> None:
    self.visit_all(node.decorator_list, scope)
    owner = self._defs[-1] if self._defs else None
    owner = owner if isinstance(owner, ast.ClassDef) else None
    inner = _Scope('function', scope)
    decorators = {d.id for d in node.decorator_list if isinstance(d, ast.Name)}
    method = not decorators & {'staticmethod', 'classmethod'}
    self._arguments(node.args, scope, inner, owner, method)
    if node.returns is not None:
      self.visit(node.returns, scope)
    scope.bind(node.name, node)
    self.functions.append((node, scope))
    if owner is not None:
      self.methods[id(owner)][node.name] = node
    self._defs.append(node)
    for stmt in node.body:
      self.visit(stmt, inner)
    self._defs.pop()

  v_AsyncFunctionDef = v_FunctionDef

  def v_Lambda(self, node: ast.Lambda, scope: _Scope) -> None:
    inner = _Scope('function', scope)
    self._arguments(node.args, scope, inner)
    self.visit(node.body, inner)

  def v_ClassDef(self, node: ast.ClassDef, scope: _Scope) -> None:
    self.visit_all([*node.decorator_list, *node.bases, *(k.value for k in node.keywords)], scope)
    scope.bind(node.name, node)
    self.classes.append((node, scope))
    inner = _Scope('class', scope)
    self._defs.append(node)
    for stmt in node.body:
      self.visit(stmt, inner)
    self._defs.pop()

  def _comprehension(self, node, scope: _Scope) -> None:
    self.visit(node.generators[0].iter, scope)
    inner = _Scope('comprehension', scope)
    for i, generator in enumerate(node.generators):
      self.visit(generator.target, inner)
      if i:
        self.visit(generator.iter, inner)
      self.visit_all(generator.ifs, inner)
    if isinstance(node, ast.DictComp):
      self.visit_all([node.key, node.value], inner)
    else:
      self.visit(node.elt, inner)

  v_ListComp = v_SetComp = v_GeneratorExp = v_DictComp = _comprehension

  def v_Return(self, node: ast.Return, scope: _Scope) -> None:
    owner = self._defs[-1] if self._defs else None
    if isinstance(owner, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.value is not None:
      self.returns.append((owner, node.value))
    self.children(node, scope)

  # Binding sites.
  def _class_body(self, scope: _Scope) -> ast.ClassDef | None:
    owner = self._defs[-1] if self._defs else None
    return owner if scope.kind == 'class' and isinstance(owner, ast.ClassDef) else None

  def v_Assign(self, node: ast.Assign, scope: _Scope) -> None:
    self.children(node, scope)
    for target in node.targets:
      if isinstance(target, ast.Name):
        self.assigned[id(target)] = node.value
    owner = self._class_body(scope)
    if owner is not None:
      for t in node.targets:
        if isinstance(t, ast.Name):
          self.class_attrs.append((owner, t.id, node.value, None, scope))
    self.sites.append((list(node.targets), node.value, None, scope))

  def v_AnnAssign(self, node: ast.AnnAssign, scope: _Scope) -> None:
    self.children(node, scope)
    owner = self._class_body(scope)
    if owner is not None and isinstance(node.target, ast.Name):
      self.class_attrs.append((owner, node.target.id, node.value, node.annotation, scope))
    self.sites.append(([node.target], node.value, node.annotation, scope))

  def v_NamedExpr(self, node: ast.NamedExpr, scope: _Scope) -> None:
    self.visit(node.value, scope)
    target = scope
    while target.kind == 'comprehension':
      target = target.parent
    target.bind(node.target.id, node.target)
    self.sites.append(([node.target], node.value, None, scope))

  def v_withitem(self, node: ast.withitem, scope: _Scope) -> None:
    self.children(node, scope)
    if node.optional_vars is not None:
      self.sites.append(([node.optional_vars], node.context_expr, None, scope))

  # Uses.
  def v_JoinedStr(self, node: ast.JoinedStr, scope: _Scope) -> None:
    self._fstring += 1
    self.children(node, scope)
    self._fstring -= 1

  def v_Call(self, node: ast.Call, scope: _Scope) -> None:
    if self._fstring:
      self.in_fstring.add(id(node))
    self.calls.append((node, self._stmt, scope))
    self.call_of_func[id(node.func)] = node
    if isinstance(node.func, ast.Name) and node.func.id == 'super':
      owner = next((d for d in reversed(self._defs) if isinstance(d, ast.ClassDef)), None)
      if owner is not None:
        self.super_calls[id(node)] = id(owner)
    self.children(node, scope)

  def v_Attribute(self, node: ast.Attribute, scope: _Scope) -> None:
    if self._fstring:
      self.in_fstring.add(id(node))
    self.attributes.append((node, self._stmt, scope))
    self.children(node, scope)


# Where a manager comes from (`_Analysis.origins`). --to-v1 rewrites calls only
# on managers it sees built as orbax_compat's own class (NEW; NEW_ITEMS when
# built with item names, handlers or legacy checkpointers).
NEW = 'orbax_compat'
NEW_ITEMS = 'orbax_compat, with items'
# `OPTION + field`: the manager's options may set `field` to a non-default
# value (`OPTION + '?'`: options this module does not show).
OPTION = 'option:'
NATIVE = 'orbax.checkpoint'
SUBCLASS = 'subclass'
DECLARED = 'annotation'
_NO_ORIGIN: frozenset[str] = frozenset()


class _Analysis:
  """Which expressions of one module are v0 managers, and where they come from
  (flow-insensitive, may-alias).

  Names resolve through the collector's scopes (each use to the bindings that
  may reach it). On top of it, a fixed point over the binding sites tracks:
  names and parameters bound to a manager; names bound to instances of
  classes defined in the module (`self` included); the attributes of those
  classes that hold a manager (set anywhere in the class, declared in its body,
  or a property returning one); functions and methods returning a manager or
  an instance. Each manager binding carries its origins: built here by
  orbax_compat's class (after the import swap), by Orbax's own class, by a
  subclass defined here, or only known by an annotation.
  """

  def __init__(self, collector: _Collector, fixable_imports: set[int]):
    self.c = collector
    self.fixable_imports = fixable_imports
    self.managers: dict[int, set[str]] = collections.defaultdict(set)  # Name/arg binding -> origins.
    self.instances: dict[int, set[int]] = collections.defaultdict(set)  # Binding -> classes.
    self.attrs: dict[int, dict[str, set[str]]] = collections.defaultdict(dict)  # Class -> attr -> origins.
    self.factories: dict[int, set[str]] = collections.defaultdict(set)  # FunctionDef -> origins.
    self.declared_factories: set[int] = set()  # Return annotation names a manager.
    self.makers: dict[int, set[int]] = collections.defaultdict(set)  # Function -> classes.
    self.manager_classes: set[int] = set()  # Subclasses of CheckpointManager here.
    self.bases: dict[int, list[ast.ClassDef]] = {}
    self._solve()

  # Names and what they refer to.
  def referents(self, name: ast.Name, scope: _Scope | None = None) -> list[ast.AST]:
    """The nodes (Name, arg, alias, FunctionDef, ClassDef...) that may bind `name`.

    `scope` is for names not in the tree (parsed from a string annotation)."""
    scope = self.c.scope_of.get(id(name), scope)
    return scope.lookup(name.id) if scope is not None else []

  def _qnames(self, expr: ast.expr, scope: _Scope | None) -> list[tuple[str, ast.stmt]]:
    """(qualified name, import statement) for each import `expr` may name through."""
    dotted, base = _dotted(expr), _base_name(expr)
    if dotted is None:
      return []
    rest = dotted[len(base.id):]
    out = []
    for node in self.referents(base, scope):
      qname, statement = self.c.imported.get(id(node), (None, None))
      if qname is not None:
        out.append((qname + rest, statement))
    return out

  def called_name(self, func: ast.expr) -> str | None:
    """The last attribute of a called name, through import aliases
    (`from orbax.checkpoint.args import StandardSave as S`: `S` -> StandardSave)."""
    if isinstance(func, ast.Attribute):
      return func.attr
    if isinstance(func, ast.Name):
      names = {q.rpartition('.')[2] for q, _ in self._qnames(func, None)}
      return names.pop() if len(names) == 1 else func.id
    return None

  def _local_classes(self, expr: ast.expr, scope: _Scope | None = None) -> list[ast.ClassDef]:
    if isinstance(expr, ast.Name):
      return [n for n in self.referents(expr, scope) if isinstance(n, ast.ClassDef)]
    return []

  def api(self, expr: ast.expr, leaf: str, scope: _Scope | None = None) -> str | None:
    """Whose `leaf` (e.g. `ocp.CheckpointManager`) `expr` names: NEW (orbax_compat's,
    also after the import swap), NATIVE (Orbax's own), SUBCLASS, or None."""
    if not isinstance(expr, (ast.Name, ast.Attribute)):
      return None
    if leaf == 'CheckpointManager' and any(
        id(c) in self.manager_classes for c in self._local_classes(expr, scope)):
      return SUBCLASS
    kinds = {NEW if _is_shim_module(q) or id(statement) in self.fixable_imports else NATIVE
             for q, statement in self._qnames(expr, scope) if _is_api_qname(q, leaf)}
    return NATIVE if NATIVE in kinds else NEW if kinds else None

  def annotation(self, annotation: ast.expr, scope: _Scope) -> tuple[bool, set[int]]:
    """(says CheckpointManager, the local classes it names), through Optional,
    Union, `X | None` and quotes."""
    expr = annotation
    if isinstance(expr, ast.Constant):
      if not isinstance(expr.value, str):
        return False, set()
      try:
        expr = ast.parse(expr.value.strip(), mode='eval').body
      except SyntaxError:
        return False, set()
    parts: list[ast.expr] = []
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.BitOr):
      parts = [expr.left, expr.right]
    elif isinstance(expr, ast.Subscript):
      wrapper = _dotted(expr.value) or ''
      if wrapper.rpartition('.')[2] not in _TYPING_WRAPPERS:
        return False, set()
      parts = list(expr.slice.elts) if isinstance(expr.slice, ast.Tuple) else [expr.slice]
      if wrapper.endswith('Annotated'):
        parts = parts[:1]
    else:
      is_manager = self.api(expr, 'CheckpointManager', scope) is not None
      return is_manager, {id(c) for c in self._local_classes(expr, scope)}
    manager, classes = False, set()
    for part in parts:
      m, c = self.annotation(part, scope)
      manager, classes = manager or m, classes | c
    return manager, classes

  def _lineage(self, cls_id: int) -> Iterator[int]:
    seen, todo = set(), [cls_id]
    while todo:
      c = todo.pop()
      if c not in seen:
        seen.add(c)
        yield c
        todo.extend(id(b) for b in self.bases.get(c, ()))

  def _attr_origins(self, classes: Iterable[int], name: str) -> set[str]:
    out = set()
    for cls in classes:
      for c in self._lineage(cls):
        out |= self.attrs[c].get(name, _NO_ORIGIN)
    return out

  def _methods(self, classes: Iterable[int], name: str) -> list[ast.FunctionDef]:
    found = []
    for cls in classes:
      for c in self._lineage(cls):
        method = self.c.methods.get(c, {}).get(name)
        if method is not None:
          found.append(method)
          break
    return found

  def classes_of(self, expr: ast.expr | None) -> set[int]:
    """The local classes `expr` may be an instance of."""
    if isinstance(expr, ast.NamedExpr):
      return self.classes_of(expr.value)
    if isinstance(expr, ast.Name):
      out = set()
      for node in self.referents(expr):
        owner = self.c.class_of_self.get(id(node))
        if owner is not None:
          out.add(id(owner))
        out |= self.instances.get(id(node), set())
      return out
    if isinstance(expr, ast.Call):
      out = set()
      for fn in self._callees(expr.func):
        if isinstance(fn, ast.ClassDef):
          out.add(id(fn))
        else:
          out |= self.makers.get(id(fn), set())
      return out
    return set()

  def _callees(self, func: ast.expr) -> list[ast.AST]:
    """The local classes and functions a call of `func` may run."""
    if isinstance(func, ast.Name):
      return [n for n in self.referents(func)
              if isinstance(n, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))]
    if isinstance(func, ast.Attribute):
      return self._methods(self.classes_of(func.value), func.attr)
    return []

  def _factory_origins(self, fn: ast.AST) -> set[str]:
    return self.factories.get(id(fn), _NO_ORIGIN)

  def origins(self, expr: ast.expr | None) -> set[str]:
    """Where the manager `expr` evaluates to may come from (empty: not a manager,
    as far as this module tells)."""
    if isinstance(expr, ast.NamedExpr):
      return self.origins(expr.value)
    if isinstance(expr, ast.Call):
      kind = self.api(expr.func, 'CheckpointManager')
      if kind == NEW:
        return {NEW if _plain_construction(expr) else NEW_ITEMS} | {
            OPTION + f for f in self.option_fields(expr)}
      if kind is not None:
        return {kind}
      if id(expr) in self.c.super_calls:
        return {SUBCLASS} if self.c.super_calls[id(expr)] in self.manager_classes else set()
      out = set()
      for fn in self._callees(expr.func):
        out |= self._factory_origins(fn)
      return out
    if isinstance(expr, ast.Name):
      out = set()
      for n in self.referents(expr):
        out |= self.managers.get(id(n), _NO_ORIGIN)
      return out
    if isinstance(expr, ast.Attribute):
      return self._attr_origins(self.classes_of(expr.value), expr.attr)
    return set()

  def option_fields(self, construction: ast.Call) -> set[str]:
    """CheckpointManagerOptions fields a construction may set to a non-default
    value ('?': options it cannot see: built elsewhere, `**kwargs`, ...)."""
    bound = _bind_call(forms.signature('__init__'), construction)
    if bound is None:
      return {'?'}
    slot = bound.get('options')
    if slot is None or _is_none(slot):
      return set()
    values = [slot.node]
    if isinstance(slot.node, ast.Name):
      values = [self.c.assigned.get(id(n)) for n in self.referents(slot.node)]
    out = set()
    for value in values:
      if not (isinstance(value, ast.Call)
              and self.called_name(value.func) == 'CheckpointManagerOptions'):
        return {'?'}
      for keyword in value.keywords:
        if keyword.arg is None or value.args:
          return {'?'}
        is_literal, literal = _literal(keyword.value)
        if not (is_literal and literal == _OPTION_DEFAULTS.get(keyword.arg, object())):
          out.add(keyword.arg)
    return out

  def is_manager(self, expr: ast.expr | None) -> bool:
    return bool(self.origins(expr))

  def _bind(self, target: ast.expr, origins: set[str], classes: set[int]) -> bool:
    """Records what `target` is bound to; whether that is news."""
    if isinstance(target, ast.Name):
      news = False
      known = self.managers[id(target)]
      if origins - known:
        known |= origins
        news = True
      if classes - self.instances[id(target)]:
        self.instances[id(target)] |= classes
        news = True
      return news
    if isinstance(target, ast.Attribute) and origins:
      news = False
      for cls in self.classes_of(target.value):
        known = self.attrs[cls].setdefault(target.attr, set())
        if origins - known:
          known |= origins
          news = True
      return news
    return False

  def _solve(self) -> None:
    c = self.c
    for cls, scope in c.classes:
      self.bases[id(cls)] = [b for base in cls.bases for b in self._local_classes(base, scope)]
    # Subclasses of CheckpointManager defined here: their instances are
    # managers, and so is `self` inside them.
    changed = True
    while changed:
      changed = False
      for cls, scope in c.classes:
        if id(cls) not in self.manager_classes and any(
            self.api(base, 'CheckpointManager', scope) for base in cls.bases):
          self.manager_classes.add(id(cls))
          changed = True
    for param_id, cls in c.class_of_self.items():
      if id(cls) in self.manager_classes:
        self.managers[param_id].add(SUBCLASS)
    for param, scope in c.params:
      manager, classes = self.annotation(param.annotation, scope)
      if manager:
        self.managers[id(param)].add(DECLARED)
      self.instances[id(param)] |= classes
    for fn, scope in c.functions:
      if fn.returns is not None:
        manager, classes = self.annotation(fn.returns, scope)
        if manager:
          self.declared_factories.add(id(fn))
        self.makers[id(fn)] |= classes
    # First what the code shows, then annotations where it shows nothing (an
    # annotation beside a construction adds no origin).
    for declared in (False, True):
      changed = True
      while changed:
        changed = self._step(declared)

  def _step(self, declared: bool) -> bool:
    c, changed = self.c, False
    if declared:
      for fn_id in self.declared_factories:
        if not self.factories[fn_id]:
          self.factories[fn_id].add(DECLARED)
          changed = True
    for targets, value, annotation, scope in c.sites:
      origins, classes = self.origins(value), self.classes_of(value)
      if annotation is not None:
        manager, more = self.annotation(annotation, scope)
        classes = classes | more
        if manager and declared and not origins:
          origins = {DECLARED}
      for t in targets:
        changed |= self._bind(t, origins, classes)
    for cls, name, value, annotation, scope in c.class_attrs:
      origins = self.origins(value)
      if not origins and declared and annotation is not None and self.annotation(
          annotation, scope)[0]:
        origins = {DECLARED}
      known = self.attrs[id(cls)].setdefault(name, set())
      if origins - known:
        known |= origins
        changed = True
    for fn, value in c.returns:
      origins = self.origins(value)
      if origins - self.factories[id(fn)]:
        self.factories[id(fn)] |= origins
        changed = True
      classes = self.classes_of(value)
      if classes - self.makers[id(fn)]:
        self.makers[id(fn)] |= classes
        changed = True
    for cls, _ in c.classes:  # Properties returning a manager are manager attributes.
      for name, method in c.methods.get(id(cls), {}).items():
        origins = self.factories.get(id(method), _NO_ORIGIN)
        if origins and any((_dotted(d) or '').endswith('property')
                           for d in method.decorator_list):
          known = self.attrs[id(cls)].setdefault(name, set())
          if origins - known:
            known |= origins
            changed = True
    return changed


_OPTION_DEFAULTS = {o.field: o.default for o in mapping_options.OPTIONS if not o.factory}


def capability_missing(name: str) -> str:
  """Why v1 code needing capability `name` does not run on the installed Orbax
  ('' where it does): its release, read from the installed package's metadata
  (a static tool imports no Orbax)."""
  if not name:
    return ''
  needs = mapping_members.CAPABILITIES[name]
  try:
    installed = importlib.metadata.version('orbax-checkpoint')
  except importlib.metadata.PackageNotFoundError:
    return ''

  def release(text):
    return tuple(int(p) for p in re.findall(r'\d+', text)[:3])

  if release(installed) >= release(needs.release):
    return ''
  return (f'{needs.what} needs orbax-checkpoint {needs.release}; the installed '
          f'{installed} has none: keep the v0 call until you upgrade')


def _plain_construction(call: ast.Call) -> bool:
  """A construction of one unnamed item: only directory, options, metadata."""
  bound = _bind_call(forms.signature('__init__'), call)
  return bound is not None and all(
      name in ('directory', 'options', 'metadata') or _is_none(slot)
      for name, slot in bound.items())


class _Text:
  """The source's lines, for positions in characters and code excerpts."""

  _LINES = re.compile(r'[^\r\n]*(?:\r\n|\r|\n|$)')

  def __init__(self, text: str):
    self.lines = [m for m in self._LINES.findall(text)]

  def col(self, line: int, byte_col: int) -> int:
    """ast's UTF-8 byte offset in `line` (1-based) as a character offset."""
    text = self.lines[line - 1] if 0 < line <= len(self.lines) else ''
    if text.isascii():
      return byte_col
    return len(text.encode('utf-8')[:byte_col].decode('utf-8', errors='replace'))

  def span(self, node: ast.AST, tag: str) -> Span:
    return (tag, node.lineno, self.col(node.lineno, node.col_offset),
            node.end_lineno, self.col(node.end_lineno, node.end_col_offset))

  def segment(self, node: ast.AST) -> str:
    _, line, col, end_line, end_col = self.span(node, '')
    if line == end_line:
      return self.lines[line - 1][col:end_col]
    parts = [self.lines[line - 1][col:], *self.lines[line:end_line - 1],
             self.lines[end_line - 1][:end_col]]
    return ''.join(parts)


def _first_line(code: str) -> str:
  code = code.strip()
  line = code.split('\n', 1)[0].rstrip('\r')
  return line + ' ...' if len(line) < len(code) else line


_TAGS = {ast.Call: 'Call', ast.Attribute: 'Attribute', ast.Import: 'Import',
         ast.ImportFrom: 'ImportFrom'}


class _FileScanner:
  """Findings of one parsed module."""

  def __init__(self, path: str, tree: ast.Module, text: str):
    self.path = path
    self.text = _Text(text)
    self.collector = _Collector(tree)
    self.members = _member_rows()
    self.options = _option_rows()
    self.findings: list[Finding] = []
    self.fixable_imports: set[int] = set()
    self.ordinals = self._ordinals()
    for node, statement in self.collector.imports:
      self._import(node, statement)
    self.analysis = _Analysis(self.collector, self.fixable_imports)

  def _ordinals(self) -> dict[int, tuple[str, int]]:
    """id(node) -> (type, index among the module's nodes of that type in source
    order, outer before inner): how `_attach` finds it in libcst's tree (whose
    pre-order is that order) without computing positions. Nodes inside
    f-strings have none (their positions are not reliable before Python 3.12)."""
    c = self.collector
    groups = {'Call': [n for n, _, _ in c.calls], 'Attribute': [n for n, _, _ in c.attributes],
              'Import': [n for n, _ in c.imports if isinstance(n, ast.Import)],
              'ImportFrom': [n for n, _ in c.imports if isinstance(n, ast.ImportFrom)]}
    out = {}
    for tag, nodes in groups.items():
      nodes = [n for n in nodes if id(n) not in c.in_fstring]
      nodes.sort(key=lambda n: (n.lineno, n.col_offset, -n.end_lineno, -n.end_col_offset))
      out.update((id(n), (tag, i)) for i, n in enumerate(nodes))
    return out

  def run(self) -> list[Finding]:
    for call, statement, scope in self.collector.calls:
      self._call(call, statement, scope)
    for attribute, statement, scope in self.collector.attributes:
      self._attribute(attribute, statement, scope)
    self.findings.sort(key=lambda f: (f.line, f.col, f.kind))
    return self.findings

  def _add(self, node: ast.AST, tag: str, **fields: Any) -> None:
    span = self.text.span(node, tag)
    fields.setdefault('ordinal', self.ordinals.get(id(node)))
    self.findings.append(Finding(
        path=self.path, line=span[1], col=span[2] + 1, end_line=span[3], end_col=span[4] + 1,
        code=_first_line(self.text.segment(node)), span=span, **fields))

  # Imports.
  def _import(self, node: ast.Import | ast.ImportFrom, statement: ast.stmt) -> None:
    if isinstance(node, ast.Import):
      for alias in node.names:
        module = alias.name
        if not _is_v0_module(module):
          continue
        if module == V0 and alias.asname is not None:
          self._add_import(node, module, f'import {SHIM} as {alias.asname}',
                           f'--fix swaps it: {SHIM} runs the v0 API on v1', True)
        elif module == V0:
          self._add_import(node, module, f'import {SHIM} as ocp',
                           f'left by --fix: code names {V0}.<name>; import the shim under '
                           'an alias and use alias.<name>', False)
        else:
          self._add_import(node, module, '(unchanged)', _SUBMODULE_NOTE, False)
      return
    if node.level or node.module is None:
      return
    module = node.module
    names = None if any(a.name == '*' for a in node.names) else [
        (a.name, a.asname) for a in node.names]
    if module == 'orbax':
      if names is None or not any(n == 'checkpoint' for n, _ in names):
        return
      if len(names) == 1:
        alias = names[0][1] or 'checkpoint'
        self._add_import(node, V0, f'import {SHIM} as {alias}',
                         f'--fix swaps it: {SHIM} runs the v0 API on v1', True)
      else:
        self._add_import(node, V0, f'import {SHIM} as ocp',
                         'left by --fix: it imports other orbax modules too; import '
                         'checkpoint on a line of its own', False)
      return
    if not _is_v0_module(module):
      return
    if names is not None and all(_is_v1_module(f'{module}.{n}') for n, _ in names):
      return  # e.g. `from orbax.checkpoint.experimental import v1`.
    if module != V0:
      self._add_import(node, module, '(unchanged)', _SUBMODULE_NOTE, False)
      return
    if names is None:
      self._add_import(node, module, '(unchanged)',
                       f'left by --fix: `from {SHIM} import *` gives only the shim\'s own '
                       'names; import the names you use', False)
      return
    bad = [n for n, _ in names if not _fixable_name(n)]
    shown = ', '.join(n + (f' as {a}' if a else '') for n, a in names)
    if bad:
      self._add_import(node, module, '(unchanged)',
                       f'left by --fix: {", ".join(bad)} not a public attribute of {V0} '
                       f'(a submodule?), which {SHIM} cannot re-export', False)
    else:
      self._add_import(node, module, f'from {SHIM} import {shown}',
                       f'--fix swaps it: {SHIM} runs the v0 API on v1', True)

  def _add_import(self, node, module, v1, note, fixable) -> None:
    if fixable:
      self.fixable_imports.add(id(node))
    self._add(node, _TAGS[type(node)], kind='import', member=module,
              v0=_first_line(self.text.segment(node)), v1=v1, note=note, status='',
              fixable=fixable)

  # Constructions and options.
  def _call(self, call: ast.Call, statement: ast.stmt, scope: _Scope) -> None:
    analysis = self.analysis
    if analysis.api(call.func, 'CheckpointManager') is not None:
      row = forms.BY_NAME['__init__']
      template = _template_of(row, call, analysis.called_name)
      self._add(call, 'Call', kind='init', member=row.name, v0=template.v0, v1=template.v1,
                note=template.note, status=row.status,
                form=template.form.v0 if template.form else '',
                reason='constructions stay: the v1 constructor for your options is '
                       'orbax_compat.v1_source(mngr)')
    elif analysis.api(call.func, 'CheckpointManagerOptions') is not None:
      fields = _option_fields()
      order = sorted([*call.args, *call.keywords], key=lambda a: (a.lineno, a.col_offset))
      call_ordinal = self.ordinals.get(id(call))

      def ordinal(arg):
        return ('Arg', call_ordinal[1], order.index(arg)) if call_ordinal else None

      for i, arg in enumerate(call.args):
        if isinstance(arg, ast.Starred):
          continue
        if i < len(fields):
          self._option(arg, fields[i], ordinal(arg))
      for keyword in call.keywords:
        if keyword.arg is None:
          self._add(keyword, 'Arg', kind='option', member='**',
                    v0='CheckpointManagerOptions(**...)', v1='(see the options table)',
                    note='fields passed with ** are not listed', status='',
                    ordinal=ordinal(keyword))
        else:
          self._option(keyword, keyword.arg, ordinal(keyword))

  def _option(self, node: ast.AST, field: str, ordinal: tuple | None) -> None:
    row = self.options.get(field)
    self._add(node, 'Arg', kind='option', member=field,
              v0=f'CheckpointManagerOptions({field}=...)',
              v1=_option_template_of(row) if row else '(not in the options table)',
              note=row.note if row else '', status='', ordinal=ordinal)

  # Members on managers.
  def _attribute(self, attribute: ast.Attribute, statement: ast.stmt, scope: _Scope) -> None:
    row = self.members.get(attribute.attr)
    if row is None:
      return
    origins = self.analysis.origins(attribute.value)
    if not origins:
      return
    call = self.collector.call_of_func.get(id(attribute))
    call = call if row.kind == 'method' else None
    node = call if call is not None else attribute
    template = _template_of(row, call, self.analysis.called_name)
    to_v1, reason, imports = self._plan_v1(row, template, node, attribute.value, statement,
                                           scope, origins)
    self._add(node, _TAGS[type(node)], kind=row.kind, member=row.name, v0=template.v0,
              v1=template.v1, note=template.note, status=row.status,
              receiver=self.text.segment(attribute.value).strip(),
              form=template.form.v0 if template.form else '',
              mechanical=template.form.mechanical if template.form else '',
              to_v1=to_v1, reason=reason, bindings=template.bindings, imports=imports)

  def _plan_v1(self, row: Member, template: _Template, node: ast.expr,
               receiver: ast.expr, statement: ast.stmt, scope: _Scope,
               origins: set[str]) -> tuple[bool, str, tuple[str, ...]]:
    """(whether --to-v1 rewrites this use, why not, the imports its v1 code needs).

    Only a call whose form the table marks mechanical, in the place the mark
    allows, on a manager this file builds with orbax_compat's own class (its
    subclasses may override members; a manager from elsewhere may be Orbax's
    own, without `v1_checkpointer`), and only if substituting the arguments
    into the v1 code evaluates each once, in the same order, in the same
    scope, with `jax`/`np`/`ocp_v1` meaning what the v1 code means.
    """
    form = template.form
    if form is None:
      return False, 'no form of the table matches this use statically', ()
    if isinstance(node, ast.Attribute) and not isinstance(node.ctx, ast.Load):
      return False, 'the attribute is assigned or deleted here, not read', ()
    if not form.mechanical:
      return False, 'the table has no mechanical rewrite for this form', ()
    missing = capability_missing(form.needs)
    if missing:
      return False, missing, ()
    info = _code_info(form.v1)
    if not info.expression:
      return False, 'the v1 code has several lines', ()
    if form.mechanical == 'statement' and not (
        isinstance(statement, ast.Expr) and statement.value is node):
      return False, 'the v1 code does the same only as a statement of its own; here the ' \
                    'value is used', ()
    options = {o[len(OPTION):] for o in origins if o.startswith(OPTION)}
    risky = sorted(set(form.unless) & options) or (['?'] if form.unless and '?' in options else [])
    if risky:
      shown = 'options this file does not show' if risky == ['?'] else ', '.join(risky)
      return False, f'the v1 code differs from v0 under {", ".join(form.unless)}; the ' \
                    f'manager may set {shown}', ()
    foreign = origins - {NEW, NEW_ITEMS} - {OPTION + o for o in options}
    if foreign:
      where = {NATIVE: 'built by Orbax\'s own CheckpointManager (no v1_checkpointer)',
               SUBCLASS: 'of a subclass defined here (it may override members)',
               DECLARED: 'known only by an annotation (its class is not visible here)'}
      return False, 'the manager may be ' + '; or '.join(where[o] for o in sorted(foreign)), ()
    if info.default_item and NEW_ITEMS in origins:
      return False, 'the v1 code reads the single item "default"; this manager is built ' \
                    'with items', ()
    if not template.exact:
      return False, 'the args call gives arguments the form leaves out', ()
    exprs = {'ckptr': receiver, **template.nodes}
    used = {o.name for o in info.occurrences}
    missing = sorted(used - set(exprs))
    if missing:
      return False, f'the v1 code needs {", ".join(missing)}, which the call does not give', ()
    if not all(_is_pure(e) for e in template.dropped):
      return False, 'an argument the v1 code drops is not a plain name or literal', ()
    impure = []
    for name, expr in exprs.items():
      occurrences = [o for o in info.occurrences if o.name == name]
      shown = _first_line(self.text.segment(expr))
      if not _is_pure(expr):
        if len(occurrences) != 1 or occurrences[0].guarded:
          return False, f'`{shown}` would be evaluated a different number of times', ()
        impure.append((expr, info.occurrences.index(occurrences[0])))
      names = {n.id for n in ast.walk(expr) if isinstance(n, ast.Name)}
      for o in occurrences:
        if names & o.around:
          return False, f'`{shown}` would see a name the v1 code binds', ()
        if o.scoped and scope.kind == 'class' and names:
          return False, 'the v1 code would evaluate an argument in its own scope inside a ' \
                        'class body', ()
    by_source = sorted(impure, key=lambda e: (e[0].lineno, e[0].col_offset))
    if [e for e, _ in by_source] != [e for e, _ in sorted(impure, key=lambda e: e[1])]:
      return False, 'the v1 code evaluates the arguments in another order', ()
    imports = []
    for name in sorted(info.free):
      bindings = scope.lookup(name)
      if not bindings:
        imports.append(name)
      elif not all(self.collector.imported.get(id(b), (None,))[0] == _V1_IMPORTS[name][0]
                   for b in bindings):
        return False, f'`{name}` names something else here than in the v1 code', ()
    return True, '', tuple(imports)


_SUBMODULE_NOTE = (
    f'left by --fix: a submodule of {V0}; {SHIM} re-exports only its top-level names '
    '(these objects are Orbax\'s own)'
)


# --------------------------------------------------------------------------
# Files


class _Unscannable(Exception):
  def __init__(self, message: str, line: int | None = None, col: int | None = None):
    super().__init__(message)
    self.message, self.line, self.col = message, line, col


def _check_binary(source: bytes) -> None:
  nul = source.find(b'\0')
  if nul >= 0:
    raise _Unscannable(f'binary file (NUL byte at offset {nul}), not Python source')


def parse(source: bytes) -> cst.Module:
  """Parses Python source with libcst; raises _Unscannable with a clear message."""
  _check_binary(source)
  try:
    return cst.parse_module(source)
  except cst.ParserSyntaxError as e:
    raise _Unscannable(f'syntax error: {e.message}', e.editor_line, e.editor_column) from None
  except (UnicodeDecodeError, LookupError, SyntaxError) as e:
    raise _Unscannable(f'cannot decode as Python source: {e}') from None
  except RecursionError:
    raise _Unscannable('too deeply nested to parse') from None


def _parse_ast(source: bytes) -> ast.Module:
  """Parses Python source with Python's own parser; raises _Unscannable."""
  _check_binary(source)
  try:
    return ast.parse(source)
  except SyntaxError as e:
    if isinstance(e.__context__, UnicodeDecodeError) or 'decod' in str(e.msg):
      raise _Unscannable(f'cannot decode as Python source: {e.msg}') from None
    raise _Unscannable(f'syntax error: {e.msg}', e.lineno, e.offset) from None
  except (ValueError, UnicodeDecodeError, LookupError) as e:
    raise _Unscannable(f'cannot decode as Python source: {e}') from None
  except (RecursionError, MemoryError):
    raise _Unscannable('too deeply nested to parse') from None


def _may_use_orbax(source: bytes, tree: ast.Module) -> bool:
  """Whether the module imports v0 Orbax or the shim.

  Every finding needs such an import, so a file without one has none."""
  if b'orbax' not in source:
    return False
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      if any(_is_v0_module(a.name) or _is_shim_module(a.name) for a in node.names):
        return True
    elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
      if _is_v0_module(node.module) or _is_shim_module(node.module) or (
          node.module == 'orbax' and any(a.name == 'checkpoint' for a in node.names)):
        return True
  return False


def _decode(source: bytes) -> str:
  """The source as text, decoded as Python does (PEP 263 cookie, BOM)."""
  try:
    encoding, _ = tokenize.detect_encoding(iter(source.splitlines(keepends=True)).__next__)
    return source.decode(encoding)
  except (SyntaxError, LookupError, UnicodeDecodeError) as e:
    raise _Unscannable(f'cannot decode as Python source: {e}') from None


def _analyse(source: bytes, path: str, tree: ast.Module | None = None) -> list[Finding]:
  """The findings of one file (no libcst nodes); raises _Unscannable."""
  tree = tree or _parse_ast(source)
  if not _may_use_orbax(source, tree):
    return []
  return _FileScanner(path, tree, _decode(source)).run()


def scan_source(source: bytes, path: str = '<string>') -> FileScan:
  """Scans one file's bytes, with its libcst tree and the findings' nodes in it
  (what a rewrite needs); raises _Unscannable if they are not Python."""
  findings = _analyse(source, path)
  module = parse(source)
  return FileScan(path, source, module, _attach(module, findings))


class _Locator(cst.CSTVisitor):
  """Finds nodes by position; notes each one's statement and parent."""

  METADATA_DEPENDENCIES = (cst_metadata.PositionProvider,)
  _TYPES = {cst.Call: 'Call', cst.Attribute: 'Attribute', cst.Import: 'Import',
            cst.ImportFrom: 'ImportFrom', cst.Arg: 'Arg'}

  def __init__(self, wanted: set[Span]):
    super().__init__()
    self.wanted = wanted
    self.found: dict[Span, tuple[cst.CSTNode, cst.CSTNode | None, cst.CSTNode | None]] = {}
    self._statements: list[cst.CSTNode] = []
    self._parents: list[cst.CSTNode] = []

  def on_visit(self, node: cst.CSTNode) -> bool:
    if isinstance(node, (cst.SimpleStatementLine, cst.BaseCompoundStatement)):
      self._statements.append(node)
    tag = self._TYPES.get(type(node))
    if tag is not None:
      where = self.get_metadata(cst_metadata.PositionProvider, node)
      key = (tag, where.start.line, where.start.column, where.end.line, where.end.column)
      if key in self.wanted and key not in self.found:
        self.found[key] = (node, self._anchor(), self._parents[-1] if self._parents else None)
    self._parents.append(node)
    return True

  def on_leave(self, original_node: cst.CSTNode) -> None:
    self._parents.pop()
    if isinstance(original_node, (cst.SimpleStatementLine, cst.BaseCompoundStatement)):
      self._statements.pop()

  def _anchor(self) -> cst.CSTNode | None:
    """The statement a comment goes above (an `elif`'s: its `if`)."""
    i = len(self._statements) - 1
    while i > 0 and isinstance(self._statements[i], cst.If) and isinstance(
        self._statements[i - 1], cst.If) and self._statements[i - 1].orelse is self._statements[i]:
      i -= 1
    return self._statements[i] if i >= 0 else None


def _locate_by_position(module: cst.Module, findings: list[Finding]) -> dict[int, tuple]:
  locator = _Locator({f.span for f in findings})
  cst_metadata.MetadataWrapper(module, unsafe_skip_copy=True).visit(locator)
  return {i: locator.found[f.span] for i, f in enumerate(findings) if f.span in locator.found}


class _OrdinalLocator(cst.CSTVisitor):
  """Finds nodes by `_FileScanner._ordinals`; notes each one's statement and parent."""

  def __init__(self, wanted: set[tuple]):
    super().__init__()
    self.wanted = wanted
    self.args: dict[int, list[tuple]] = collections.defaultdict(list)  # Call ordinal -> Args.
    for w in wanted:
      if w[0] == 'Arg':
        self.args[w[1]].append(w)
    self.found: dict[tuple, tuple[cst.CSTNode, cst.CSTNode | None, cst.CSTNode | None]] = {}
    self.counts = dict.fromkeys(('Call', 'Attribute', 'Import', 'ImportFrom'), 0)
    self._statements: list[cst.CSTNode] = []
    self._parents: list[cst.CSTNode] = []
    self._imports = 0

  _anchor = _Locator._anchor

  def on_visit(self, node: cst.CSTNode) -> bool:
    if isinstance(node, (cst.SimpleStatementLine, cst.BaseCompoundStatement)):
      self._statements.append(node)
    tag = _Locator._TYPES.get(type(node))
    if tag in self.counts and not (tag == 'Attribute' and self._imports):
      key = (tag, self.counts[tag])
      self.counts[tag] += 1
      if key in self.wanted:
        self.found[key] = (node, self._anchor(), self._parents[-1] if self._parents else None)
      for w in self.args.get(key[1], ()) if tag == 'Call' else ():
        if w[2] < len(node.args):
          self.found[w] = (node.args[w[2]], self._anchor(), node)
    if isinstance(node, (cst.Import, cst.ImportFrom)):
      self._imports += 1  # libcst's dotted module names are Attributes; ast's are not.
    self._parents.append(node)
    return not isinstance(node, cst.FormattedString)

  def on_leave(self, original_node: cst.CSTNode) -> None:
    self._parents.pop()
    if isinstance(original_node, (cst.Import, cst.ImportFrom)):
      self._imports -= 1
    if isinstance(original_node, (cst.SimpleStatementLine, cst.BaseCompoundStatement)):
      self._statements.pop()


def _bare_code(module: cst.Module, node: cst.CSTNode) -> str:
  """The node's code as `ast` spans it: without its parentheses, comma or semicolon."""
  changes = {}
  if isinstance(node, cst.BaseExpression) and node.lpar:
    changes.update(lpar=[], rpar=[])
  if isinstance(node, cst.Arg):
    changes.update(comma=cst.MaybeSentinel.DEFAULT)
  if isinstance(node, (cst.Import, cst.ImportFrom)):
    changes.update(semicolon=cst.MaybeSentinel.DEFAULT)
  return module.code_for_node(node.with_changes(**changes) if changes else node)


def _locate(module: cst.Module, findings: list[Finding]) -> dict[int, tuple] | None:
  """{index of finding: (node, statement, parent)} by ordinals, each checked
  against the finding's code; None if a finding has no ordinal or a check fails."""
  if any(f.ordinal is None for f in findings):
    return None
  locator = _OrdinalLocator({f.ordinal for f in findings})
  module.visit(locator)
  out = {}
  for i, f in enumerate(findings):
    found = locator.found.get(f.ordinal)
    if found is None or _first_line(_bare_code(module, found[0])) != f.code:
      return None
    out[i] = found
  return out


def _attach(module: cst.Module, findings: list[Finding]) -> list[Finding]:
  """The findings with their libcst nodes in `module`: located by ordinal (one
  walk of the tree), else by position (libcst's positions cost a code generation)."""
  if not findings:
    return findings
  located = _locate(module, findings)
  if located is None:
    located = _locate_by_position(module, findings)
  out = []
  for i, f in enumerate(findings):
    node, statement, parent = located.get(i, (None, None, None))
    call = None
    if f.kind == 'method' and isinstance(node, cst.Call):
      call = node
    elif f.kind == 'option':
      call = parent
    receiver = None
    if f.kind in ('method', 'property') and node is not None:
      attribute = node.func if isinstance(node, cst.Call) else node
      receiver = attribute.value if isinstance(attribute, cst.Attribute) else None
    out.append(dataclasses.replace(f, node=node, call=call, receiver_node=receiver,
                                   statement=statement, parent=parent))
  return out


def iter_files(paths: Iterable[str], errors: list[ScanError],
               include_skipped: bool = False) -> Iterator[str]:
  """The Python files under `paths` (files given explicitly are always included).

  Directories walk sorted; hidden directories, virtualenvs (a `pyvenv.cfg`
  inside, or named venv/.venv) and site-packages are skipped unless
  `include_skipped`.
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
      errors.append(ScanError(root, 'no such file or directory'))
      continue
    if not os.path.isdir(root):
      if once(root):
        yield root
      continue

    def onerror(e: OSError) -> None:
      errors.append(ScanError(e.filename or root, f'cannot list directory: {e.strerror or e}'))

    for dirpath, dirnames, filenames in os.walk(root, onerror=onerror):
      if not include_skipped:
        dirnames[:] = [d for d in dirnames if not _skipped(os.path.join(dirpath, d), d)]
      dirnames.sort()
      for name in sorted(filenames):
        path = os.path.join(dirpath, name)
        if name.endswith('.py') and once(path):
          yield path


def _skipped(path: str, name: str) -> bool:
  return (name.startswith('.') or name in _SKIP_DIRS
          or os.path.isfile(os.path.join(path, 'pyvenv.cfg')))


def read(path: str) -> bytes:
  try:
    with open(path, 'rb') as f:
      return f.read()
  except IsADirectoryError:
    raise _Unscannable('is a directory') from None
  except OSError as e:
    raise _Unscannable(f'cannot read: {e.strerror or e}') from None


# --------------------------------------------------------------------------
# Rewriting

# An edit replaces one node of FileScan.module: (original, updated) -> new node.
Edit = Callable[[cst.CSTNode, cst.CSTNode], cst.CSTNode]


class _Rewriter(cst.CSTTransformer):
  """Applies edits keyed by the identity of the original nodes."""

  def __init__(self, edits: dict[int, Edit]):
    super().__init__()
    self.edits = edits

  def on_leave(self, original_node, updated_node):
    updated = super().on_leave(original_node, updated_node)
    edit = self.edits.get(id(original_node))
    return edit(original_node, updated) if edit is not None else updated


def _import_edit(finding: Finding) -> Edit:
  """The one-import swap for a fixable import finding."""
  shim = cst.Name(SHIM)

  def edit(original: cst.CSTNode, updated: cst.CSTNode) -> cst.CSTNode:
    if isinstance(updated, cst.Import):
      names = [a.with_changes(name=shim)
               if _cst_dotted(a.name) == V0 and a.asname is not None else a
               for a in updated.names]
      return updated.with_changes(names=names)
    assert isinstance(updated, cst.ImportFrom)
    if _cst_dotted(updated.module) == V0:
      return updated.with_changes(module=shim)
    # from orbax import checkpoint [as X]  ->  import orbax_compat as X
    (alias,) = updated.names
    asname = alias.asname or cst.AsName(name=cst.Name('checkpoint'))
    return cst.Import(names=[cst.ImportAlias(name=shim, asname=asname, comma=alias.comma)],
                      semicolon=updated.semicolon,
                      whitespace_after_import=updated.whitespace_after_import)

  return edit


def _cst_dotted(node: cst.CSTNode | None) -> str | None:
  if isinstance(node, cst.Name):
    return node.value
  if isinstance(node, cst.Attribute):
    base = _cst_dotted(node.value)
    return f'{base}.{node.attr.value}' if base else None
  return None


# Nodes that never need parentheses as an operand.
_ATOMS = (cst.Name, cst.Attribute, cst.Call, cst.Subscript, cst.SimpleString, cst.Integer,
          cst.Float, cst.Imaginary, cst.List, cst.Dict, cst.Set, cst.ListComp, cst.SetComp,
          cst.DictComp, cst.GeneratorExp, cst.FormattedString, cst.Ellipsis)


def _needs_parens(expr: cst.BaseExpression, parent: cst.CSTNode | None,
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


def _parenthesized(expr: cst.BaseExpression) -> cst.BaseExpression:
  return expr.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])


class _Substitute(cst.CSTTransformer):
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
    if not isinstance(original_node, cst.Name) or original_node.value not in self.values:
      return updated_node
    if isinstance(parent, cst.Attribute) and parent.attr is original_node:
      return updated_node
    if isinstance(parent, cst.Arg) and parent.keyword is original_node:
      return updated_node
    value = self.values[original_node.value]
    if original_node.value in self.used:
      value = value.deep_clone()
    self.used.add(original_node.value)
    return _parenthesized(value) if _needs_parens(value, parent, original_node) else value


@functools.cache
def _v1_expression(code: str) -> cst.BaseExpression:
  return cst.parse_expression(code.strip())


def _follow(call: cst.Call, path: tuple[tuple[str, Any], ...]) -> cst.BaseExpression:
  """The argument at `path` (see `_Template.bindings`) of a libcst call."""
  node: cst.BaseExpression = call
  for kind, key in path:
    assert isinstance(node, cst.Call), node
    if kind == 'pos':
      node = [a for a in node.args if a.keyword is None and not a.star][key].value
    else:
      node = next(a.value for a in node.args if a.keyword is not None and a.keyword.value == key)
  return node


def _v1_edit(finding: Finding) -> Edit:
  """The v1 code of the finding's form, its placeholders bound to the call's
  arguments and `ckptr` to `<receiver>.v1_checkpointer`."""

  def edit(original: cst.CSTNode, updated: cst.CSTNode) -> cst.CSTNode:
    attribute = updated.func if isinstance(updated, cst.Call) else updated
    values = {'ckptr': cst.Attribute(value=attribute.value, attr=cst.Name(V1_CHECKPOINTER))}
    for name, path in finding.bindings:
      values[name] = _follow(updated, path)
    new = _v1_expression(finding.v1).visit(_Substitute(values))
    if isinstance(finding.parent, cst.Expr):
      new = _discarded(new)
    if updated.lpar:
      return new.with_changes(lpar=updated.lpar, rpar=updated.rpar)
    return _parenthesized(new) if _needs_parens(new, finding.parent, original) else new

  return edit


def _discarded(expr: cst.BaseExpression) -> cst.BaseExpression:
  """What an expression statement of `expr` must still evaluate: an identity
  test (`E is not None`) has no effect of its own, so the statement is `E`."""
  while (isinstance(expr, cst.Comparison) and not expr.lpar
         and all(isinstance(t.operator, (cst.Is, cst.IsNot)) for t in expr.comparisons)
         and all(isinstance(t.comparator, cst.Name) for t in expr.comparisons)):
    expr = expr.left
  return expr


class _Comments(cst.CSTVisitor):
  def __init__(self):
    super().__init__()
    self.comments: list[cst.Comment] = []

  def visit_Comment(self, node: cst.Comment) -> None:
    self.comments.append(node)


def _comments(node: cst.CSTNode) -> list[cst.Comment]:
  visitor = _Comments()
  node.visit(visitor)
  return visitor.comments


def _dropped_comments(finding: Finding) -> list[str]:
  """Comments of a rewritten call outside what the rewrite keeps (the receiver and
  the arguments): they move above the statement."""
  kept = [finding.receiver_node] if finding.receiver_node is not None else []
  if isinstance(finding.node, cst.Call):
    kept += [_follow(finding.node, path) for _, path in finding.bindings]
  keep = {id(c) for node in kept for c in _comments(node)}
  return [c.value for c in _comments(finding.node) if id(c) not in keep]


def _lines_edit(comments: list[str]) -> Edit:
  def edit(original: cst.CSTNode, updated: cst.CSTNode) -> cst.CSTNode:
    lines = [cst.EmptyLine(comment=cst.Comment(c)) for c in comments]
    return updated.with_changes(leading_lines=[*updated.leading_lines, *lines])
  return edit


def _imports_edit(names: Iterable[str]) -> Edit:
  """Adds imports after the module's docstring and leading imports."""
  statements = [cst.parse_statement(_V1_IMPORTS[n][1] + '\n') for n in sorted(names)]

  def edit(original: cst.CSTNode, updated: cst.CSTNode) -> cst.CSTNode:
    body = list(updated.body)
    i = 0
    if body and isinstance(body[0], cst.SimpleStatementLine) and isinstance(
        body[0].body[0], cst.Expr) and isinstance(
            body[0].body[0].value, (cst.SimpleString, cst.ConcatenatedString)):
      i = 1
    while i < len(body) and isinstance(body[i], cst.SimpleStatementLine) and all(
        isinstance(s, (cst.Import, cst.ImportFrom)) for s in body[i].body):
      i += 1
    return updated.with_changes(body=[*body[:i], *statements, *body[i:]])

  return edit


@dataclasses.dataclass
class _Plan:
  edits: dict[int, Edit] = dataclasses.field(default_factory=dict)
  swapped: int = 0
  rewritten: int = 0
  todos: int = 0


def _plan(scan: FileScan, *, fix_imports: bool = True, to_v1: bool = False) -> _Plan:
  plan = _Plan()
  comments: dict[int, tuple[cst.CSTNode, list[str]]] = {}

  def comment(statement: cst.CSTNode, text: str) -> None:
    existing = {ln.comment.value for ln in statement.leading_lines if ln.comment}
    if scan.module.body and statement is scan.module.body[0]:
      existing |= {ln.comment.value for ln in scan.module.header if ln.comment}
    _, texts = comments.setdefault(id(statement), (statement, []))
    if text not in existing and text not in texts:
      texts.append(text)

  needed: set[str] = set()
  for f in scan.findings:
    if f.node is None:
      continue
    if fix_imports and f.kind == 'import' and f.fixable:
      plan.edits[id(f.node)] = _import_edit(f)
      plan.swapped += 1
    elif to_v1 and f.kind in _MANAGER_KINDS and f.statement is not None:
      if f.to_v1:
        plan.edits[id(f.node)] = _v1_edit(f)
        plan.rewritten += 1
        needed.update(f.imports)
        for text in _dropped_comments(f):
          comment(f.statement, text)
      else:
        comment(f.statement, _encodable(f.todo, scan.module.encoding))
  for statement, texts in comments.values():
    if texts:
      plan.edits[id(statement)] = _lines_edit(texts)
      plan.todos += sum(t.startswith(f'# {TODO}') for t in texts)
  if needed:
    plan.edits[id(scan.module)] = _imports_edit(needed)
  return plan


def _encodable(text: str, encoding: str) -> str:
  try:
    text.encode(encoding)
    return text
  except UnicodeEncodeError:
    return text.replace('\N{EM DASH}', '--').encode(encoding, 'replace').decode(encoding)


def plan_edits(scan: FileScan, *, fix_imports: bool = True, to_v1: bool = False
               ) -> dict[int, Edit]:
  """The edits for one file: the import swap, and with `to_v1` each mechanical
  call rewritten to v1 and a `# TODO(orbax-v1)` comment above the others."""
  return _plan(scan, fix_imports=fix_imports, to_v1=to_v1).edits


def rewrite(scan: FileScan, edits: dict[int, Edit]) -> bytes:
  """The file's new bytes (same encoding and newlines; comments kept)."""
  if not edits:
    return scan.source
  return scan.module.visit(_Rewriter(edits)).bytes


def write_atomic(path: str, data: bytes) -> None:
  """Replaces `path`'s contents: a temp file in the same directory, then rename.

  Keeps the file's permission bits; follows a symlink to its target. Nothing
  partial is ever visible at `path`; the temp file is removed on failure.
  """
  target = os.path.realpath(path)
  mode = os.stat(target).st_mode & 0o7777
  fd, tmp = tempfile.mkstemp(dir=os.path.dirname(target),
                             prefix=f'.{os.path.basename(target)}.', suffix='.tmp')
  try:
    with os.fdopen(fd, 'wb') as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())
    os.chmod(tmp, mode)
    os.replace(tmp, target)
  except BaseException:
    try:
      os.unlink(tmp)
    except OSError:
      pass
    raise


# --------------------------------------------------------------------------
# The command


@dataclasses.dataclass
class Result:
  findings: list[Finding] = dataclasses.field(default_factory=list)
  errors: list[ScanError] = dataclasses.field(default_factory=list)
  changes: list[dict[str, Any]] = dataclasses.field(default_factory=list)
  files_scanned: int = 0

  @property
  def remaining(self) -> list[Finding]:
    return [f for f in self.findings if not f.fixed]

  def summary(self) -> dict[str, Any]:
    by_member = collections.Counter(f.label for f in self.findings)
    by_file = collections.Counter(f.path for f in self.findings)
    return {
        'findings': len(self.findings),
        'remaining': len(self.remaining),
        'files_scanned': self.files_scanned,
        'files_with_findings': len(by_file),
        'errors': len(self.errors),
        'files_changed': len(self.changes),
        'by_member': dict(sorted(by_member.items(), key=lambda kv: (-kv[1], kv[0]))),
        'by_file': dict(by_file),
    }

  def to_json(self) -> dict[str, Any]:
    return {
        'schema': SCHEMA,
        'findings': [f.to_json() for f in self.findings],
        'summary': self.summary(),
        'errors': [dataclasses.asdict(e) for e in self.errors],
        'changes': self.changes,
    }

  @property
  def exit_code(self) -> int:
    if self.files_scanned == 0 and self.errors:
      return 2
    return 1 if self.remaining else 0


def run(paths: Iterable[str], *, fix: bool = False, diff: bool = False, to_v1: bool = False,
        include_skipped: bool = False, jobs: int = 1) -> Result:
  """Scans `paths`; with `fix` writes the import swap, with `to_v1` the swap and
  the v1 rewrites and TODO comments (with `diff`, only diffs either).

  Each file is parsed once with Python's own parser (which checks it is Python);
  only files that import orbax or orbax_compat are analysed, and only those a
  rewrite changes are parsed again with libcst. Files are processed in `jobs`
  processes when there are enough of them.
  """
  result = Result()
  paths = list(iter_files(paths, result.errors, include_skipped))
  task = functools.partial(_process, write=(fix or to_v1) and not diff,
                           rewrite=fix or diff or to_v1, to_v1=to_v1)
  for outcome in _map(task, paths, jobs):
    result.findings.extend(outcome.findings)
    result.errors.extend(outcome.errors)
    result.changes.extend(outcome.changes)
    result.files_scanned += outcome.scanned
  result.errors.sort(key=lambda e: e.path)
  return result


_PARALLEL_MIN_FILES = 16


def _map(task: Callable[[str], _Outcome], work: list[str], jobs: int) -> Iterable[_Outcome]:
  """`task` over `work`, in order; in `jobs` forked processes if worth it."""
  jobs = min(jobs, len(work) // (_PARALLEL_MIN_FILES // 2))
  if jobs <= 1 or 'fork' not in multiprocessing.get_all_start_methods():
    return map(task, work)
  # fork: the workers start with orbax_compat already imported (spawn would
  # import Orbax again in each).
  pool = concurrent.futures.ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context('fork'))
  with pool:
    return list(pool.map(task, work, chunksize=max(1, min(32, len(work) // (4 * jobs)))))


@dataclasses.dataclass
class _Outcome:
  """One file's results, as plain data (no libcst nodes: it crosses processes)."""

  findings: list[Finding] = dataclasses.field(default_factory=list)
  errors: list[ScanError] = dataclasses.field(default_factory=list)
  changes: list[dict[str, Any]] = dataclasses.field(default_factory=list)
  scanned: int = 0


def _process(path: str, *, write: bool, rewrite: bool, to_v1: bool) -> _Outcome:
  outcome = _Outcome()
  try:
    source = read(path)
    findings = _analyse(source, path)
  except _Unscannable as e:
    outcome.errors.append(ScanError(path, e.message, e.line, e.col))
    return outcome
  outcome.scanned = 1
  if rewrite and any(f.fixable or (to_v1 and f.kind in _MANAGER_KINDS) for f in findings):
    try:
      module = parse(source)
    except _Unscannable as e:  # Python parses it; libcst does not.
      outcome.errors.append(ScanError(path, f'not rewritten: libcst cannot parse it: {e.message}',
                                      e.line, e.col))
    else:
      scan = FileScan(path, source, module, _attach(module, findings))
      findings = _fix(scan, outcome, write=write, to_v1=to_v1)
  outcome.findings = [f.detached() for f in findings]
  return outcome


def _fix(scan: FileScan, outcome: _Outcome, write: bool, to_v1: bool = False) -> list[Finding]:
  plan = _plan(scan, to_v1=to_v1)
  edits = plan.edits
  new = rewrite(scan, edits)
  if new == scan.source:
    return scan.findings
  try:
    _parse_ast(new)  # Never write what Python cannot parse.
  except _Unscannable as e:
    outcome.errors.append(
        ScanError(scan.path, f'not rewritten, the rewrite would not parse: {e.message}'))
    return scan.findings
  encoding = scan.module.encoding
  text = difflib.unified_diff(
      scan.source.decode(encoding).splitlines(keepends=True),
      new.decode(encoding).splitlines(keepends=True),
      fromfile=f'a/{scan.path}', tofile=f'b/{scan.path}')
  change = {'path': scan.path, 'edits': len(edits), 'swapped': plan.swapped,
            'rewritten': plan.rewritten, 'todos': plan.todos, 'written': False,
            'diff': ''.join(text)}
  if write:
    try:
      write_atomic(scan.path, new)
    except OSError as e:
      outcome.errors.append(ScanError(scan.path, f'not rewritten: {e.strerror or e}'))
      return scan.findings
    change['written'] = True
  outcome.changes.append(change)
  if not write:
    return scan.findings
  return [dataclasses.replace(f, fixed=True)
          if (f.fixable or (to_v1 and f.to_v1)) and id(f.node) in edits else f
          for f in scan.findings]


def render_text(result: Result, diff: bool) -> str:
  lines = []
  if diff:
    lines.extend(c['diff'].rstrip('\n') for c in result.changes)
  lines.extend(f.text() for f in result.findings)
  summary = result.summary()
  if result.findings:
    lines.append('')
    lines.append(f'{summary["findings"]} v0 uses in {summary["files_with_findings"]} files '
                 f'({summary["files_scanned"]} scanned)')
    lines.append('by member:')
    lines.extend(f'  {k:<40} {v}' for k, v in summary['by_member'].items())
    lines.append('by file:')
    lines.extend(f'  {k:<40} {v}' for k, v in summary['by_file'].items())
  else:
    lines.append(f'no v0 uses found ({summary["files_scanned"]} files scanned)')
  for c in result.changes:
    verb = 'fixed' if c['written'] else 'would fix'
    line = f'{verb} {c["path"]}: {c["swapped"]} import(s) swapped to {SHIM}'
    if c['rewritten'] or c['todos']:
      line += (f', {c["rewritten"]} use(s) rewritten to v1, {c["todos"]} '
               f'# {TODO} comment(s)')
    lines.append(line)
  return '\n'.join(lines) + '\n'


def _positive(text: str) -> int:
  try:
    value = int(text)
  except ValueError:
    value = 0
  if value < 1:
    raise argparse.ArgumentTypeError(f'expected a positive integer, got {text!r}')
  return value


def main(argv: list[str] | None = None, prog: str = 'orbax-compat scan') -> int:
  parser = argparse.ArgumentParser(
      prog=prog, description='Find Orbax v0 CheckpointManager usage (never imports or runs '
      'the code); optionally swap `orbax.checkpoint` imports to orbax_compat, and rewrite '
      'the calls the table marks mechanical into v1.',
      epilog='Exit status: 0 nothing found, 1 v0 uses remain, 2 usage error or nothing '
      'could be scanned. Columns are 1-based.')
  parser.add_argument('paths', nargs='+', metavar='PATH', help='files or directories to scan')
  parser.add_argument('--fix', action='store_true',
                      help='rewrite `import orbax.checkpoint as X` / `from orbax.checkpoint '
                      'import A` to orbax_compat (only the import; atomic writes)')
  parser.add_argument('--to-v1', action='store_true',
                      help='the --fix swap, and rewrite each call whose table form is '
                      'mechanical into v1 code on `<manager>.v1_checkpointer`; a '
                      f'`# {TODO}` comment above every other manager call')
  parser.add_argument('--diff', action='store_true',
                      help='print the --fix / --to-v1 changes as a unified diff; write nothing')
  parser.add_argument('--format', choices=('text', 'json'), default='text',
                      help='output format (json: see the schema in orbax_compat/scan.py)')
  parser.add_argument('--include-skipped', action='store_true',
                      help='also walk hidden directories, virtualenvs and site-packages')
  parser.add_argument('--jobs', '-j', type=_positive, default=os.cpu_count() or 1,
                      help='processes for large scans (default: the number of CPUs)')
  ns = parser.parse_args(argv)
  result = run(ns.paths, fix=ns.fix, diff=ns.diff, to_v1=ns.to_v1,
               include_skipped=ns.include_skipped, jobs=ns.jobs)
  if ns.format == 'json':
    sys.stdout.write(json.dumps(result.to_json(), indent=1) + '\n')
  else:
    sys.stdout.write(render_text(result, ns.diff))
    for e in result.errors:
      print(e.text(), file=sys.stderr)
  return result.exit_code


if __name__ == '__main__':
  sys.exit(main())
