"""The mapping is pure data, true to the installed Orbax, and binds the runtime."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import subprocess
import sys

import orbax.checkpoint as ocp

from orbax_compat import runtime
from orbax_compat.compat import orbax as compat
from orbax_compat.mapping import forms
from orbax_compat.mapping import members
from orbax_compat.mapping import options
from orbax_compat.mapping import signatures


def test_mapping_imports_neither_jax_nor_orbax():
  code = ('import sys, orbax_compat.mapping.forms, orbax_compat.mapping.options; '
          'print(sorted(m for m in sys.modules if m.split(".")[0] in ("jax", "orbax", '
          '"numpy", "etils")))')
  out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True)
  assert out.stdout.strip() == '[]', out.stdout


def test_every_member_has_an_implementation_and_every_implementation_a_member():
  names = {m.name.strip('_') for m in members.MEMBERS}
  assert names == set(runtime.__all__) - {'wrap'}
  for name in names:
    assert callable(getattr(runtime, name)), name


def test_implementations_take_v0s_parameters_in_v0s_order():
  """The public members pass their arguments on by position."""
  for member in members.MEMBERS:
    if member.kind == 'protocol':
      continue
    implementation = getattr(runtime, member.name.strip('_'))
    theirs = list(inspect.signature(implementation).parameters)[1:]
    assert theirs == list(forms.signature(member.name).parameters)[1:], member.name


def test_signatures_are_the_installed_v0s():
  for name, text in signatures.MEMBERS.items():
    v0 = inspect.getattr_static(ocp.CheckpointManager, name)
    v0 = v0.fget if isinstance(v0, property) else v0
    assert forms.signature(name) == inspect.signature(v0), name
    assert str(forms.signature(name)) == text
  assert set(signatures.MEMBERS) == {m.name for m in members.MEMBERS if m.kind != 'protocol'}


def test_args_type_signatures_are_the_installed_v0s():
  for name in signatures.ARGS_TYPES:
    sig = inspect.signature(getattr(ocp.args, name))
    bare = [p.replace(annotation=inspect.Parameter.empty) for p in sig.parameters.values()]
    assert forms.args_signature(name) == sig.replace(
        parameters=bare, return_annotation=inspect.Signature.empty), name


def test_option_fields_and_defaults_are_the_installed_v0s():
  installed = [f.name for f in dataclasses.fields(ocp.CheckpointManagerOptions)]
  data = list(signatures.OPTIONS_FIELDS)
  # Fields of other supported releases (0.12.0-0.12.1: should_keep_fn) aside.
  assert [f for f in installed if f in data] == [f for f in data if f in installed]
  assert set(installed) - set(data) <= {'should_keep_fn'}
  fields = {f.name: f for f in dataclasses.fields(ocp.CheckpointManagerOptions)}
  for row in options.OPTIONS:
    field = fields.get(row.field)
    if field is None:
      continue  # A sub-field, or another release's field.
    if row.factory:
      assert field.default_factory.__name__ == row.factory, row.field
    else:
      assert field.default == row.default, row.field


def test_forms_name_only_placeholders():
  allowed = (set(members.PLACEHOLDERS) - set(members.ARGS_ONLY_PLACEHOLDERS)
             | set(members.V1_NAMES) | forms.BUILTINS)
  for member in members.MEMBERS:
    for form in member.forms:
      assert not forms.names_in(form.v0, form.v1) - allowed, form.v0
      assert set(form.unless) | set(form.requires) <= set(options.BY_FIELD), form
      assert not form.needs or form.needs in members.CAPABILITIES
  args_allowed = allowed | set(members.ARGS_ONLY_PLACEHOLDERS)
  for row in members.ARGS_TYPES:
    assert not forms.names_in(row.v0, row.v1, row.context or '0') - args_allowed, row.v0


def test_helpers_are_plain_v1_code():
  """Each helper defines its one function, and names only jax, np, builtins and
  helpers defined before it (so a module gets them in the table's order)."""
  seen = set()
  for name, source in members.HELPERS.items():
    tree = ast.parse(source)
    assert [type(n) for n in tree.body] == [ast.FunctionDef] and tree.body[0].name == name
    assert forms.names_in(source) - forms.BUILTINS - {'jax', 'np'} <= seen, name
    # Short enough for a four-space file (whose indentation doubles theirs).
    assert all(len(ln) + len(ln) - len(ln.lstrip()) <= 79 for ln in source.splitlines()), name
    assert forms.helper_order(forms.helpers_needed(name)) == [
        n for n in members.HELPERS if n in forms.helpers_needed(name)]
    seen.add(name)


def test_each_capability_is_detected():
  assert set(members.CAPABILITIES) == set(compat.CAPABILITIES)
  for name in members.CAPABILITIES:
    assert isinstance(compat.CAPABILITIES[name], bool)
    assert bool(compat.capability_missing(name)) is not compat.CAPABILITIES[name]


def test_parts_import_one_way():
  """manager -> runtime -> handlers -> compat; mapping below all; tools above."""
  import ast  # pylint: disable=g-import-not-at-top
  import pathlib  # pylint: disable=g-import-not-at-top

  rank = {'mapping': 0, 'compat': 1, 'handlers': 2, 'runtime': 3, 'manager': 4, 'tools': 5}
  package = pathlib.Path(forms.__file__).resolve().parents[1]
  upward = []
  for path in package.rglob('*.py'):
    parts = path.relative_to(package).with_suffix('').parts
    here = rank.get(parts[0].removesuffix('.py'))
    if here is None:
      continue  # The package's own __init__ and __main__ resolve names lazily.
    for node in ast.walk(ast.parse(path.read_text())):
      if isinstance(node, ast.ImportFrom) and (node.module or '').startswith('orbax_compat.'):
        targets = [f'{node.module}.{a.name}' for a in node.names]
      elif isinstance(node, ast.Import):
        targets = [a.name for a in node.names]
      else:
        continue
      for target in targets:
        dotted = target.split('.')
        there = rank.get(dotted[1]) if dotted[0] == 'orbax_compat' and len(dotted) > 1 else None
        if there is not None and there > here:
          upward.append(f'{path.relative_to(package)}:{node.lineno} imports {target}')
  assert not upward, upward
