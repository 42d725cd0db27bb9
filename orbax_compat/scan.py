"""`orbax-compat scan PATH... [--fix] [--diff] [--format json]`: find v0 usage.

Parses Python files with libcst; never imports or runs them. It finds, driven
by the mapping table (`table.ROWS`, `option_map.OPTION_ROWS`):

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

`--fix` does exactly the one-import swap to orbax_compat, where it stays
correct; `--diff` prints it instead of writing. Writes are atomic.

Columns are 1-based. The JSON output (`--format json`) is:

    {"schema": "orbax_compat.scan/1",
     "findings": [{"path", "line", "col", "end_line", "end_col", "kind",
                   "member", "label", "v0", "v1", "note", "status", "code",
                   "receiver", "fixable", "fixed"}, ...],
     "summary": {"findings", "remaining", "files_scanned", "files_with_findings",
                 "errors", "files_changed", "by_member": {label: n},
                 "by_file": {path: n}},
     "errors": [{"path", "line", "col", "message"}, ...],
     "changes": [{"path", "edits", "written", "diff"}, ...]}

`kind` is import | init | option | method | property; `member` is the table's
key (`__init__`, `save`, an option field, or the imported module); `label` is
what the text output shows; for imports `v1` is the import to write. `line`
and `col` of an error are null unless it is a syntax error.

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
import json
import multiprocessing
import os
import sys
import tempfile
from typing import Any

import libcst as cst
from libcst import metadata as cst_metadata
from libcst.helpers import get_full_name_for_node

from orbax_compat import option_map
from orbax_compat import table

SCHEMA = 'orbax_compat.scan/1'
SHIM = 'orbax_compat'
V0 = 'orbax.checkpoint'
_EXPERIMENTAL = 'orbax.checkpoint.experimental'
_V1_MODULES = ('orbax.checkpoint.v1', _EXPERIMENTAL + '.v1')
_SKIP_DIRS = frozenset({'site-packages', 'venv', '.venv', '__pycache__'})
_TYPING_WRAPPERS = frozenset({'Optional', 'Union', 'Annotated', 'Final', 'ClassVar'})


# The table, read in one place each: `--to-v1` will switch these to the
# executable templates.
def _template_of(row: table.Row) -> str:
  return row.v1


def _option_template_of(row: option_map.OptionRow) -> str:
  return row.v1


@functools.cache
def _member_rows() -> dict[str, table.Row]:
  return {r.member: r for r in table.ROWS if r.kind in ('method', 'property')}


@functools.cache
def _option_rows() -> dict[str, option_map.OptionRow]:
  return {r.field: r for r in option_map.OPTION_ROWS}


@functools.cache
def _option_fields() -> tuple[str, ...]:
  """CheckpointManagerOptions' fields in order, for positional arguments."""
  return tuple(f.name for f in dataclasses.fields(option_map.CheckpointManagerOptions))


@dataclasses.dataclass(frozen=True)
class Finding:
  """One v0 use in one file.

  `node` is the node of the use inside `FileScan.module` (the `Call` for a
  construction or method call, the `Attribute` for a property or an uncalled
  method, the `Arg` for an option field, the `Import`/`ImportFrom` for an
  import); `call` the enclosing call (for options, the `CheckpointManagerOptions`
  call); `receiver` the manager expression a member is used on; `statement`
  the statement that contains the use (where a `# TODO` comment would go).
  A rewrite finds each use by the identity of these nodes.
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
  fixable: bool = False  # --fix rewrites it (imports).
  fixed: bool = False  # This run rewrote it.
  node: cst.CSTNode | None = dataclasses.field(default=None, compare=False, repr=False)
  call: cst.Call | None = dataclasses.field(default=None, compare=False, repr=False)
  receiver_node: cst.BaseExpression | None = dataclasses.field(
      default=None, compare=False, repr=False)
  statement: cst.CSTNode | None = dataclasses.field(default=None, compare=False, repr=False)

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
  def row(self) -> table.Row | None:
    """The table row of a construction or member use."""
    return table.BY_MEMBER.get(self.member) if self.kind in ('init', 'method', 'property') else None

  def detached(self) -> Finding:
    """A copy without the tree's nodes (plain data)."""
    return dataclasses.replace(self, node=None, call=None, receiver_node=None, statement=None)

  def to_json(self) -> dict[str, Any]:
    out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.compare}
    out['label'] = self.label
    return out

  def text(self) -> str:
    note = f'  ({self.note})' if self.note else ''
    fixed = '  [fixed]' if self.fixed else ''
    return f'{self.path}:{self.line}:{self.col}: {self.label}: {self.v1}{note}{fixed}'


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
  """One parsed file: its tree (findings point into it) and its findings."""

  path: str
  source: bytes
  module: cst.Module
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


# --------------------------------------------------------------------------
# Analysis of one module


class _Collector(cst.CSTVisitor):
  """One pass over the tree: imports, calls, attribute uses and binding sites."""

  def __init__(self):
    super().__init__()
    self.imports: list[tuple[cst.CSTNode, cst.CSTNode]] = []  # (node, statement)
    self.calls: list[tuple[cst.Call, cst.CSTNode]] = []
    self.attributes: list[tuple[cst.Attribute, cst.CSTNode]] = []
    self.call_of_func: dict[int, cst.Call] = {}
    self.super_calls: dict[int, int] = {}  # id(`super()` call) -> id(enclosing class).
    # Binding sites: (targets, value, annotation).
    self.sites: list[tuple[list[cst.BaseExpression], cst.BaseExpression | None,
                           cst.BaseExpression | None]] = []
    self.params: list[cst.Param] = []  # Annotated parameters.
    self.returns: list[tuple[cst.FunctionDef, cst.BaseExpression]] = []
    self.functions: list[cst.FunctionDef] = []
    self.classes: list[cst.ClassDef] = []
    self.class_of_self: dict[int, cst.ClassDef] = {}  # id(Param) -> class.
    self.methods: dict[int, dict[str, cst.FunctionDef]] = collections.defaultdict(dict)
    self.class_attrs: list[tuple[cst.ClassDef, str, cst.BaseExpression | None,
                                 cst.BaseExpression | None]] = []
    self._statements: list[cst.CSTNode] = []
    self._defs: list[cst.CSTNode] = []  # Enclosing ClassDef / FunctionDef.

  # Statements (for findings' `statement`).
  def on_visit(self, node: cst.CSTNode) -> bool:
    if isinstance(node, (cst.SimpleStatementLine, cst.BaseCompoundStatement)):
      self._statements.append(node)
    return super().on_visit(node)

  def on_leave(self, original_node: cst.CSTNode) -> None:
    super().on_leave(original_node)
    if isinstance(original_node, (cst.SimpleStatementLine, cst.BaseCompoundStatement)):
      self._statements.pop()

  @property
  def statement(self) -> cst.CSTNode:
    return self._statements[-1]

  def visit_Import(self, node: cst.Import) -> None:
    self.imports.append((node, self.statement))

  def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
    self.imports.append((node, self.statement))

  def visit_Call(self, node: cst.Call) -> None:
    self.calls.append((node, self.statement))
    self.call_of_func[id(node.func)] = node
    if isinstance(node.func, cst.Name) and node.func.value == 'super':
      owner = next((d for d in reversed(self._defs) if isinstance(d, cst.ClassDef)), None)
      if owner is not None:
        self.super_calls[id(node)] = id(owner)

  def visit_Attribute(self, node: cst.Attribute) -> None:
    self.attributes.append((node, self.statement))

  def visit_ClassDef(self, node: cst.ClassDef) -> None:
    self.classes.append(node)
    self._defs.append(node)

  def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
    self._defs.pop()

  def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
    self.functions.append(node)
    owner = self._defs[-1] if self._defs else None
    if isinstance(owner, cst.ClassDef):
      self.methods[id(owner)][node.name.value] = node
      params = [*node.params.posonly_params, *node.params.params]
      decorators = {get_full_name_for_node(d.decorator) for d in node.decorators}
      if params and not decorators & {'staticmethod', 'classmethod'}:
        self.class_of_self[id(params[0])] = owner
    self._defs.append(node)

  def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
    self._defs.pop()

  def visit_Param(self, node: cst.Param) -> None:
    if node.annotation is not None:
      self.params.append(node)

  def visit_Return(self, node: cst.Return) -> None:
    owner = self._defs[-1] if self._defs else None
    if isinstance(owner, cst.FunctionDef) and node.value is not None:
      self.returns.append((owner, node.value))

  def _in_class_body(self) -> cst.ClassDef | None:
    owner = self._defs[-1] if self._defs else None
    return owner if isinstance(owner, cst.ClassDef) else None

  def visit_Assign(self, node: cst.Assign) -> None:
    targets = [t.target for t in node.targets]
    owner = self._in_class_body()
    if owner is not None:
      for t in targets:
        if isinstance(t, cst.Name):
          self.class_attrs.append((owner, t.value, node.value, None))
    self.sites.append((targets, node.value, None))

  def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
    owner = self._in_class_body()
    if owner is not None and isinstance(node.target, cst.Name):
      self.class_attrs.append((owner, node.target.value, node.value, node.annotation.annotation))
    self.sites.append(([node.target], node.value, node.annotation.annotation))

  def visit_NamedExpr(self, node: cst.NamedExpr) -> None:
    self.sites.append(([node.target], node.value, None))

  def visit_WithItem(self, node: cst.WithItem) -> None:
    if node.asname is not None:
      self.sites.append(([node.asname.name], node.item, None))


class _Analysis:
  """Which expressions of one module are v0 managers (flow-insensitive, may-alias).

  Names resolve through libcst's ScopeProvider (each use to the assignments
  that may reach it). On top of it, a fixed point over the binding sites
  tracks: names and parameters bound to a manager; names bound to instances of
  classes defined in the module (`self` included); the attributes of those
  classes that hold a manager (set anywhere in the class, declared in its body,
  or a property returning one); functions and methods returning a manager or
  an instance.
  """

  def __init__(self, wrapper: cst_metadata.MetadataWrapper, collector: _Collector):
    self.c = collector
    self.scopes = wrapper.resolve(cst_metadata.ScopeProvider)
    self.managers: set[int] = set()  # id() of Name / Param nodes bound to a manager.
    self.instances: dict[int, set[int]] = collections.defaultdict(set)  # Binding -> classes.
    self.attrs: dict[int, set[str]] = collections.defaultdict(set)  # Class -> manager attributes.
    self.factories: set[int] = set()  # id() of FunctionDefs returning a manager.
    self.makers: dict[int, set[int]] = collections.defaultdict(set)  # Function -> classes.
    self.manager_classes: set[int] = set()  # Subclasses of CheckpointManager here.
    self.bases: dict[int, list[cst.ClassDef]] = {}
    self._solve()

  # Names and what they refer to.
  def _referents(self, name: cst.Name, near: cst.CSTNode | None = None) -> list[cst.CSTNode]:
    """The nodes (Name, Param, FunctionDef, ClassDef, Import...) that may bind `name`."""
    scope = self.scopes.get(name)
    if scope is not None:
      accesses = [a for a in scope.accesses[name.value] if a.node is name]
      if accesses:
        return [r.node for a in accesses for r in a.referents
                if isinstance(r, cst_metadata.Assignment)]
    else:  # A name parsed from a string annotation: not in the tree.
      scope = self.scopes.get(near) if near is not None else None
      if scope is None:
        return []
    return [a.node for a in scope[name.value] if isinstance(a, cst_metadata.Assignment)]

  def _qnames(self, expr: cst.BaseExpression, near: cst.CSTNode) -> set[str]:
    dotted = get_full_name_for_node(expr)
    scope = self.scopes.get(expr) or self.scopes.get(near)
    if dotted is None or scope is None:
      return set()
    return {q.name for q in scope.get_qualified_names_for(dotted)}

  def _local_classes(self, expr: cst.BaseExpression, near: cst.CSTNode | None = None
                     ) -> list[cst.ClassDef]:
    if isinstance(expr, cst.Name):
      return [n for n in self._referents(expr, near) if isinstance(n, cst.ClassDef)]
    return []

  def is_api(self, expr: cst.BaseExpression, leaf: str, near: cst.CSTNode | None = None) -> bool:
    """`expr` names v0's (or the shim's) `leaf`, e.g. `ocp.CheckpointManager`."""
    if not isinstance(expr, (cst.Name, cst.Attribute)):
      return False
    if leaf == 'CheckpointManager' and any(
        id(c) in self.manager_classes for c in self._local_classes(expr, near)):
      return True
    return any(_is_api_qname(q, leaf) for q in self._qnames(expr, near or expr))

  def annotation(self, annotation: cst.BaseExpression, near: cst.CSTNode
                 ) -> tuple[bool, set[int]]:
    """(says CheckpointManager, the local classes it names), through Optional,
    Union, `X | None` and quotes."""
    expr = annotation
    if isinstance(expr, (cst.SimpleString, cst.ConcatenatedString)):
      text = expr.evaluated_value
      if not isinstance(text, str):
        return False, set()
      try:
        expr = cst.parse_expression(text.strip())
      except cst.ParserSyntaxError:
        return False, set()
    parts: list[cst.BaseExpression] = []
    if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, cst.BitOr):
      parts = [expr.left, expr.right]
    elif isinstance(expr, cst.Subscript):
      wrapper = get_full_name_for_node(expr.value) or ''
      if wrapper.rpartition('.')[2] not in _TYPING_WRAPPERS:
        return False, set()
      parts = [e.slice.value for e in expr.slice if isinstance(e.slice, cst.Index)]
      if wrapper.endswith('Annotated'):
        parts = parts[:1]
    else:
      is_manager = self.is_api(expr, 'CheckpointManager', near)
      return is_manager, {id(c) for c in self._local_classes(expr, near)}
    manager, classes = False, set()
    for part in parts:
      m, c = self.annotation(part, near)
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

  def _has_attr(self, classes: Iterable[int], name: str) -> bool:
    return any(name in self.attrs[c] for cls in classes for c in self._lineage(cls))

  def _methods(self, classes: Iterable[int], name: str) -> list[cst.FunctionDef]:
    found = []
    for cls in classes:
      for c in self._lineage(cls):
        method = self.c.methods.get(c, {}).get(name)
        if method is not None:
          found.append(method)
          break
    return found

  def classes_of(self, expr: cst.BaseExpression | None) -> set[int]:
    """The local classes `expr` may be an instance of."""
    if isinstance(expr, cst.NamedExpr):
      return self.classes_of(expr.value)
    if isinstance(expr, cst.Name):
      out = set()
      for node in self._referents(expr):
        owner = self.c.class_of_self.get(id(node))
        if owner is not None:
          out.add(id(owner))
        out |= self.instances.get(id(node), set())
      return out
    if isinstance(expr, cst.Call):
      out = set()
      for fn in self._callees(expr.func):
        if isinstance(fn, cst.ClassDef):
          out.add(id(fn))
        else:
          out |= self.makers.get(id(fn), set())
      return out
    return set()

  def _callees(self, func: cst.BaseExpression) -> list[cst.CSTNode]:
    """The local classes and functions a call of `func` may run."""
    if isinstance(func, cst.Name):
      return [n for n in self._referents(func) if isinstance(n, (cst.ClassDef, cst.FunctionDef))]
    if isinstance(func, cst.Attribute):
      return self._methods(self.classes_of(func.value), func.attr.value)
    return []

  def is_manager(self, expr: cst.BaseExpression | None) -> bool:
    """`expr` evaluates to a v0 manager (as far as this module tells)."""
    if isinstance(expr, cst.NamedExpr):
      return self.is_manager(expr.value)
    if isinstance(expr, cst.Call):
      if self.is_api(expr.func, 'CheckpointManager'):
        return True
      if id(expr) in self.c.super_calls:
        return self.c.super_calls[id(expr)] in self.manager_classes
      return any(id(fn) in self.factories for fn in self._callees(expr.func))
    if isinstance(expr, cst.Name):
      return any(id(n) in self.managers for n in self._referents(expr))
    if isinstance(expr, cst.Attribute):
      return self._has_attr(self.classes_of(expr.value), expr.attr.value)
    return False

  def _bind(self, target: cst.BaseExpression, manager: bool, classes: set[int]) -> bool:
    """Records what `target` is bound to; whether that is news."""
    if isinstance(target, cst.Name):
      news = False
      if manager and id(target) not in self.managers:
        self.managers.add(id(target))
        news = True
      if classes - self.instances[id(target)]:
        self.instances[id(target)] |= classes
        news = True
      return news
    if isinstance(target, cst.Attribute) and manager:
      for cls in self.classes_of(target.value):
        if target.attr.value not in self.attrs[cls]:
          self.attrs[cls].add(target.attr.value)
          return True
    return False

  def _solve(self) -> None:
    c = self.c
    for cls in c.classes:
      self.bases[id(cls)] = [b for arg in cls.bases for b in self._local_classes(arg.value)]
    # Subclasses of CheckpointManager defined here: their instances are
    # managers, and so is `self` inside them.
    changed = True
    while changed:
      changed = False
      for cls in c.classes:
        if id(cls) not in self.manager_classes and any(
            self.is_api(arg.value, 'CheckpointManager', cls) for arg in cls.bases):
          self.manager_classes.add(id(cls))
          changed = True
    for param_id, cls in c.class_of_self.items():
      if id(cls) in self.manager_classes:
        self.managers.add(param_id)
    for param in c.params:
      manager, classes = self.annotation(param.annotation.annotation, param)
      if manager:
        self.managers.add(id(param))
      self.instances[id(param)] |= classes
    for fn in c.functions:
      if fn.returns is not None:
        manager, classes = self.annotation(fn.returns.annotation, fn)
        if manager:
          self.factories.add(id(fn))
        self.makers[id(fn)] |= classes
    changed = True
    while changed:
      changed = False
      for targets, value, annotation in c.sites:
        manager, classes = self.is_manager(value), self.classes_of(value)
        if annotation is not None:
          m, k = self.annotation(annotation, targets[0])
          manager, classes = manager or m, classes | k
        for t in targets:
          changed |= self._bind(t, manager, classes)
      for cls, name, value, annotation in c.class_attrs:
        if name not in self.attrs[id(cls)] and (self.is_manager(value) or (
            annotation is not None and self.annotation(annotation, cls)[0])):
          self.attrs[id(cls)].add(name)
          changed = True
      for fn, value in c.returns:
        if id(fn) not in self.factories and self.is_manager(value):
          self.factories.add(id(fn))
          changed = True
        classes = self.classes_of(value)
        if classes - self.makers[id(fn)]:
          self.makers[id(fn)] |= classes
          changed = True
      for cls in c.classes:  # Properties returning a manager are manager attributes.
        for name, method in c.methods.get(id(cls), {}).items():
          if id(method) in self.factories and name not in self.attrs[id(cls)] and any(
              (get_full_name_for_node(d.decorator) or '').endswith('property')
              for d in method.decorators):
            self.attrs[id(cls)].add(name)
            changed = True


def _first_line(module: cst.Module, node: cst.CSTNode) -> str:
  if isinstance(node, cst.Arg):
    node = node.with_changes(comma=cst.MaybeSentinel.DEFAULT)
  code = module.code_for_node(node).strip()
  line = code.split('\n', 1)[0]
  return line + ' ...' if len(line) < len(code) else line


class _FileScanner:
  """Findings of one parsed module."""

  def __init__(self, path: str, module: cst.Module):
    self.path = path
    self.wrapper = cst_metadata.MetadataWrapper(module, unsafe_skip_copy=True)
    self.module = self.wrapper.module
    self.positions = self.wrapper.resolve(cst_metadata.PositionProvider)
    self.collector = _Collector()
    self.wrapper.visit(self.collector)
    self.analysis = _Analysis(self.wrapper, self.collector)
    self.members = _member_rows()
    self.options = _option_rows()
    self.findings: list[Finding] = []

  def run(self) -> list[Finding]:
    for node, statement in self.collector.imports:
      self._import(node, statement)
    for call, statement in self.collector.calls:
      self._call(call, statement)
    for attribute, statement in self.collector.attributes:
      self._attribute(attribute, statement)
    self.findings.sort(key=lambda f: (f.line, f.col, f.kind))
    return self.findings

  def _add(self, node: cst.CSTNode, statement: cst.CSTNode, **fields: Any) -> None:
    where = self.positions[node]
    self.findings.append(Finding(
        path=self.path, line=where.start.line, col=where.start.column + 1,
        end_line=where.end.line, end_col=where.end.column + 1,
        code=_first_line(self.module, node), node=node, statement=statement, **fields))

  # Imports.
  def _import(self, node: cst.Import | cst.ImportFrom, statement: cst.CSTNode) -> None:
    if isinstance(node, cst.Import):
      for alias in node.names:
        module = get_full_name_for_node(alias.name) or ''
        if not _is_v0_module(module):
          continue
        if module == V0 and alias.asname is not None:
          asname = get_full_name_for_node(alias.asname.name)
          self._add_import(node, statement, module, f'import {SHIM} as {asname}',
                           f'--fix swaps it: {SHIM} runs the v0 API on v1', True)
        elif module == V0:
          self._add_import(node, statement, module, f'import {SHIM} as ocp',
                           f'left by --fix: code names {V0}.<name>; import the shim under '
                           'an alias and use alias.<name>', False)
        else:
          self._add_import(node, statement, module, '(unchanged)', _SUBMODULE_NOTE, False)
      return
    if node.relative or node.module is None:
      return
    module = get_full_name_for_node(node.module) or ''
    if isinstance(node.names, cst.ImportStar):
      names = None
    else:
      names = [(get_full_name_for_node(a.name) or '', a.asname) for a in node.names]
    if module == 'orbax':
      if names is None or not any(n == 'checkpoint' for n, _ in names):
        return
      if len(names) == 1:
        asname = names[0][1]
        alias = get_full_name_for_node(asname.name) if asname else 'checkpoint'
        self._add_import(node, statement, V0, f'import {SHIM} as {alias}',
                         f'--fix swaps it: {SHIM} runs the v0 API on v1', True)
      else:
        self._add_import(node, statement, V0, f'import {SHIM} as ocp',
                         'left by --fix: it imports other orbax modules too; import '
                         'checkpoint on a line of its own', False)
      return
    if not _is_v0_module(module):
      return
    if module != V0:
      self._add_import(node, statement, module, '(unchanged)', _SUBMODULE_NOTE, False)
      return
    if names is None:
      self._add_import(node, statement, module, '(unchanged)',
                       f'left by --fix: `from {SHIM} import *` gives only the shim\'s own '
                       'names; import the names you use', False)
      return
    if all(_is_v1_module(f'{V0}.{n}') for n, _ in names):
      return
    bad = [n for n, _ in names if not _fixable_name(n)]
    shown = ', '.join(
        n + (f' as {get_full_name_for_node(a.name)}' if a else '') for n, a in names)
    if bad:
      self._add_import(node, statement, module, '(unchanged)',
                       f'left by --fix: {", ".join(bad)} not a public attribute of {V0} '
                       f'(a submodule?), which {SHIM} cannot re-export', False)
    else:
      self._add_import(node, statement, module, f'from {SHIM} import {shown}',
                       f'--fix swaps it: {SHIM} runs the v0 API on v1', True)

  def _add_import(self, node, statement, module, v1, note, fixable) -> None:
    self._add(node, statement, kind='import', member=module, v0=_first_line(self.module, node),
              v1=v1, note=note, status='', fixable=fixable)

  # Constructions and options.
  def _call(self, call: cst.Call, statement: cst.CSTNode) -> None:
    analysis = self.analysis
    if analysis.is_api(call.func, 'CheckpointManager'):
      row = table.BY_MEMBER['__init__']
      self._add(call, statement, kind='init', member=row.member, v0=row.v0,
                v1=_template_of(row), note=row.note, status=row.status, call=call)
    elif analysis.is_api(call.func, 'CheckpointManagerOptions'):
      fields = _option_fields()
      for i, arg in enumerate(call.args):
        if arg.star == '**':
          self._add(arg, statement, kind='option', member='**', v0='CheckpointManagerOptions(**...)',
                    v1='(see the options table)', note='fields passed with ** are not listed',
                    status='', call=call)
          continue
        if arg.keyword is not None:
          field = arg.keyword.value
        elif not arg.star and i < len(fields):
          field = fields[i]
        else:
          continue
        row = self.options.get(field)
        self._add(arg, statement, kind='option', member=field,
                  v0=f'CheckpointManagerOptions({field}=...)',
                  v1=_option_template_of(row) if row else '(not in the options table)',
                  note=row.note if row else '', status='', call=call)

  # Members on managers.
  def _attribute(self, attribute: cst.Attribute, statement: cst.CSTNode) -> None:
    row = self.members.get(attribute.attr.value)
    if row is None or not self.analysis.is_manager(attribute.value):
      return
    call = self.collector.call_of_func.get(id(attribute))
    node = call if call is not None and row.kind == 'method' else attribute
    self._add(node, statement, kind=row.kind, member=row.member, v0=row.v0, v1=_template_of(row),
              note=row.note, status=row.status,
              receiver=self.module.code_for_node(attribute.value).strip(),
              call=call if row.kind == 'method' else None, receiver_node=attribute.value)


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
  """Parses Python source; raises _Unscannable with a clear message."""
  _check_binary(source)
  try:
    return cst.parse_module(source)
  except cst.ParserSyntaxError as e:
    raise _Unscannable(f'syntax error: {e.message}', e.editor_line, e.editor_column) from None
  except (UnicodeDecodeError, LookupError, SyntaxError) as e:
    raise _Unscannable(f'cannot decode as Python source: {e}') from None
  except RecursionError:
    raise _Unscannable('too deeply nested to parse') from None


def _may_use_orbax(source: bytes) -> bool:
  """Whether `source` imports v0 Orbax or the shim; raises _Unscannable if not Python.

  Every finding needs such an import, so a file without one has none. This
  reads the file with Python's own parser (far faster than libcst's tree and
  metadata), which also checks that it is Python.
  """
  _check_binary(source)
  try:
    tree = ast.parse(source)
  except SyntaxError as e:
    if isinstance(e.__context__, UnicodeDecodeError) or 'decod' in str(e.msg):
      raise _Unscannable(f'cannot decode as Python source: {e.msg}') from None
    raise _Unscannable(f'syntax error: {e.msg}', e.lineno, e.offset) from None
  except (ValueError, UnicodeDecodeError, LookupError) as e:
    raise _Unscannable(f'cannot decode as Python source: {e}') from None
  except (RecursionError, MemoryError):
    raise _Unscannable('too deeply nested to parse') from None
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


def scan_source(source: bytes, path: str = '<string>') -> FileScan:
  """Scans one file's bytes; raises _Unscannable if they are not Python."""
  module = parse(source)
  scanner = _FileScanner(path, module)
  return FileScan(path, source, scanner.module, scanner.run())


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
               if get_full_name_for_node(a.name) == V0 and a.asname is not None else a
               for a in updated.names]
      return updated.with_changes(names=names)
    assert isinstance(updated, cst.ImportFrom)
    if get_full_name_for_node(updated.module) == V0:
      return updated.with_changes(module=shim)
    # from orbax import checkpoint [as X]  ->  import orbax_compat as X
    (alias,) = updated.names
    asname = alias.asname or cst.AsName(name=cst.Name('checkpoint'))
    return cst.Import(names=[cst.ImportAlias(name=shim, asname=asname, comma=alias.comma)],
                      semicolon=updated.semicolon,
                      whitespace_after_import=updated.whitespace_after_import)

  return edit


def plan_edits(scan: FileScan, *, fix_imports: bool = True) -> dict[int, Edit]:
  """The edits for one file, by finding.

  `--to-v1` plugs in here: an edit per mechanical method finding (its `call`,
  `receiver_node` and arguments locate everything), and a `# TODO(orbax-v1)`
  comment on the `statement` of the others.
  """
  edits: dict[int, Edit] = {}
  for f in scan.findings:
    if fix_imports and f.kind == 'import' and f.fixable:
      edits[id(f.node)] = _import_edit(f)
  return edits


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


def run(paths: Iterable[str], *, fix: bool = False, diff: bool = False,
        include_skipped: bool = False, jobs: int = 1) -> Result:
  """Scans `paths`; with `fix` writes (or, with `diff`, only diffs) the import swap.

  Files that do not contain the text `orbax` cannot hold a finding (each one
  needs an import naming orbax or orbax_compat): they are only checked to
  parse, with Python's own parser. The rest are analysed with libcst, in
  `jobs` processes when there are enough of them.
  """
  result = Result()
  work = []
  for path in iter_files(paths, result.errors, include_skipped):
    try:
      source = read(path)
      if not _may_use_orbax(source):
        result.files_scanned += 1
        continue
    except _Unscannable as e:
      result.errors.append(ScanError(path, e.message, e.line, e.col))
      continue
    work.append((path, source))
  task = functools.partial(_process, fix=fix and not diff, diff=fix or diff)
  for outcome in _map(task, work, jobs):
    result.findings.extend(outcome.findings)
    result.errors.extend(outcome.errors)
    result.changes.extend(outcome.changes)
    result.files_scanned += outcome.scanned
  result.errors.sort(key=lambda e: e.path)
  return result


_PARALLEL_MIN_FILES = 16


def _map(task: Callable[[tuple[str, bytes]], _Outcome], work: list[tuple[str, bytes]],
         jobs: int) -> Iterable[_Outcome]:
  """`task` over `work`, in order; in `jobs` forked processes if worth it."""
  jobs = min(jobs, len(work) // (_PARALLEL_MIN_FILES // 2))
  if jobs <= 1 or 'fork' not in multiprocessing.get_all_start_methods():
    return map(task, work)
  # fork: the workers start with orbax_compat already imported (spawn would
  # import Orbax again in each).
  pool = concurrent.futures.ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context('fork'))
  with pool:
    return list(pool.map(task, work, chunksize=max(1, min(16, len(work) // (4 * jobs)))))


@dataclasses.dataclass
class _Outcome:
  """One file's results, as plain data (no libcst nodes: it crosses processes)."""

  findings: list[Finding] = dataclasses.field(default_factory=list)
  errors: list[ScanError] = dataclasses.field(default_factory=list)
  changes: list[dict[str, Any]] = dataclasses.field(default_factory=list)
  scanned: int = 0


def _process(item: tuple[str, bytes], *, fix: bool, diff: bool) -> _Outcome:
  path, source = item
  outcome = _Outcome()
  try:
    scan = scan_source(source, path)
  except _Unscannable as e:
    outcome.errors.append(ScanError(path, e.message, e.line, e.col))
    return outcome
  outcome.scanned = 1
  findings = _fix(scan, outcome, write=fix) if diff else scan.findings
  outcome.findings = [f.detached() for f in findings]
  return outcome


def _fix(scan: FileScan, outcome: _Outcome, write: bool) -> list[Finding]:
  edits = plan_edits(scan)
  new = rewrite(scan, edits)
  if new == scan.source:
    return scan.findings
  try:
    parse(new)  # Never write what does not parse.
  except _Unscannable as e:
    outcome.errors.append(
        ScanError(scan.path, f'not rewritten, the rewrite would not parse: {e.message}'))
    return scan.findings
  encoding = scan.module.encoding
  text = difflib.unified_diff(
      scan.source.decode(encoding).splitlines(keepends=True),
      new.decode(encoding).splitlines(keepends=True),
      fromfile=f'a/{scan.path}', tofile=f'b/{scan.path}')
  change = {'path': scan.path, 'edits': len(edits), 'written': False, 'diff': ''.join(text)}
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
  return [dataclasses.replace(f, fixed=True) if f.fixable and id(f.node) in edits else f
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
    lines.append(f'{verb} {c["path"]}: {c["edits"]} import(s) swapped to {SHIM}')
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
      'the code); optionally swap `orbax.checkpoint` imports to orbax_compat.',
      epilog='Exit status: 0 nothing found, 1 v0 uses remain, 2 usage error or nothing '
      'could be scanned. Columns are 1-based.')
  parser.add_argument('paths', nargs='+', metavar='PATH', help='files or directories to scan')
  parser.add_argument('--fix', action='store_true',
                      help='rewrite `import orbax.checkpoint as X` / `from orbax.checkpoint '
                      'import A` to orbax_compat (only the import; atomic writes)')
  parser.add_argument('--diff', action='store_true',
                      help='print the --fix changes as a unified diff; write nothing')
  parser.add_argument('--format', choices=('text', 'json'), default='text',
                      help='output format (json: see the schema in orbax_compat/scan.py)')
  parser.add_argument('--include-skipped', action='store_true',
                      help='also walk hidden directories, virtualenvs and site-packages')
  parser.add_argument('--jobs', '-j', type=_positive, default=os.cpu_count() or 1,
                      help='processes for large scans (default: the number of CPUs)')
  ns = parser.parse_args(argv)
  result = run(ns.paths, fix=ns.fix, diff=ns.diff, include_skipped=ns.include_skipped,
               jobs=ns.jobs)
  if ns.format == 'json':
    sys.stdout.write(json.dumps(result.to_json(), indent=1) + '\n')
  else:
    sys.stdout.write(render_text(result, ns.diff))
    for e in result.errors:
      print(e.text(), file=sys.stderr)
  return result.exit_code


if __name__ == '__main__':
  sys.exit(main())
