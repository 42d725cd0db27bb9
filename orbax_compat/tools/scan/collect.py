"""One module of the project: its tree, its scopes, and what the analysis needs
of it, gathered in one walk.

`Module` is one loaded file (its libcst tree, or only its imports while it is
*light*); `Collector` walks its tree once over the syntax fields
(`nodes.child_fields`, without libcst's visitors, which rebuild every node),
builds the scopes by `ScopeProvider`'s rules (scopes.py) and records what
`index.Analysis` reads: imports, functions and their signatures, classes and
their members, assignments and the other bindings (`Site`), returns, calls,
attributes, loops, appends, `isinstance` guards, and each use's statement and
parent. Nothing here looks beyond the module: what the project knows is
index.py's.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable
from collections.abc import Iterator
import dataclasses
import os
from typing import Any

import libcst as cst
from libcst import MaybeSentinel
from libcst import metadata as md

from orbax_compat.tools.scan import nodes
from orbax_compat.tools.scan import scopes as scopes_lib


def dotted(node: cst.CSTNode | None) -> str | None:
  """'a.b.c' for a Name or a chain of attributes on one, else None."""
  if isinstance(node, cst.Name):
    return node.value
  if isinstance(node, cst.Attribute):
    base = dotted(node.value)
    return f'{base}.{node.attr.value}' if base else None
  return None


class Module:
  """One loaded file: its libcst tree, its scopes (libcst's scope objects,
  `scopes.Scopes`) and the facts `Collector` gathers in one walk that also
  builds those scopes; positions (libcst's `CodeRange`s) on demand.

  A *light* module (a file given that names `orbax` but not the manager) is
  only its imports; until it is needed whole it has no tree at all (`tree`
  None: nothing of it is parsed during the analysis), and its findings are
  its imports (`imports_only`).
  """

  def __init__(self, path: str, name: str, source: bytes | str | None, tree: cst.Module | None,
               target: bool, notebook: Any = None, light: bool = False):
    self.path, self.name, self.source, self.tree = path, name, source, tree
    self.target = target  # Among the paths given (findings are reported).
    self.notebook = notebook  # notebooks.Notebook for a .ipynb file.
    self.light = light  # Only its imports (it names nothing manager-related yet).
    self.encoding = tree.encoding if tree is not None else 'utf-8'
    self._positions: nodes.Positions | None = None
    self._text: str | None = None
    self.fixable_imports: set[int] = set()  # id(import statement) --fix swaps.
    self.scopes = scopes_lib.Scopes()
    self.c = Collector(self)
    if tree is None:
      pass
    elif light:
      self.c.imports = list(_imports(tree.body))
    else:
      self.c.collect()

  @classmethod
  def imports_only(cls, path: str, name: str, text: str, statements: list[tuple[str, int, int]],
                   target: bool, notebook: Any = None) -> Module:
    """A light module of its import statements alone (`source.import_statements`:
    located by Python's parser, each parsed by libcst on its own), with their
    positions in the file; for findings that need no rewrite."""
    mod = cls(path, name, text, None, target, notebook, light=True)
    mod._text = text
    ranges = {}
    for code, line, col in statements:
      stmt = cst.parse_statement(code + '\n')
      local = nodes.Positions(cst.Module(body=[stmt]))
      for small in stmt.body if isinstance(stmt, cst.SimpleStatementLine) else ():
        if isinstance(small, (cst.Import, cst.ImportFrom)):
          where = local[small]
          ranges[small] = md.CodeRange(
              _shift(where.start, line, col), _shift(where.end, line, col))
          mod.c.imports.append((small, stmt))
    mod._positions = ranges
    return mod

  @property
  def positions(self) -> nodes.Positions:
    if self._positions is None:
      self._positions = nodes.Positions(self.tree, self.text, self.c.top)
    return self._positions

  @property
  def text(self) -> str:
    """The source as text (a notebook's: its code cells)."""
    if self._text is None:
      source = self.source
      self._text = source.decode(self.encoding) if isinstance(source, bytes) else source
    return self._text

  @property
  def package(self) -> str:
    return self.name if os.path.basename(self.path) == '__init__.py' else (
        self.name.rpartition('.')[0])

  def assignments(self, name: cst.Name | cst.Attribute) -> list[md.BaseAssignment]:
    return self.scopes.assignments(name)


def _shift(where: md.CodePosition, line: int, col: int) -> md.CodePosition:
  """A position in a statement parsed alone, moved to where the statement starts."""
  return md.CodePosition(line + where.line - 1, where.column + (col if where.line == 1 else 0))


def _imports(body) -> Iterator[tuple[cst.CSTNode, cst.CSTNode]]:
  """(import, statement) of a module's statements, nested ones included,
  without visiting expressions (the light load)."""
  for stmt in body:
    if isinstance(stmt, cst.SimpleStatementLine):
      for small in stmt.body:
        if isinstance(small, (cst.Import, cst.ImportFrom)):
          yield small, stmt
    elif isinstance(stmt, cst.BaseCompoundStatement):
      for block in _blocks(stmt):
        if isinstance(block, cst.IndentedBlock):
          yield from _imports(block.body)
        elif isinstance(block, cst.SimpleStatementSuite):
          for small in block.body:
            if isinstance(small, (cst.Import, cst.ImportFrom)):
              yield small, stmt


def _blocks(stmt: cst.BaseCompoundStatement) -> Iterator[cst.CSTNode]:
  """The blocks of a compound statement (body, else, except, finally, cases)."""
  if getattr(stmt, 'body', None) is not None:
    yield stmt.body
  for name in ('orelse', 'finalbody'):
    part = getattr(stmt, name, None)
    while part is not None:
      if isinstance(part, cst.If):
        yield part.body
        part = part.orelse
        continue
      yield part.body
      break
  for handler in getattr(stmt, 'handlers', ()):
    yield handler.body
  for case in getattr(stmt, 'cases', ()):
    yield case.body


@dataclasses.dataclass
class Site:
  targets: list[cst.BaseExpression]
  value: cst.BaseExpression | None
  annotation: cst.BaseExpression | None
  scope: Any


def _subclasses(cls: type) -> set[type]:
  out = set()
  for sub in cls.__subclasses__():
    out |= {sub, *_subclasses(sub)}
  return out


_STATEMENTS = frozenset({cst.SimpleStatementLine, *_subclasses(cst.BaseCompoundStatement)})
_USES = frozenset({cst.Call, cst.Attribute, cst.Arg})  # Their statement and parent are kept.
_SUITES = frozenset({cst.IndentedBlock, cst.SimpleStatementSuite})
_DEFS = frozenset({cst.FunctionDef, cst.ClassDef})
_COMPREHENSIONS = frozenset({cst.ListComp, cst.SetComp, cst.GeneratorExp, cst.DictComp})
# Expression contexts, as libcst's ExpressionContextProvider gives them to names.
_LOAD, _STORE, _DEL = 0, 1, 2
_CONTEXT = {  # (node type, field) -> the context of that field's names.
    (cst.AssignTarget, 'target'): _STORE, (cst.AnnAssign, 'target'): _STORE,
    (cst.AugAssign, 'target'): _STORE, (cst.NamedExpr, 'target'): _STORE,
    (cst.AsName, 'name'): _STORE, (cst.CompFor, 'target'): _STORE, (cst.Del, 'target'): _DEL,
    (cst.Subscript, 'value'): _LOAD, (cst.Subscript, 'slice'): _LOAD,
}
_NOT_NODES = (type(None), str, bool, MaybeSentinel)


class Collector:
  """One walk of a module: calls, attribute uses, imports, binding sites,
  definitions, and each node's statement and parent (what `Analysis` and the
  findings need), and the module's scopes (`scopes.Scopes`).

  The walk reads the tree without rebuilding it (`nodes.child_fields`), in the
  order of libcst's `ScopeProvider` (parameters and body before decorators,
  a comprehension's first iterable in the enclosing scope, ...), so that the
  scopes it records are the ones `ScopeProvider` builds.
  """

  def __init__(self, module: Module):
    self.mod = module
    self.imports: list[tuple[cst.CSTNode, cst.CSTNode]] = []  # (Import|ImportFrom, statement)
    self.calls: list[cst.Call] = []
    self.attributes: list[cst.Attribute] = []
    self.statement: dict[int, cst.CSTNode] = {}  # id(call/attribute/arg) -> anchor statement.
    self.parent: dict[int, cst.CSTNode] = {}  # id(call/attribute/arg) -> parent.
    self.top: dict[int, cst.CSTNode] = {}  # id(call/attribute/arg/import) -> top-level statement.
    self.stores: set[int] = set()  # Attributes assigned or deleted.
    self.in_fstring: dict[int, str] = {}  # id(node) -> its innermost f-string's quote.
    self.sites: list[Site] = []
    self.loops: list[tuple[cst.BaseExpression, cst.BaseExpression]] = []  # (target, iterable)
    self.appends: list[tuple[cst.BaseExpression, cst.BaseExpression]] = []  # x.append(v)
    self.assigned: dict[int, cst.BaseExpression] = {}  # id(Name target of `x = v`) -> v.
    self.params: list[tuple[cst.Param, cst.FunctionDef | cst.Lambda]] = []
    self.signature: dict[int, tuple[list[cst.Param], dict[str, cst.Param]]] = {}
    self.returns: list[tuple[cst.FunctionDef, cst.BaseExpression]] = []
    self.functions: list[cst.FunctionDef] = []
    self.classes: list[cst.ClassDef] = []
    self.class_of_self: dict[int, cst.ClassDef] = {}  # id(first Param) -> class.
    self.staticmethods: set[int] = set()
    self.properties: set[int] = set()
    self.members: dict[int, dict[str, cst.CSTNode]] = collections.defaultdict(dict)
    self.class_attrs: list[tuple[cst.ClassDef, str, cst.BaseExpression | None,
                                 cst.BaseExpression | None]] = []
    self.super_calls: dict[int, cst.ClassDef] = {}
    self.owner: dict[int, cst.CSTNode] = {}  # id(FunctionDef/ClassDef) -> enclosing def.
    self._statements: list[cst.CSTNode] = []
    self._parents: list[cst.CSTNode] = []
    self._defs: list[cst.CSTNode] = []
    self._fstring: list[str] = []
    self._guards: list[tuple[int, list[tuple[str, cst.BaseExpression]]]] = []
    self.narrowed: dict[int, list[cst.BaseExpression]] = {}  # id(attr) -> isinstance types.
    # The scopes being built (libcst's objects).
    self._scopes = module.scopes
    self.scope: md.Scope | None = None
    self._top_attribute: list[cst.Attribute | None] = [None]

  def collect(self) -> None:
    self.scope = md.GlobalScope()
    self._visit(self.mod.tree, _LOAD)

  # The walk.
  def _visit(self, node: cst.CSTNode, ctx: int) -> None:
    t = type(node)
    statement = t in _STATEMENTS
    if statement:
      self._statements.append(node)
    parents = self._parents
    if t in _USES:
      i = id(node)
      self.statement[i] = self._anchor()
      self.top[i] = self._statements[0]
      if parents:
        self.parent[i] = parents[-1]
      if self._fstring:
        self.in_fstring[i] = self._fstring[-1]
    elif t is cst.FormattedString:
      self._fstring.append(node.start.lstrip('fFrRbBuU'))
    elif t in _SUITES and parents:
      owner = parents[-1]
      test = owner.test if type(owner) is cst.If and owner.body is node else (
          owner.guard if type(owner) is cst.MatchCase and owner.body is node else None)
      guards = _isinstance_guards(test)
      if guards:
        self._guards.append((id(node), guards))
    parents.append(node)
    hook = _HOOKS.get(t)
    if hook is not None:
      hook(self, node)
    walk = _WALKS.get(t)
    if walk is not None:
      walk(self, node, ctx)
    else:
      self._children(node, t, ctx)
    parents.pop()
    if self._guards and self._guards[-1][0] == id(node):
      self._guards.pop()
    if t is cst.FormattedString:
      self._fstring.pop()
    if statement:
      self._statements.pop()
    if t in _DEFS:
      self._defs.pop()
    scope = self.scope
    self._scopes.of[id(node)] = scope
    if t in scopes_lib.ASSIGNMENT_LIKE:
      scope._assignment_count += 1  # pylint: disable=protected-access

  def _children(self, node: cst.CSTNode, t: type, ctx: int) -> None:
    visit = self._visit
    for name in nodes.child_fields(t):
      value = getattr(node, name)
      tv = type(value)
      if tv is tuple or tv is list:
        c = _CONTEXT.get((t, name), ctx)
        for item in value:
          visit(item, c)
      elif tv not in _NOT_NODES:
        visit(value, _CONTEXT.get((t, name), ctx))

  def _anchor(self) -> cst.CSTNode | None:
    """The statement a comment goes above (an `elif`'s: its `if`)."""
    s = self._statements
    i = len(s) - 1
    while i > 0 and isinstance(s[i], cst.If) and isinstance(s[i - 1], cst.If) and (
        s[i - 1].orelse is s[i]):
      i -= 1
    return s[i] if i >= 0 else None

  def _class_body(self) -> cst.ClassDef | None:
    owner = self._defs[-1] if self._defs else None
    return owner if isinstance(owner, cst.ClassDef) else None

  # Scopes: the rules of libcst's ScopeVisitor.
  def _walk_name(self, node: cst.Name, ctx: int) -> None:
    scope = self.scope
    if ctx == _STORE:
      scope.record_assignment(node.value, node)
    else:
      self._scopes.raw[scope].append(
          (md.Access(node, scope, is_annotation=False, is_type_hint=False),
           self._top_attribute[-1]))

  def _walk_attribute(self, node: cst.Attribute, ctx: int) -> None:
    top = self._top_attribute
    if top[-1] is None:
      top[-1] = node
    self._visit(node.value, _LOAD)  # Not the attribute's name.
    if top[-1] is node:
      top[-1] = None

  def _walk_call(self, node: cst.Call, ctx: int) -> None:
    self._top_attribute.append(None)
    self._children(node, cst.Call, ctx)
    self._top_attribute.pop()

  def _walk_arg(self, node: cst.Arg, ctx: int) -> None:
    self._visit(node.value, ctx)  # Not the keyword.

  def _walk_param(self, node: cst.Param, ctx: int) -> None:
    scope = self.scope
    scope.record_assignment(node.name.value, node)
    self._scopes.of[id(node.name)] = scope
    self.scope = scope.parent  # Defaults and annotations: the enclosing scope.
    for part in (node.default, node.annotation):
      if part is not None:
        self._visit(part, ctx)
    self.scope = scope

  def _walk_function(self, node: cst.FunctionDef, ctx: int) -> None:
    outer = self.scope
    outer.record_assignment(node.name.value, node)
    self._scopes.of[id(node.name)] = outer
    if node.type_parameters is not None:
      self.scope = scopes_lib.AnnotationScope(outer, node, None)
      self._visit(node.type_parameters, ctx)
    around = self.scope
    self.scope = md.FunctionScope(around, node, node.name.value)
    self._visit(node.params, ctx)
    self._visit(node.body, ctx)
    self.scope = around
    for decorator in node.decorators:
      self._visit(decorator, ctx)
    if node.returns is not None:
      self._visit(node.returns, ctx)
    self.scope = outer

  def _walk_lambda(self, node: cst.Lambda, ctx: int) -> None:
    outer = self.scope
    self.scope = md.FunctionScope(outer, node, None)
    self._visit(node.params, ctx)
    self._visit(node.body, ctx)
    self.scope = outer

  def _walk_class(self, node: cst.ClassDef, ctx: int) -> None:
    outer = self.scope
    outer.record_assignment(node.name.value, node)
    self._scopes.of[id(node.name)] = outer
    for decorator in node.decorators:
      self._visit(decorator, ctx)
    if node.type_parameters is not None:
      self.scope = scopes_lib.AnnotationScope(outer, node, None)
      self._visit(node.type_parameters, ctx)
    for arg in (*node.bases, *node.keywords):
      self._visit(arg, ctx)
    self.scope = md.ClassScope(self.scope, node, node.name.value)
    self._visit(node.body, ctx)
    self.scope = outer

  def _walk_comprehension(self, node: cst.BaseComp, ctx: int) -> None:
    for_in = node.for_in
    self._parents.append(for_in)
    self._hook_comp_for(for_in)
    self._visit(for_in.iter, ctx)  # The first iterable: the enclosing scope.
    outer = self.scope
    self._scopes.of[id(for_in)] = outer
    self.scope = scope = md.ComprehensionScope(outer, node)
    self._visit(for_in.target, _STORE)
    scope._assignment_count += 1  # pylint: disable=protected-access
    for condition in for_in.ifs:
      self._visit(condition, ctx)
    if for_in.inner_for_in is not None:
      self._visit(for_in.inner_for_in, ctx)
    self._parents.pop()
    if type(node) is cst.DictComp:
      self._visit(node.key, ctx)
      self._visit(node.value, ctx)
    else:
      self._visit(node.elt, ctx)
    self.scope = outer

  def _walk_for(self, node: cst.For, ctx: int) -> None:
    self._visit(node.target, _STORE)
    self.scope._assignment_count += 1  # pylint: disable=protected-access
    for part in (node.iter, node.body, node.orelse):
      if part is not None:
        self._visit(part, ctx)

  def _walk_import(self, node: cst.Import | cst.ImportFrom, ctx: int) -> None:
    names = node.names
    if isinstance(names, cst.ImportStar):
      return
    scope = self.scope
    for alias in names:
      self._scopes.of[id(alias)] = scope
      bound = alias.asname.name if alias.asname is not None else alias.name
      for name, _ in scopes_lib.dotted_names(bound):
        scope.record_import_assignment(name, node, bound)

  def _walk_global(self, node: cst.Global | cst.Nonlocal, ctx: int) -> None:
    for item in node.names:
      try:
        if type(node) is cst.Global:
          self.scope.record_global_overwrite(item.name.value)
        else:
          self.scope.record_nonlocal_overwrite(item.name.value)
      except NotImplementedError:  # `nonlocal` at module level: not Python.
        pass

  def _walk_type_alias(self, node: Any, ctx: int) -> None:
    outer = self.scope
    outer.record_assignment(node.name.value, node)
    self.scope = scopes_lib.AnnotationScope(outer, node, None)
    if node.type_parameters is not None:
      self._visit(node.type_parameters, ctx)
    self._visit(node.value, ctx)
    self.scope = outer

  def _walk_type_var(self, node: Any, ctx: int) -> None:
    self.scope.record_assignment(node.name.value, node)
    if getattr(node, 'bound', None) is not None:
      self._visit(node.bound, ctx)

  def _walk_nothing(self, node: cst.CSTNode, ctx: int) -> None:
    pass  # A string's text (annotations in strings are left out: scopes.py).

  # Imports.
  def _hook_import(self, node: cst.Import | cst.ImportFrom) -> None:
    self.imports.append((node, self._anchor()))
    self.top[id(node)] = self._statements[0]

  # Definitions.
  def _hook_function(self, node: cst.FunctionDef) -> None:
    owner = self._class_body()
    if self._defs:
      self.owner[id(node)] = self._defs[-1]
    decorators = {dotted(d.decorator) or '' for d in node.decorators}
    short = {d.rpartition('.')[2] for d in decorators}
    if 'staticmethod' in short:
      self.staticmethods.add(id(node))
    if 'property' in short or 'cached_property' in short:
      self.properties.add(id(node))
    params = node.params
    positional = [*params.posonly_params, *params.params]
    by_name = {p.name.value: p for p in [*positional, *params.kwonly_params]}
    self.signature[id(node)] = (positional, by_name)
    for p in [*positional, *params.kwonly_params]:
      if p.annotation is not None:
        self.params.append((p, node))
    if owner is not None:
      self.members[id(owner)][node.name.value] = node
      if positional and 'staticmethod' not in short and 'classmethod' not in short:
        self.class_of_self[id(positional[0])] = owner
    self.functions.append(node)
    self._defs.append(node)

  def _hook_class(self, node: cst.ClassDef) -> None:
    owner = self._class_body()
    if owner is not None:
      self.members[id(owner)][node.name.value] = node
    if self._defs:
      self.owner[id(node)] = self._defs[-1]
    self.classes.append(node)
    self._defs.append(node)

  def _hook_return(self, node: cst.Return) -> None:
    fn = next((d for d in reversed(self._defs)), None)
    if isinstance(fn, cst.FunctionDef) and node.value is not None:
      self.returns.append((fn, node.value))

  # Binding sites.
  def _targets(self, targets: Iterable[cst.BaseExpression]) -> None:
    for t in targets:
      if isinstance(t, cst.Attribute):
        self.stores.add(id(t))
      elif isinstance(t, (cst.Tuple, cst.List)):
        self._targets(e.value for e in t.elements)
      elif isinstance(t, cst.StarredElement):
        self._targets([t.value])

  def _hook_assign(self, node: cst.Assign) -> None:
    targets = [t.target for t in node.targets]
    self._targets(targets)
    for t in targets:
      if isinstance(t, cst.Name):
        self.assigned[id(t)] = node.value
    owner = self._class_body()
    if owner is not None:
      for t in targets:
        if isinstance(t, cst.Name):
          self.class_attrs.append((owner, t.value, node.value, None))
    self.sites.append(Site(targets, node.value, None, self.scope))

  def _hook_ann_assign(self, node: cst.AnnAssign) -> None:
    self._targets([node.target])
    if isinstance(node.target, cst.Name) and node.value is not None:
      self.assigned[id(node.target)] = node.value
    owner = self._class_body()
    if owner is not None and isinstance(node.target, cst.Name):
      self.class_attrs.append((owner, node.target.value, node.value,
                               node.annotation.annotation))
    self.sites.append(Site([node.target], node.value, node.annotation.annotation, self.scope))

  def _hook_aug_assign(self, node: cst.AugAssign) -> None:
    self._targets([node.target])

  def _hook_del(self, node: cst.Del) -> None:
    self._targets([node.target])

  def _hook_named_expr(self, node: cst.NamedExpr) -> None:
    self.sites.append(Site([node.target], node.value, None, None))

  def _hook_with_item(self, node: cst.WithItem) -> None:
    if node.asname is not None:
      self._targets([node.asname.name])
      self.sites.append(Site([node.asname.name], node.item, None, None))

  def _hook_for(self, node: cst.For) -> None:
    self._targets([node.target])
    self.loops.append((node.target, node.iter))

  def _hook_comp_for(self, node: cst.CompFor) -> None:
    self.loops.append((node.target, node.iter))

  # Uses.
  def _hook_call(self, node: cst.Call) -> None:
    self.calls.append(node)
    func = node.func
    if isinstance(func, cst.Name) and func.value == 'super':
      owner = next((d for d in reversed(self._defs) if isinstance(d, cst.ClassDef)), None)
      if owner is not None:
        self.super_calls[id(node)] = owner
    elif (isinstance(func, cst.Attribute) and func.attr.value in ('append', 'add', 'insert')
          and node.args):
      self.appends.append((func.value, node.args[-1].value))

  def _hook_attribute(self, node: cst.Attribute) -> None:
    self.attributes.append(node)
    if self._guards and isinstance(node.value, cst.Name):
      types = [t for _, guards in self._guards for name, t in guards if name == node.value.value]
      if types:
        self.narrowed[id(node)] = types


_HOOKS: dict[type, Any] = {
    cst.Import: Collector._hook_import, cst.ImportFrom: Collector._hook_import,  # pylint: disable=protected-access
    cst.FunctionDef: Collector._hook_function, cst.ClassDef: Collector._hook_class,  # pylint: disable=protected-access
    cst.Return: Collector._hook_return, cst.Assign: Collector._hook_assign,  # pylint: disable=protected-access
    cst.AnnAssign: Collector._hook_ann_assign, cst.AugAssign: Collector._hook_aug_assign,  # pylint: disable=protected-access
    cst.Del: Collector._hook_del, cst.NamedExpr: Collector._hook_named_expr,  # pylint: disable=protected-access
    cst.WithItem: Collector._hook_with_item, cst.For: Collector._hook_for,  # pylint: disable=protected-access
    cst.CompFor: Collector._hook_comp_for, cst.Call: Collector._hook_call,  # pylint: disable=protected-access
    cst.Attribute: Collector._hook_attribute,  # pylint: disable=protected-access
}
_WALKS: dict[type, Any] = {
    cst.Name: Collector._walk_name, cst.Attribute: Collector._walk_attribute,  # pylint: disable=protected-access
    cst.Call: Collector._walk_call, cst.Arg: Collector._walk_arg,  # pylint: disable=protected-access
    cst.Param: Collector._walk_param, cst.FunctionDef: Collector._walk_function,  # pylint: disable=protected-access
    cst.Lambda: Collector._walk_lambda, cst.ClassDef: Collector._walk_class,  # pylint: disable=protected-access
    cst.For: Collector._walk_for, cst.Import: Collector._walk_import,  # pylint: disable=protected-access
    cst.ImportFrom: Collector._walk_import, cst.Global: Collector._walk_global,  # pylint: disable=protected-access
    cst.Nonlocal: Collector._walk_global, cst.SimpleString: Collector._walk_nothing,  # pylint: disable=protected-access
    **{t: Collector._walk_comprehension for t in _COMPREHENSIONS},  # pylint: disable=protected-access
    **({cst.TypeAlias: Collector._walk_type_alias} if hasattr(cst, 'TypeAlias') else {}),  # pylint: disable=protected-access
    **{getattr(cst, n): Collector._walk_type_var for n in ('TypeVar', 'TypeVarTuple', 'ParamSpec')  # pylint: disable=protected-access
       if hasattr(cst, n)},
}


def _isinstance_guards(test: cst.BaseExpression | None) -> list[tuple[str, cst.BaseExpression]]:
  """`isinstance(name, T)` tests (also joined with `and`): [(name, T)]."""
  if isinstance(test, cst.BooleanOperation) and isinstance(test.operator, cst.And):
    return _isinstance_guards(test.left) + _isinstance_guards(test.right)
  if (isinstance(test, cst.Call) and isinstance(test.func, cst.Name)
      and test.func.value == 'isinstance' and len(test.args) == 2
      and isinstance(test.args[0].value, cst.Name)):
    return [(test.args[0].value.value, test.args[1].value)]
  return []
