"""Reading the mapping: signatures, form matching and notice texts.

Shared by the runtime (which form a call is in, and its notice) and the static
tools (which form a call's syntax is in). Python's `ast` and `inspect` only:
no jax, no Orbax.
"""

from __future__ import annotations

import ast
import builtins
from collections.abc import Callable
import functools
import inspect
from typing import Any

from orbax_compat.mapping import members as members_lib
from orbax_compat.mapping import signatures
from orbax_compat.mapping.schema import Form
from orbax_compat.mapping.schema import Member

MEMBERS = members_lib.MEMBERS
BY_NAME: dict[str, Member] = {m.name: m for m in MEMBERS}
PLACEHOLDERS = members_lib.PLACEHOLDERS
V1_IMPORT = members_lib.V1_IMPORT
TABLE_FILE = members_lib.TABLE_FILE
BUILTINS = frozenset(dir(builtins))


def _parse_signature(text: str) -> inspect.Signature:
  """An `inspect.Signature` from its source text (literal defaults, string
  annotations: exactly what `inspect.signature` gives for v0's functions)."""
  fn = ast.parse(f'def f{text}: pass').body[0]
  args = fn.args

  def annotation(node):
    return inspect.Parameter.empty if node is None else ast.literal_eval(node)

  params = []
  positional = args.posonlyargs + args.args
  defaults = [inspect.Parameter.empty] * (len(positional) - len(args.defaults)) + [
      ast.literal_eval(d) for d in args.defaults]
  for arg, default in zip(positional, defaults, strict=True):
    params.append(inspect.Parameter(arg.arg, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                    default=default, annotation=annotation(arg.annotation)))
  if args.vararg:
    params.append(inspect.Parameter(args.vararg.arg, inspect.Parameter.VAR_POSITIONAL))
  for arg, default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
    params.append(inspect.Parameter(
        arg.arg, inspect.Parameter.KEYWORD_ONLY,
        default=inspect.Parameter.empty if default is None else ast.literal_eval(default),
        annotation=annotation(arg.annotation)))
  if args.kwarg:
    params.append(inspect.Parameter(args.kwarg.arg, inspect.Parameter.VAR_KEYWORD))
  return inspect.Signature(params, return_annotation=annotation(fn.returns))


@functools.cache
def signature(member: str) -> inspect.Signature:
  """v0's signature of a manager member (`self` included)."""
  return _parse_signature(signatures.MEMBERS[member])


@functools.cache
def args_signature(name: str) -> inspect.Signature | None:
  """The parameters of `orbax.checkpoint.args.<name>`, or None for another name."""
  text = signatures.ARGS_TYPES.get(name)
  return _parse_signature(text) if text is not None else None


def anchor(member: str) -> str:
  return f'{TABLE_FILE}#{member.strip("_").replace("_", "-")}'


def names_in(*sources: str) -> set[str]:
  """Free names pieces of code load (not those they bind themselves)."""
  loaded, bound = set(), set()
  for source in sources:
    for node in ast.walk(ast.parse(source)):
      if isinstance(node, ast.Name):
        (loaded if isinstance(node.ctx, ast.Load) else bound).add(node.id)
      elif isinstance(node, ast.arg):
        bound.add(node.arg)
      elif isinstance(node, ast.alias):
        bound.add((node.asname or node.name).split('.')[0])
      elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
        bound.add(node.name)
  return loaded - bound


def helpers_needed(*sources: str) -> set[str]:
  """The `members.HELPERS` some code calls, with those they call in turn."""
  todo = [n for n in names_in(*sources) if n in members_lib.HELPERS]
  out: set[str] = set()
  while todo:
    name = todo.pop()
    if name not in out:
      out.add(name)
      todo.extend(n for n in names_in(members_lib.HELPERS[name]) if n in members_lib.HELPERS)
  return out


def helper_order(names: set[str]) -> list[str]:
  """Helpers in the order `members.HELPERS` defines them (callees first)."""
  return [n for n in members_lib.HELPERS if n in names]


@functools.cache
def v0_call(form: Form) -> ast.Call | None:
  """The v0 call of a form (its outermost call), or None for a property."""
  calls = [n for n in ast.walk(ast.parse(form.v0)) if isinstance(n, ast.Call)]
  return calls[0] if calls else None


def type_name(node: ast.AST) -> str | None:
  """`X` for a pattern `...X(...)` (an args type in a v0 call), else None."""
  if isinstance(node, ast.Call):
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, 'id', None)
  return None


def pattern_arguments(form: Form, sig: inspect.Signature) -> dict[str, ast.AST]:
  """{parameter: pattern node} of a form's v0 call."""
  call = v0_call(form)
  if call is None:
    return {}
  params = [p for p in sig.parameters if p != 'self']
  pattern = dict(zip(params, call.args, strict=False))
  pattern.update({k.arg: k.value for k in call.keywords if k.arg})
  return pattern


def matches(form: Form, sig: inspect.Signature, bound: dict[str, Any],
            is_args_type: Callable[[Any, str], bool]) -> bool:
  """Whether bound call arguments fit `form`'s v0 pattern.

  A placeholder matches any value, or none; an args call `StandardSave(tree)`
  a value of that type (`is_args_type(value, 'StandardSave')`); a constant
  that value. Arguments the pattern leaves out must be left at their defaults
  (or None).
  """
  pattern = pattern_arguments(form, sig)
  for name, param in sig.parameters.items():
    if name == 'self':
      continue
    given = name in bound and bound[name] is not param.default
    node = pattern.get(name)
    if node is None:
      if given and bound[name] is not None:
        return False
      continue
    if isinstance(node, ast.Constant):
      if not given or bound[name] != node.value:
        return False
    elif type_name(node) is not None:
      if not given or not is_args_type(bound[name], type_name(node)):
        return False
  return True


def form_for(member: Member, bound: dict[str, Any] | None, kind: str,
             is_args_type: Callable[[Any, str], bool]) -> Form:
  """The form a call is in: `bound` its arguments (None: they do not bind),
  `kind` the manager's ('single_item', 'named_items' or '': undecided)."""
  if bound is None:
    return member.forms[0]
  sig = signature(member.name) if member.name in signatures.MEMBERS else None
  for form in member.forms:
    if form.when and form.when != kind:
      continue
    if sig is None or matches(form, sig, bound, is_args_type):
      return form
  return member.forms[0]


def message(member: Member, form: Form | None = None, *, missing: str = '',
            stub: bool = False) -> str:
  """A notice: the v0 call, its v1 code, and the table row (short lines).

  Where the v1 code needs a later release: `missing` (the runtime's sentence,
  when the installed Orbax lacks it), or with `stub` (the type stub, the same
  everywhere) the release it needs.
  """
  form = form or member.forms[0]
  where = anchor(member.name)
  head = f'{form.v0} is Orbax v0 API'
  lines = form.v1.strip().splitlines()
  if len(lines) == 1 and len(head) + len(lines[0]) < 110:
    text = f'{head}; in v1: {lines[0]} [{where}]'
  else:
    text = f'{head} [{where}]; in v1:' + ''.join(f'\n    {ln}' for ln in lines)
  if member.kind == 'init':
    text += (f'\n    ({V1_IMPORT}; until then ckptr = mngr.v1_checkpointer; '
             'your options in v1: orbax_compat.v1_source(mngr))')
  elif 'ocp_v1' in names_in(form.v1):
    text += f'\n    ({V1_IMPORT})'
  helpers = sorted(helpers_needed(form.v1))
  if helpers:
    text += f'\n    ({", ".join(helpers)}: {members_lib.HELPERS_ANCHOR})'
  if missing:
    text += f'\n    ({missing})'
  elif stub and form.needs:
    needs = members_lib.CAPABILITIES[form.needs]
    text += f'\n    ({needs.what} needs orbax-checkpoint {needs.release})'
  return text
