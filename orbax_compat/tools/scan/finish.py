"""Finishing: a manager whose every use is mechanical becomes a v1 Checkpointer.

`--to-v1` rewrites each mechanical call to v1 code on `mngr.v1_checkpointer`.
Where that covers a manager entirely, it goes one step further: the
construction itself becomes the `ocp_v1.training.Checkpointer(...)` that
`orbax_compat.v1_source` writes for its options (rendered statically, from the
options as written), its calls plain v1 calls on it, and a module left with no
v0 use drops its orbax_compat import. The program then runs on Orbax v1 alone,
on the checkpoints it wrote before.

`decide` reads the whole project for each construction of orbax_compat's
manager (an `index.SITE`): what it must be for that to change nothing, and
names what is left where it is not:

- built in a file among the paths given, with only directory, options and
  metadata (items are named in each v1 call);
- options readable as written (`sites.options_of`): literals, names of
  literals assigned once, named functions and lambdas whose names mean the
  same at the construction; every option set has a v1 form;
- every use of the manager, in every loaded module, is a member call
  `--to-v1` rewrites, `X.v1_checkpointer`, a binding (`m = X`, `self.m = X`,
  `with X as m`, `return X`), a test (`if X`, `X is None`) or a bare
  statement; anything else (passed to a function, put in a container,
  `isinstance`, an attribute v0 does not have) may see the class change;
- constructions whose managers meet at one use are finished together or not
  at all.
"""

from __future__ import annotations

import ast
import dataclasses
import re
import types
from typing import Any

import libcst as cst

from orbax_compat.mapping import options as mapping_options
from orbax_compat.tools.scan import index as index_lib
from orbax_compat.tools.scan import nodes
from orbax_compat.tools.scan import sites as sites_lib
from orbax_compat.tools.scan import templates
from orbax_compat.tools.scan.findings import Finding
from orbax_compat.tools.scan.index import SITE

V1_CHECKPOINTER = 'v1_checkpointer'
_FUNCTION_FIELDS = ('best_fn', 'should_save_fn', 'should_keep_fn')
_PLACEHOLDER = '__orbax_compat_value_{}__'
_METADATA = {'__orbax_compat_metadata__': 0}


@dataclasses.dataclass
class Decision:
  """One construction: finished (with its v1 code) or not (with what is left)."""

  key: str
  path: str
  line: int
  col: int
  finished: bool = False
  left: list[str] = dataclasses.field(default_factory=list)
  code: str = ''  # The v1 constructor (an expression), when finished.
  imports: tuple[str, ...] = ()
  remove: set[int] = dataclasses.field(default_factory=set)  # Statements to drop.
  unwrap: set[int] = dataclasses.field(default_factory=set)  # `X.v1_checkpointer` -> X.
  gone: set[int] = dataclasses.field(default_factory=set)  # Finding nodes the finish removes.
  first: bool = True  # One entry per construction in the report.

  @property
  def where(self) -> str:
    return f'{self.path}:{self.line}:{self.col}'

  def to_json(self) -> dict[str, Any]:
    return {'path': self.path, 'line': self.line, 'col': self.col, 'finished': self.finished,
            'left': list(self.left)}

  def text(self) -> str:
    if self.finished:
      return f'{self.where}: CheckpointManager: finished: now ocp_v1.training.Checkpointer'
    return f'{self.where}: CheckpointManager: not finished: ' + '; '.join(self.left)


def decide(scan, swap_all: bool = False) -> dict[str, Decision]:
  """{site key: Decision} for every construction of orbax_compat's manager."""
  analysis = scan.analysis
  targets = [m for m in scan.project.modules.values() if m.target and not m.light]
  findings: list[Finding] = []
  for mod in targets:
    findings.extend(scan.findings_of(mod, swap_all))
  # The sites are known once every target's findings were computed.
  decisions: dict[str, Decision] = {}
  for key_id, (mod, call) in analysis.sites.items():
    where = mod.positions[call].start
    line, col = where.line, where.column + 1
    if mod.notebook is not None:
      _, line = mod.notebook.locate(line)
    decisions[SITE + str(key_id)] = Decision(SITE + str(key_id), mod.path, line, col)
  others = _other_constructions(analysis, findings, decisions)
  if not decisions:
    return others
  by_receiver = {id(f.receiver_node): f for f in findings if f.receiver_node is not None}
  groups = _Groups(decisions)
  for f in findings:
    keys = [k for k in f.sites if k in decisions]
    if f.kind in ('method', 'property') and keys:
      groups.join(keys)
      if not f.to_v1:
        for k in keys:
          where = f'line {f.line}' if f.path == decisions[k].path else f'{f.path}:{f.line}'
          decisions[k].left.append(f'{where}: {f.code.strip()} kept: '
                                   f'{f.reason or "no mechanical form"}')
  for mod in [m for m in scan.project.modules.values() if not m.light]:
    _uses(analysis, mod, decisions, by_receiver, groups)
  for key, d in decisions.items():
    mod, call = analysis.sites[int(key[len(SITE):])]
    if not mod.target:
      d.left.insert(0, 'built in a file not among the paths given')
      continue
    _construction(analysis, mod, call, d)
  for group in groups.components():
    if all(not decisions[k].left for k in group):
      for k in group:
        decisions[k].finished = True
    else:
      for k in group:
        if not decisions[k].left:
          others = sorted(decisions[o].where for o in group if decisions[o].left)
          decisions[k].left.append('its uses are shared with managers built at '
                                   + ', '.join(others) + ', which are not finished')
  for d in decisions.values():
    if not d.finished:
      d.code, d.imports = '', ()
      d.remove.clear()
      d.gone.clear()
      d.unwrap.clear()
  decisions.update(others)
  return decisions


def _other_constructions(analysis, findings: list[Finding], sites: dict[str, Decision]
                         ) -> dict[str, Decision]:
  """Constructions of a manager that is not orbax_compat's own class (a
  subclass, Orbax's class where no rewrite reaches): never finished, and why."""
  out = {}
  for f in findings:
    if f.kind != 'init' or f.node is None or SITE + str(id(f.node)) in sites:
      continue
    func = templates.first_line(layout_code(f.node.func))
    mod = next((m for m in analysis.modules if m.path == f.path), None)
    kind = analysis.api(mod, f.node.func, 'CheckpointManager') if mod is not None else None
    if kind == index_lib.NATIVE:
      why = f'built by Orbax\'s own class ({func}), which no swap or rewrite reaches here'
    else:
      why = (f'built by a subclass of the manager ({func}): its overrides may differ from '
             'v1\'s calls; finish it by hand')
    out['other:' + str(id(f.node))] = Decision('other:' + str(id(f.node)), f.path, f.line,
                                               f.col, left=[why])
  return out


def layout_code(node: cst.CSTNode) -> str:
  return cst.Module([]).code_for_node(node)


class _Groups:
  """Union-find over construction sites that share a use."""

  def __init__(self, keys):
    self.parent = {k: k for k in keys}

  def find(self, k):
    while self.parent[k] != k:
      self.parent[k] = self.parent[self.parent[k]]
      k = self.parent[k]
    return k

  def join(self, keys):
    first = self.find(keys[0])
    for k in keys[1:]:
      self.parent[self.find(k)] = first

  def components(self):
    out: dict[str, list[str]] = {}
    for k in self.parent:
      out.setdefault(self.find(k), []).append(k)
    return list(out.values())


# --------------------------------------------------------------------------
# Uses: every expression that may be one of the managers, and where it sits.

_TRANSPARENT = (cst.IfExp, cst.BooleanOperation, cst.NamedExpr)


_SKIPPED = (cst.Import, cst.ImportFrom, cst.Param, cst.AssignTarget, cst.AsName, cst.Decorator)
_FOUND = (cst.Name, cst.Attribute, cst.Call, cst.Subscript)


def _walk(node: cst.CSTNode, stack: list[cst.CSTNode],
          found: list[tuple[cst.CSTNode, list[cst.CSTNode]]]) -> None:
  """Name, Attribute, Call and Subscript nodes read as values, with their
  parents (targets, parameters, keywords and attribute names skipped), in
  libcst's visit order; a walk of the syntax fields (`nodes.children`), which
  rebuilds nothing."""
  t = type(node)
  if t in _SKIPPED:
    return
  if t in _FOUND:
    found.append((node, list(stack)))
  stack.append(node)
  if t is cst.Attribute or t is cst.Arg:
    parts: Any = (node.value,)
  elif t is cst.FunctionDef or t is cst.ClassDef:
    parts = (*node.decorators, *getattr(node, 'bases', ()), node.body)
  elif t is cst.For:
    parts = (node.iter, node.body, node.orelse)
  elif t is cst.CompFor:
    parts = (node.iter, *node.ifs, node.inner_for_in)
  elif t is cst.AugAssign or t is cst.AnnAssign:
    parts = (node.value,)
  elif t is cst.Del:
    parts = ()
  else:
    parts = nodes.children(node)
  for part in parts:
    if part is not None:
      _walk(part, stack, found)
  stack.pop()


def _describe(mod, node) -> str:
  where = mod.positions[node].start
  line = where.line
  if mod.notebook is not None:
    cell, line = mod.notebook.locate(line)
    return f'{mod.path}[{cell}]:{line}'
  return f'{mod.path}:{line}'


def _uses(analysis, mod, decisions, by_receiver, groups) -> None:
  found: list[tuple[cst.CSTNode, list[cst.CSTNode]]] = []
  _walk(mod.tree, [], found)
  for node, stack in found:
    keys = [o for o in analysis.origins(mod, node) if o in decisions]
    if not keys:
      continue
    groups.join(keys)
    problem = _context(mod, node, stack, by_receiver, decisions, keys)
    if problem:
      for k in keys:
        where = _describe(mod, node)
        if where.startswith(decisions[k].path + ':'):
          where = 'line ' + where[len(decisions[k].path) + 1:]
        decisions[k].left.append(f'{where}: {problem}')


def _context(mod, node, stack, by_receiver, decisions, keys) -> str:
  """Why a use of the manager may see the class change ('' if it cannot)."""
  code = templates.first_line(mod.tree.code_for_node(node).strip())
  if not mod.target:
    return f'`{code}` is used in a file not among the paths given'
  child = node
  parents = list(reversed(stack))
  i = 0
  while i < len(parents) and (
      isinstance(parents[i], _TRANSPARENT) and not (
          isinstance(parents[i], cst.IfExp) and parents[i].test is child)
      or isinstance(parents[i], cst.NamedExpr)):
    child = parents[i]
    i += 1
  parent = parents[i] if i < len(parents) else None
  if isinstance(parent, cst.Attribute) and parent.value is child:
    if parent.attr.value == V1_CHECKPOINTER:
      for k in keys:
        decisions[k].unwrap.add(id(parent))
      return ''
    use = by_receiver.get(id(child))
    if use is not None:
      return ''  # A member use: its own finding says whether it is rewritten.
    return f'`{code}.{parent.attr.value}` is not v0 API this tool rewrites'
  if isinstance(parent, (cst.Assign, cst.AnnAssign)) and parent.value is child:
    targets = [t.target for t in parent.targets] if isinstance(parent, cst.Assign) else [
        parent.target]
    if all(isinstance(t, (cst.Name, cst.Attribute)) for t in targets):
      return ''
    return f'`{code}` is kept in a container or unpacked'
  if isinstance(parent, (cst.WithItem, cst.Return, cst.Expr)):
    return ''
  if isinstance(parent, (cst.If, cst.While)) and parent.test is child:
    return ''
  if isinstance(parent, cst.IfExp) and parent.test is child:
    return ''
  if isinstance(parent, cst.UnaryOperation) and isinstance(parent.operator, cst.Not):
    return ''
  if isinstance(parent, cst.Comparison) and len(parent.comparisons) == 1:
    c = parent.comparisons[0]
    other = c.comparator if parent.left is child else parent.left
    if isinstance(c.operator, (cst.Is, cst.IsNot)) and templates.literal(other) == (True, None):
      return ''
  if isinstance(parent, cst.Arg):
    call = next((p for p in parents[i + 1:] if isinstance(p, cst.Call)), None)
    name = templates.first_line(mod.tree.code_for_node(call.func)) if call is not None else '?'
    return f'`{code}` is passed to {name}()'
  if isinstance(parent, (cst.Element, cst.DictElement, cst.StarredElement)):
    return f'`{code}` is kept in a container'
  if isinstance(parent, cst.FormattedStringExpression):
    return f'`{code}` is formatted into a string'
  kind = type(parent).__name__ if parent is not None else 'module'
  return f'`{code}` is used in a {kind} this tool does not follow'


# --------------------------------------------------------------------------
# The construction: the v1 constructor for its options, as written.


def _construction(analysis, mod, call: cst.Call, d: Decision) -> None:
  site = sites_lib.Site(mod, call)
  if sites_lib.kind_of_site(analysis, site) or not analysis._plain_construction(call):  # pylint: disable=protected-access
    d.left.insert(0, 'built with item names, item handlers or legacy checkpointers: v1 names '
                     'the items in each call')
    return
  bound = templates.bind_call(_init_signature(), call)
  others = [n for n, slot in bound.items()
            if n not in ('directory', 'options', 'metadata') and not templates.is_none(slot)]
  if others:
    d.left.insert(0, f'built with {", ".join(others)}, which v1\'s Checkpointer does not take')
    return
  options = sites_lib.options_of(analysis, site)
  if not options.readable:
    d.left.insert(0, f'its options cannot be read statically: {options.why}')
    return
  values, sources, why = _option_values(analysis, options, mod, call)
  if why:
    d.left.insert(0, why)
    return
  no_form = []
  for field, value in values.items():
    row = mapping_options.BY_FIELD.get(field)
    if row is not None and (row.instead or row.refused) and value != row.default:
      no_form.append(f'{field} ({row.instead or row.refused})')
  if no_form:
    d.left.insert(0, 'options without a v1 form: ' + '; '.join(no_form))
    return
  directory = bound.get('directory')
  if directory is None:
    d.left.insert(0, 'built without a directory')
    return
  metadata = bound.get('metadata')
  metadata_source = None
  if metadata is not None and not templates.is_none(metadata):
    metadata_source = mod.tree.code_for_node(metadata.node).strip()
  try:
    code = _render(values, sources, mod.tree.code_for_node(directory.node).strip(),
                   metadata_source)
  except (TypeError, ValueError) as e:
    d.left.insert(0, f'v1_source cannot write its options: {e}')
    return
  if re.search(r'(?<![\w.])options\.', code):
    d.left.insert(0, 'its v1 constructor needs the options object itself: ' +
                  ', '.join(sorted(set(re.findall(r'(?<![\w.])options\.\w+', code)))))
    return
  d.code = code
  d.imports = ('from orbax.checkpoint.experimental import v1 as ocp_v1',) + (
      ('import datetime',) if 'datetime.' in code else ())
  # The options statement goes with the construction when nothing else reads it.
  if options.name is not None and options.call is not None:
    statement = _statement_of(options.mod, options.call)
    if statement is not None and _read_once(options.mod, options.name):
      d.remove.add(id(statement))
      d.gone.update(id(a) for a in options.call.args)
  elif options.call is not None:
    d.gone.update(id(a) for a in options.call.args)


def _init_signature():
  from orbax_compat.mapping import forms  # pylint: disable=import-outside-toplevel
  return forms.signature('__init__')


def _statement_of(mod, call: cst.Call) -> cst.CSTNode | None:
  statement = mod.c.statement.get(id(call))
  if (isinstance(statement, cst.SimpleStatementLine) and len(statement.body) == 1
      and isinstance(statement.body[0], cst.Assign) and statement.body[0].value is call
      and len(statement.body[0].targets) == 1
      and isinstance(statement.body[0].targets[0].target, cst.Name)):
    return statement
  return None


def _read_once(mod, name: cst.Name) -> bool:
  """The options name is read once (by the construction) and assigned once."""
  scope = mod.scopes.get(name)
  if scope is None:
    return False
  assignments = [a for a in scope[name.value]] if name.value in scope else []
  if len(assignments) != 1:
    return False
  return len(mod.scopes.references(assignments[0])) == 1


def _option_values(analysis, options: sites_lib.Options, mod, call
                   ) -> tuple[dict[str, Any], dict[str, str], str]:
  """({field: value for CheckpointManagerOptions}, {placeholder: source}, why not)."""
  values: dict[str, Any] = {}
  sources: dict[str, str] = {}
  for field, node in options.fields.items():
    is_literal, value = templates.literal(node)
    if not is_literal and isinstance(node, (cst.List, cst.Tuple, cst.Set)):
      try:
        value = ast.literal_eval(options.mod.tree.code_for_node(node).strip())
        is_literal = True
      except (ValueError, SyntaxError):
        pass
    if is_literal:
      values[field] = value
      continue
    if isinstance(node, cst.Name) and field not in _FUNCTION_FIELDS:
      targets = analysis.resolve(options.mod, node)
      assigned = [t.mod.c.assigned.get(id(t.node)) for t in targets
                  if isinstance(t, index_lib.Local)]
      if len(targets) == 1 and assigned and assigned[0] is not None and templates.literal(
          assigned[0])[0]:
        values[field] = templates.literal(assigned[0])[1]
        continue
    if field in _FUNCTION_FIELDS and isinstance(node, (cst.Name, cst.Lambda)):
      names = ({node.value} if isinstance(node, cst.Name) else
               index_lib.names_in(node.body) - {p.name.value for p in node.params.params})
      if all(sites_lib.same_binding(options.mod, node, mod, call, n) for n in names):
        placeholder = _PLACEHOLDER.format(len(sources))
        sources[placeholder] = options.mod.tree.code_for_node(node).strip()
        values[field] = _stand_in(placeholder)
        continue
      return {}, {}, (f'its option {field}= names something the construction does not see '
                      'the same way')
    shown = templates.first_line(options.mod.tree.code_for_node(node).strip())
    return {}, {}, f'its option {field}={shown} cannot be read statically'
  return values, sources, ''


def _stand_in(name: str) -> types.FunctionType:
  """A function v1_source renders by its name (a placeholder for the source)."""
  fn = types.FunctionType((lambda *a, **k: None).__code__, {}, name)
  fn.__qualname__ = name
  return fn


def _render(values: dict[str, Any], sources: dict[str, str], directory: str,
            metadata: str | None) -> str:
  import orbax.checkpoint as ocp  # pylint: disable=import-outside-toplevel

  from orbax_compat.tools import v1_config  # pylint: disable=import-outside-toplevel

  options = ocp.CheckpointManagerOptions(**values)
  code = v1_config.v1_source('unused', options, _METADATA if metadata is not None else None,
                             directory_source=directory)
  if metadata is not None:
    code = code.replace(repr(_METADATA), metadata)
  for placeholder, source in sources.items():
    code = code.replace(placeholder, source)
  return code


def reindented(code: str, indent: str, unit: str) -> str:
  """v1_source's code (four spaces a level) for a line indented by `indent`
  in a file indented by `unit`."""
  lines = code.split('\n')
  out = [lines[0]]
  for line in lines[1:]:
    stripped = line.lstrip(' ')
    levels, extra = divmod(len(line) - len(stripped), 4)
    out.append(indent + unit * levels + ' ' * extra + stripped)
  return '\n'.join(out)

