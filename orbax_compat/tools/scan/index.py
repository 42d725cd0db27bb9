"""The whole-repo index: which expressions of which modules are v0 managers.

A scan first lists every Python file and notebook of the *project* (the paths
given, and the project root above them: the nearest directory with a
pyproject.toml, setup.py, setup.cfg or .git, as ruff and pyright find it).
It loads (parses with libcst and collects, `Module`) only the modules that
can matter, decided by their text first:

1. every file that names `CheckpointManager` (constructions, subclasses,
   annotations, aliases), and every file given that names `orbax`;
2. after each solve, every file that names both a module and a name that
   module exports which is manager-related (a factory, a class holding or
   subclassing a manager, a module-level manager or class alias) — how
   `m = make_manager(...)` in `train.py` reaches `checkpointing.py`'s factory;
3. the module of a function that receives a manager at a call site (its
   parameter is a manager).

`Analysis` solves, over all loaded modules at once, to a fixpoint
(flow-insensitive, may-alias): names, parameters, attributes, containers
and tuple elements bound to managers, with their *origins* (built by
orbax_compat's class, by Orbax's, by a subclass, known by an annotation,
received as a parameter); functions and methods returning managers (also
inside tuples) or instances; classes whose attributes hold managers
(through base classes in other modules); subclasses of the manager (also
imported, or nested and built as `self._Impl(d)`); aliases of the manager
class and of `CheckpointManagerOptions`. Names resolve through libcst's scope
objects, which `collect.Collector`'s one walk builds by `ScopeProvider`'s
rules (scopes.py); imports resolve to the modules of the project (matched by
dotted suffix, so `src/` layouts need no configuration), anything else to
its qualified name.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable
from collections.abc import Iterator
import dataclasses
import os
import re
import types
from typing import Any

import libcst as cst
from libcst import metadata as md

from orbax_compat.mapping import forms
from orbax_compat.tools.scan import nodes
from orbax_compat.tools.scan import templates
from orbax_compat.tools.scan.collect import Module
from orbax_compat.tools.scan.collect import dotted
from orbax_compat.tools.scan.findings import SHIM
from orbax_compat.tools.scan.findings import V0

EXPERIMENTAL = templates.EXPERIMENTAL
_V1_MODULES = ('orbax.checkpoint.v1', EXPERIMENTAL + '.v1')
_TYPING_WRAPPERS = frozenset({'Optional', 'Union', 'Annotated', 'Final', 'ClassVar'})
_CASTS = frozenset({'typing.cast', 'typing_extensions.cast'})

# Where a manager comes from (`Analysis.origins`). --to-v1 rewrites calls only
# on managers it sees built as orbax_compat's own class (NEW; NEW_ITEMS when
# built with item names, handlers or legacy checkpointers).
NEW = 'orbax_compat'
NEW_ITEMS = 'orbax_compat, with items'
# `OPTION + field`: the manager's options may set `field` to a non-default
# value (`OPTION + '?'`: options the scan does not see).
OPTION = 'option:'
# `SITE + str(id(call))`: the construction a manager may come from
# (`Analysis.sites`), for the checks that read each construction.
SITE = 'site:'
NATIVE = 'orbax.checkpoint'
SUBCLASS = 'subclass'
DECLARED = 'annotation'
PARAM = 'parameter'
_NONE: frozenset = frozenset()
_NO_ATTRS: types.MappingProxyType = types.MappingProxyType({})
# References to Orbax's own manager class that `--fix` rewrites in the paths
# given, to `orbax_compat.CheckpointManager` (or `ocp.CheckpointManager`):
# through a submodule, or `orbax.checkpoint.CheckpointManager` with no alias.
REWRITTEN_CLASS_PATHS = frozenset({
    f'{V0}.CheckpointManager', f'{V0}.checkpoint_manager.CheckpointManager',
    f'{V0}.checkpoint_managers.CheckpointManager',
    f'{SHIM}.checkpoint_manager.CheckpointManager',
    f'{SHIM}.checkpoint_managers.CheckpointManager',
})


def is_origin_fact(origin: str) -> bool:
  """An origin that says something of the options or the construction site,
  not where the manager comes from."""
  return origin.startswith((OPTION, SITE))


def is_v1_module(module: str) -> bool:
  return any(module == x or module.startswith(x + '.') for x in _V1_MODULES)


def is_v0_module(module: str) -> bool:
  return (module == V0 or module.startswith(V0 + '.')) and not is_v1_module(module)


def is_shim_module(module: str) -> bool:
  return module == SHIM or module.startswith(SHIM + '.')


def is_api_qname(qname: str, leaf: str) -> bool:
  """`qname` names `leaf` (e.g. CheckpointManager) of v0 Orbax or of the shim.

  Not under `orbax.checkpoint.experimental`: its emergency CheckpointManager is
  another API, which orbax_compat does not stand in for.
  """
  module, _, name = qname.rpartition('.')
  if name != leaf or module == EXPERIMENTAL or module.startswith(EXPERIMENTAL + '.'):
    return False
  return is_v0_module(module) or is_shim_module(module)


def _base_class(base: cst.Arg) -> cst.BaseExpression:
  """The class a base of a class statement names (`Base[T]`: `Base`)."""
  return base.value.value if type(base.value) is cst.Subscript else base.value


def names_in(node: cst.CSTNode) -> set[str]:
  """Every name in `node` (attributes' and keywords' included)."""
  out, todo = set(), [node]
  while todo:
    n = todo.pop()
    if type(n) is cst.Name:
      out.add(n.value)
    todo.extend(nodes.children(n))
  return out


# --------------------------------------------------------------------------
# Targets of name resolution.


@dataclasses.dataclass(frozen=True)
class External:
  """A name outside the project: its qualified name, and the import it came through."""

  qname: str
  via: cst.CSTNode | None = None


@dataclasses.dataclass(frozen=True, eq=False)
class Local:
  """A binding node (FunctionDef, ClassDef, Name target, Param...) in a module."""

  mod: Module
  node: cst.CSTNode


@dataclasses.dataclass(frozen=True, eq=False)
class ModuleRef:
  mod: Module


class Project:
  """The files of a project, by path and dotted name; loads modules on demand."""

  def __init__(self, files: dict[str, str], targets: set[str], load):
    self.files = files  # path -> dotted name.
    self.targets = targets
    self._load = load  # path -> Module | None.
    self.modules: dict[str, Module] = {}  # path -> loaded module.
    self.by_suffix: dict[str, list[str]] = collections.defaultdict(list)
    for path, name in files.items():
      parts = name.split('.')
      for i in range(len(parts)):
        self.by_suffix['.'.join(parts[i:])].append(path)
    self.failed: set[str] = set()  # Paths that could not be loaded.
    self.wanted: set[str] = set()  # Paths the analysis asked for, not loaded yet.
    self.want = False  # Whether a lookup of a module not loaded asks for it.
    self.misses: set[str] | None = None  # Collects the paths looked up but not loaded.

  def find(self, qname: str, near: str) -> tuple[str, str] | None:
    """(path, rest) of the project module `qname` names, the longest prefix
    first (`pkg.mod.func` -> pkg/mod.py, 'func'); None: not the project's."""
    parts = qname.split('.')
    for i in range(len(parts), 0, -1):
      paths = self.by_suffix.get('.'.join(parts[:i]))
      if not paths:
        continue
      if len(paths) > 1:
        here = os.path.dirname(near)
        best = max(len(os.path.commonpath([here, os.path.dirname(p)])) for p in paths)
        paths = [p for p in paths if len(os.path.commonpath([here, os.path.dirname(p)])) == best]
        if len(paths) > 1:
          return None  # Ambiguous: several files of that name.
      return paths[0], '.'.join(parts[i:])
    return None

  def module(self, path: str) -> Module | None:
    mod = self.modules.get(path)
    if mod is None or mod.light:
      if self.misses is not None:
        self.misses.add(path)
      if self.want and path not in self.failed:
        self.wanted.add(path)
    return mod


# --------------------------------------------------------------------------
# The analysis.


def _import_qname(stmt: cst.CSTNode, name: str, mod: Module) -> str | None:
  """The qualified name `name` is bound to by the import statement `stmt`."""
  if type(stmt) is cst.Import:
    for alias in stmt.names:
      full = dotted(alias.name)
      if alias.asname is not None:
        if type(alias.asname.name) is cst.Name and alias.asname.name.value == name:
          return full
      elif full == name:  # `import a.b`, used as `a.b.x`.
        return full
      elif full and full.split('.')[0] == name:
        return name
    return None
  if type(stmt) is cst.ImportFrom and type(stmt.names) is not cst.ImportStar:
    base = dotted(stmt.module) if stmt.module is not None else ''
    if stmt.relative:
      package = mod.package.split('.') if mod.package else []
      up = len(stmt.relative) - 1
      package = package[:len(package) - up] if up else package
      base = '.'.join([*package, base] if base else package)
    for alias in stmt.names:
      if (alias.asname.name.value if alias.asname else alias.name.value) == name:
        return f'{base}.{alias.name.value}' if base else alias.name.value
  return None


def _declares(mod: Module) -> bool:
  """Whether the module annotates a binding (its step with annotations may
  learn more than its step without)."""
  c = mod.c
  return any(site.annotation is not None for site in c.sites) or any(
      annotation is not None for _, _, _, annotation in c.class_attrs)


@dataclasses.dataclass
class _Steps:
  """What the steps of one module (`mod`, that very object) have depended on:
  the keys of the facts they read, the paths of the modules they looked up
  that were not loaded."""

  mod: Module
  reads: set[int] = dataclasses.field(default_factory=set)
  misses: set[str] = dataclasses.field(default_factory=set)


class Analysis:
  """Which expressions of the loaded modules are v0 managers, and where they
  come from (see the module docstring). Facts are keyed by `id()` of the
  nodes of every loaded tree."""

  def __init__(self, project: Project):
    self.project = project
    self.managers: dict[int, set[str]] = collections.defaultdict(set)  # Name/Param -> origins.
    self.instances: dict[int, set[int]] = collections.defaultdict(set)  # Binding -> classes.
    self.containers: dict[int, set[str]] = collections.defaultdict(set)  # Binding -> origins.
    self.attrs: dict[int, dict[str, set[str]]] = collections.defaultdict(dict)
    self.attr_classes: dict[int, dict[str, set[int]]] = collections.defaultdict(dict)
    self.attr_containers: dict[int, dict[str, set[str]]] = collections.defaultdict(dict)
    self.factories: dict[int, set[str]] = collections.defaultdict(set)  # Function -> origins.
    self.tuples: dict[int, dict[int, set[str]]] = collections.defaultdict(dict)
    self.declared_factories: set[int] = set()
    self.makers: dict[int, set[int]] = collections.defaultdict(set)  # Function -> classes.
    self.manager_classes: set[int] = set()
    self.bases: dict[int, list[cst.ClassDef]] = {}
    self.classes: dict[int, cst.ClassDef] = {}
    self.owner_mod: dict[int, Module] = {}  # id(def/param/target node) -> its module.
    self._resolving: set[int] = set()
    self._fixable_ids: set[int] = set()
    # (resolved, the paths of the modules not loaded the resolution looked up).
    self._resolved: dict[tuple[int, bool], tuple[list[Any], frozenset[str]]] = {}
    # During a step of the fixpoint: the keys (node ids) of the facts it read,
    # and of those it added to (see `solve`).
    self._reading: set[int] | None = None
    self._written: set[int] = set()
    self._steps: dict[str, _Steps] = {}  # Path -> what its module's steps depended on.
    self._options_classes: set[int] | None = None  # `options_subclass`, once solved.
    self.children: dict[int, list[int]] = {}  # Class -> its subclasses in the project.
    self.not_managers: set[int] = set()  # Params annotated with a class that is no manager.
    self.sites: dict[int, tuple[Module, cst.Call]] = {}  # id(construction) -> where.
    self.shim_via: set[int] = set()  # Imports a construction of the shim resolves through.

  @property
  def modules(self) -> list[Module]:
    return list(self.project.modules.values())

  # ---- resolution.
  def resolve(self, mod: Module, expr: cst.CSTNode | None) -> list[Any]:
    """What a Name or attribute chain may refer to: Local bindings, project
    modules (ModuleRef), or External qualified names. (The same during a solve:
    memoized.)"""
    if type(expr) not in (cst.Name, cst.Attribute):
      return []
    key = (id(expr), self.project.want)
    entry = self._resolved.get(key)
    project = self.project
    if entry is None:
      outer, project.misses = project.misses, set()
      try:
        found = self._resolve(mod, expr)
      finally:
        missed, project.misses = project.misses, outer
      entry = self._resolved[key] = (found, frozenset(missed) if missed else _NONE)
    if entry[1] and project.misses is not None:
      project.misses |= entry[1]
    return entry[0]

  def _resolve(self, mod: Module, expr: cst.CSTNode) -> list[Any]:
    if type(expr) is cst.Name:
      out = []
      for a in mod.assignments(expr):
        if type(a) is md.ImportAssignment:
          qname = _import_qname(a.node, expr.value, mod)
          if qname is not None:
            out.extend(self.resolve_qname(mod, qname, a.node))
        elif type(a) is md.Assignment:
          out.append(Local(mod, a.node))
      return out
    if type(expr) is cst.Attribute:
      out = []
      accessed = mod.assignments(expr)  # `import a.b`: libcst's access is `a.b`.
      if accessed:
        text = dotted(expr)
        for a in accessed:
          if type(a) is md.ImportAssignment:
            qname = _import_qname(a.node, text, mod)
            if qname is not None:
              out.extend(self.resolve_qname(mod, qname, a.node))
        if out:
          return out
      attr = expr.attr.value
      for t in self.resolve(mod, expr.value):
        if isinstance(t, External):
          out.append(External(f'{t.qname}.{attr}', t.via))
        elif isinstance(t, ModuleRef):
          out.extend(self.module_attr(t.mod, attr))
        elif isinstance(t, Local) and type(t.node) is cst.ClassDef:
          member = self._class_member(t.node, attr)
          if member is not None:
            out.append(member)
      return out
    return []

  def resolve_qname(self, mod: Module, qname: str, via: cst.CSTNode | None) -> list[Any]:
    found = self.project.find(qname, mod.path)
    if found is None or is_v0_module(qname) or is_shim_module(qname):
      return [External(qname, via)]
    path, rest = found
    target = self.project.module(path)
    if target is None:
      return [External(qname, via)]
    out: list[Any] = [ModuleRef(target)]
    for attr in rest.split('.') if rest else ():
      nxt = []
      for t in out:
        if isinstance(t, ModuleRef):
          nxt.extend(self.module_attr(t.mod, attr))
        elif isinstance(t, Local) and type(t.node) is cst.ClassDef:
          member = self._class_member(t.node, attr)
          if member is not None:
            nxt.append(member)
        elif isinstance(t, External):
          nxt.append(External(f'{t.qname}.{attr}', t.via))
      out = nxt
    return out

  def module_attr(self, mod: Module, name: str) -> list[Any]:
    """A module's top-level binding `name` (through its imports: re-exports)."""
    key = id(mod) ^ hash(name)
    if key in self._resolving:
      return []
    self._resolving.add(key)
    try:
      out = []
      scope = mod.scopes.get(mod.tree)
      assignments = scope.assignments[name] if scope is not None and name in scope.assignments \
          else ()
      for a in assignments:
        if type(a) is md.ImportAssignment:
          qname = _import_qname(a.node, name, mod)
          if qname is not None:
            out.extend(self.resolve_qname(mod, qname, a.node))
        elif type(a) is md.Assignment:
          out.append(Local(mod, a.node))
      if not out:  # A submodule: `from pkg import mod`.
        sub = f'{mod.name}.{name}' if os.path.basename(mod.path) == '__init__.py' else None
        if sub is not None:
          found = self.project.find(sub, mod.path)
          if found is not None and not found[1]:
            target = self.project.module(found[0])
            if target is not None:
              out.append(ModuleRef(target))
      return out
    finally:
      self._resolving.discard(key)

  def _class_member(self, cls: cst.ClassDef, name: str) -> Local | None:
    for c in self._lineage(id(cls)):
      mod = self.owner_mod.get(c)
      if mod is None:
        continue
      member = mod.c.members.get(c, {}).get(name)
      if member is not None:
        return Local(mod, member)
      for owner, attr, value, _ in mod.c.class_attrs:
        if id(owner) == c and attr == name and value is not None:
          for t in self.resolve(mod, value):
            if isinstance(t, Local) and type(t.node) is cst.ClassDef:
              return t
    return None

  def called_name(self, mod: Module, func: cst.BaseExpression) -> str | None:
    """The last attribute of a called name, through import aliases
    (`from orbax.checkpoint.args import StandardSave as S`: `S` -> StandardSave)."""
    if type(func) is cst.Attribute:
      return func.attr.value
    if type(func) is cst.Name:
      names = {t.qname.rpartition('.')[2] for t in self.resolve(mod, func)
               if isinstance(t, External)}
      return names.pop() if len(names) == 1 else func.value
    return None

  def api(self, mod: Module, expr: cst.CSTNode | None, leaf: str) -> str | None:
    """Whose `leaf` (e.g. `ocp.CheckpointManager`) `expr` names: NEW (orbax_compat's,
    also after the import swap), NATIVE (Orbax's own), SUBCLASS, or None; through
    aliases (`cls = ocp.CheckpointManager`, also `A if c else B`)."""
    kinds = self._api_kinds(mod, expr, leaf)
    for kind in (SUBCLASS, NATIVE, NEW):
      if kind in kinds:
        return kind
    return None

  def options_subclass(self, mod: Module, func: cst.BaseExpression) -> bool:
    """Whether `func` names a project class that subclasses
    `CheckpointManagerOptions` (also through its other subclasses). Only the
    report reads it (after the solve): the analysis treats such options as
    unseen (a subclass may change what its fields mean)."""
    if self._options_classes is None:
      self._options_classes = {c for c in self.classes if any(
          self._names_options(d) for d in self._lineage(c))}
    return bool(self._options_classes) and any(
        isinstance(t, Local) and id(t.node) in self._options_classes
        for t in self.resolve(mod, func))

  def _names_options(self, cls_id: int) -> bool:
    owner, cls = self.owner_mod.get(cls_id), self.classes.get(cls_id)
    return owner is not None and cls is not None and any(
        self.api(owner, _base_class(b), 'CheckpointManagerOptions') for b in cls.bases)

  def constructs(self, mod: Module, call: cst.Call) -> bool:
    """Whether `call` builds a manager (its class, an alias, a subclass, also a
    nested one reached as `self._Impl`)."""
    if self.api(mod, call.func, 'CheckpointManager') is not None:
      return True
    return type(call.func) is cst.Attribute and any(
        type(fn) is cst.ClassDef and self._manager_class(id(fn))
        for _, fn, _ in self.callees(mod, call.func))

  def excludes_managers(self, mod: Module, types: list[cst.BaseExpression]) -> bool:
    """Inside `if isinstance(x, T)`: whether T names only classes that are no
    manager (e.g. Orbax's emergency managers)."""
    for t in types:
      for e in (t.elements if type(t) is cst.Tuple else [t]):
        expr = e.value if type(e) is cst.Element else e
        found = self.resolve(mod, expr)
        if not found or self.api(mod, expr, 'CheckpointManager') is not None or any(
            isinstance(x, Local) and self._manager_class(id(x.node)) for x in found):
          break
      else:
        return True
    return False

  def _api_kinds(self, mod: Module, expr: cst.CSTNode | None, leaf: str) -> set[str]:
    if type(expr) is cst.IfExp:
      return self._api_kinds(mod, expr.body, leaf) | self._api_kinds(mod, expr.orelse, leaf)
    if type(expr) is cst.BooleanOperation:
      return self._api_kinds(mod, expr.left, leaf) | self._api_kinds(mod, expr.right, leaf)
    if type(expr) not in (cst.Name, cst.Attribute):
      return set()
    key = id(expr) ^ hash(leaf)
    if key in self._resolving:
      return set()
    self._resolving.add(key)
    try:
      kinds = set()
      for t in self.resolve(mod, expr):
        if isinstance(t, External):
          if is_api_qname(t.qname, leaf):
            shim = self._served_by_shim(mod, t)
            if shim and t.via is not None:
              self.shim_via.add(id(t.via))
            kinds.add(NEW if shim else NATIVE)
        elif type(t.node) is cst.ClassDef:
          if leaf == 'CheckpointManager' and self._manager_class(id(t.node)):
            kinds.add(SUBCLASS)
        elif type(t.node) is cst.Name:
          value = t.mod.c.assigned.get(id(t.node))
          if value is not None:
            kinds |= self._api_kinds(t.mod, value, leaf)
      return kinds
    finally:
      self._resolving.discard(key)

  def _served_by_shim(self, mod: Module, t: External) -> bool:
    """Whether a reference to the manager class names orbax_compat's after the
    rewrite: orbax_compat's own top-level class, Orbax's through an import
    `--fix` swaps, or a path `--fix` rewrites in the paths given. Orbax's
    class through a submodule (`ocp.checkpoint_manager.CheckpointManager`) is
    Orbax's own, after a swap too."""
    module = t.qname.rpartition('.')[0]
    if module == SHIM:
      return True
    if module == V0 and t.via is not None and id(t.via) in self._fixable_ids:
      return True
    return mod.target and t.qname in REWRITTEN_CLASS_PATHS

  def _manager_class(self, cls_id: int) -> bool:
    """Whether a class subclasses the manager, noted as read by the step."""
    if self._reading is not None:
      self._reading.add(cls_id)
    return cls_id in self.manager_classes

  def _fact(self, table: dict, key: int, empty: Any = _NONE) -> Any:
    """`table`'s facts of `key` (`empty` if none), noted as read by the step."""
    if self._reading is not None:
      self._reading.add(key)
    return table.get(key, empty)

  def _lineage(self, cls_id: int) -> Iterator[int]:
    seen, todo = set(), [cls_id]
    while todo:
      c = todo.pop()
      if c not in seen:
        seen.add(c)
        if self._reading is not None:  # Its bases are read.
          self._reading.add(c)
        yield c
        todo.extend(id(b) for b in self.bases.get(c, ()))

  def _attr_facts(self, table, classes: Iterable[int], name: str) -> set:
    out = set()
    for cls in classes:
      for c in self._lineage(cls):
        out |= self._fact(table, c, _NO_ATTRS).get(name, _NONE)
    return out

  def _methods(self, classes: Iterable[int], name: str) -> list[tuple[Module, cst.CSTNode]]:
    """The members `name` a call on an instance of `classes` may run: the one
    its class inherits, and overrides in the project's subclasses (dispatch)."""
    found = []
    for cls in classes:
      for c in self._lineage(cls):
        mod = self.owner_mod.get(c)
        member = mod.c.members.get(c, {}).get(name) if mod is not None else None
        if member is not None:
          found.append((mod, member))
          break
      for c in self._descendants(cls):
        mod = self.owner_mod.get(c)
        member = mod.c.members.get(c, {}).get(name) if mod is not None else None
        if member is not None and all(member is not f for _, f in found):
          found.append((mod, member))
    return found

  def _descendants(self, cls_id: int) -> Iterator[int]:
    if self._reading is not None:  # Its subclasses are read (and theirs, below).
      self._reading.add(cls_id)
    seen, todo = set(), list(self.children.get(cls_id, ()))
    while todo:
      c = todo.pop()
      if c not in seen:
        seen.add(c)
        if self._reading is not None:
          self._reading.add(c)
        yield c
        todo.extend(self.children.get(c, ()))

  def classes_of(self, mod: Module, expr: cst.CSTNode | None) -> set[int]:
    """The project's classes `expr` may be an instance of."""
    if type(expr) is cst.NamedExpr:
      return self.classes_of(mod, expr.value)
    if type(expr) in (cst.IfExp,):
      return self.classes_of(mod, expr.body) | self.classes_of(mod, expr.orelse)
    if type(expr) is cst.Name:
      out = set()
      for t in self.resolve(mod, expr):
        if isinstance(t, Local):
          owner = t.mod.c.class_of_self.get(id(t.node))
          if owner is not None:
            out.add(id(owner))
          out |= self._fact(self.instances, id(t.node))
      return out
    if type(expr) is cst.Attribute:
      out = self._attr_facts(self.attr_classes, self._receiver_classes(mod, expr),
                             expr.attr.value)
      for t in self.resolve(mod, expr):
        if isinstance(t, Local):
          out |= self._fact(self.instances, id(t.node))
      return out
    if type(expr) is cst.Call:
      cast = self._cast(mod, expr)
      if cast is not None:  # `typing.cast(T, x)`: x, said to be a T.
        return self._named_classes(mod, cast[0]) | self.classes_of(mod, cast[1])
      out = set()
      for _, fn, _ in self.callees(mod, expr.func):
        if type(fn) is cst.ClassDef:
          out.add(id(fn))
        else:
          out |= self._fact(self.makers, id(fn))
      return out
    return set()

  def _receiver_classes(self, mod: Module, attribute: cst.Attribute) -> set[int]:
    """The classes the value an attribute is read on may be an instance of;
    inside `if isinstance(x, T):`, `x.a` also T's."""
    out = self.classes_of(mod, attribute.value)
    for t in mod.c.narrowed.get(id(attribute), ()):
      out = out | self._named_classes(mod, t)
    return out

  def _named_classes(self, mod: Module, types: cst.BaseExpression) -> set[int]:
    """The project's classes a class expression names (also a tuple of them)."""
    out = set()
    for e in types.elements if type(types) is cst.Tuple else [types]:
      expr = e.value if type(e) is cst.Element else e
      out |= {id(t.node) for t in self.resolve(mod, expr)
              if isinstance(t, Local) and type(t.node) is cst.ClassDef}
    return out

  def _cast(self, mod: Module, call: cst.Call
            ) -> tuple[cst.BaseExpression, cst.BaseExpression] | None:
    """(T, x) of `typing.cast(T, x)` (any alias, also typing_extensions'), else None."""
    if len(call.args) != 2 or any(a.keyword is not None or a.star for a in call.args) or not any(
        isinstance(t, External) and t.qname in _CASTS for t in self.resolve(mod, call.func)):
      return None
    return call.args[0].value, call.args[1].value

  def callees(self, mod: Module, func: cst.BaseExpression
              ) -> list[tuple[Module, cst.CSTNode, bool]]:
    """(module, FunctionDef or ClassDef, bound: the first parameter is the receiver)
    a call of `func` may run."""
    out = []
    if type(func) is cst.Attribute:
      for fmod, fn in self._methods(self._receiver_classes(mod, func), func.attr.value):
        out.append((fmod, fn, id(fn) not in fmod.c.staticmethods))
    for t in self.resolve(mod, func):
      if isinstance(t, Local) and type(t.node) in (cst.FunctionDef, cst.ClassDef):
        if type(func) is cst.Attribute and type(t.node) is cst.FunctionDef and any(
            fn is t.node for _, fn, _ in out):
          continue
        out.append((t.mod, t.node, False))
    return out

  def origins(self, mod: Module, expr: cst.CSTNode | None) -> set[str]:
    """Where the manager `expr` evaluates to may come from (empty: not a manager,
    as far as the project tells)."""
    if type(expr) is cst.NamedExpr:
      return self.origins(mod, expr.value)
    if type(expr) is cst.Await:
      return self.origins(mod, expr.expression)
    if type(expr) is cst.IfExp:
      return self.origins(mod, expr.body) | self.origins(mod, expr.orelse)
    if type(expr) is cst.BooleanOperation:
      return self.origins(mod, expr.left) | self.origins(mod, expr.right)
    if type(expr) is cst.Subscript:
      return self.contained(mod, expr.value)
    if type(expr) is cst.Call:
      cast = self._cast(mod, expr)
      if cast is not None:
        return self.origins(mod, cast[1])
      kind = self.api(mod, expr.func, 'CheckpointManager')
      if kind == NEW:
        self.sites[id(expr)] = (mod, expr)
        return {NEW if self._plain_construction(expr) else NEW_ITEMS, SITE + str(id(expr))} | {
            OPTION + f for f in self.option_fields(mod, expr)}
      if kind is not None:
        return {kind}
      owner = mod.c.super_calls.get(id(expr))
      if owner is not None:
        return {SUBCLASS} if self._manager_class(id(owner)) else set()
      func = expr.func
      if type(func) is cst.Attribute and func.attr.value in ('get', 'pop', 'setdefault'):
        inside = self.contained(mod, func.value)
        if inside:
          return inside
      out = set()
      for _, fn, _ in self.callees(mod, func):
        if type(fn) is cst.ClassDef:  # e.g. a nested subclass, `self._Impl(d)`.
          if self._manager_class(id(fn)):
            out.add(SUBCLASS)
        else:
          out |= self._fact(self.factories, id(fn))
      return out
    if type(expr) is cst.Name:
      out = set()
      for t in self.resolve(mod, expr):
        if isinstance(t, Local):
          out |= self._fact(self.managers, id(t.node))
      return out
    if type(expr) is cst.Attribute:
      out = self._attr_facts(self.attrs, self._receiver_classes(mod, expr), expr.attr.value)
      for t in self.resolve(mod, expr):  # A module's attribute.
        if isinstance(t, Local):
          out |= self._fact(self.managers, id(t.node))
      return out
    return set()

  def contained(self, mod: Module, expr: cst.CSTNode | None) -> set[str]:
    """Origins of the managers a container (dict, list, tuple...) may hold."""
    if type(expr) in (cst.List, cst.Tuple, cst.Set):
      out = set()
      for e in expr.elements:
        out |= self.origins(mod, e.value) if type(e) is cst.Element else self.contained(
            mod, e.value)
      return out
    if type(expr) is cst.Dict:
      out = set()
      for e in expr.elements:
        if type(e) is cst.DictElement:
          out |= self.origins(mod, e.value)
      return out
    if type(expr) is cst.Name:
      out = set()
      for t in self.resolve(mod, expr):
        if isinstance(t, Local):
          out |= self._fact(self.containers, id(t.node))
      return out
    if type(expr) is cst.Attribute:
      return self._attr_facts(self.attr_containers, self._receiver_classes(mod, expr),
                              expr.attr.value)
    if type(expr) is cst.Call and type(expr.func) is cst.Attribute and (
        expr.func.attr.value in ('values', 'copy')):
      return self.contained(mod, expr.func.value)
    if type(expr) is cst.Call and type(expr.func) is cst.Name and (
        expr.func.value in ('list', 'tuple', 'sorted', 'reversed', 'set')) and expr.args:
      return self.contained(mod, expr.args[0].value)
    return set()

  def _elements(self, mod: Module, expr: cst.CSTNode | None) -> dict[int, set[str]] | None:
    """Origins per position of a tuple value (a literal, or a function returning one)."""
    if type(expr) in (cst.Tuple, cst.List):
      if any(type(e) is not cst.Element for e in expr.elements):
        return None
      return {i: self.origins(mod, e.value) for i, e in enumerate(expr.elements)}
    if type(expr) is cst.Call:
      out: dict[int, set[str]] = {}
      for _, fn, _ in self.callees(mod, expr.func):
        for i, o in self._fact(self.tuples, id(fn), _NO_ATTRS).items():
          out.setdefault(i, set()).update(o)
      return out or None
    return None

  def option_fields(self, mod: Module, construction: cst.Call) -> set[str]:
    """CheckpointManagerOptions fields a construction may set to a non-default
    value ('?': options it cannot see: built elsewhere, `**kwargs`, ...)."""
    bound = templates.bind_call(forms.signature('__init__'), construction)
    if bound is None:
      return {'?'}
    slot = bound.get('options')
    if slot is None or templates.is_none(slot):
      return set()
    values: list[tuple[Module, Any]] = [(mod, slot.node)]
    if type(slot.node) is cst.Name:
      values = [(t.mod, t.mod.c.assigned.get(id(t.node))) if isinstance(t, Local) else (mod, None)
                for t in self.resolve(mod, slot.node)]
    out = set()
    for vmod, value in values:
      if not (type(value) is cst.Call
              and self.api(vmod, value.func, 'CheckpointManagerOptions') is not None):
        return {'?'}
      for arg in value.args:
        if arg.keyword is None:
          return {'?'}
        is_literal, lit = templates.literal(arg.value)
        field = arg.keyword.value
        if not (is_literal and lit == templates.OPTION_DEFAULTS.get(field, object())):
          out.add(field)
    return out

  @staticmethod
  def _plain_construction(call: cst.Call) -> bool:
    """A construction of one unnamed item: only directory, options, metadata."""
    bound = templates.bind_call(forms.signature('__init__'), call)
    return bound is not None and all(
        name in ('directory', 'options', 'metadata') or templates.is_none(slot)
        for name, slot in bound.items())

  def is_manager(self, mod: Module, expr) -> bool:
    return bool(self.origins(mod, expr))

  def annotation(self, mod: Module, annotation: cst.CSTNode, scope) -> tuple[bool, set[int]]:
    """(says CheckpointManager, the project's classes it names), through Optional,
    Union, `X | None`, quotes and module-level type aliases."""
    expr = annotation
    if type(expr) in (cst.SimpleString, cst.ConcatenatedString):
      text = expr.evaluated_value
      if not isinstance(text, str):
        return False, set()
      try:
        parsed = cst.parse_expression(text.strip())
      except cst.ParserSyntaxError:
        return False, set()
      return self._string_annotation(mod, parsed, scope)
    if type(expr) is cst.BinaryOperation and type(expr.operator) is cst.BitOr:
      parts = [expr.left, expr.right]
    elif type(expr) is cst.Subscript:
      wrapper = dotted(expr.value) or ''
      if wrapper.rpartition('.')[2] not in _TYPING_WRAPPERS:
        return False, set()
      parts = [e.slice.value for e in expr.slice if type(e.slice) is cst.Index]
      if wrapper.endswith('Annotated'):
        parts = parts[:1]
    else:
      is_manager = self.api(mod, expr, 'CheckpointManager') is not None
      classes = set()
      for t in self.resolve(mod, expr):
        if isinstance(t, Local) and type(t.node) is cst.ClassDef:
          classes.add(id(t.node))
        elif isinstance(t, Local) and type(t.node) is cst.Name:
          value = t.mod.c.assigned.get(id(t.node))  # A type alias.
          if value is not None and id(value) not in self._resolving:
            self._resolving.add(id(value))
            try:
              is_manager = is_manager or self.annotation(t.mod, value, None)[0]
            finally:
              self._resolving.discard(id(value))
      return is_manager, classes
    manager, classes = False, set()
    for part in parts:
      mm, cc = self.annotation(mod, part, scope)
      manager, classes = manager or mm, classes | cc
    return manager, classes

  def _string_annotation(self, mod: Module, parsed: cst.BaseExpression, scope
                         ) -> tuple[bool, set[int]]:
    """A quoted annotation: its names looked up in the scope of the quotes."""
    if scope is None:
      return False, set()
    if type(parsed) is cst.BinaryOperation and type(parsed.operator) is cst.BitOr:
      a = self._string_annotation(mod, parsed.left, scope)
      b = self._string_annotation(mod, parsed.right, scope)
      return a[0] or b[0], a[1] | b[1]
    if type(parsed) is cst.Subscript:
      wrapper = dotted(parsed.value) or ''
      if wrapper.rpartition('.')[2] not in _TYPING_WRAPPERS:
        return False, set()
      out = (False, set())
      for e in parsed.slice:
        if type(e.slice) is cst.Index:
          r = self._string_annotation(mod, e.slice.value, scope)
          out = (out[0] or r[0], out[1] | r[1])
      return out
    text = dotted(parsed)
    if text is None:
      return False, set()
    head, _, rest = text.partition('.')
    classes, manager = set(), False
    for a in scope[head] if head in scope else ():
      targets: list[Any] = []
      if type(a) is md.ImportAssignment:
        qname = _import_qname(a.node, head, mod)
        if qname is not None:
          targets = self.resolve_qname(mod, f'{qname}.{rest}' if rest else qname, a.node)
      elif type(a) is md.Assignment and not rest:
        targets = [Local(mod, a.node)]
      for t in targets:
        if isinstance(t, External) and is_api_qname(t.qname, 'CheckpointManager'):
          manager = True
        elif isinstance(t, Local) and type(t.node) is cst.ClassDef:
          classes.add(id(t.node))
          manager = manager or self._manager_class(id(t.node))
    return manager, classes

  # ---- the fixpoint.
  def solve(self) -> None:
    """Solves over the modules loaded, going on from the last solve's facts
    (facts only grow); see `_steps_to_take`."""
    self._resolved.clear()  # Modules loaded since may resolve names differently.
    self._options_classes = None
    self._fixable_ids = {i for mod in self.modules for i in mod.fixable_imports}
    self._written = written = set()  # The keys the structure below changes.
    for mod in self.modules:
      for node in [*mod.c.functions, *mod.c.classes]:
        self.owner_mod[id(node)] = mod
      for cls in mod.c.classes:
        self.classes[id(cls)] = cls
    for mod in self.modules:
      for cls in mod.c.classes:
        found = [t.node for b in cls.bases for t in self.resolve(mod, _base_class(b))
                 if isinstance(t, Local) and type(t.node) is cst.ClassDef]
        known = self.bases.get(id(cls))
        if known is None or [id(b) for b in known] != [id(b) for b in found]:
          written.add(id(cls))
        self.bases[id(cls)] = found
        for base in found:
          if id(cls) not in self.children.get(id(base), ()):
            self.children.setdefault(id(base), []).append(id(cls))
            written.add(id(base))
    changed = True
    while changed:  # Subclasses of the manager (also of subclasses, across modules).
      changed = False
      for mod in self.modules:
        for cls in mod.c.classes:
          if id(cls) not in self.manager_classes and any(
              self.api(mod, b.value, 'CheckpointManager') for b in cls.bases) or (
              id(cls) not in self.manager_classes and any(
                  id(b) in self.manager_classes for b in self.bases.get(id(cls), ()))):
            self.manager_classes.add(id(cls))
            written.add(id(cls))
            changed = True
    for mod in self.modules:
      for param_id, cls in mod.c.class_of_self.items():
        if id(cls) in self.manager_classes:
          self._add(self.managers, param_id, {SUBCLASS})
      for param, _ in mod.c.params:
        manager, classes = self.annotation(mod, param.annotation.annotation,
                                           mod.scopes.get(param))
        if manager:
          self._add(self.managers, id(param), {DECLARED})
        elif classes and not classes & self.manager_classes and (
            id(param) not in self.not_managers):
          self.not_managers.add(id(param))  # Annotated with another class: trusted.
          written.add(id(param))
        self._add(self.instances, id(param), classes)
      for fn in mod.c.functions:
        if fn.returns is not None:
          manager, classes = self.annotation(mod, fn.returns.annotation, mod.scopes.get(fn))
          if manager:
            self.declared_factories.add(id(fn))
          self._add(self.makers, id(fn), classes)
    # First what the code shows, then annotations where it shows nothing (an
    # annotation beside a construction adds no origin).
    start = self._steps_to_take(written)
    news = set(written)  # Every key changed in this solve.
    modules = self.modules
    for declared in (False, True):
      if not declared:
        dirty = start | {p for p, s in self._steps.items() if not s.reads.isdisjoint(news)}
      else:
        # Annotated factories that return nothing the code shows.
        self._written = written = set()
        for fn_id in self.declared_factories:
          if not self.factories[fn_id]:
            self._add(self.factories, fn_id, {DECLARED})
        # Every module is now consistent with every fact (a step without
        # annotations learns nothing more); a step with them differs only
        # where the module annotates a binding (`_declares`).
        dirty = {p for p in start if _declares(self._steps[p].mod)} | {
            p for p, s in self._steps.items() if not s.reads.isdisjoint(written)}
      while dirty:
        for mod in modules:
          if mod.path not in dirty:
            continue
          dirty.discard(mod.path)
          steps = self._steps[mod.path]
          self._reading, self.project.misses = steps.reads, steps.misses
          self._written = written = set()
          try:
            self._step(mod, declared)
          finally:
            self._reading, self.project.misses = None, None
          if written:
            news |= written
            dirty.update(p for p, s in self._steps.items() if not s.reads.isdisjoint(written))

  def _steps_to_take(self, written: set[int]) -> set[str]:
    """The modules whose steps may learn something since the last solve.

    A step depends only on its module, the facts it reads (`_fact`, by the node
    they are about; the bases, subclasses and manager classes it reads, by
    class) and the modules its lookups found (`Project.module`). So the
    modules to step are the new ones, those whose lookups missed a module
    loaded since, and those that read a key `written` (by the structure above);
    then, in the loop, those that read a fact another step has added to. A
    module none of that touches would learn nothing: its last step (with
    annotations, which learns all that a step without them does) learnt nothing
    either.
    """
    loaded = {mod.path for mod in self.modules if not mod.light}
    start = set()
    for mod in self.modules:
      steps = self._steps.get(mod.path)
      if steps is None or steps.mod is not mod:
        self._steps[mod.path] = _Steps(mod)
        start.add(mod.path)
      elif not steps.misses.isdisjoint(loaded) or not steps.reads.isdisjoint(written):
        steps.misses -= loaded
        start.add(mod.path)
    return start

  def _add(self, table: dict, key: int, values: set) -> bool:
    """Adds to the facts of `key`; whether that is news."""
    known = table[key]
    if values - known:
      known |= values
      self._written.add(key)
      return True
    return False

  def _add_attr(self, table: dict, cls: int, name: str, values: set) -> bool:
    known = table[cls].setdefault(name, set())
    if values - known:
      known |= values
      self._written.add(cls)
      return True
    return False

  def _bind(self, mod: Module, target: cst.CSTNode, origins: set[str], classes: set[int],
            inside: set[str]) -> bool:
    """Records what `target` is bound to; whether that is news."""
    news = False
    if type(target) is cst.Name:
      news |= self._add(self.managers, id(target), origins)
      news |= self._add(self.instances, id(target), classes)
      news |= self._add(self.containers, id(target), inside)
    elif type(target) is cst.Attribute:
      for cls in self.classes_of(mod, target.value):
        news |= self._add_attr(self.attrs, cls, target.attr.value, origins)
        news |= self._add_attr(self.attr_classes, cls, target.attr.value, classes)
        news |= self._add_attr(self.attr_containers, cls, target.attr.value, inside)
    elif type(target) is cst.Subscript and origins:  # d[k] = manager
      news |= self._contain(mod, target.value, origins)
    return news

  def _contain(self, mod: Module, container: cst.CSTNode, origins: set[str]) -> bool:
    news = False
    if type(container) is cst.Name:
      for t in self.resolve(mod, container):
        if isinstance(t, Local):
          news |= self._add(self.containers, id(t.node), origins)
    elif type(container) is cst.Attribute:
      for cls in self.classes_of(mod, container.value):
        news |= self._add_attr(self.attr_containers, cls, container.attr.value, origins)
    return news

  def _bind_tuple(self, mod: Module, target: cst.CSTNode, value: cst.CSTNode | None) -> bool:
    elements = self._elements(mod, value)
    if elements is None or type(target) not in (cst.Tuple, cst.List):
      return False
    news = False
    for i, e in enumerate(target.elements):
      if type(e) is cst.StarredElement:
        break
      origins = elements.get(i, set())
      if origins:
        news |= self._bind(mod, e.value, origins, set(), set())
    return news

  def _step(self, mod: Module, declared: bool) -> bool:
    c, changed = mod.c, False
    for site in c.sites:
      origins = self.origins(mod, site.value)
      classes = self.classes_of(mod, site.value)
      inside = self.contained(mod, site.value)
      if site.annotation is not None:
        manager, more = self.annotation(mod, site.annotation, site.scope)
        classes = classes | more
        if manager and declared and not origins:
          origins = {DECLARED}
      for t in site.targets:
        if type(t) in (cst.Tuple, cst.List):
          changed |= self._bind_tuple(mod, t, site.value)
        else:
          changed |= self._bind(mod, t, origins, classes, inside)
    for target, iterable in c.loops:
      inside = self.contained(mod, iterable)
      if not inside:
        continue
      if type(target) is cst.Name:
        changed |= self._add(self.managers, id(target), inside)
      elif type(target) is cst.Tuple and len(target.elements) == 2 and type(
          iterable) is cst.Call and type(iterable.func) is cst.Attribute and (
              iterable.func.attr.value == 'items'):
        changed |= self._bind(mod, target.elements[1].value, inside, set(), set())
    for container, value in c.appends:
      origins = self.origins(mod, value)
      if origins:
        changed |= self._contain(mod, container, origins)
    for cls, name, value, annotation in c.class_attrs:
      origins = self.origins(mod, value)
      if not origins and declared and annotation is not None and self.annotation(
          mod, annotation, mod.scopes.get(annotation))[0]:
        origins = {DECLARED}
      changed |= self._add_attr(self.attrs, id(cls), name, origins)
      changed |= self._add_attr(self.attr_containers, id(cls), name, self.contained(mod, value))
    for fn, value in c.returns:
      changed |= self._add(self.factories, id(fn), self.origins(mod, value))
      changed |= self._add(self.makers, id(fn), self.classes_of(mod, value))
      if type(value) is cst.Tuple:
        for i, e in enumerate(value.elements):
          if type(e) is cst.Element:
            o = self.origins(mod, e.value)
            if o:
              known = self.tuples[id(fn)].setdefault(i, set())
              if o - known:
                known |= o
                self._written.add(id(fn))
                changed = True
    for cls in c.classes:  # Properties returning a manager are manager attributes.
      for name, method in c.members.get(id(cls), {}).items():
        origins = self._fact(self.factories, id(method))
        if origins and id(method) in c.properties:
          changed |= self._add_attr(self.attrs, id(cls), name, origins)
    for call in c.calls:  # Parameters that receive a manager at a call site.
      changed |= self._call_site(mod, call)
    return changed

  def _call_site(self, mod: Module, call: cst.Call) -> bool:
    given = []
    for i, arg in enumerate(call.args):
      if arg.star:
        break
      origins = self.origins(mod, arg.value)
      classes = self.classes_of(mod, arg.value) if not origins else set()
      if origins or classes:
        given.append((i, arg, origins, classes))
    if not given:
      return False
    self.project.want = True  # A function of a module not loaded yet: load it.
    try:
      callees = self.callees(mod, call.func)
    finally:
      self.project.want = False
    news = False
    for fmod, fn, bound in callees:
      if type(fn) is cst.ClassDef:
        init = self._methods([id(fn)], '__init__')
        if not init:
          continue
        fmod, fn = init[0]
        bound = True
      signature = fmod.c.signature.get(id(fn))
      if signature is None:
        continue
      positional, by_name = signature
      positional = positional[1:] if bound else positional
      for i, arg, origins, classes in given:
        if arg.keyword is not None:
          param = by_name.get(arg.keyword.value)
        else:
          param = positional[i] if i < len(positional) else None
        if param is None:
          continue
        if self._reading is not None:
          self._reading.add(id(param))
        if id(param) in self.not_managers:
          continue
        if origins:
          news |= self._add(self.managers, id(param), origins | {PARAM})
        news |= self._add(self.instances, id(param), classes)
    return news

  # ---- what a module offers others (for the text prefilter).
  def exports(self, mod: Module) -> set[str]:
    """Top-level names of `mod` that are manager-related: factories, classes
    holding, making or subclassing managers, managers, aliases."""
    scope = mod.scopes.get(mod.tree)
    out = set()
    if scope is None:
      return out
    for a in scope.assignments:
      if type(a) is md.ImportAssignment:
        name = a.name.split('.')[0]
        if self._related(self.module_attr(mod, name)):
          out.add(name)
      elif type(a) is md.Assignment and self._related([Local(mod, a.node)]):
        out.add(a.name)
    return out

  def want_bases(self) -> None:
    """Asks for the modules (not loaded yet) of the base classes of classes that
    hold or make managers, or whose methods do (a base may set or use the
    attribute)."""
    self.project.want = True
    try:
      for mod in self.modules:
        for cls in mod.c.classes:
          if not self.related_class(id(cls)) and not any(
              self.makers.get(id(f)) and any(self.related_class(c) for c in self.makers[id(f)])
              for f in mod.c.members.get(id(cls), {}).values()):
            continue
          for b in cls.bases:
            self.resolve(mod, _base_class(b))
    finally:
      self.project.want = False

  def related_class(self, cls_id: int) -> bool:
    """A class that is, holds (itself or through its bases), or makes managers."""
    if cls_id in self.manager_classes:
      return True
    for c in self._lineage(cls_id):
      if any(self.attrs.get(c, {}).values()) or any(self.attr_containers.get(c, {}).values()):
        return True
      mod = self.owner_mod.get(c)
      members = mod.c.members.get(c, {}).values() if mod is not None else ()
      if any(self.factories.get(id(f)) or self.tuples.get(id(f)) for f in members):
        return True
    return False

  def _related(self, targets: list[Any]) -> bool:
    for t in targets:
      if not isinstance(t, Local):
        continue
      i = id(t.node)
      if self.factories.get(i) or self.tuples.get(i):
        return True
      if any(self.related_class(c) for c in self.makers.get(i, ())):
        return True
      if type(t.node) is cst.ClassDef and self.related_class(i):
        return True
      if self.managers.get(i) or self.containers.get(i) or any(
          self.related_class(c) for c in self.instances.get(i, ())):
        return True
      if type(t.node) is cst.Name:
        value = t.mod.c.assigned.get(id(t.node))
        if value is not None and (
            self.api(t.mod, value, 'CheckpointManager') or self.api(
                t.mod, value, 'CheckpointManagerOptions')):
          return True
    return False


# --------------------------------------------------------------------------
# Loading the project.

_SEED = re.compile(rb'\bCheckpointManager')
_ORBAX = re.compile(rb'\borbax')


def _seeded(text: bytes) -> bool:
  """Names the manager (`in` first: a regex starting with \\b scans byte by byte)."""
  return b'CheckpointManager' in text and _SEED.search(text) is not None


def _names_orbax(text: bytes) -> bool:
  return b'orbax' in text and _ORBAX.search(text) is not None


def index(project: Project, texts: dict[str, bytes], load_one) -> Analysis:
  """Loads the modules that can matter and solves; see the module docstring.

  `texts` is every project file's text (for the prefilter); `load_one(path)`
  parses and collects one file (None when it cannot be parsed).
  """
  seeded = {p for p, t in texts.items() if _seeded(t)}
  pending = [p for p, t in texts.items()
             if p in seeded or (p in project.targets and _names_orbax(t))]
  # Files given that name orbax but not the manager: their imports only, until
  # something says they matter (the prefilter, or a lookup into them).
  light = {p for p in pending if p not in seeded}
  exported: dict[str, set[str]] = {}
  analysis = Analysis(project)
  while True:
    for path in pending:
      known = project.modules.get(path)
      if (known is None or known.light) and path not in project.failed:
        mod = load_one(path, path in light and known is None)
        if mod is None:
          project.failed.add(path)
        else:
          project.modules[path] = mod
    light = set()
    analysis.solve()  # Facts only grow: each round goes on from the last.
    analysis.want_bases()
    pending = sorted(p for p in project.wanted if p not in project.modules or (
        project.modules[p].light))
    project.wanted.clear()
    # Files that name a module and one of its manager-related names.
    new: dict[str, set[str]] = {}
    for path, mod in project.modules.items():
      names = analysis.exports(mod)
      if names - exported.get(path, set()):
        new[path] = names - exported.get(path, set())
        exported.setdefault(path, set()).update(names)
    if new:
      words_new = sorted({n.encode() for names in new.values() for n in names})
      every = re.compile(rb'\b(?:' + b'|'.join(map(re.escape, words_new)) + rb')\b')
      words = {src: project.files[src].rpartition('.')[2].encode() for src in new}
      bases = {src: re.compile(rb'\b' + re.escape(word) + rb'\b') for src, word in words.items()}
      for path, text in texts.items():
        if (path in project.modules and not project.modules[path].light) or (
            path in project.failed or path in pending):
          continue
        # `in` first: a regex starting with \b scans byte by byte.
        if not any(w in text for w in words_new) or not every.search(text):
          continue
        for src, names in new.items():
          if words[src] in text and bases[src].search(text) and any(
              n.encode() in text and re.search(rb'\b' + re.escape(n.encode()) + rb'\b', text)
              for n in names):
            pending.append(path)
            break
    if not pending:
      return analysis
