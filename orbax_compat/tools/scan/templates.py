"""The table, read for one call: which form a call's syntax matches, and what
its v1 code needs.

The rules of `mapping.forms.matches`, on the call's libcst nodes: a Name
placeholder of the form's v0 pattern matches any argument or none; an args
call `ocp.args.X(...)` an argument that is a call of a name whose last
attribute is `X` (through import aliases); a constant an equal literal;
parameters the pattern leaves out must be absent, `None` or their default. A
call with `*`/`**` arguments matches no form. The patterns and the v1 code
are the mapping's (data, read with `ast`); the calls are libcst nodes.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
import dataclasses
import functools
import inspect
from typing import Any

import libcst as cst

from orbax_compat.mapping import forms
from orbax_compat.mapping import options as mapping_options
from orbax_compat.mapping.schema import Form
from orbax_compat.mapping.schema import Member
from orbax_compat.mapping.schema import Option

EXPERIMENTAL = 'orbax.checkpoint.experimental'
# Names the v1 code may use besides placeholders: (module they must name, import).
V1_IMPORTS = {
    'jax': ('jax', 'import jax'),
    'np': ('numpy', 'import numpy as np'),
    'ocp_v1': (EXPERIMENTAL + '.v1', forms.V1_IMPORT),
}
MANAGER_KINDS = ('init', 'method', 'property')


@dataclasses.dataclass(frozen=True)
class Template:
  """What the table says of one use: the form its call matches statically.

  `bindings` maps each placeholder of the form's v0 pattern that the call
  gives to the path of the argument (`('pos', i)` / `('kw', name)` steps, a
  second step inside an args call); `nodes` the same placeholders to their
  libcst expressions. `exact` says the call's args call (if any) gives
  nothing the pattern leaves out, so a rewrite drops nothing.
  """

  form: Form | None
  v0: str
  v1: str
  note: str
  bindings: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...] = ()
  nodes: dict[str, cst.BaseExpression] = dataclasses.field(default_factory=dict)
  exact: bool = True
  dropped: tuple[cst.BaseExpression, ...] = ()  # Given expressions the v1 code does not use.
  # No form matches statically: the form for the manager's kind (or the row's
  # general one), to advise with.
  advice: Form | None = None


class Slot:
  """An argument of a call, as bound by `inspect.Signature.bind`."""

  __slots__ = ('node', 'step')

  def __init__(self, node: Any, step: tuple[str, Any]):
    self.node, self.step = node, step


def note_of(row: Member, form: Form) -> str:
  return '; '.join(n for n in (form.note, row.note) if n)


def bind_call(signature: inspect.Signature, call: cst.Call) -> dict[str, Slot] | None:
  """{parameter: argument} of a libcst call for `signature`, or None if it cannot bind."""
  if any(a.star for a in call.args):
    return None
  positional = [Slot(a.value, ('pos', i)) for i, a in enumerate(
      a for a in call.args if a.keyword is None)]
  keywords = {a.keyword.value: Slot(a.value, ('kw', a.keyword.value))
              for a in call.args if a.keyword is not None}
  return _bind(signature, positional, keywords)


def _bind_pattern(signature: inspect.Signature, call: ast.Call) -> dict[str, Slot] | None:
  """The same for a pattern's `ast` call (the mapping's v0 code)."""
  if any(isinstance(a, ast.Starred) for a in call.args) or any(
      k.arg is None for k in call.keywords):
    return None
  positional = [Slot(a, ('pos', i)) for i, a in enumerate(call.args)]
  keywords = {k.arg: Slot(k.value, ('kw', k.arg)) for k in call.keywords}
  return _bind(signature, positional, keywords)


def _bind(signature, positional, keywords) -> dict[str, Slot] | None:
  first = next(iter(signature.parameters), None)
  receiver = [None] if first == 'self' else []
  try:
    bound = signature.bind(*receiver, *positional, **keywords).arguments
  except TypeError:
    return None
  return {k: v for k, v in bound.items() if isinstance(v, Slot)}


_CONSTANTS = {'True': True, 'False': False, 'None': None}


def literal(node: cst.CSTNode) -> tuple[bool, Any]:
  """(is a literal, its value) for a libcst expression."""
  if node.lpar if isinstance(node, cst.BaseExpression) else False:
    node = node.with_changes(lpar=(), rpar=())
  if isinstance(node, cst.Name) and node.value in _CONSTANTS:
    return True, _CONSTANTS[node.value]
  if isinstance(node, (cst.Integer, cst.Float, cst.Imaginary)):
    return True, node.evaluated_value
  if isinstance(node, cst.Ellipsis):
    return True, Ellipsis
  if isinstance(node, (cst.SimpleString, cst.ConcatenatedString)):
    value = node.evaluated_value
    return (value is not None), value
  if (isinstance(node, cst.UnaryOperation) and isinstance(node.operator, cst.Minus)
      and isinstance(node.expression, (cst.Integer, cst.Float))):
    return True, -node.expression.evaluated_value
  return False, None


def given(slot: Slot | None, default: Any) -> bool:
  """As `forms.matches`: an argument that is its parameter's default is not given."""
  if slot is None:
    return False
  is_literal, value = literal(slot.node)
  return not (is_literal and value is default)


def is_none(slot: Slot) -> bool:
  return literal(slot.node) == (True, None)


def is_pure(expr: cst.BaseExpression) -> bool:
  """Evaluating it again, or not at all, or in another order changes nothing:
  a name, a literal, or attributes of a name."""
  if isinstance(expr, cst.Attribute):
    return is_pure(expr.value)
  return isinstance(expr, cst.Name) or literal(expr)[0]


# What evaluating an argument does (`effects`): PURE, STABLE (no effects, the
# same value each time: any number of times), FRESH (no effects, a new object
# each time: at most once), IMPURE (anything else, e.g. a call: exactly once).
PURE, STABLE, FRESH, IMPURE = 'pure', 'stable', 'fresh', 'impure'
_RANK = {PURE: 0, STABLE: 1, FRESH: 2, IMPURE: 3}


def effects(expr: cst.BaseExpression) -> str:
  """PURE: a name, a literal, attributes of a name; STABLE: operators and
  subscripts of those; FRESH: displays (`[...]`, `{...}`, tuples), f-strings
  and lambdas of those; IMPURE: the rest (calls, comprehensions, await...)."""
  if is_pure(expr):
    return PURE

  def worst(*parts: cst.CSTNode, at_least: str = STABLE) -> str:
    found = [effects(p) for p in parts]
    return max([at_least, *found], key=_RANK.__getitem__)

  if isinstance(expr, cst.BinaryOperation):
    return worst(expr.left, expr.right)
  if isinstance(expr, cst.UnaryOperation):
    return worst(expr.expression)
  if isinstance(expr, cst.BooleanOperation):
    return worst(expr.left, expr.right)
  if isinstance(expr, cst.Comparison):
    return worst(expr.left, *(c.comparator for c in expr.comparisons))
  if isinstance(expr, cst.Attribute):
    return worst(expr.value)
  if isinstance(expr, cst.Subscript):
    parts = [expr.value]
    for element in expr.slice:
      if isinstance(element.slice, cst.Index):
        parts.append(element.slice.value)
      else:
        parts.extend(p for p in (element.slice.lower, element.slice.upper, element.slice.step)
                     if p is not None)
    return worst(*parts)
  if isinstance(expr, (cst.List, cst.Tuple, cst.Set)):
    return worst(*(e.value for e in expr.elements), at_least=FRESH)
  if isinstance(expr, cst.Dict):
    parts = []
    for e in expr.elements:
      parts.extend([e.key, e.value] if isinstance(e, cst.DictElement) else [e.value])
    return worst(*parts, at_least=FRESH)
  if isinstance(expr, cst.FormattedString):
    return worst(*(p.expression for p in expr.parts
                   if isinstance(p, cst.FormattedStringExpression)), at_least=FRESH)
  if isinstance(expr, cst.Lambda):
    return FRESH
  return IMPURE


def same_code(a: str, b: str) -> bool:
  """Two pieces of source are the same code (layout, comments aside)."""
  import textwrap  # pylint: disable=import-outside-toplevel
  try:
    return ast.dump(ast.parse(textwrap.dedent(a))) == ast.dump(ast.parse(textwrap.dedent(b)))
  except SyntaxError:
    return False


def template_of(row: Member, call: cst.Call | None,
                called_name: Callable[[cst.BaseExpression], str | None],
                kind: str = '') -> Template:
  """The first form of `row` whose pattern `call` matches (`call` None: the
  member used without a call): forms without `when` first, then, for a
  manager whose kind the construction shows (`kind`: 'single_item' or
  'named_items'), that kind's forms. No match: `form` None, and `advice` the
  form for the manager's kind (its first), else the row's first form (the
  runtime falls back to it too)."""
  signature = forms.signature(row.name)
  if (call is None) == (row.kind == 'property'):
    bound = bind_call(signature, call) if call is not None else {}
  else:
    bound = None  # A method used without a call, or a property called.
  candidates = [f for f in row.forms if not f.when] + [f for f in row.forms
                                                       if kind and f.when == kind]
  for form in candidates if bound is not None else ():
    if _form_matches(form, signature, bound, called_name):
      return _bound_template(row, form, signature, bound)
  advice = next((f for f in row.forms if kind and f.when == kind), row.forms[0])
  bindings: tuple = ()
  if bound is not None:  # The call's arguments, where the advice's pattern names them.
    bindings = _bound_template(row, advice, signature, bound).bindings
  return Template(None, advice.v0, advice.v1, note_of(row, advice), bindings, advice=advice)


def _form_matches(form: Form, signature: inspect.Signature, bound: dict[str, Slot],
                  called_name: Callable[[cst.BaseExpression], str | None]) -> bool:
  pattern = forms.pattern_arguments(form, signature)
  for name, param in signature.parameters.items():
    if name == 'self' or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
      continue
    slot = bound.get(name)
    is_given = given(slot, param.default)
    node = pattern.get(name)
    if node is None:
      if is_given and not is_none(slot):
        return False
      continue
    if isinstance(node, ast.Constant):
      is_literal, value = literal(slot.node) if is_given else (False, None)
      if not is_literal or value != node.value:
        return False
    elif forms.type_name(node) is not None:
      if not is_given or not isinstance(slot.node, cst.Call) or (
          called_name(slot.node.func) != forms.type_name(node)):
        return False
  return True


def _bound_template(row, form, signature, bound) -> Template:
  """The placeholders of `form`'s pattern, bound to the call's arguments."""
  pattern = forms.pattern_arguments(form, signature)
  bindings, nodes, dropped, exact = [], {}, [], True
  for name, slot in bound.items():
    node = pattern.get(name)
    if isinstance(node, ast.Name):
      bindings.append((node.id, (slot.step,)))
      nodes[node.id] = slot.node
    elif isinstance(node, ast.Call):
      if not isinstance(slot.node, cst.Call):  # Advice for a call that does not match it.
        exact = False
        continue
      dropped.append(slot.node.func)
      inner_signature = forms.args_signature(forms.type_name(node))
      inner_pattern = _bind_pattern(inner_signature, node) if inner_signature else None
      inner = bind_call(inner_signature, slot.node) if inner_signature else None
      if inner_pattern is None or inner is None:
        exact = False
        continue
      for inner_name, inner_slot in inner.items():
        placeholder = inner_pattern.get(inner_name)
        if placeholder is not None and isinstance(placeholder.node, ast.Name):
          bindings.append((placeholder.node.id, (slot.step, inner_slot.step)))
          nodes[placeholder.node.id] = inner_slot.node
        elif given(inner_slot, inner_signature.parameters[inner_name].default):
          exact = False
        else:
          dropped.append(inner_slot.node)
    else:
      dropped.append(slot.node)  # None, a default, or the pattern's constant.
  return Template(form, form.v0, form.v1, note_of(row, form), tuple(bindings), nodes, exact,
                  tuple(dropped))


@dataclasses.dataclass(frozen=True)
class Occurrence:
  name: str  # A placeholder.
  guarded: bool  # Evaluated conditionally or repeatedly (lambda, comprehension, if-else, and/or).
  scoped: bool  # Inside a lambda or comprehension (its own scope).
  around: frozenset[str]  # Names the v1 code binds around it.


@dataclasses.dataclass(frozen=True)
class CodeInfo:
  """What a rewrite must know of a form's v1 code."""

  expression: bool  # One expression (inline-able).
  occurrences: tuple[Occurrence, ...]  # Placeholders, in evaluation order.
  free: frozenset[str]  # jax / np / ocp_v1 used at the call.
  default_item: bool  # Names the item 'default': needs a single-item manager.
  helpers: tuple[str, ...] = ()  # `members.HELPERS` it calls, with theirs, callees first.
  helper_free: frozenset[str] = frozenset()  # jax / np / ocp_v1 the helpers use (module-level).


@functools.cache
def code_info(code: str) -> CodeInfo:
  body = ast.parse(code.strip()).body
  expression = len(body) == 1 and isinstance(body[0], ast.Expr)
  occurrences: list[Occurrence] = []

  def visit(node, guarded=False, scoped=False, around=frozenset()):
    if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
      if node.id in forms.PLACEHOLDERS and node.id not in around:
        occurrences.append(Occurrence(node.id, guarded, scoped, around))
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
  helpers = forms.helper_order(forms.helpers_needed(code))
  default_item = any(isinstance(n, ast.Constant) and n.value == 'default'
                     for source in (code, *(forms.members_lib.HELPERS[h] for h in helpers))
                     for n in ast.walk(ast.parse(source.strip())))
  free = forms.names_in(code) & set(V1_IMPORTS)
  helper_free = forms.names_in(*(forms.members_lib.HELPERS[h] for h in helpers)) & set(V1_IMPORTS)
  return CodeInfo(expression, tuple(occurrences), frozenset(free), default_item, tuple(helpers),
                  frozenset(helper_free))


# A v0 save returns False for a step the manager has; v1 raises. As a
# statement of its own, `GUARD and SAVE` becomes `if GUARD: SAVE` (its
# arguments effect-free: skipping them changes nothing), else
# `try: SAVE except STEP_EXISTS: pass` (each argument evaluated once).
STEP_EXISTS = 'ocp_v1.training.errors.StepAlreadyExistsError'


@functools.cache
def guarded(code: str) -> tuple[str, str] | None:
  """(guard, call) of v1 code `GUARD and CALL is not None` (a save), else None."""
  tree = ast.parse(code.strip(), mode='eval').body
  if not (isinstance(tree, ast.BoolOp) and isinstance(tree.op, ast.And)
          and len(tree.values) == 2):
    return None
  call = tree.values[1]
  if isinstance(call, ast.Compare) and isinstance(call.ops[0], ast.IsNot):
    call = call.left
  return ast.unparse(tree.values[0]), ast.unparse(call)


def first_line(code: str) -> str:
  """The first line of some code (' ...' when there is more)."""
  code = code.strip()
  line = code.split('\n', 1)[0].rstrip('\r')
  return line + ' ...' if len(line) < len(code) else line


def one_line(code: str) -> str:
  return '; '.join(line.strip() for line in code.strip().splitlines())


@functools.cache
def member_rows() -> dict[str, Member]:
  return {r.name: r for r in forms.MEMBERS if r.kind in ('method', 'property')}


@functools.cache
def option_rows() -> dict[str, Option]:
  return {r.field: r for r in mapping_options.OPTIONS if '.' not in r.field}


OPTION_DEFAULTS = {o.field: o.default for o in mapping_options.OPTIONS if not o.factory}
