"""What `--fix` changes in a module, and what it must leave to the user.

After the swap, no v0 manager a module builds may stay Orbax's own class:

- an import is swapped only where the module builds or uses a manager (or
  defines a subclass, or names the class to build one elsewhere), where a
  construction in another module resolves through it, or on request
  (`swap_all`); never in a module already on v1 that uses no manager. The
  rest are reported as not needed (counted apart: nothing to migrate there);
- references to Orbax's class that no import swap reaches are rewritten:
  `ocp.checkpoint_manager.CheckpointManager` to `ocp.CheckpointManager`
  (`ocp` swapped), `orbax.checkpoint.CheckpointManager` (no alias) and
  `cm.CheckpointManager` (`cm` the submodule) to
  `orbax_compat.CheckpointManager` (with `import orbax_compat`); references in
  annotations, `isinstance`/`issubclass` and `except` stay (orbax_compat's
  class is a virtual subclass of Orbax's);
- what cannot be rewritten safely is an *action* finding: the user must act,
  and the exit status says so.
"""

from __future__ import annotations

import dataclasses

import libcst as cst

from orbax_compat.tools.scan import collect
from orbax_compat.tools.scan import index as index_lib
from orbax_compat.tools.scan import nodes
from orbax_compat.tools.scan.findings import SHIM
from orbax_compat.tools.scan.findings import V0
from orbax_compat.tools.scan.findings import Finding
from orbax_compat.tools.scan.templates import MANAGER_KINDS

_CLASS_PATHS = index_lib.REWRITTEN_CLASS_PATHS
_SUBMODULE_PATHS = {p for p in _CLASS_PATHS  # ...checkpoint_manager.CheckpointManager
                    if p.rpartition('.')[0] not in (V0, SHIM)}
NOT_NEEDED = ('not swapped: this file builds and uses no v0 manager (nothing to migrate '
              'here; --swap-all swaps it)')
ON_V1 = 'not swapped: this file is on v1 and uses no v0 manager'


def _references(node: cst.CSTNode, typing: bool, found: list[tuple[cst.CSTNode, bool]]) -> None:
  """Outermost Name/Attribute chains named CheckpointManager under `node`, with
  whether they sit where the class is only compared or annotated (isinstance,
  issubclass, except, annotations): `found` gets (node, typing) in libcst's
  visit order. A walk of the syntax fields (`nodes.children`), not a libcst
  visitor, which would rebuild every node of the module."""
  t = type(node)
  if t is cst.Name:
    if node.value == 'CheckpointManager':
      found.append((node, typing))
    return
  if t is cst.Attribute and node.attr.value == 'CheckpointManager':
    found.append((node, typing))
    return
  if t is cst.Annotation:
    typing = True
  elif t is cst.ExceptHandler:
    if node.type is not None:
      _references(node.type, True, found)
    _references(node.body, typing, found)
    return
  elif (t is cst.Call and type(node.func) is cst.Name
        and node.func.value in ('isinstance', 'issubclass') and len(node.args) == 2):
    _references(node.args[0].value, typing, found)
    _references(node.args[1].value, True, found)
    return
  for child in nodes.children(node):
    _references(child, typing, found)


def _imports_v1(mod: collect.Module) -> bool:
  for node, _ in mod.c.imports:
    if isinstance(node, cst.Import):
      if any(index_lib.is_v1_module(collect.dotted(a.name) or '') for a in node.names):
        return True
    elif node.module is not None and not node.relative:
      module = collect.dotted(node.module) or ''
      if index_lib.is_v1_module(module):
        return True
      if not isinstance(node.names, cst.ImportStar) and any(
          index_lib.is_v1_module(f'{module}.{a.name.value}') for a in node.names
          if isinstance(a.name, cst.Name)):
        return True
  return False


def _shim_name_free(mod: collect.Module, node: cst.CSTNode) -> bool:
  """`orbax_compat` names nothing at `node`, or the module orbax_compat."""
  scope = mod.scopes.get(node)
  if scope is None or SHIM not in scope:
    return True
  for a in scope[SHIM]:
    if not (isinstance(a.node, cst.Import) and any(
        collect.dotted(alias.name) == SHIM and alias.asname is None for alias in a.node.names)):
      return False
  return True


def plan(finder, findings: list[Finding], swap_all: bool = False) -> list[Finding]:
  """The module's findings with --fix decided: imports needed or not,
  references to rewrite, actions."""
  mod, analysis = finder.mod, finder.analysis
  references = _reference_findings(finder)
  builds = any(f.kind in MANAGER_KINDS for f in findings) or any(
      id(c) in analysis.manager_classes for c in mod.c.classes) or any(
      not typing for _, typing, _ in references)
  on_v1 = _imports_v1(mod) and not builds
  out = []
  for f in findings:
    if f.kind == 'import':
      needed = not on_v1 and (builds or swap_all or id(f.node) in analysis.shim_via)
      action = ''
      if not f.fixable and _names_class(f, mod):
        needed = True
        action = f'{f.note}; the manager it builds stays Orbax\'s own class'
      note = f.note if needed else (ON_V1 if on_v1 else NOT_NEEDED)
      f = dataclasses.replace(f, needed=needed, note=note, action=action)
    out.append(f)
  out.extend(r for r, typing, _ in references if not typing)
  out.sort(key=lambda f: (f.cell or 0, f.line, f.col, f.kind))
  return out


def _names_class(f: Finding, mod: collect.Module) -> bool:
  """A `from orbax.checkpoint import *` whose module names CheckpointManager
  (the swap cannot make it orbax_compat's)."""
  node = f.node
  text = mod.source if isinstance(mod.source, str) else mod.source.decode('utf-8', 'replace')
  return (isinstance(node, cst.ImportFrom) and isinstance(node.names, cst.ImportStar)
          and 'CheckpointManager' in text)


def _reference_findings(finder) -> list[tuple[Finding, bool, cst.CSTNode]]:
  """(finding, in a typing context, node) for each reference to Orbax's class
  that no import swap makes orbax_compat's."""
  mod, analysis = finder.mod, finder.analysis
  source = mod.source
  if mod.tree is None or (b'CheckpointManager' if isinstance(source, bytes) else
                          'CheckpointManager') not in source:
    return []  # No reference to the class (a light module's text never names it).
  found: list[tuple[cst.CSTNode, bool]] = []
  _references(mod.tree, False, found)
  out = []
  for node, typing in found:
    targets = [t for t in analysis.resolve(mod, node) if isinstance(t, index_lib.External)]
    qnames = {t.qname for t in targets}
    if not qnames & _CLASS_PATHS:
      continue
    t = next(t for t in targets if t.qname in _CLASS_PATHS)
    if isinstance(node, cst.Name):
      continue  # Bound by an import: the import's swap (or its finding) says.
    module = t.qname.rpartition('.')[0]
    swapped_alias = t.via is not None and id(t.via) in analysis._fixable_ids  # pylint: disable=protected-access
    if module == V0 and swapped_alias:
      continue  # `ocp.CheckpointManager`, `ocp` swapped.
    code = finder.segment(node)
    base = node.value
    if (t.qname in _SUBMODULE_PATHS and isinstance(base, cst.Attribute)
        and (swapped_alias or t.qname.startswith(SHIM + '.'))):
      replacement = f'{finder.segment(base.value)}.CheckpointManager'
    else:
      replacement = f'{SHIM}.CheckpointManager'
    action = ''
    if replacement.startswith(SHIM + '.') and not _shim_name_free(mod, node):
      action = (f'`{SHIM}` names something else here: replace `{code}` with orbax_compat\'s '
                'CheckpointManager by hand')
    finder.add(node, kind='reference', member=t.qname, v0=code, v1=replacement,
               note=f'--fix rewrites it: {t.qname} is Orbax\'s own class, which the import '
                    f'swap does not reach; {SHIM}\'s runs the v0 API on v1',
               status='', fixable=not action, action=action, code=code)
    out.append((finder.findings.pop(), typing, node))
  return out
