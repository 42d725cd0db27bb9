"""The findings of one module: imports, constructions, options, member uses.

Driven by the mapping (`mapping.members`, `mapping.options`) and by the
whole-repo `index.Analysis` (which expressions are managers). Each member use
reports the form of the table its call matches statically, that form's v1
code and note, and whether `--to-v1` rewrites it (`safety.plan_v1`).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import libcst as cst

from orbax_compat.mapping import forms
from orbax_compat.mapping import orbax_names
from orbax_compat.mapping import signatures
from orbax_compat.tools.scan import collect
from orbax_compat.tools.scan import index as index_lib
from orbax_compat.tools.scan import safety
from orbax_compat.tools.scan import sites as sites_lib
from orbax_compat.tools.scan import templates
from orbax_compat.tools.scan.findings import SHIM
from orbax_compat.tools.scan.findings import V0
from orbax_compat.tools.scan.findings import Finding
from orbax_compat.tools.scan.index import dotted
from orbax_compat.tools.scan.templates import first_line

SUBMODULE_NOTE = (
    f'left by --fix: a submodule of {V0}; {SHIM} re-exports only its top-level names '
    '(these objects are Orbax\'s own)'
)
CONSTRUCTION_KEPT = ('constructions stay: the v1 constructor for your options is '
                     'orbax_compat.v1_source(mngr)')
_LINES = re.compile(r'[^\r\n]*(?:\r\n|\r|\n|$)')


class Text:
  """A module's source lines, for code excerpts by position."""

  def __init__(self, text: str):
    self.lines = _LINES.findall(text)

  def segment(self, start, end) -> str:
    line, col, end_line, end_col = start.line, start.column, end.line, end.column
    if line == end_line:
      return self.lines[line - 1][col:end_col]
    return ''.join([self.lines[line - 1][col:], *self.lines[line:end_line - 1],
                    self.lines[end_line - 1][:end_col]])


def may_use_orbax(text: bytes | str) -> bool:
  return ('orbax' in text) if isinstance(text, str) else (b'orbax' in text)


class ModuleFindings:
  """Findings of one loaded module (`collect.Module`)."""

  def __init__(self, mod: collect.Module, analysis: index_lib.Analysis | None):
    self.mod = mod
    self.analysis = analysis
    self.findings: list[Finding] = []
    self._text: Text | None = None

  @property
  def text(self) -> Text:
    if self._text is None:
      self._text = Text(self.mod.text)
    return self._text

  def segment(self, node: cst.CSTNode) -> str:
    where = self.mod.positions[node]
    return self.text.segment(where.start, where.end)

  def add(self, node: cst.CSTNode, **fields: Any) -> None:
    where = self.mod.positions[node]
    line, end_line, cell = where.start.line, where.end.line, None
    if self.mod.notebook is not None:
      cell, line = self.mod.notebook.locate(line)
      end_line = line + (where.end.line - where.start.line)
    fields.setdefault('code', first_line(self.segment(node)))
    self.findings.append(Finding(
        path=self.mod.path, line=line, col=where.start.column + 1, end_line=end_line,
        end_col=where.end.column + 1, cell=cell, node=node,
        statement=self.mod.c.statement.get(id(node)), parent=self.mod.c.parent.get(id(node)),
        **fields))

  # Imports (before the analysis: it needs to know which imports --fix swaps).
  def imports(self) -> list[Finding]:
    for node, statement in self.mod.c.imports:
      self._import(node, statement)
    return self.findings

  def _import(self, node: cst.Import | cst.ImportFrom, statement: cst.CSTNode) -> None:
    if isinstance(node, cst.Import):
      for alias in node.names:
        module = dotted(alias.name) or ''
        if not index_lib.is_v0_module(module):
          continue
        if module == V0 and alias.asname is not None:
          self._add_import(node, statement, module, f'import {SHIM} as {alias.asname.name.value}',
                           f'--fix swaps it: {SHIM} runs the v0 API on v1', True)
        elif module == V0:
          self._add_import(node, statement, module, f'import {SHIM} as ocp',
                           f'left by --fix: code names {V0}.<name>; import the shim under '
                           'an alias and use alias.<name>', False)
        else:
          self._add_import(node, statement, module, '(unchanged)', SUBMODULE_NOTE, False)
      return
    if node.relative or node.module is None:
      return
    module = dotted(node.module) or ''
    if isinstance(node.names, cst.ImportStar):
      names = None
    else:
      names = [(a.name.value if isinstance(a.name, cst.Name) else dotted(a.name),
                a.asname.name.value if a.asname else None) for a in node.names]
    if module == 'orbax':
      if names is None or not any(n == 'checkpoint' for n, _ in names):
        return
      alias = next(a or n for n, a in names if n == 'checkpoint')
      if len(names) == 1:
        self._add_import(node, statement, V0, f'import {SHIM} as {alias}',
                         f'--fix swaps it: {SHIM} runs the v0 API on v1', True)
      else:
        rest = ', '.join(n + (f' as {a}' if a else '') for n, a in names if n != 'checkpoint')
        self._add_import(node, statement, V0, f'import {SHIM} as {alias}; from orbax import '
                         f'{rest}', f'--fix splits it: checkpoint from {SHIM} (the v0 API on '
                         'v1), the other orbax modules as they were', True)
      return
    if not index_lib.is_v0_module(module):
      return
    if names is not None and all(index_lib.is_v1_module(f'{module}.{n}') for n, _ in names):
      return  # e.g. `from orbax.checkpoint.experimental import v1`.
    if module != V0:
      reexported = orbax_names.SUBMODULE_REEXPORTS.get(module)
      if names is not None and reexported is not None and any(
          n == 'CheckpointManager' for n, _ in names):
        shown = ', '.join(n + (f' as {a}' if a else '') for n, a in names if n in reexported)
        kept = ', '.join(n + (f' as {a}' if a else '') for n, a in names if n not in reexported)
        v1 = f'from {SHIM} import {shown}' + (f'; from {module} import {kept}' if kept else '')
        self._add_import(node, statement, module, v1,
                         f'--fix swaps it: {module}.CheckpointManager is Orbax\'s own class; '
                         f'{SHIM}\'s runs the v0 API on v1', True)
        return
      self._add_import(node, statement, module, '(unchanged)', SUBMODULE_NOTE, False)
      return
    if names is None:
      self._add_import(node, statement, module, '(unchanged)',
                       f'left by --fix: `from {SHIM} import *` gives only the shim\'s own '
                       'names; import the names you use', False)
      return
    bad = [n for n, _ in names if not orbax_names.fixable_name(n)]
    shown = ', '.join(n + (f' as {a}' if a else '') for n, a in names)
    if bad:
      self._add_import(node, statement, module, '(unchanged)',
                       f'left by --fix: {", ".join(bad)} not a public attribute of {V0} '
                       f'(a submodule?), which {SHIM} cannot re-export', False)
    else:
      self._add_import(node, statement, module, f'from {SHIM} import {shown}',
                       f'--fix swaps it: {SHIM} runs the v0 API on v1', True)

  def _add_import(self, node, statement, module, v1, note, fixable) -> None:
    if fixable and self.mod.target:
      self.mod.fixable_imports.add(id(node))
    code = first_line(self.segment(node))
    self.add(node, kind='import', member=module, v0=code, v1=v1, note=note, status='',
             fixable=fixable, code=code)
    self.findings[-1] = _with_statement(self.findings[-1], statement)

  # Constructions, options and members.
  def uses(self) -> list[Finding]:
    for call in self.mod.c.calls:
      self._call(call)
    for attribute in self.mod.c.attributes:
      self._attribute(attribute)
    self.findings.sort(key=lambda f: (f.cell or 0, f.line, f.col, f.kind))
    return self.findings

  def _called_name(self, func):
    return self.analysis.called_name(self.mod, func)

  def _call(self, call: cst.Call) -> None:
    analysis = self.analysis
    if analysis.constructs(self.mod, call):
      row = forms.BY_NAME['__init__']
      template = templates.template_of(row, call, self._called_name)
      self.add(call, kind='init', member=row.name, v0=template.v0, v1=template.v1,
               note=template.note, status=row.status,
               form=template.form.v0 if template.form else '', reason=CONSTRUCTION_KEPT,
               bindings=template.bindings)
    elif (own := analysis.api(self.mod, call.func, 'CheckpointManagerOptions') is not None) or (
        analysis.options_subclass(self.mod, call.func)):
      fields = signatures.OPTIONS_FIELDS
      positional = 0
      for arg in call.args:
        if arg.star == '**':
          self.add(arg, kind='option', member='**', v0='CheckpointManagerOptions(**...)',
                   v1='(see the options table)', note='fields passed with ** are not listed',
                   status='', call=call)
        elif arg.star:
          positional = len(fields)
        elif arg.keyword is None:
          if positional < len(fields):
            self._option(arg, fields[positional], call)
          positional += 1
        elif own or arg.keyword.value in fields:  # A subclass's own fields are not v0's.
          self._option(arg, arg.keyword.value, call)

  def _option(self, node: cst.Arg, field: str, call: cst.Call) -> None:
    row = templates.option_rows().get(field)
    self.add(node, kind='option', member=field, v0=f'CheckpointManagerOptions({field}=...)',
             v1=row.v1 if row else '(not in the options table)', note=row.note if row else '',
             status='', call=call)

  def _attribute(self, attribute: cst.Attribute) -> None:
    row = templates.member_rows().get(attribute.attr.value)
    if row is None:
      return
    origins = self.analysis.origins(self.mod, attribute.value)
    if not origins:
      return
    narrowed = self.mod.c.narrowed.get(id(attribute))
    if narrowed and self.analysis.excludes_managers(self.mod, narrowed):
      return
    parent = self.mod.c.parent.get(id(attribute))
    call = parent if isinstance(parent, cst.Call) and parent.func is attribute else None
    call = call if row.kind == 'method' else None
    node = call if call is not None else attribute
    kind = sites_lib.kind_of(self.analysis, origins)
    template = templates.template_of(row, call, self._called_name, kind)
    plan = safety.plan_v1(self, row, template, node, attribute, origins)
    note = template.note
    if template.form is None:
      note = no_form_note(row, template, kind)
    self.add(node, kind=row.kind, member=row.name, v0=template.v0, v1=template.v1,
             note=note, status=row.status,
             receiver=self.segment(attribute.value).strip(),
             form=template.form.v0 if template.form else '',
             mechanical=template.form.mechanical if template.form else '',
             to_v1=plan.ok, reason=plan.reason, bindings=template.bindings,
             imports=plan.imports, helpers=plan.helpers, option_values=plan.option_values,
             statement_form=plan.statement_form,
             sites=tuple(s.key for s in sites_lib.sites_of(self.analysis, origins)),
             via=', '.join(sorted(o for o in origins if not index_lib.is_origin_fact(o))))
    f = self.findings[-1]
    self.findings[-1] = _with_receiver(f, attribute.value,
                                       call if row.kind == 'method' else None)


def no_form_note(row, template: templates.Template, kind: str) -> str:
  """What the report says of a call no form matches: that, and the form for
  the manager's kind (named items load with load_checkpointables)."""
  head = 'no form of the table matches this call statically'
  if template.advice is not None and template.advice.when and kind:
    manager = 'named items' if kind == sites_lib.NAMED else 'one unnamed item'
    return f'{head}; this manager has {manager}: {template.advice.v0} is its form'
  if any(f.when for f in row.forms):
    return (f'{head}; its form depends on the manager\'s items (one unnamed item or named '
            'items), which this scan cannot see: the one-item form is shown')
  return f'{head}; the table\'s general form is shown'


def _with_statement(f: Finding, statement) -> Finding:
  return dataclasses.replace(f, statement=statement)


def _with_receiver(f: Finding, receiver, call) -> Finding:
  return dataclasses.replace(f, receiver_node=receiver, call=call)
