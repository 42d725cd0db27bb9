"""The table's v1 code runs, and does what the v0 call does.

Every form of every member row, and every args type, is run as written on a
real v1 `training.Checkpointer` over directories written by native v0 and by
the shim, and compared with native v0's own call on a copy of the same
directory: values with their types (jax.Array or numpy array, dtype, Python
scalars), exceptions by type name, steps listed and kept, and what native v0
reads back of what v1 wrote. Restores run with every kind of target real code
passes: `jax.eval_shape`'s abstract tree (no shardings), sharded
`jax.ShapeDtypeStruct`s, concrete trees; over checkpoints holding jax.Arrays,
numpy arrays and Python scalars. Saves run for a new step and for a step the
checkpoint already has.
"""

from __future__ import annotations

from collections.abc import Callable
import dataclasses
import shutil
from typing import Any

from google.protobuf import duration_pb2
import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

import orbax_compat
from orbax_compat.compat import orbax as compat
from orbax_compat.compat.orbax import v1
from orbax_compat.mapping import forms
from orbax_compat.mapping import members
from orbax_compat.mapping.schema import Form
from orbax_compat.tools import migration_table as table

LOSS = {0: 0.5, 1: 0.2, 2: 0.9}
ROOT_METADATA = {'run': 'templates'}


def best_fn(m):
  return m['loss']


def options(**kw) -> ocp.CheckpointManagerOptions:
  return ocp.CheckpointManagerOptions(best_fn=best_fn, best_mode='min', **kw)


def tree_of(step: int) -> dict[str, Any]:
  return {'w': np.arange(3, dtype=np.float32) + step,
          'j': jnp.arange(2, dtype=jnp.int32) + step,
          'n': step}


def init_tree() -> dict[str, Any]:
  """What a model's init function returns (for `jax.eval_shape`)."""
  return tree_of(0)


def restore_targets() -> dict[str, Any]:
  """The restore targets real code passes, by how it builds them."""
  return {
      'eval_shape': jax.eval_shape(init_tree),  # No shardings (Orbax's guides).
      'to_shape_dtype_struct': abstract(tree_of(0)),  # Sharded (Flax's examples).
      'concrete': tree_of(0),
  }


def doc_of(step: int) -> dict[str, Any]:
  return {'lr': 0.5, 'step': step, 'tags': ['a', 'b']}


def abstract(tree):
  return jax.tree.map(ocp.utils.to_shape_dtype_struct, tree)


def run_v1(row, **names):
  """Runs a form's (or args type's) v1 code with `names` bound."""
  return table.run_code(row.v1, names)


WRITERS = {'native': ocp.CheckpointManager, 'shim': orbax_compat.CheckpointManager}


def _write_single(cls, root):
  with cls(root, options=options(), metadata=ROOT_METADATA) as m:
    for step in LOSS:
      m.save(step, args=ocp.args.StandardSave(tree_of(step)), metrics={'loss': LOSS[step]},
             custom_metadata={'note': f'step {step}'})


def _write_composite(cls, root):
  with cls(root, options=options()) as m:
    for step in (0, 1):
      m.save(step, args=ocp.args.Composite(
          params=ocp.args.StandardSave(tree_of(step)), meta=ocp.args.JsonSave(doc_of(step))),
          metrics={'loss': LOSS[step]})


@pytest.fixture(scope='module')
def written(tmp_path_factory):
  """{writer: {'single': root, 'composite': root}}, written once per module."""
  previous = orbax_compat.set_warning_policy('off')
  out = {}
  for name, cls in WRITERS.items():
    base = tmp_path_factory.mktemp(name)
    out[name] = {'single': base / 'single', 'composite': base / 'composite'}
    _write_single(cls, out[name]['single'])
    _write_composite(cls, out[name]['composite'])
  orbax_compat.set_warning_policy(previous)
  return out


@dataclasses.dataclass
class Copies:
  """Two copies of one written root: one for v0, one for v1."""

  v0: Any
  v1: Any
  composite: bool

  def manager(self, legacy: bool = False, **kw) -> ocp.CheckpointManager:
    """Native v0's manager over the v0 copy (`legacy`: v0's legacy init)."""
    if legacy and self.composite:
      return ocp.CheckpointManager(self.v0, {'params': ocp.PyTreeCheckpointer()}, options=options())
    if legacy:
      return ocp.CheckpointManager(self.v0, ocp.PyTreeCheckpointer(), options=options())
    return ocp.CheckpointManager(self.v0, options=options(), **kw)

  def checkpointer(self, root=None) -> Any:
    return v1.training.Checkpointer(root or self.v1)


def _copies(written, writer, kind, tmp_path) -> Copies:
  src = written[writer][kind]
  shutil.copytree(src, tmp_path / 'v0')
  shutil.copytree(src, tmp_path / 'v1')
  return Copies(tmp_path / 'v0', tmp_path / 'v1', kind == 'composite')


def norm(x: Any) -> Any:
  """Comparable values: arrays by type (jax or numpy), dtype and values,
  scalars by type and value, containers by content."""
  if isinstance(x, jax.Array):
    return ('jax.Array', np.asarray(x).dtype.name, np.asarray(x).tolist())
  if isinstance(x, np.ndarray):
    return ('np.ndarray', x.dtype.name, x.tolist())
  if isinstance(x, (bool, int, float)):
    return (type(x).__name__, x)
  if isinstance(x, ocp.args.Composite) or isinstance(x, dict):
    return {k: norm(x[k]) for k in x.keys()}
  if isinstance(x, (list, tuple)):
    return [norm(v) for v in x]
  if hasattr(x, 'shape') and hasattr(x, 'dtype'):
    return ('meta', tuple(x.shape), np.dtype(x.dtype).name)
  if hasattr(x, 'tree') and hasattr(x, 'custom_metadata'):  # v0 TreeMetadata.
    return norm(x.tree)
  return x


def native_restore_all(root, composite: bool) -> Any:
  """What native v0 reads back from a root: its steps and each step's items."""
  with ocp.CheckpointManager(root) as m:
    out = {'steps': m.all_steps()}
    for step in m.all_steps():
      if composite:
        out[step] = norm(m.restore(step, args=ocp.args.Composite(
            params=ocp.args.StandardRestore(abstract(tree_of(step))))))
      else:
        out[step] = norm(m.restore(step, args=ocp.args.StandardRestore(abstract(tree_of(step)))))
  return out


# --- One scenario per form: (v0 result, v1 result) ---------------------------
#
# Not the differential harness's `@scenario` (tests/differential/): these run
# the table's v1 code against native v0's call, on copies of directories each
# writer filled once per module; the shim is one of the writers, not a side.

Scenario = Callable[[Copies, Form], tuple[Any, Any]]
SCENARIOS: dict[tuple[str, str], tuple[str, Scenario]] = {}


def scenario(member: str, v0: str, kind: str = 'single'):
  def register(fn):
    SCENARIOS[(member, v0)] = (kind, fn)
    return fn
  return register


def _with(copies: Copies, form: Form, v0_call, legacy=False, manager_kw=None, **names):
  """Runs `v0_call(mngr)` on native v0 and the form's v1 code on a checkpointer."""
  with copies.manager(legacy, **(manager_kw or {})) as mngr:
    expected = v0_call(mngr)
  with copies.checkpointer() as ckptr:
    got = run_v1(form, ckptr=ckptr, best_fn=best_fn, best_mode='min', **names)
  return norm(expected), norm(got)


@scenario('__init__', 'mngr = ocp.CheckpointManager(directory, options=options, metadata=metadata)')
def _init(copies, form):
  with copies.manager(metadata=ROOT_METADATA) as mngr:
    expected = (mngr.all_steps(), mngr.metadata().custom_metadata)
  ckptr = run_v1(form, directory=copies.v1, metadata=ROOT_METADATA)
  with ckptr:
    return expected, ([c.step for c in ckptr.checkpoints],
                      dict(ckptr.root_metadata().custom_metadata))


def _init_legacy(**init_kw):
  def run(copies, form):
    with ocp.CheckpointManager(copies.v0, **init_kw) as mngr:
      expected = mngr.all_steps()
    with run_v1(form, directory=copies.v1) as ckptr:
      return expected, [c.step for c in ckptr.checkpoints]
  return run


scenario('__init__', 'mngr = ocp.CheckpointManager(directory, checkpointers, options=options)')(
    _init_legacy(checkpointers=ocp.PyTreeCheckpointer()))
scenario('__init__', 'mngr = ocp.CheckpointManager(directory, options=options, '
         'item_names=item_names, item_handlers=item_handlers)')(
    _init_legacy(item_names=('default',)))
scenario('__init__', 'mngr = ocp.CheckpointManager(directory, options=options, '
         'handler_registry=handler_registry)')(
    _init_legacy(handler_registry=ocp.handlers.DefaultCheckpointHandlerRegistry()))


@scenario('directory', 'mngr.directory')
def _directory(copies, form):
  with copies.manager() as mngr:
    expected = str(mngr.directory).replace(str(copies.v0), '<root>')
  with copies.checkpointer() as ckptr:
    return expected, str(run_v1(form, ckptr=ckptr)).replace(str(copies.v1), '<root>')


@scenario('all_steps', 'mngr.all_steps()')
def _all_steps(copies, form):
  return _with(copies, form, lambda m: m.all_steps())


@scenario('all_steps', 'mngr.all_steps(read=True)')
def _all_steps_read(copies, form):
  """Another writer adds step 7 after both were opened."""
  with copies.manager() as mngr, copies.checkpointer() as ckptr:
    for root in (copies.v0, copies.v1):
      with ocp.CheckpointManager(root) as other:
        other.save(7, args=ocp.args.StandardSave(tree_of(7)), force=True)
    return mngr.all_steps(read=True), run_v1(form, ckptr=ckptr)


@scenario('latest_step', 'mngr.latest_step()')
def _latest(copies, form):
  return _with(copies, form, lambda m: m.latest_step())


@scenario('best_step', 'mngr.best_step()')
def _best(copies, form):
  expected, got = _with(copies, form, lambda m: m.best_step())
  assert expected == ('int', 1)  # The least loss.
  with ocp.CheckpointManager(copies.v0) as mngr, copies.checkpointer() as ckptr:
    latest = (mngr.best_step(), run_v1(form, ckptr=ckptr, best_fn=None, best_mode='max'))
  return (expected, latest[0]), (got, latest[1])


@scenario('reload', 'mngr.reload()')
def _reload(copies, form):
  with copies.manager() as mngr, copies.checkpointer() as ckptr:
    for root in (copies.v0, copies.v1):
      shutil.rmtree(root / '2')
    mngr.reload()
    run_v1(form, ckptr=ckptr)
    return mngr.all_steps(), [c.step for c in ckptr.checkpoints]


@scenario('reached_preemption', 'mngr.reached_preemption(step)')
def _preemption(copies, form):
  return _with(copies, form, lambda m: m.reached_preemption(3), step=3)


@scenario('should_save', 'mngr.should_save(step)')
def _should_save(copies, form):
  return _with(copies, form, lambda m: m.should_save(3), step=3)


@scenario('delete', 'mngr.delete(step)')
def _delete(copies, form):
  with copies.manager() as mngr, copies.checkpointer() as ckptr:
    mngr.delete(1)
    run_v1(form, ckptr=ckptr, step=1)
  return native_restore_all(copies.v0, False), native_restore_all(copies.v1, False)


def outcome(call: Callable[[], Any]) -> Any:
  """A call's value, or its exception's type name (v0 and v1 raise their own
  classes of one name)."""
  try:
    return ('returned', norm(call()))
  except Exception as e:  # pylint: disable=broad-except
    return ('raised', type(e).__name__)


def _save(v0_args: Callable[[int], Any], names: Callable[[int], dict[str, Any]], composite=False,
          legacy=False, **save_kw):
  """Saves a new step (5) and a step the checkpoint has (1) both ways, then
  compares the values returned and what native v0 reads back."""

  def run(copies, form):
    returned = []
    with copies.manager(legacy) as mngr:
      for step in (5, 1):
        if legacy:
          returned.append(outcome(lambda s=step: mngr.save(s, v0_args(s), **save_kw)))
        else:
          returned.append(outcome(lambda s=step: mngr.save(s, args=v0_args(s), **save_kw)))
    got = []
    with copies.checkpointer() as ckptr:
      for step in (5, 1):
        got.append(outcome(lambda s=step: run_v1(
            form, ckptr=ckptr, step=s, single_item=not composite, **names(s), **save_kw)))
    return ((returned, native_restore_all(copies.v0, composite)),
            (got, native_restore_all(copies.v1, composite)))

  return run


scenario('save', 'mngr.save(step, args=ocp.args.StandardSave(tree))')(
    _save(lambda s: ocp.args.StandardSave(tree_of(s)), lambda s: {'tree': tree_of(s)}))
scenario('save', 'mngr.save(step, args=ocp.args.StandardSave(tree), metrics=metrics)')(
    _save(lambda s: ocp.args.StandardSave(tree_of(s)), lambda s: {'tree': tree_of(s)},
          metrics={'loss': 0.1}))
scenario('save', 'mngr.save(step, args=ocp.args.StandardSave(tree), metrics=metrics, '
         'force=force, custom_metadata=custom_metadata)')(
    _save(lambda s: ocp.args.StandardSave(tree_of(s)), lambda s: {'tree': tree_of(s)},
          metrics={'loss': 0.1}, force=True, custom_metadata={'k': 1}))
scenario('save', 'mngr.save(step, args=ocp.args.PyTreeSave(tree))')(
    _save(lambda s: ocp.args.PyTreeSave(tree_of(s)), lambda s: {'tree': tree_of(s)}))
scenario('save', 'mngr.save(step, args=ocp.args.Composite(**args), metrics=metrics, '
         'force=force, custom_metadata=custom_metadata)', kind='composite')(
    _save(lambda s: ocp.args.Composite(params=ocp.args.StandardSave(tree_of(s))),
          lambda s: {'items': {'params': tree_of(s)}}, composite=True,
          metrics={'loss': 0.1}, force=False, custom_metadata=None))
scenario('save', 'mngr.save(step, tree)')(
    _save(tree_of, lambda s: {'tree': tree_of(s)}, legacy=True))
scenario('save', 'mngr.save(step, items)', kind='composite')(
    _save(lambda s: {'params': tree_of(s)}, lambda s: {'items': {'params': tree_of(s)}},
          composite=True, legacy=True))
scenario('save', 'mngr.save(step, args=args, metrics=metrics, force=force, '
         'custom_metadata=custom_metadata)')(
    _save(lambda s: ocp.args.StandardSave(tree_of(s)), lambda s: {'tree': tree_of(s), 'items': None},
          metrics=None, force=False, custom_metadata=None))


def _restore(v0_call, names: Callable[[], dict[str, Any]], legacy=False):
  def run(copies, form):
    return _with(copies, form, v0_call, legacy=legacy, step=1, **names())
  return run


def _restore_each_target(args_type, legacy=False):
  """A restore form with every kind of target (`restore_targets`)."""

  def run(copies, form):
    expected, got = {}, {}
    for kind, target in restore_targets().items():
      with copies.manager(legacy) as mngr:
        if legacy:
          expected[kind] = outcome(lambda: mngr.restore(1, target))
        else:
          expected[kind] = outcome(lambda: mngr.restore(1, args=args_type(target)))
      with copies.checkpointer() as ckptr:
        got[kind] = outcome(lambda: run_v1(form, ckptr=ckptr, step=1, abstract_tree=target))
    assert expected['eval_shape'][1]['j'][0] == 'jax.Array', expected  # As v0 restores it.
    return expected, got

  return run


def _as_v1(v0: str, **names) -> Any:
  """The v1 (abstract) checkpointable the Args types table gives for v0 args."""
  return table.run_code(next(r for r in members.ARGS_TYPES if r.v0 == v0).v1, names)


scenario('restore', 'mngr.restore(step, args=ocp.args.StandardRestore(abstract_tree))')(
    _restore_each_target(ocp.args.StandardRestore))
scenario('restore', 'mngr.restore(step, args=ocp.args.PyTreeRestore(abstract_tree))')(
    _restore_each_target(ocp.args.PyTreeRestore))


@scenario('restore', 'mngr.restore(step)')
def _restore_bare(copies, form):
  if form.when == 'named_items':
    return _restore_bare_composite(copies, form)
  return _with(copies, form, lambda m: m.restore(1), step=1)


def _restore_bare_composite(copies, form):
  with copies.manager() as mngr:
    expected = norm(mngr.restore(1))
  with copies.checkpointer() as ckptr:
    got = norm(run_v1(form, ckptr=ckptr, step=1))
  expected.pop('metrics', None)  # v0 returns the step's metrics among its items.
  return expected, got


@scenario('restore', 'mngr.restore(step, args=ocp.args.Composite(**args))', kind='composite')
def _restore_composite(copies, form):
  expected, got = {}, {}
  for kind, target in restore_targets().items():
    with copies.manager() as mngr:
      expected[kind] = outcome(lambda: mngr.restore(1, args=ocp.args.Composite(
          params=ocp.args.StandardRestore(target), meta=ocp.args.JsonRestore())))
    with copies.checkpointer() as ckptr:
      items = {
          'params': _as_v1('ocp.args.StandardRestore(abstract_tree)', ckptr=ckptr, step=1,
                           name='params', abstract_tree=target),
          'meta': _as_v1('ocp.args.JsonRestore()')}
      got[kind] = outcome(lambda: run_v1(form, ckptr=ckptr, step=1, abstract_items=items))
  return expected, got


@scenario('restore', 'mngr.restore(step, directory=other_directory)')
def _restore_other_root(copies, form):
  with ocp.CheckpointManager(copies.v0 / 'elsewhere') as mngr:
    expected = norm(mngr.restore(1, directory=copies.v0))
  got = norm(run_v1(form, step=1, other_directory=copies.v1))
  return expected, got['default']


scenario('restore', 'mngr.restore(step, abstract_tree)')(
    _restore_each_target(None, legacy=True))
scenario('restore', 'mngr.restore(step, args=args)')(
    _restore(lambda m: m.restore(1, args=ocp.args.StandardRestore(tree_of(0))),
             lambda: {'abstract_tree': tree_of(0), 'abstract_items': None, 'single_item': True}))


@scenario('item_metadata', 'mngr.item_metadata(step)')
def _item_metadata(copies, form):
  if form.when == 'named_items':
    return _item_metadata_composite(copies, form)
  expected, got = _with(copies, form, lambda m: m.item_metadata(1), step=1,
                        manager_kw={'item_handlers': ocp.StandardCheckpointHandler()})
  return _arrays_metadata(expected), _arrays_metadata(got)


def _arrays_metadata(metadata):
  """Array leaves only: v1 reports a Python scalar's metadata as a value of its
  type (0), v0 as ScalarMetadata (the row's note: v1 metadata types)."""
  return {k: v for k, v in metadata.items() if k != 'n'}


def _item_metadata_composite(copies, form):
  with copies.manager(item_handlers={'params': ocp.StandardCheckpointHandler(),
                                     'meta': ocp.JsonCheckpointHandler()}) as mngr:
    expected = norm(mngr.item_metadata(1)['params'])
  with copies.checkpointer() as ckptr:
    got = norm(run_v1(form, ckptr=ckptr, step=1)['params'])
  return _arrays_metadata(expected), _arrays_metadata(got)


@scenario('metrics', 'mngr.metrics(step)')
def _metrics(copies, form):
  return (_with(copies, form, lambda m: m.metrics(1), step=1)[0],
          _with(copies, form, lambda m: m.metrics(1), step=1)[1])


@scenario('metadata', 'mngr.metadata()')
def _root_metadata(copies, form):
  with copies.manager() as mngr:
    expected = mngr.metadata().custom_metadata
  with copies.checkpointer() as ckptr:
    return expected, dict(run_v1(form, ckptr=ckptr).custom_metadata)


@scenario('metadata', 'mngr.metadata(step)')
def _step_metadata(copies, form):
  with copies.manager() as mngr:
    md = mngr.metadata(1)
    expected = (md.metrics, md.custom_metadata)
  with copies.checkpointer() as ckptr:
    got = run_v1(form, ckptr=ckptr, step=1)
    return expected, (got.metrics, got.custom_metadata)


def _nothing(call):
  def run(copies, form):
    return _with(copies, form, call)
  return run


scenario('wait_until_finished', 'mngr.wait_until_finished()')(_nothing(lambda m: m.wait_until_finished()))
scenario('is_saving_in_progress', 'mngr.is_saving_in_progress()')(
    _nothing(lambda m: m.is_saving_in_progress()))
scenario('check_for_errors', 'mngr.check_for_errors()')(_nothing(lambda m: m.check_for_errors()))


@scenario('close', 'mngr.close()')
def _close(copies, form):
  mngr = copies.manager()
  ckptr = copies.checkpointer()
  return mngr.close(), run_v1(form, ckptr=ckptr)


@scenario('__contextmanager__', 'with mngr:\n  pass')
def _context(copies, form):
  mngr = copies.manager()
  with mngr:
    pass
  return None, run_v1(form, ckptr=copies.checkpointer())


FORMS = [(row.name, i, form) for row in forms.MEMBERS for i, form in enumerate(row.forms)]


def test_every_form_has_a_scenario():
  missing = [(m, f.v0) for m, _, f in FORMS if (m, f.v0) not in SCENARIOS]
  assert not missing, missing


@pytest.mark.parametrize('writer', sorted(WRITERS))
@pytest.mark.parametrize('member,index', [(m, i) for m, i, _ in FORMS])
def test_form_runs_and_matches_v0(written, writer, member, index, tmp_path, quiet_shim):
  form = forms.BY_NAME[member].forms[index]
  if compat.capability_missing(form.needs):
    pytest.skip(compat.capability_missing(form.needs))
  kind, run = SCENARIOS[(member, form.v0)]
  if form.when == 'named_items':
    kind = 'composite'
  copies = _copies(written, writer, kind, tmp_path)
  expected, got = run(copies, form)
  assert got == expected, f'{form.v0}\n-> {form.v1}'


# --- Args types ----------------------------------------------------------------


def _proto(step):
  return duration_pb2.Duration(seconds=step)


ARGS_CASES = {
    # v0 save args -> names for the row's v1 code.
    'ocp.args.StandardSave(tree)': (lambda s: ocp.args.StandardSave(tree_of(s)),
                                    lambda s: {'tree': tree_of(s)}),
    'ocp.args.PyTreeSave(tree)': (lambda s: ocp.args.PyTreeSave(tree_of(s)),
                                  lambda s: {'tree': tree_of(s)}),
    'ocp.args.JsonSave(doc)': (lambda s: ocp.args.JsonSave(doc_of(s)),
                               lambda s: {'doc': doc_of(s)}),
    'ocp.args.ProtoSave(message)': (lambda s: ocp.args.ProtoSave(_proto(s)),
                                    lambda s: {'message': _proto(s)}),
    'ocp.args.ArraySave(array)': (lambda s: ocp.args.ArraySave(np.arange(4) + s),
                                  lambda s: {'array': np.arange(4) + s}),
}
RESTORE_CASES = {
    # v0 restore args, names for the row's v1 code, the save args of the item.
    'ocp.args.StandardRestore(abstract_tree)': (
        lambda: ocp.args.StandardRestore(abstract(tree_of(0))),
        lambda: {'abstract_tree': abstract(tree_of(0))}, 'ocp.args.StandardSave(tree)'),
    'ocp.args.PyTreeRestore(abstract_tree)': (
        lambda: ocp.args.PyTreeRestore(tree_of(0)),
        lambda: {'abstract_tree': tree_of(0)}, 'ocp.args.PyTreeSave(tree)'),
    'ocp.args.PyTreeRestore(abstract_tree, restore_args=restore_args)': (
        lambda: ocp.args.PyTreeRestore(_arrays(tree_of(0)), restore_args=_restore_args()),
        lambda: {'abstract_tree': _arrays(tree_of(0)), 'restore_args': _restore_args()},
        'ocp.args.PyTreeSave(tree)'),
    'ocp.args.JsonRestore()': (ocp.args.JsonRestore, dict, 'ocp.args.JsonSave(doc)'),
    'ocp.args.ProtoRestore(message_class)': (
        lambda: ocp.args.ProtoRestore(duration_pb2.Duration),
        lambda: {'message_class': duration_pb2.Duration}, 'ocp.args.ProtoSave(message)'),
}


def _arrays(tree):
  return {k: tree[k] for k in ('w', 'j')}


def _restore_args():
  sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  return {'w': ocp.RestoreArgs(restore_type=np.ndarray, dtype=np.float64),
          'j': ocp.ArrayRestoreArgs(sharding=sharding)}


def test_every_args_row_has_a_case():
  rows = {row.v0 for row in members.ARGS_TYPES}
  assert rows == set(ARGS_CASES) | set(RESTORE_CASES)


def _v1_save(root, name, row, names):
  with v1.training.Checkpointer(root) as ckptr:
    value = run_v1(row, **names)
    context = table.run_code(row.context, {"name": name}) if row.context else None
    if context is None:
      ckptr.save_checkpointables(5, {name: value})
    else:
      with context:
        ckptr.save_checkpointables(5, {name: value})


def _v1_load(root, name, row, names):
  with v1.training.Checkpointer(root) as ckptr:
    abstract_item = run_v1(row, name=name, ckptr=ckptr, step=5, **names)
    return ckptr.load_checkpointables(5, {name: abstract_item})[name]


@pytest.mark.parametrize('v0', sorted(ARGS_CASES))
def test_save_args_row(v0, tmp_path, quiet_shim):
  """v1 saves what the row says; v1 (and v0 where the layout allows) reads it back."""
  row = next(r for r in members.ARGS_TYPES if r.v0 == v0)
  v0_args, names = ARGS_CASES[v0]
  with ocp.CheckpointManager(tmp_path / 'v0', item_names=('x',)) as mngr:
    mngr.save(5, args=ocp.args.Composite(x=v0_args(5)))
  _v1_save(tmp_path / 'v1', 'x', row, names(5))
  with v1.training.Checkpointer(tmp_path / 'v1') as ckptr:
    context = table.run_code(row.context, {"name": "x"}) if row.context else None
    if v0 == 'ocp.args.ProtoSave(message)':  # v1 loads a proto into its class.
      got = ckptr.load_checkpointables(5, {'x': duration_pb2.Duration})['x']
    elif context is None:
      got = ckptr.load_checkpointables(5)['x']
    else:
      with context:
        got = ckptr.load_checkpointables(5)['x']
  expected = v0_args(5).item
  if v0 == 'ocp.args.ArraySave(array)':
    got = got['array']  # Another layout: the array in a pytree.
  assert norm(got) == norm(expected)


@pytest.mark.parametrize('writer', sorted(WRITERS))
@pytest.mark.parametrize('v0', ['ocp.args.StandardRestore(abstract_tree)',
                                'ocp.args.PyTreeRestore(abstract_tree)'])
def test_restore_args_row_with_every_target(v0, writer, tmp_path, quiet_shim):
  """A Composite entry's abstract checkpointable, for each kind of target."""
  row = next(r for r in members.ARGS_TYPES if r.v0 == v0)
  args_type = ocp.args.StandardRestore if 'Standard' in v0 else ocp.args.PyTreeRestore
  with WRITERS[writer](tmp_path, item_names=('x',)) as mngr:
    mngr.save(5, args=ocp.args.Composite(x=ocp.args.StandardSave(tree_of(5))))
  for kind, target in restore_targets().items():
    with ocp.CheckpointManager(tmp_path, item_names=('x',)) as mngr:
      expected = outcome(lambda: mngr.restore(5, args=ocp.args.Composite(
          x=args_type(target)))['x'])
    got = outcome(lambda: _v1_load(tmp_path, 'x', row, {'abstract_tree': target}))
    assert got == expected, kind


@pytest.mark.parametrize('writer', sorted(WRITERS))
@pytest.mark.parametrize('v0', sorted(RESTORE_CASES))
def test_restore_args_row(v0, writer, tmp_path, quiet_shim):
  """v1 loads an item v0 (or the shim) wrote, with the row's abstract checkpointable."""
  row = next(r for r in members.ARGS_TYPES if r.v0 == v0)
  restore_args, names, save_v0 = RESTORE_CASES[v0]
  save_args, _ = ARGS_CASES[save_v0]
  if 'restore_args' in v0:  # Its v1 code builds array leaves only.
    save_args = lambda s, save=save_args: type(save(s))(_arrays(save(s).item))  # noqa: E731
  with WRITERS[writer](tmp_path, item_names=('x',)) as mngr:
    mngr.save(5, args=ocp.args.Composite(x=save_args(5)))
  with ocp.CheckpointManager(tmp_path, item_names=('x',)) as mngr:
    expected = mngr.restore(5, args=ocp.args.Composite(x=restore_args()))['x']
  got = _v1_load(tmp_path, 'x', row, names())
  assert type(got) is type(expected) or not isinstance(expected, (np.ndarray, jax.Array))
  assert norm(got) == norm(expected)
