"""The scanner's own walk gives what libcst's providers give (issue 18, speed).

`nodes.child_fields` must follow libcst's visit order, `nodes.Positions` must
give `PositionProvider`'s ranges, and the scopes `collect.Collector` builds in its
single walk must resolve names as `ScopeProvider` does. Checked node by node
on the test sources and on a module of awkward scoping.
"""

import ast
import concurrent.futures
import pathlib

import libcst as cst
from libcst import metadata as md
import pytest

from orbax_compat.tools.scan import collect
from orbax_compat.tools.scan import nodes

HERE = pathlib.Path(__file__).resolve().parent

SCOPING = '''\
import os.path
import orbax.checkpoint as ocp
from . import sibling as sib
from pkg.mod import (a, b as c)
from typing import Optional
x = 1
x = x + 1
y: int
del y


def outer(p, q=x, *args, r: "Optional[int]" = None, **kw) -> os.path.Path:
  global x
  z = [x for x in range(p) if x for w in range(x)]
  w = {k: v for k, v in kw.items()}
  g = (lambda u, v=q: u + v + p)(1)
  print(os.path.join('a', 'b').upper(), ocp.args.StandardSave, sib.thing)

  def inner():
    nonlocal z
    z = p
    return z, (n := 3), n
  try:
    pass
  except (ValueError, KeyError) as err:
    print(err)
  with open(p) as (f1, f2), open(q) as f3:
    print(f1, f2, f3)
  for i, (j, *k) in enumerate(args):
    print(i, j, k)
  else:
    print(i)
  match p:
    case {'k': v1, **rest}:
      print(v1, rest)
    case ocp.CheckpointManager(directory=d) | [d, *_]:
      print(d)
  return inner, g, w, f'{z!r:>{p}} {x}'


@ocp.decorator(x)
class C(ocp.Base, metaclass=type):
  attr = x
  other = [attr for _ in range(3)]

  def method(self, m: 'ocp.CheckpointManager') -> 'C':
    self.m = m
    return self.m.latest_step() + attr

  class Inner:
    value = C
'''


def sources() -> list[tuple[str, cst.Module]]:
  out = [('scoping', cst.parse_module(SCOPING))]
  for path in sorted([*(HERE / 'scan_sources').glob('*.py'),
                      *(HERE / 'scan_patterns').glob('*/*.py')]):
    out.append((path.name, cst.parse_module(path.read_bytes())))
  return out


def all_nodes(tree: cst.CSTNode) -> list[cst.CSTNode]:
  out, todo = [], [tree]
  while todo:
    node = todo.pop()
    out.append(node)
    todo.extend(node.children)
  return out


def test_child_fields_follow_libcsts_visit_order():
  for name, tree in sources():
    for node in all_nodes(tree):
      fields = nodes.visit_order(type(node))
      mine = []
      for field in fields:
        value = getattr(node, field)
        items = value if isinstance(value, (tuple, list)) else [value]
        mine.extend(v for v in items if isinstance(v, cst.CSTNode))
      assert [id(n) for n in mine] == [id(n) for n in node.children], (name, node)
      syntax = [id(n) for n in nodes.children(node)]
      assert set(syntax) <= {id(n) for n in node.children}
      for child in node.children:  # What the walk skips holds no name.
        if id(child) not in syntax:
          assert not any(isinstance(n, cst.Name) for n in all_nodes(child)), (name, child)


def test_positions_are_position_providers():
  for name, tree in sources():
    expected = md.MetadataWrapper(tree, unsafe_skip_copy=True).resolve(md.PositionProvider)
    positions = nodes.Positions(tree)
    for node, where in expected.items():
      assert positions[node] == where, (name, type(node).__name__)


def _scope_key(scope):
  if scope is None or isinstance(scope, (md.GlobalScope, md.BuiltinScope)):
    return type(scope).__name__
  return type(scope).__name__, id(scope.node)


def _assignment_key(a):
  return type(a).__name__, a.name, id(getattr(a, 'node', None)), _scope_key(a.scope)


def test_scopes_resolve_as_scope_provider_does():
  for name, tree in sources():
    expected = md.MetadataWrapper(tree, unsafe_skip_copy=True).resolve(md.ScopeProvider)
    mod = collect.Module(name, 'm', tree.code, tree, True)
    checked = 0
    syntax = {id(n) for n in all_nodes(tree)}
    for node, scope in expected.items():
      if id(node) not in syntax or not (
          isinstance(node, (cst.BaseExpression, cst.BaseStatement, cst.BaseSmallStatement,
                            cst.Param, cst.Arg, cst.Module))):
        continue  # Layout nodes, and the parsed text of string annotations.
      assert _scope_key(mod.scopes.get(node)) == _scope_key(scope), (name, node)
      if isinstance(node, (cst.Name, cst.Attribute)):
        theirs = {_assignment_key(a) for access in scope.accesses[node] for a in access.referents}
        assert {_assignment_key(a) for a in mod.assignments(node)} == theirs, (name, node)
        checked += 1
    for scope in {id(s): s for s in expected.values()}.values():
      if isinstance(scope, md.BuiltinScope) or scope is None:
        continue
      for assignment in scope.assignments:  # What each binding is read by (finish.py).
        if not isinstance(assignment, md.Assignment):
          continue
        mine = next(a for a in mod.scopes.get(assignment.node)[assignment.name]
                    if _assignment_key(a) == _assignment_key(assignment)) if (
            mod.scopes.get(assignment.node) is not None) else None
        if mine is None:
          continue
        assert ({id(r.node) for r in mod.scopes.references(mine)}
                == {id(r.node) for r in assignment.references  # Not string annotations:
                    if not isinstance(r.node, cst.SimpleString)}), (name, assignment.name)
        checked += 1
    assert checked



LAYOUT = (
    '# header comment\n'
    '\n'
    'import os; import orbax.checkpoint as ocp\n'
    '\n'
    '\n'
    '# before the decorators\n'
    '@ocp.decorator\n'
    '\n'
    '# between decorators\n'
    '@staticmethod\n'
    'def f(x):  # trailing\n'
    '  if x:\n'
    '    return ocp.CheckpointManager(x)\n'
    '    # indented comment after the block\n'
    '# dedented comment\n'
    '\n'
    'class C: m = ocp.CheckpointManager("d"); n = m.latest_step()\n'
    'x = (1 +\n'
    '     2)\x0c\n'
    'y = f"{x!r:>{3}}" \\\n'
    '    + "tail"\n'
    'if x:\n'
    '  pass\n'
    'else:\n'
    '  z = ocp.CheckpointManager(os.path.join("a", "b"))')  # No newline at the end.


def test_positions_one_statement_at_a_time():
  """With the module's text, statements are generated one at a time (hinted
  by the collector's top-level map, or in order), and give PositionProvider's
  ranges; the whole module is generated only for nodes outside the statements
  (header, footer), where Python cannot parse the text (a later grammar), or
  where the text is not the module's (the check fails)."""
  cases = [*sources(), ('layout', cst.parse_module(LAYOUT)),
           ('crlf', cst.parse_module(LAYOUT.replace('\n', '\r\n')))]
  for name, tree in cases:
    try:
      compile(tree.code, name, 'exec', ast.PyCF_ONLY_AST)
      python_parses = True
    except SyntaxError:
      python_parses = False
    expected = md.MetadataWrapper(tree, unsafe_skip_copy=True).resolve(md.PositionProvider)
    mod = collect.Module(name, 'm', tree.code, tree, True)
    hinted = mod.positions
    assert mod.c.top, name
    for i, node in enumerate(mod.c.calls + mod.c.attributes + [n for n, _ in mod.c.imports]):
      assert hinted[node] == expected[node], (name, i, type(node).__name__)
    assert hinted.whole is not python_parses, name
    unhinted = nodes.Positions(tree, tree.code)
    inside = {id(n) for stmt in tree.body for n in all_nodes(stmt)}
    for node, where in expected.items():
      if id(node) in inside:
        assert unhinted[node] == where, (name, type(node).__name__)
    assert unhinted.whole is not python_parses, name
    for node, where in expected.items():
      assert unhinted[node] == where, (name, type(node).__name__)
  tree = cst.parse_module(LAYOUT)
  shifted = nodes.Positions(tree, '\n' + LAYOUT)
  expected = md.MetadataWrapper(tree, unsafe_skip_copy=True).resolve(md.PositionProvider)
  for node, where in expected.items():
    assert shifted[node] == where, type(node).__name__
  assert shifted.whole


def test_parse_without_validation_builds_the_same_trees():
  """`nodes.parse_module` skips validating the parser's own output only: the
  trees equal libcst's, and nodes built afterwards are validated again (also
  after a parse that failed)."""
  texts = [SCOPING, *(p.read_bytes() for p in sorted([*(HERE / 'scan_sources').glob('*.py'),
                                                      *(HERE / 'scan_patterns').glob('*/*.py')]))]
  for text in texts:
    tree = nodes.parse_module(text)
    assert tree.deep_equals(cst.parse_module(text))
    assert tree.bytes == (text if isinstance(text, bytes) else text.encode())
  with pytest.raises(cst.ParserSyntaxError):
    nodes.parse_module('def (:\n')
  with concurrent.futures.ThreadPoolExecutor(4) as pool:  # Overlapping parses.
    trees = list(pool.map(nodes.parse_module, texts * 3))
  assert all(t.deep_equals(cst.parse_module(x)) for t, x in zip(trees, texts * 3, strict=True))
  with pytest.raises(cst.CSTValidationError):
    cst.Name('not a name')
  with pytest.raises(cst.CSTValidationError):
    cst.SimpleWhitespace('x')
