"""User-written v0 CheckpointHandlers (item_handlers, item_names, handler_registry,
checkpointers=): native v0 and the shim save, restore and describe them alike.

The shim runs each user handler instance through a v1 CheckpointableHandler
bridge recorded under the handler's own type name (bridges.V0Bridge).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json

from differential import NATIVE
from differential import Options
from differential import Rec
from differential import abstract
from differential import args
from differential import by_label
from differential import make_tree
from differential import scenario
from differential import step_metadata_obs
from etils import epath
import numpy as np
import orbax.checkpoint as ocp
import pytest

import orbax_compat

# --------------------------------------------------------------------------
# A user's own v0 handlers: a dict of arrays as `.npy` files + a JSON index.
# --------------------------------------------------------------------------

pytestmark = pytest.mark.usefixtures('quiet_shim')


def _write(directory, item) -> None:
  directory = epath.Path(directory)
  for key, value in item.items():
    np.save(directory / f'{key}.npy', np.asarray(value))
  (directory / 'index.json').write_text(json.dumps(sorted(item)))


def _read(directory, keys=None) -> dict:
  directory = epath.Path(directory)
  names = json.loads((directory / 'index.json').read_text())
  return {k: np.load(directory / f'{k}.npy') for k in names if keys is None or k in keys}


class NpzHandler(ocp.CheckpointHandler):
  """Sync: writes in `save`."""

  def save(self, directory, args):
    _write(directory, args.item)

  def restore(self, directory, args=None):
    return _read(directory, getattr(args, 'keys', None))

  def metadata(self, directory):
    return {'keys': json.loads((epath.Path(directory) / 'index.json').read_text())}


@ocp.args.register_with_handler(NpzHandler, for_save=True)
@dataclasses.dataclass
class NpzSave(ocp.args.CheckpointArgs):
  item: dict


@ocp.args.register_with_handler(NpzHandler, for_restore=True)
@dataclasses.dataclass
class NpzRestore(ocp.args.CheckpointArgs):
  item: dict | None = None
  keys: tuple[str, ...] | None = None


class AsyncNpzHandler(ocp.AsyncCheckpointHandler):
  """Async: copies in `async_save`, writes in a commit future, then a
  `finalize` marker (v0 calls it before the step is committed)."""

  async def async_save(self, directory, args):
    item = {k: np.array(v) for k, v in args.item.items()}

    async def write():  # v0 may create the directory in the background.
      await asyncio.to_thread(_write, directory, item)

    return [ocp.future.CommitFutureAwaitingContractedSignals(write())]

  def save(self, directory, args):
    _write(directory, args.item)

  def restore(self, directory, args=None):
    return _read(directory)

  def finalize(self, directory):
    (epath.Path(directory) / 'FINALIZED').write_text('1')


@ocp.args.register_with_handler(AsyncNpzHandler, for_save=True)
@dataclasses.dataclass
class AsyncNpzSave(ocp.args.CheckpointArgs):
  item: dict


@ocp.args.register_with_handler(AsyncNpzHandler, for_restore=True)
@dataclasses.dataclass
class AsyncNpzRestore(ocp.args.CheckpointArgs):
  item: dict | None = None


class UnregisteredHandler(ocp.CheckpointHandler):
  """No CheckpointArgs registered: v0 wraps it in its pre-args legacy API
  (`save(directory, item)`), usable through `items=`."""

  def save(self, directory, item):
    _write(directory, item)

  def restore(self, directory, item=None):
    return _read(directory)


def arrays(step: int) -> dict:
  return {'a': np.arange(3, dtype=np.int32) + step, 'b': np.ones((2, 2)) * step}


# --------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------


def _metadata_obs(rec, m, step):
  rec.call(f'item_metadata({step})', m.item_metadata, step)
  rec.call(f'metadata({step})', m.metadata, step, post=step_metadata_obs)


@scenario
def item_handlers_single(cls, root):
  rec = Rec(root)
  m = rec.manager('init', cls, item_handlers=NpzHandler())
  rec.call('save(0) args', m.save, 0, args=NpzSave(arrays(0)))
  rec.call('save(1) items', m.save, 1, arrays(1))
  rec.call('wait', m.wait_until_finished)
  rec.layout('after saves')
  rec.call('restore(0) no args', m.restore, 0)
  rec.call('restore(1) args', m.restore, 1, args=NpzRestore(keys=('a',)))
  rec.call('restore(1) items', m.restore, 1, items={})
  rec.call('restore(1) restore_kwargs', m.restore, 1,
           restore_kwargs={'keys': ('b',)})
  _metadata_obs(rec, m, 0)
  rec.call('save(2) args of another handler', m.save, 2,
           args=args.StandardSave(make_tree(2)))
  rec.call('close', m.close)
  # A fresh manager: v0 resolves the recorded handler type by its name.
  with cls(root) as fresh:
    rec.call('fresh restore(1) no args', fresh.restore, 1)
    rec.call('fresh restore(0) args', fresh.restore, 0, args=NpzRestore())
    rec.call('fresh item_metadata(0)', fresh.item_metadata, 0)
  return rec.obs


def _composite_roundtrip(rec, cls, m, root, options_fn=None):
  tree = make_tree(1)
  rec.call('save(0) args', m.save, 0, args=args.Composite(
      arrs=NpzSave(arrays(0)), state=args.StandardSave(tree)))
  rec.call('save(1) items', m.save, 1, {'arrs': arrays(1), 'state': make_tree(2)})
  rec.call('save(2) args', m.save, 2, args=args.Composite(
      arrs=NpzSave(arrays(2)), state=args.StandardSave(make_tree(3))))
  rec.call('wait', m.wait_until_finished)
  rec.call('all_steps', m.all_steps)
  rec.layout('after saves')
  rec.call('restore(2) no args', m.restore, 2)
  rec.call('restore(1) args', m.restore, 1, args=args.Composite(
      arrs=NpzRestore(keys=('b',)), state=args.StandardRestore(abstract(tree))))
  rec.call('restore(1) only arrs', m.restore, 1,
           args=args.Composite(arrs=NpzRestore()))
  rec.call('restore(2) items', m.restore, 2, items={'arrs': None})
  _metadata_obs(rec, m, 2)
  rec.call('save(3) wrong args for arrs', m.save, 3, args=args.Composite(
      arrs=args.StandardSave(tree), state=args.StandardSave(tree)))
  rec.call('close', m.close)
  with (cls(root, options=options_fn()) if options_fn else cls(root)) as fresh:
    rec.call('fresh restore(2) no args', fresh.restore, 2)
    rec.call('fresh restore(1) args', fresh.restore, 1,
             args=args.Composite(arrs=NpzRestore()))


def _keep_2():
  return Options(max_to_keep=2)


@scenario
def item_names_and_item_handlers(cls, root):
  rec = Rec(root)
  m = rec.manager('init', cls, options=_keep_2(), item_names=('arrs', 'state'),
                  item_handlers={'arrs': NpzHandler(),
                                 'state': ocp.StandardCheckpointHandler()})
  _composite_roundtrip(rec, cls, m, root, _keep_2)
  return rec.obs


@scenario
def handler_registry(cls, root):
  rec = Rec(root)
  registry = ocp.handlers.DefaultCheckpointHandlerRegistry()
  handler = NpzHandler()
  registry.add('arrs', NpzSave, handler)
  registry.add('arrs', NpzRestore, handler)
  registry.add('state', args.StandardSave, ocp.StandardCheckpointHandler())
  registry.add('state', args.StandardRestore, ocp.StandardCheckpointHandler())
  m = rec.manager('init', cls, options=_keep_2(), handler_registry=registry)
  _composite_roundtrip(rec, cls, m, root, _keep_2)
  return rec.obs


@scenario
def checkpointers_dict(cls, root):
  rec = Rec(root)
  m = rec.manager('init', cls, checkpointers={
      'arrs': ocp.Checkpointer(NpzHandler()),
      'state': ocp.Checkpointer(ocp.StandardCheckpointHandler()),
  })
  _composite_roundtrip(rec, cls, m, root)
  return rec.obs


@scenario
def args_only_registered_globally(cls, root):
  """No legacy configuration: v0 finds the handler by its args' registration."""
  rec = Rec(root)
  m = rec.manager('init', cls)
  _composite_roundtrip(rec, cls, m, root)
  return rec.obs


@scenario
def async_handler(cls, root):
  rec = Rec(root)
  m = rec.manager('init', cls, options=_keep_2(),
                  item_handlers={'arrs': AsyncNpzHandler()})
  for s in range(3):
    rec.call(f'save({s})', m.save, s, args=args.Composite(arrs=AsyncNpzSave(arrays(s))))
  rec.call('wait', m.wait_until_finished)
  rec.call('all_steps', m.all_steps)
  rec.layout('after saves')
  rec.layout('step 2', root / '2')
  rec.call('restore(2) no args', m.restore, 2)
  rec.call('restore(1) args', m.restore, 1,
           args=args.Composite(arrs=AsyncNpzRestore()))
  rec.call('item_metadata(2)', m.item_metadata, 2)
  rec.call('close', m.close)
  return rec.obs


@scenario
def async_checkpointer_single(cls, root):
  rec = Rec(root)
  m = rec.manager('init', cls, checkpointers=ocp.AsyncCheckpointer(AsyncNpzHandler()))
  rec.call('save(0) items', m.save, 0, arrays(0))
  rec.call('save(1) args', m.save, 1, args=AsyncNpzSave(arrays(1)))
  rec.call('wait', m.wait_until_finished)
  rec.layout('step 1', root / '1')
  rec.call('restore(0)', m.restore, 0)
  rec.call('restore(1) items', m.restore, 1, arrays(0))
  rec.call('close', m.close)
  return rec.obs


@scenario
def unregistered_handler_legacy_items(cls, root):
  """A handler without registered args: v0's legacy wrapper, `items=` form."""
  rec = Rec(root)
  m = rec.manager('init', cls, checkpointers={
      'mine': ocp.Checkpointer(UnregisteredHandler()),
      'state': ocp.PyTreeCheckpointer()})
  rec.call('save(0) items', m.save, 0, {'mine': arrays(0), 'state': make_tree(0)})
  rec.call('wait', m.wait_until_finished)
  rec.layout('step 0', root / '0')
  rec.call('restore(0) no args', m.restore, 0)
  rec.call('restore(0) items', m.restore, 0, items={'mine': None})
  rec.call('metadata(0)', m.metadata, 0, post=step_metadata_obs)
  rec.call('close', m.close)
  m2 = rec.manager('init single', cls, root=root / 'single',
                   item_handlers=UnregisteredHandler())
  rec.call('single save(0) items', m2.save, 0, arrays(1))
  rec.call('single restore(0)', m2.restore, 0)
  rec.call('single close', m2.close)
  return rec.obs


@scenario
def cross_read_native_written(cls, root):
  """Native v0 writes; `cls` reads (configured, and bare)."""
  rec = Rec(root)
  with NATIVE(root, item_names=('arrs', 'state'), item_handlers={
      'arrs': NpzHandler(), 'state': ocp.StandardCheckpointHandler()}) as w:
    rec.call('native save(0)', w.save, 0, args=args.Composite(
        arrs=NpzSave(arrays(0)), state=args.StandardSave(make_tree(0))))
  with cls(root, item_handlers={'arrs': NpzHandler(),
                                'state': ocp.StandardCheckpointHandler()}) as m:
    rec.call('restore(0) no args', m.restore, 0)
    rec.call('item_metadata(0)', m.item_metadata, 0)
    rec.call('save(1) appends', m.save, 1, args=args.Composite(
        arrs=NpzSave(arrays(1)), state=args.StandardSave(make_tree(1))))
  with cls(root) as m:
    rec.call('bare restore(0) no args', m.restore, 0)
    rec.call('bare restore(1) args', m.restore, 1,
             args=args.Composite(arrs=NpzRestore(keys=('a',))))
  rec.layout('end')
  return rec.obs


@scenario
def cross_read_written_by_cls_read_by_native(cls, root):
  rec = Rec(root)
  with cls(root, item_handlers=NpzHandler()) as w:
    rec.call('save(0)', w.save, 0, args=NpzSave(arrays(0)))
  with cls(root / 'composite', item_handlers={'arrs': NpzHandler()}) as w:
    rec.call('save(0) composite', w.save, 0,
             args=args.Composite(arrs=NpzSave(arrays(5))))
  rec.layout('written', root / '0')
  with NATIVE(root) as r:
    rec.call('native restore(0) no args', r.restore, 0)
    rec.call('native metadata(0)', r.metadata, 0, post=step_metadata_obs)
  with NATIVE(root, item_handlers=NpzHandler()) as r:
    rec.call('native configured restore(0)', r.restore, 0, args=NpzRestore())
    rec.call('native item_metadata(0)', r.item_metadata, 0)
  with NATIVE(root / 'composite') as r:
    rec.call('native restore composite', r.restore, 0)
  return rec.obs


def test_records_the_users_handler_type(tmp_path):
  with orbax_compat.CheckpointManager(
      tmp_path, item_handlers={'arrs': NpzHandler()}) as m:
    m.save(0, args=args.Composite(arrs=NpzSave(arrays(0))))
  recorded = json.loads((tmp_path / '0' / '_CHECKPOINT_METADATA').read_text())
  assert recorded['item_handlers'] == {'arrs': NpzHandler.typestr()}


def _finalized_on_wait(native, shim):
  del shim
  obs = by_label(native)
  assert obs['FINALIZED after wait'] == ('value', True), native
  # The item's files and, from orbax-checkpoint 0.12.3, its commit_success.txt.
  assert {'FINALIZED', 'a.npy', 'b.npy', 'index.json'} <= set(obs['item files'][1])


@scenario(check=_finalized_on_wait)
def async_handler_finalizes_before_commit(cls, root):
  rec = Rec(root)
  m = rec.manager('init', cls, item_handlers={'arrs': AsyncNpzHandler()})
  rec.call('save(0)', m.save, 0, args=args.Composite(arrs=AsyncNpzSave(arrays(0))))
  rec.call('wait', m.wait_until_finished)
  rec.value('FINALIZED after wait', (root / '0' / 'arrs' / 'FINALIZED').exists())
  rec.value('item files', sorted(p.name for p in (root / '0' / 'arrs').iterdir()))
  rec.call('close', m.close)
  return rec.obs


def test_not_a_handler_raises_like_v0(tmp_path):
  """v0 accepts it at construction and fails with a ValueError on first use;
  the shim raises the same type before touching the disk."""
  native = NATIVE(tmp_path / 'native', item_handlers={'arrs': object()})
  try:
    with pytest.raises(ValueError):
      native.save(0, args=args.Composite(arrs=NpzSave(arrays(0))))
  finally:
    with contextlib.suppress(AttributeError):  # v0 closes the handler too.
      native.close()
  root = tmp_path / 'shim'
  with pytest.raises(ValueError, match=r"item_handlers\['arrs'\]"):
    orbax_compat.CheckpointManager(root, item_handlers={'arrs': object()})
  assert not root.exists()
