"""The mapping table: one row per v0 CheckpointManager member.

Everything else reads it: `CheckpointManager` gets its members from it, the
deprecation notices are built from it, `MIGRATION_TABLE.md` and the type stub
are generated from it (`python -m orbax_compat table --write`), and the
scanner (`python -m orbax_compat scan`) finds and rewrites calls with it.

Each row lists the *forms* a v0 member is called in. A form is two pieces of
code with the same named placeholders (`PLACEHOLDERS`): the v0 call, and the
v1 code that does the same on the checkpoints users already have (v0's layout:
a single item under `default/`, a Composite under its item names). The v1 code
runs as written: its value is its last expression, and
`tests/test_templates.py` runs every one on a real v1 `training.Checkpointer`
against directories written by native v0 and by the shim.
"""

from __future__ import annotations

import argparse
import ast
import builtins
from collections.abc import Callable
import dataclasses
import functools
import inspect
import pathlib
import sys
from typing import Any

from orbax.checkpoint import args as _v0_args
from orbax.checkpoint import checkpoint_manager as _v0_manager

from orbax_compat import _v1
from orbax_compat import adapters as a
from orbax_compat import option_map as options_lib

STATUSES = ('direct', 'adapted', 'emulated', 'unsupported-in-v1')
V1_IMPORT = 'from orbax.checkpoint.experimental import v1 as ocp_v1'
TABLE_FILE = 'MIGRATION_TABLE.md'

# The names a form's code may use, and what each stands for. Code may also use
# `ocp_v1` (V1_IMPORT), `jax`, `np` (numpy) and Python's builtins.
PLACEHOLDERS = {
    'ocp': 'v0\'s module: `import orbax.checkpoint as ocp` (`import orbax_compat '
           'as ocp` while migrating)',
    'mngr': 'the v0 CheckpointManager (orbax_compat\'s, while migrating)',
    'ckptr': 'the v1 training.Checkpointer: `mngr.v1_checkpointer` while '
             'migrating, your own once the constructor is v1',
    'directory': 'the root directory',
    'options': 'the v0 CheckpointManagerOptions',
    'metadata': 'the root metadata (a JSON dict)',
    'checkpointers': 'v0 Checkpointer(s) (legacy constructor)',
    'item_names': 'v0 item names',
    'item_handlers': 'v0 CheckpointHandlers, by item name',
    'handler_registry': 'a v0 CheckpointHandlerRegistry',
    'step': 'a step number',
    'tree': 'the pytree a StandardSave/PyTreeSave saves',
    'abstract_tree': 'the restore target of a StandardRestore/PyTreeRestore '
                     '(arrays, jax.ShapeDtypeStructs or a concrete tree)',
    'restore_args': 'PyTreeRestore restore_args (a tree of RestoreArgs)',
    'items': '{item name: v1 checkpointable} of a Composite (see Args types)',
    'abstract_items': '{item name: v1 abstract checkpointable, or None} of a '
                      'Composite (see Args types)',
    'args': 'v0 CheckpointArgs',
    'metrics': 'the step\'s metrics (a JSON dict)',
    'force': 'save even where the save policy says no',
    'custom_metadata': 'the step\'s custom metadata (a JSON dict)',
    'best_fn': 'options.best_fn (None: no best tracking)',
    'best_mode': 'options.best_mode (\'min\' or \'max\')',
    'other_directory': 'the root given as restore(directory=...)',
    'single_item': 'True for a manager of one unnamed item (saved under '
                   '"default"), False for named items',
}
_FREE_NAMES = {'ocp_v1', 'jax', 'np'}
_BUILTINS = set(dir(builtins))


@dataclasses.dataclass(frozen=True)
class Form:
  """One way of calling a v0 member, and the v1 code that replaces it.

  `mechanical` says where a tool may rewrite the v0 call into the v1 code
  without changing behaviour: 'expression' (same value, anywhere), 'statement'
  (same effect; only where the call is a statement of its own) or '' (never:
  the v1 code needs a decision the call alone does not show). `when`, if set,
  picks the form at run time from the manager (static tools skip such forms);
  `unless` names options under which the rewrite would change behaviour;
  `needs`, a v1 surface only some supported releases have.
  """

  v0: str
  v1: str
  mechanical: str = ''
  note: str = ''
  when: Callable[[Any], bool] | None = None
  # CheckpointManagerOptions fields whose non-default value makes the v1 code
  # differ from the v0 call: a tool rewrites only where it sees them unset.
  unless: tuple[str, ...] = ()
  # The v1 surface the v1 code needs, where some supported releases lack it:
  # then the notice says so and no tool rewrites the call there.
  needs: _v1.Capability | None = None

  @property
  def runs_here(self) -> bool:
    """Whether the v1 code runs on the installed Orbax."""
    return self.needs is None or self.needs.present

  def __post_init__(self):
    assert self.mechanical in ('', 'expression', 'statement'), self.mechanical
    unknown = names_in(self.v0, self.v1) - set(PLACEHOLDERS) - _FREE_NAMES - _BUILTINS
    assert not unknown, (self.v0, unknown)

  @functools.cached_property
  def call(self) -> ast.Call | None:
    """The v0 call in `v0` (its outermost call), or None for a property."""
    calls = [n for n in ast.walk(ast.parse(self.v0)) if isinstance(n, ast.Call)]
    return calls[0] if calls else None

  def run(self, **names: Any) -> Any:
    """Runs the v1 code with `names` bound; returns its last expression."""
    return run_code(self.v1, names)


def run_code(code: str, names: dict[str, Any]) -> Any:
  """Runs `code` with `names` (and ocp_v1, jax, np) bound.

  Returns the value of its last statement: an expression's value, or the
  value assigned by a last `name = ...`; else None.
  """
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top

  from orbax_compat._v1 import v1  # pylint: disable=g-import-not-at-top

  namespace = {'ocp_v1': v1, 'jax': jax, 'np': np, **names}
  body = ast.parse(code).body
  last = body[-1] if body else None
  if isinstance(last, ast.Expr):
    body.pop()
  exec(compile(ast.Module(body, []), '<v1 code>', 'exec'), namespace)  # pylint: disable=exec-used
  if isinstance(last, ast.Expr):
    return eval(compile(ast.Expression(last.value), '<v1 code>', 'eval'), namespace)  # pylint: disable=eval-used
  if isinstance(last, ast.Assign) and len(last.targets) == 1 and isinstance(
      last.targets[0], ast.Name):
    return namespace[last.targets[0].id]
  return None


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
  return loaded - bound


@dataclasses.dataclass(frozen=True)
class Row:
  """One v0 member: its forms, its status, and the adapter performing it."""

  member: str
  adapter: Callable
  status: str
  forms: tuple[Form, ...]
  note: str = ''
  kind: str = 'method'  # method | property | init | protocol (no notice)

  def __post_init__(self):
    assert self.status in STATUSES, self.status
    assert self.forms, self.member

  @property
  def v0(self) -> str:
    """The member as v0 code calls it (its first form)."""
    return self.forms[0].v0

  @property
  def v1(self) -> str:
    """The v1 code of the first (general) form."""
    return self.forms[0].v1

  @property
  def anchor(self) -> str:
    return f'{TABLE_FILE}#{self.member.strip("_").replace("_", "-")}'

  @functools.cached_property
  def v0_function(self) -> Callable:
    """v0's own function of the member (a property's getter)."""
    member = inspect.getattr_static(_v0_manager.CheckpointManager, self.member)
    return member.fget if isinstance(member, property) else member

  @functools.cached_property
  def signature(self) -> inspect.Signature:
    """v0's own signature of the member (self included)."""
    return inspect.signature(self.v0_function)

  def form_for(self, mngr: Any, args: tuple, kwargs: dict) -> Form:
    """The form a call `member(*args, **kwargs)` on `mngr` is in."""
    try:
      bound = self.signature.bind(mngr, *args, **kwargs).arguments
    except TypeError:
      return self.forms[0]
    for form in self.forms:
      if form.when is not None and not _safe(form.when, mngr):
        continue
      if _matches(form, self.signature, bound):
        return form
    return self.forms[0]

  def deprecation_message(self, form: Form | None = None, *, here: bool = True) -> str:
    """A notice: the v0 call, its v1 code, and the table row (short lines).

    Where the v1 code needs a later release: with `here`, a word only if the
    installed Orbax lacks it; without (the type stub, the same everywhere),
    the release it needs.
    """
    form = form or self.forms[0]
    head = f'{form.v0} is Orbax v0 API'
    lines = form.v1.strip().splitlines()
    if len(lines) == 1 and len(head) + len(lines[0]) < 110:
      text = f'{head}; in v1: {lines[0]} [{self.anchor}]'
    else:
      text = f'{head} [{self.anchor}]; in v1:' + ''.join(f'\n    {ln}' for ln in lines)
    if self.kind == 'init':
      text += (f'\n    ({V1_IMPORT}; until then ckptr = mngr.v1_checkpointer; '
               'your options in v1: orbax_compat.v1_source(mngr))')
    elif 'ocp_v1' in names_in(form.v1):
      text += f'\n    ({V1_IMPORT})'
    if here and not form.runs_here:
      text += f'\n    ({form.needs.missing()})'
    elif not here and form.needs:
      text += f'\n    ({form.needs.what} needs orbax-checkpoint {form.needs.release})'
    return text


def _safe(when: Callable[[Any], bool], mngr: Any) -> bool:
  try:
    return bool(when(mngr))
  except Exception:  # pylint: disable=broad-except
    return False


def _type_name(node: ast.AST) -> str | None:
  """`X` for a pattern `...X(...)` (an args type in a v0 call), else None."""
  if isinstance(node, ast.Call):
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, 'id', None)
  return None


def _pattern_arguments(form: Form, signature: inspect.Signature) -> dict[str, ast.AST]:
  call = form.call
  if call is None:
    return {}
  params = [p for p in signature.parameters if p != 'self']
  pattern = dict(zip(params, call.args, strict=False))
  pattern.update({k.arg: k.value for k in call.keywords if k.arg})
  return pattern


def _matches(form: Form, signature: inspect.Signature, bound: dict[str, Any]) -> bool:
  """Whether bound call arguments fit `form`'s v0 pattern.

  A placeholder matches any value, or none; an args call `StandardSave(tree)`
  a value of that type; a constant that value. Arguments the pattern leaves
  out must be left at their defaults (or None).
  """
  pattern = _pattern_arguments(form, signature)
  for name, param in signature.parameters.items():
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
    elif _type_name(node) is not None:
      if not given or not _is_args_type(bound[name], _type_name(node)):
        return False
  return True


def _is_args_type(value: Any, name: str) -> bool:
  """Whether `value` is an instance of v0's `ocp.args.<name>`."""
  cls = getattr(_v0_args, name, None)
  return isinstance(value, cls) if isinstance(cls, type) else type(value).__name__ == name


def _single(m: Any) -> bool:
  return bool(m._default_item)  # pylint: disable=protected-access


def _composite(m: Any) -> bool:
  return m._default_item is False  # pylint: disable=protected-access


_CONSTRUCTOR_NOTE = (
    'exact arguments for your options: orbax_compat.v1_source(mngr) or '
    '`python -m orbax_compat v1-config`'
)
_TO_NUMPY = (
    'jax.tree.map(lambda x: np.empty(x.shape, x.dtype) if isinstance(x, '
    'jax.ShapeDtypeStruct) and x.sharding is None else x, abstract_tree)'
)

ROWS = (
    Row('__init__', a.init, 'adapted', note='options become v1 policies and '
        'Context options; see the options table', kind='init', forms=(
            Form('mngr = ocp.CheckpointManager(directory, options=options, metadata=metadata)',
                 'ckptr = ocp_v1.training.Checkpointer(directory, custom_metadata=metadata)',
                 note=_CONSTRUCTOR_NOTE),
            Form('mngr = ocp.CheckpointManager(directory, checkpointers, options=options)',
                 'ckptr = ocp_v1.training.Checkpointer(directory)',
                 note='legacy checkpointers: save and load items by name (see '
                      'save/restore); ' + _CONSTRUCTOR_NOTE),
            Form('mngr = ocp.CheckpointManager(directory, options=options, '
                 'item_names=item_names, item_handlers=item_handlers)',
                 'ckptr = ocp_v1.training.Checkpointer(directory)',
                 note='items are named in each save/load; handler settings '
                      'become Context options; ' + _CONSTRUCTOR_NOTE),
            Form('mngr = ocp.CheckpointManager(directory, options=options, '
                 'handler_registry=handler_registry)',
                 'ckptr = ocp_v1.training.Checkpointer(directory)',
                 note='items are named in each save/load; ' + _CONSTRUCTOR_NOTE),
        )),
    Row('directory', a.directory, 'direct', kind='property', forms=(
        Form('mngr.directory', 'ckptr.directory', mechanical='expression'),
    )),
    Row('all_steps', a.all_steps, 'adapted', forms=(
        Form('mngr.all_steps()', '[c.step for c in ckptr.checkpoints]',
             mechanical='expression'),
        Form('mngr.all_steps(read=True)',
             'ckptr.reload()\n[c.step for c in ckptr.checkpoints]'),
    )),
    Row('latest_step', a.latest_step, 'adapted', forms=(
        Form('mngr.latest_step()', 'ckptr.latest.step if ckptr.latest else None',
             mechanical='expression'),
    )),
    Row('best_step', a.best_step, 'emulated',
        note='v1 keeps metrics per checkpoint; the best is computed', forms=(
            Form('mngr.best_step()',
                 'ranked = sorted((c for c in ckptr.checkpoints if c.metrics is not None),'
                 ' key=lambda c: best_fn(c.metrics), reverse=best_mode == \'min\')'
                 ' if best_fn else list(ckptr.checkpoints)\n'
                 'ranked[-1].step if ranked else None',
                 note='steps without metrics never rank; without best_fn, the latest'),
        )),
    Row('reload', a.reload, 'direct', forms=(
        Form('mngr.reload()', 'ckptr.reload()', mechanical='statement'),
    )),
    Row('reached_preemption', a.reached_preemption, 'unsupported-in-v1',
        note='v1 saves at preemption through its save policy '
             '(PreemptionCheckpointingPolicy)', forms=(
            Form('mngr.reached_preemption(step)',
                 'from orbax.checkpoint import utils\nutils.reached_preemption(step)',
                 note='JAX\'s preemption sync point, as v0 asks it'),
        )),
    Row('should_save', a.should_save, 'direct', forms=(
        Form('mngr.should_save(step)', 'ckptr.should_save(step)',
             mechanical='expression', unless=('read_only',),
             note='v1 has no read-only mode: v0 says False when read_only'),
    )),
    Row('delete', a.delete, 'direct', forms=(
        Form('mngr.delete(step)', 'ckptr.delete(step)', mechanical='statement',
             unless=('read_only',), needs=_v1.V1_DELETE,
             note='v1 has no read-only mode: v0 skips it when read_only'),
    )),
    Row('save', a.save, 'adapted',
        note='v0 args become checkpointables; a single item is stored under '
             '"default"', forms=(
            Form('mngr.save(step, args=ocp.args.StandardSave(tree))',
                 'ckptr.save_checkpointables_async(step, {\'default\': tree}) is not None',
                 mechanical='expression',
                 unless=('read_only', 'enable_async_checkpointing')),
            Form('mngr.save(step, args=ocp.args.StandardSave(tree), metrics=metrics, '
                 'force=force, custom_metadata=custom_metadata)',
                 'ckptr.save_checkpointables_async(step, {\'default\': tree}, '
                 'metrics=metrics, force=force, custom_metadata=custom_metadata) is not None',
                 note='v1 writes metrics even without best_fn'),
            Form('mngr.save(step, args=ocp.args.PyTreeSave(tree))',
                 'ckptr.save_checkpointables_async(step, {\'default\': tree}) is not None',
                 mechanical='expression',
                 unless=('read_only', 'enable_async_checkpointing')),
            Form('mngr.save(step, args=ocp.args.Composite(**args), metrics=metrics, '
                 'force=force, custom_metadata=custom_metadata)',
                 'ckptr.save_checkpointables_async(step, items, metrics=metrics, '
                 'force=force, custom_metadata=custom_metadata) is not None',
                 note='items: each Composite entry as a v1 checkpointable (Args types)'),
            Form('mngr.save(step, tree)',
                 'ckptr.save_checkpointables_async(step, {\'default\': tree}) is not None',
                 when=_single, note='legacy items= of a single-item manager'),
            Form('mngr.save(step, items)',
                 'ckptr.save_checkpointables_async(step, items) is not None',
                 when=_composite, note='legacy items= by name'),
            Form('mngr.save(step, args=args, metrics=metrics, force=force, '
                 'custom_metadata=custom_metadata)',
                 'ckptr.save_checkpointables_async(step, {\'default\': tree} if single_item '
                 'else items, metrics=metrics, force=force, '
                 'custom_metadata=custom_metadata) is not None',
                 note='see Args types for the checkpointable of each args type'),
        )),
    Row('restore', a.restore, 'adapted',
        note='v1 returns the tree, or a dict of items where v0 returns an '
             'args.Composite', forms=(
            Form('mngr.restore(step, args=ocp.args.StandardRestore(abstract_tree))',
                 f'ckptr.load(step, {_TO_NUMPY}, checkpointable_name=\'default\')',
                 mechanical='expression',
                 note='v1 loads unsharded arrays into numpy targets'),
            Form('mngr.restore(step, args=ocp.args.PyTreeRestore(abstract_tree))',
                 f'ckptr.load(step, {_TO_NUMPY}, checkpointable_name=\'default\')',
                 mechanical='expression'),
            Form('mngr.restore(step)',
                 'ckptr.load(step, checkpointable_name=\'default\')',
                 when=_single, note='a single-item manager'),
            Form('mngr.restore(step)', 'ckptr.load_checkpointables(step)',
                 when=_composite, note='named items: a dict, v0 an args.Composite'),
            Form('mngr.restore(step, args=ocp.args.Composite(**args))',
                 'ckptr.load_checkpointables(step, abstract_items)',
                 note='abstract_items: each Composite entry as a v1 abstract '
                      'checkpointable (Args types)'),
            Form('mngr.restore(step, abstract_tree)',
                 f'ckptr.load(step, {_TO_NUMPY}, checkpointable_name=\'default\')',
                 when=_single, note='legacy items= of a single-item manager'),
            Form('mngr.restore(step, args=args)',
                 'ckptr.load(step, abstract_tree, checkpointable_name=\'default\') '
                 'if single_item else ckptr.load_checkpointables(step, abstract_items)',
                 note='see Args types for the abstract checkpointable of each '
                      'args type'),
            # Last: its placeholder also matches a call without directory=.
            Form('mngr.restore(step, directory=other_directory)',
                 'ocp_v1.load_checkpointables(f\'{other_directory}/{step}\')',
                 note='another root: v1\'s free load of the step directory'),
        )),
    Row('item_metadata', a.item_metadata, 'adapted', note='v1 metadata types',
        forms=(
            Form('mngr.item_metadata(step)',
                 'ckptr.checkpointables_metadata(step).metadata[\'default\']',
                 when=_single),
            Form('mngr.item_metadata(step)',
                 'ckptr.checkpointables_metadata(step).metadata',
                 when=_composite, note='named items: a dict by item name'),
        )),
    Row('metrics', a.metrics, 'adapted', forms=(
        Form('mngr.metrics(step)',
             'next((c.metrics for c in ckptr.checkpoints if c.step == step), None)',
             mechanical='expression'),
    )),
    Row('metadata', a.metadata, 'adapted', note='v1 metadata types', forms=(
        Form('mngr.metadata()', 'ckptr.root_metadata()',
             note='custom_metadata as v0\'s RootMetadata'),
        Form('mngr.metadata(step)', 'ckptr.checkpointables_metadata(step)',
             note='metrics and custom_metadata as v0\'s StepMetadata'),
    )),
    Row('wait_until_finished', a.wait_until_finished, 'adapted', forms=(
        Form('mngr.wait_until_finished()', 'ckptr.wait()', mechanical='statement'),
    )),
    Row('is_saving_in_progress', a.is_saving_in_progress, 'direct', forms=(
        Form('mngr.is_saving_in_progress()', 'ckptr.is_saving_in_progress()',
             mechanical='expression'),
    )),
    Row('check_for_errors', a.check_for_errors, 'emulated', forms=(
        Form('mngr.check_for_errors()', 'ckptr.wait()',
             note='v1 has no non-blocking check: wait() raises the error of the '
                  'save in flight, after it ends'),
    )),
    Row('close', a.close, 'direct', forms=(
        Form('mngr.close()', 'ckptr.close()', mechanical='statement'),
    )),
    Row('__contextmanager__', a.contextmanager, 'direct', kind='protocol', forms=(
        Form('with mngr:\n  pass', 'with ckptr:\n  pass'),
    )),
)
BY_MEMBER = {row.member: row for row in ROWS}


@dataclasses.dataclass(frozen=True)
class ArgsRow:
  """One v0 args type: the v1 checkpointable (or abstract) it becomes.

  `v1` is code whose value is what v1 saves (for a save type) or loads with
  (for a restore type) under the item's name; `context` is code, if any, that
  must be active (`with context:`) around the v1 call.
  """

  v0: str
  v1: str
  note: str = ''
  context: str = ''

  def __post_init__(self):
    unknown = (names_in(self.v0, self.v1, self.context or '0')
               - set(PLACEHOLDERS) - _FREE_NAMES - _BUILTINS - _ARGS_NAMES)
    assert not unknown, (self.v0, unknown)

  def run(self, **names: Any) -> Any:
    """The v1 (abstract) checkpointable, for `names` bound."""
    return run_code(self.v1, names)

  def context_for(self, **names: Any) -> Any:
    """The v1 Context to enter around the v1 call, or None."""
    return run_code(self.context, names) if self.context else None


# Names only the Args types use.
_ARGS_NAMES = {'doc', 'message', 'message_class', 'array', 'name', 'save_args'}
PLACEHOLDERS.update({
    'doc': 'a JSON document (JsonSave/JsonRestore)',
    'message': 'a protobuf message (ProtoSave)',
    'message_class': 'a protobuf message class (ProtoRestore)',
    'array': 'an array (ArraySave)',
    'name': 'an item name',
    'save_args': 'PyTreeSave save_args (a tree of SaveArgs)',
})
_JSON_CONTEXT = (
    'registry = ocp_v1.handlers.local_registry()\n'
    'registry.add(ocp_v1.handlers.JsonHandler, checkpointable_name=name)\n'
    'context = ocp_v1.Context()\n'
    'context.checkpointables.registry = registry\n'
    'context'
)
ARGS_ROWS = (
    ArgsRow('ocp.args.StandardSave(tree)', 'tree'),
    ArgsRow('ocp.args.StandardRestore(abstract_tree)', _TO_NUMPY,
            note='unsharded abstract arrays load as numpy arrays, as in v0'),
    ArgsRow('ocp.args.PyTreeSave(tree)', 'tree'),
    ArgsRow('ocp.args.PyTreeRestore(abstract_tree)', _TO_NUMPY),
    ArgsRow('ocp.args.PyTreeRestore(abstract_tree, restore_args=restore_args)',
            'jax.tree.map(lambda ra, x: jax.ShapeDtypeStruct(x.shape, ra.dtype or '
            'x.dtype, sharding=ra.sharding) if getattr(ra, \'sharding\', None) else '
            'np.empty(x.shape, ra.dtype or x.dtype), restore_args, abstract_tree)',
            note='each RestoreArgs becomes the abstract leaf it asks for'),
    ArgsRow('ocp.args.JsonSave(doc)', 'doc', context=_JSON_CONTEXT,
            note='v1 saves a dict as a pytree unless the name is bound to its '
                 'JsonHandler; v1 writes data.json, which v0 cannot read'),
    ArgsRow('ocp.args.JsonRestore()', 'None',
            note='v1 reads v0\'s JSON items (their `metadata` file)'),
    ArgsRow('ocp.args.ProtoSave(message)', 'message'),
    ArgsRow('ocp.args.ProtoRestore(message_class)', 'message_class'),
    ArgsRow('ocp.args.ArraySave(array)', '{\'array\': array}',
            note='v1 has no Array handler: save the array in a pytree (another '
                 'layout); v1 reads v0 Array items only through orbax_compat'),
)


def _md_cell(text: str) -> str:
  return text.replace('|', '\\|').replace('\n', '<br>')


def _code(text: str) -> str:
  lines = text.strip().splitlines()
  return '<br>'.join(f'`{_md_cell(line)}`' for line in lines)


def render_markdown() -> str:
  """MIGRATION_TABLE.md, from ROWS, ARGS_ROWS and option_map.OPTION_ROWS."""
  lines = [
      '# Migrating from v0 CheckpointManager to v1 training.Checkpointer',
      '',
      '<!-- Generated by `python -m orbax_compat table --write`; do not edit. -->',
      '',
      f'Every v1 column below is code that runs (`tests/test_templates.py` runs it on '
      f'checkpoints written by native v0 and by orbax_compat), with `{V1_IMPORT}`, and '
      '`ckptr` a v1 `training.Checkpointer`: `mngr.v1_checkpointer` while you migrate '
      '(it runs the same checkpoints as `mngr`), your own once the constructor is v1 '
      '(`orbax_compat.v1_source(mngr)` prints it for your options).',
      '',
      'Order of steps: swap the import (`import orbax_compat as ocp`); read the notices '
      'or `ORBAX_COMPAT_REPORT`; move calls one at a time to `mngr.v1_checkpointer`, '
      'starting with the *mechanical* forms (`python -m orbax_compat scan --to-v1` '
      'rewrites those); replace the constructor with the generated v1 one; drop '
      'orbax_compat. See README.md, "Migrating".',
      '',
      'Status: *direct* (same call), *adapted* (v1 call, reshaped), *emulated* '
      '(computed from what v1 has), *unsupported-in-v1* (no v1 equivalent).',
      '',
      '## Members',
      '',
  ]
  for row in ROWS:
    if row.kind == 'protocol':
      continue
    lines += [
        f'### {row.member.strip("_").replace("_", "-")}',
        '',
        f'`{row.member}`: {row.status}.' + (f' {row.note}.' if row.note else ''),
        '',
        '| v0 | v1 | mechanical | note |',
        '|---|---|---|---|',
    ]
    for form in row.forms:
      note = form.note + (' (chosen at run time)' if form.when else '')
      if form.needs:
        note += f' (needs orbax-checkpoint {form.needs.release})'

      lines.append(
          f'| {_code(form.v0)} | {_code(form.v1)} | {form.mechanical or "no"} | '
          f'{_md_cell(note)} |'
      )
    lines.append('')
  lines += [
      '## Args types',
      '',
      'What each v0 args type becomes in v1, under the item\'s name (`default` for a '
      'single item): the checkpointable of a save, the abstract checkpointable of a '
      'load. Where a context is given, enter it (`with context:`) around the v1 call.',
      '',
      '| v0 args | v1 | context | note |',
      '|---|---|---|---|',
  ]
  for row in ARGS_ROWS:
    lines.append(
        f'| {_code(row.v0)} | {_code(row.v1)} | {_code(row.context) if row.context else ""} '
        f'| {_md_cell(row.note)} |'
    )
  lines += [
      '',
      'Placeholders:',
      '',
  ]
  lines += [f'- `{name}`: {text}' for name, text in PLACEHOLDERS.items()]
  lines += [
      '',
      '## CheckpointManagerOptions',
      '',
      '`orbax_compat.v1_source(mngr)` (or `python -m orbax_compat v1-config`) writes '
      'the v1 constructor for a manager\'s options, every policy spelled out.',
      '',
      '| option | v1 equivalent | note |',
      '|---|---|---|',
  ]
  for opt in options_lib.OPTION_ROWS:
    lines.append(
        f'| `{opt.field}` | `{_md_cell(opt.v1)}` | {_md_cell(opt.note)} |'
    )
  return '\n'.join(lines) + '\n'


DEFAULT_PATH = pathlib.Path(__file__).resolve().parent.parent / TABLE_FILE


def generated() -> dict[pathlib.Path, str]:
  """Every file generated from the table: MIGRATION_TABLE.md and the stub."""
  from orbax_compat import stubs  # pylint: disable=g-import-not-at-top

  return {DEFAULT_PATH: render_markdown(), stubs.STUB_PATH: stubs.render(ROWS)}


def main(argv: list[str] | None = None, prog: str = 'python -m orbax_compat table') -> int:
  parser = argparse.ArgumentParser(
      prog=prog,
      description=f'Print {TABLE_FILE} (generated from orbax_compat/table.py), or '
                  'write it and the type stub orbax_compat/manager.pyi, or check that '
                  'both are up to date.',
  )
  group = parser.add_mutually_exclusive_group()
  group.add_argument('--write', action='store_true', help='write the generated files')
  group.add_argument('--check', action='store_true',
                     help='exit 1 if a generated file is stale, else say they are up to date')
  parser.add_argument('--path', type=pathlib.Path, default=DEFAULT_PATH,
                      help=f'where {TABLE_FILE} goes (default: {DEFAULT_PATH})')
  ns = parser.parse_args(argv)
  files = generated()
  files[ns.path] = files.pop(DEFAULT_PATH)
  if ns.write:
    for path, text in files.items():
      path.write_text(text)
      print(f'wrote {path}')
  elif ns.check:
    stale = [p for p, text in files.items() if not p.exists() or p.read_text() != text]
    for path in stale:
      print(f'{path} is stale: run python -m orbax_compat table --write')
    if stale:
      return 1
    print(f'{", ".join(str(p) for p in files)}: up to date')
  else:
    sys.stdout.write(files[ns.path])
  return 0


if __name__ == '__main__':
  sys.exit(main())
