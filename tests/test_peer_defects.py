"""Defects other projects' v0 code found (issue 16), each native v0 vs the shim.

Every scenario is shaped as the project's own code calls Orbax (MaxText's
partial restore of older checkpoints, axlearn's TypeHandlers with RestoreArgs
of their own, opifex's args classes in a Composite, paxml's manager subclass,
Orbax's API-overview guide's None Composite entries), runs on native v0 and
on the shim in fresh directories through the harness (tests/differential/:
native twice, then the shim), and compares results with their types, errors
and files; each scenario's `check` asserts what it is about did happen.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import pathlib
import re
import shutil
from typing import Any

from differential import NATIVE
from differential import Options
from differential import Rec
from differential import args
from differential import norm
from differential import scenario
from etils import epath
import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint import type_handlers
import pytest

import orbax_compat

SHIM = orbax_compat.CheckpointManager
SYNC = Options(enable_async_checkpointing=False)

pytestmark = pytest.mark.usefixtures('quiet_shim')


def _raising_at(*labels: str):
  """A check: native v0 raised exactly at `labels` (then `more(native)`)."""

  def check(native: list[Any], shim: list[Any], more=None) -> None:
    del shim  # Equal to native: the harness compared them first.
    assert [o[0] for o in native if o[1] == 'raises'] == list(labels), native
    if more is not None:
      more(native)

  return check


def _expect(condition: bool, observations: list[Any]) -> None:
  assert condition, observations


def _checked(*labels: str, then=None):
  check = _raising_at(*labels)
  return lambda native, shim: check(native, shim, then)


# --- 1. MaxText: partial restore of a checkpoint lacking target leaves ---------


def _sharded(tree):
  sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  return jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), tree)


def _missing_weights(want, have, path=()):
  """MaxText's `_weight_mismatches`, reduced: a weight the checkpoint did not
  carry comes back as an unmaterialized ShapeDtypeStruct (or not at all)."""
  if isinstance(want, dict):
    return [p for k, v in want.items()
            for p in _missing_weights(v, have.get(k) if isinstance(have, dict) else None,
                                      path + (k,))]
  if have is None or isinstance(have, jax.ShapeDtypeStruct):
    return ['/'.join(path)]
  return []


@scenario(check=_checked(then=lambda obs: (
    _expect(('missing weights', 'value', ['lora/a']) in obs, obs),
    _expect(("target's own leaf", 'value', True) in obs, obs))))
def partial_restore_of_an_older_checkpoint(cls, root):
  rec = Rec(root)
  m = rec.manager('init', cls, options=SYNC)
  old = {'params': {'dense': {'kernel': np.arange(6.0, dtype=np.float32).reshape(2, 3)}},
         'step': np.asarray(3)}
  rec.call('save older model', m.save, 0, args=args.Composite(items=args.PyTreeSave(old)))
  # The current model has a weight the older checkpoint lacks.
  model = {'params': {'dense': {'kernel': np.zeros((2, 3), np.float32)},
                      'lora': {'a': np.ones((3,), np.float32)}},
           'step': np.asarray(0)}
  target = _sharded(model)
  restore_args = ocp.checkpoint_utils.construct_restore_args(target)
  restored = rec.call('restore abstract target', m.restore, 0, args=args.Composite(
      items=args.PyTreeRestore(item=target, restore_args=restore_args, partial_restore=True)),
      post=lambda r: norm(r['items']))
  if not isinstance(restored, Exception) and hasattr(restored, 'keys'):
    items = restored['items']
    rec.value('missing weights', _missing_weights(model['params'], items['params']))
    rec.value("target's own leaf", items['params']['lora']['a'] is target['params']['lora']['a'])
  # Filled from a fresh init: concrete leaves.
  restored = rec.call('restore concrete target', m.restore, 0, args=args.Composite(
      items=args.PyTreeRestore(item=model, partial_restore=True)),
      post=lambda r: norm(r['items']))
  if not isinstance(restored, Exception) and hasattr(restored, 'keys'):
    rec.value("target's own array", restored['items']['params']['lora']['a']
              is model['params']['lora']['a'])
  rec.call('close', m.close)
  return rec.obs


@scenario(check=_checked(then=lambda obs: _expect('ShapeDtypeStruct' in repr(
    [o for o in obs if o[0] == 'restore abstract'][0][2]), obs)))
def partial_restore_single_item(cls, root):
  """The repro's shape: one unnamed item, no restore_args."""
  rec = Rec(root)
  m = rec.manager('init', cls, options=SYNC)
  rec.call('save', m.save, 0, args=args.PyTreeSave({'a': np.arange(3.0)}))
  for label, item in (('abstract', _sharded({'a': np.zeros(3), 'b': np.ones(2, np.float32)})),
                      ('concrete', {'a': np.zeros(3), 'b': np.ones(2)})):
    rec.call(f'restore {label}', m.restore, 0,
             args=args.PyTreeRestore(item=item, partial_restore=True))
  rec.call('close', m.close)
  return rec.obs


# --- 2. axlearn: a TypeHandler's own RestoreArgs subclass ---------------------


class Counter:
  """A PythonSavable-like leaf: restored into the live object given."""

  def __init__(self, n: int = 0):
    self.n = n


class CounterHandler(type_handlers.TypeHandler):
  """axlearn's `_PythonSavableHandler`, reduced: the object to restore into
  comes in its own RestoreArgs; the state is a file beside the item."""

  @dataclasses.dataclass
  class RestoreArgs(type_handlers.RestoreArgs):
    item: Any = None

  def __init__(self):
    super().__init__()
    self.seen: list[str] = []

  def typestr(self) -> str:
    return 'Counter'

  def _file(self, info) -> str:
    return os.path.join(os.path.dirname(info.parent_dir), 'python', f'{info.name}.json')

  async def metadata(self, infos):
    return [ocp.metadata.Metadata(name=i.name, directory=i.path) for i in infos]

  async def serialize(self, values, infos, args=None):
    del args
    for value, info in zip(values, infos, strict=True):
      os.makedirs(os.path.dirname(self._file(info)), exist_ok=True)
      with open(self._file(info), 'w') as f:
        json.dump(value.n, f)
    return []

  async def deserialize(self, infos, args=None):
    if args is None:
      raise ValueError('RestoreArgs should be supplied as args.')
    self.seen.extend(type(a).__qualname__ for a in args)
    for info, arg in zip(infos, args, strict=True):
      with open(self._file(info)) as f:
        arg.item.n = json.load(f)  # The live object, from the RestoreArgs.
    return [arg.item for arg in args]


@contextlib.contextmanager
def _registered(ty, handler):
  """`register_type_handler(ty, handler)`, undone after (v0's global registry
  has no removal: its entries are restored)."""
  from orbax.checkpoint._src.serialization import type_handler_registry  # pylint: disable=g-import-not-at-top

  registry = type_handler_registry.GLOBAL_TYPE_HANDLER_REGISTRY
  saved = (list(registry._type_registry), dict(registry._typestr_registry))  # pylint: disable=protected-access
  type_handlers.register_type_handler(ty, handler, override=True)
  try:
    yield handler
  finally:
    registry._type_registry[:] = saved[0]  # pylint: disable=protected-access
    registry._typestr_registry.clear()  # pylint: disable=protected-access
    registry._typestr_registry.update(saved[1])  # pylint: disable=protected-access


def _describe_state(state):
  return {k: ('Counter', v.n) if isinstance(v, Counter) else norm(v)
          for k, v in sorted(state.items())}


@scenario(check=_checked('restore(item) only', then=lambda obs: (
    _expect(('into the live object', 'value', True) in obs, obs),
    _expect(('deserialize got', 'value', ['CounterHandler.RestoreArgs'] * 2) in obs, obs))))
def typehandler_restore_args(cls, root):
  with _registered(Counter, CounterHandler()) as handler:
    rec = Rec(root)
    # Synchronous: the handler writes beside the item in `serialize` (axlearn
    # in a commit thread), into the step directory v0 creates first.
    m = rec.manager('init', cls, options=SYNC)
    state = {'w': jnp.arange(4.0), 'input_iter': Counter(7)}
    rec.call('save', m.save, 1, args=args.Composite(
        index=args.JsonSave([['step', 1]]), state=args.PyTreeSave(state)))
    rec.call('wait', m.wait_until_finished)
    rec.layout('after save')

    def restore_args_of(x):  # axlearn's `_restore_args`.
      if isinstance(x, jax.Array):
        return ocp.checkpoint_utils.construct_restore_args(
            jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding))
      if isinstance(x, Counter):
        return CounterHandler.RestoreArgs(item=x)
      return None

    target = {'w': jnp.zeros(4), 'input_iter': Counter(0)}
    restored = rec.call('restore(item, restore_args)', m.restore, 1, args=args.Composite(
        index=args.JsonRestore(None),
        state=args.PyTreeRestore(item=target, restore_args=jax.tree.map(restore_args_of, target))),
        post=lambda r: (norm(r['index']), _describe_state(r['state'])))
    if hasattr(restored, 'keys'):
      rec.value('into the live object', restored['state']['input_iter'] is target['input_iter'])
    rec.value('deserialize got', handler.seen[:])
    target = {'w': jnp.zeros(4), 'input_iter': Counter(0)}
    rec.call('restore(restore_args) only', m.restore, 1, args=args.Composite(
        state=args.PyTreeRestore(restore_args=jax.tree.map(restore_args_of, target))),
        post=lambda r: _describe_state(r['state']))
    rec.value('deserialize got', handler.seen[:])
    # Without restore_args the handler gets RestoreArgs() (no `item`): it fails.
    # (Not recorded after: the shim's load retries a failed item once more.)
    rec.call('restore(item) only', m.restore, 1, args=args.Composite(
        state=args.PyTreeRestore(item={'w': jnp.zeros(4), 'input_iter': Counter(0)})),
        post=lambda r: _describe_state(r['state']))
    rec.value('deserialize got (first)', handler.seen[2:3])
    rec.call('close', m.close)
    return rec.obs


# --- 3. opifex: an args class where v0 takes args ------------------------------


@scenario(check=_checked(
    'PyTreeRestore class for a Standard item', 'ProtoRestore class', 'JsonSave class',
    'StandardSave class', 'StandardRestore class in a save', 'StandardRestore() in a save',
    then=lambda obs: (
        _expect(('best step', 'value', 1) in obs, obs),
        _expect([o[2] for o in obs if o[1] == 'raises' and 'save' in o[0].lower()]
                == ['builtins.AttributeError'] * 4, obs))))
def args_classes_in_a_composite(cls, root):
  """opifex's OrbaxCheckpointStore: `metadata=ocp.args.JsonRestore`, the class."""
  rec = Rec(root)
  model = {'w': np.arange(2.0), 'b': np.zeros(3, np.float32)}
  with cls(root, options=Options(max_to_keep=3)) as m:
    for step, loss in ((0, 0.5), (1, 0.25), (2, 0.75)):
      rec.call(f'save({step})', m.save, step, args=args.Composite(
          model=args.StandardSave(jax.tree.map(lambda x, s=step: x + s, model)),
          metadata=args.JsonSave({'step': step, 'loss': loss})))
      rec.call('wait', m.wait_until_finished)
    rec.call('metadata only (same manager)', m.restore, 1,
             args=args.Composite(metadata=args.JsonRestore))
  m = rec.manager('fresh', cls)

  def restore(step, target=None):  # opifex's `restore`.
    if target is None:
      restore_args = args.Composite(metadata=args.JsonRestore)
    else:
      restore_args = args.Composite(model=args.StandardRestore(target),
                                    metadata=args.JsonRestore)
    try:
      restored = m.restore(step, args=restore_args)
    except (KeyError, ValueError, TypeError, OSError):
      return target, {}
    return restored.get('model', target), restored.get('metadata', {})

  rec.value('restore(target)', norm(restore(2, jax.tree.map(np.zeros_like, model))))
  rec.value('best step', min(m.all_steps(), key=lambda s: restore(s)[1].get('loss', 1e9)))
  rec.call('StandardRestore class', m.restore, 0,
           args=args.Composite(model=args.StandardRestore))
  rec.call('PyTreeRestore class for a Standard item', m.restore, 0,
           args=args.Composite(model=args.PyTreeRestore))
  rec.call('ProtoRestore class', m.restore, 0, args=args.Composite(metadata=args.ProtoRestore))
  rec.call('close', m.close)
  # Classes in a save: v0's handler reads the class's attributes.
  m = rec.manager('saving', cls, options=SYNC)
  rec.call('JsonRestore class in a save', m.save, 5,
           args=args.Composite(metadata=args.JsonRestore))
  rec.call('restore it', m.restore, 5)
  rec.call('JsonRestore() in a save', m.save, 6,
           args=args.Composite(metadata=args.JsonRestore({'a': 1})))
  rec.call('restore it', m.restore, 6)
  rec.call('all_steps', m.all_steps)
  rec.layout('end')
  for i, (label, arg) in enumerate((
      ('JsonSave class', args.JsonSave),
      ('StandardSave class', args.StandardSave),
      ('StandardRestore class in a save', args.StandardRestore),
      ('StandardRestore() in a save', args.StandardRestore({'a': np.ones(2)})))):
    rec.call(label, m.save, 7, args=args.Composite(**{'metadata': args.JsonSave({}),
                                                      f'other{i}': arg}))
    rec.call('all_steps', m.all_steps)
  rec.call('close', m.close)
  return rec.obs


# --- 4. paxml: a subclass reading `directory` before `super().__init__` ------


def _pax_like(base):

  class PaxCheckpointManager(base):
    """paxml's `_CheckpointManagerImpl`, reduced: before constructing the
    manager it looks for an existing step (to read its format version) under
    `self.directory`."""

    def __init__(self, directory, options=None):
      self._directory = epath.Path(directory)
      self.found_step = None
      if self._directory.exists():
        self.found_step = self.any_step()
      options = options or Options()
      options.save_interval_steps = options.save_interval_steps or 1
      super().__init__(directory, options=options)

    def any_step(self):
      return ocp.utils.any_checkpoint_step(self.directory)

  return PaxCheckpointManager


@scenario(check=_checked(then=lambda obs: _expect(('found step', 'value', 4) in obs, obs)))
def subclass_reading_directory_first(cls, root):
  rec = Rec(root)
  pax = _pax_like(cls)
  m = rec.manager('new root', pax)
  rec.value('found step', m.found_step)
  rec.call('directory', lambda: m.directory)
  rec.call('save', m.save, 4, args=args.StandardSave({'a': np.arange(3)}))
  rec.call('close', m.close)
  m = rec.manager('existing root', pax)
  if m is not None:
    rec.value('found step', m.found_step)
    rec.call('all_steps', m.all_steps)
    rec.call('restore', m.restore, 4)
    rec.call('close', m.close)
  rec.layout('end')
  return rec.obs


# --- 5. Orbax's API-overview guide: a None entry in a save's Composite -------


@scenario(check=_checked('save(3) None for an unknown item', then=lambda obs: _expect(
    [o[2] for o in obs if o[0] == 'restore(1)'][0][1] == {
        'extra': ('builtins.NoneType', None), 'state': norm({'w': np.ones(2) * 2})}, obs)))
def none_entries_in_a_save(cls, root):
  rec = Rec(root)
  m = rec.manager('init', cls)
  rec.call('save(0)', m.save, 0, args=args.Composite(
      state=args.StandardSave({'w': np.ones(2)}), extra=args.JsonSave({'a': 1})))
  rec.call('save(1) extra=None', m.save, 1, args=args.Composite(
      state=args.StandardSave({'w': np.ones(2) * 2}), extra=None))
  rec.call('wait', m.wait_until_finished)
  rec.call('all_steps', m.all_steps)
  rec.call('restore(1)', m.restore, 1)
  rec.call('restore(1, extra=None)', m.restore, 1, args=args.Composite(
      state=args.StandardRestore(), extra=None))
  rec.call('restore(0, extra=None)', m.restore, 0, args=args.Composite(
      state=args.StandardRestore(), extra=None))
  rec.call('save(2) only None', m.save, 2, args=args.Composite(extra=None))
  rec.call('wait', m.wait_until_finished)
  rec.call('item_handlers(1)', lambda: m.metadata(1).item_handlers)
  rec.call('item_metadata(1)', m.item_metadata, 1)
  rec.layout('saved')
  rec.call('save(3) None for an unknown item', m.save, 3, args=args.Composite(
      state=args.StandardSave({'w': np.ones(2)}), other=None))
  rec.call('all_steps', m.all_steps)
  rec.call('close', m.close)
  m = rec.manager('fresh', cls)
  rec.call('restore(1)', m.restore, 1)
  rec.call('restore(2)', m.restore, 2)
  rec.call('close', m.close)
  # The guide's form: handlers given up front, the first save with None.
  other = root.parent / 'handlers'
  m = rec.manager('item_handlers', cls, root=other, item_handlers={
      'state': ocp.StandardCheckpointHandler(), 'extra': ocp.JsonCheckpointHandler()})
  rec.call('save(0) extra=None', m.save, 0, args=args.Composite(
      state=args.StandardSave({'w': np.ones(2)}), extra=None))
  rec.call('wait', m.wait_until_finished)
  rec.call('restore(0)', m.restore, 0)
  rec.call('close', m.close)
  rec.layout('item_handlers', other)
  return rec.obs


@scenario(check=_checked('save(1) state=None'))
def none_for_a_refusing_handler(cls, root):
  """v0 saves the item with args None: its Standard handler refuses that as
  StandardSave(None); the JSON item alone writes `null`."""
  rec = Rec(root)
  m = rec.manager('init', cls, options=SYNC)
  rec.call('save(0)', m.save, 0, args=args.Composite(
      state=args.StandardSave({'w': np.ones(2)}), extra=args.JsonSave({'a': 1})))
  rec.call('save(1) state=None', m.save, 1, args=args.Composite(
      state=None, extra=args.JsonSave({'a': 2})))
  rec.call('all_steps', m.all_steps)
  rec.call('close', m.close)
  m = rec.manager('single', cls, root=root.parent / 'single', options=SYNC)
  rec.call('JsonSave(None)', m.save, 0, args=args.JsonSave(None))
  rec.call('restore', m.restore, 0)
  rec.call('close', m.close)
  rec.layout('single', root.parent / 'single')
  return rec.obs


class NoteHandler(ocp.handlers.CheckpointHandler):
  """A user-written handler: v0 hands it the args of a None entry, None."""

  def save(self, directory, args=None):
    (directory / 'note.txt').write_text(repr(None if args is None else args.text))

  def restore(self, directory, args=None):
    return (directory / 'note.txt').read_text()

  def metadata(self, directory):
    return None

  def finalize(self, directory):
    pass

  def close(self):
    pass


@ocp.args.register_with_handler(NoteHandler, for_save=True)
@dataclasses.dataclass
class NoteSave(ocp.args.CheckpointArgs):
  text: str


@ocp.args.register_with_handler(NoteHandler, for_restore=True)
@dataclasses.dataclass
class NoteRestore(ocp.args.CheckpointArgs):
  pass


@scenario(check=_checked(then=lambda obs: _expect(
    ('restore(1)', 'returns', norm(args.Composite(note='None'))) in obs, obs)))
def none_for_a_user_written_handler(cls, root):
  rec = Rec(root)
  m = rec.manager('init', cls, item_handlers={
      'note': NoteHandler(), 'state': ocp.StandardCheckpointHandler()})
  for step, note in ((0, NoteSave('hi')), (1, None)):
    rec.call(f'save({step})', m.save, step, args=args.Composite(
        state=args.StandardSave({'a': np.ones(2)}), note=note))
    rec.call('wait', m.wait_until_finished)
    rec.call(f'restore({step})', m.restore, step,
             args=args.Composite(note=NoteRestore()))
  rec.call('close', m.close)
  rec.layout('end')
  return rec.obs


# --- 6. OCDBT data files of jax.Array leaves ----------------------------------


def _item_files(item_dir: pathlib.Path) -> tuple[list[str], int]:
  """The item's files, data files by kind; and how many OCDBT data files."""
  files = sorted(str(p.relative_to(item_dir)) for p in item_dir.rglob('*') if p.is_file())
  data = [f for f in files if re.fullmatch(r'ocdbt\.process_0/d/[0-9a-f]+', f)]
  return sorted({re.sub(r'(^|/)d/[0-9a-f]+$', r'\1d/<data file>', f) for f in files}), len(data)


@pytest.mark.parametrize('leaves', ['jax.Array', 'numpy'])
def test_ocdbt_data_files(tmp_path, leaves):
  """v0's PyTree handler bounds the bytes in flight (96 GB), so its writes of
  jax.Arrays reach TensorStore in turns, committed as several OCDBT data
  files (how many varies from run to run); v1 leaves the bound unset and
  wrote one. Same files otherwise; each side reads the other's step."""
  make = jnp.asarray if leaves == 'jax.Array' else np.asarray
  tree = {f'p{i}': make(np.arange(1000, dtype=np.float32) + i) for i in range(16)}
  files = {}
  for name, cls in (('native', NATIVE), ('shim', SHIM)):
    with cls(tmp_path / name, options=SYNC) as m:
      m.save(0, args=args.PyTreeSave(tree))
    files[name] = _item_files(tmp_path / name / '0' / 'default')
  assert files['native'][0] == files['shim'][0]
  assert files['native'][1] > 1 and files['shim'][1] > 1, files
  for writer, reader in (('native', SHIM), ('shim', NATIVE)):
    shutil.copytree(tmp_path / writer, tmp_path / f'{writer}-read')
    with reader(tmp_path / f'{writer}-read') as m:
      restored = m.restore(0, args=args.PyTreeRestore(item=tree))
    assert norm(restored) == norm(tree), writer
