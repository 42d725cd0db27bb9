"""Legacy v0 forms (checkpointers=, item_names/item_handlers, handler_registry,
items/save_kwargs/restore_kwargs): native v0 and the shim run alike."""

from __future__ import annotations

from differential import Rec
from differential import abstract
from differential import args
from differential import by_label
from differential import json_doc
from differential import make_tree
from differential import scenario
import numpy as np
import orbax.checkpoint as ocp
import pytest

import orbax_compat

pytestmark = pytest.mark.usefixtures('quiet_shim')


def _roundtrip_single(rec, m, root):
  tree = make_tree(1)
  rec.call('save(0) items', m.save, 0, tree)
  rec.call('save(1) items', m.save, 1, make_tree(2))
  rec.call('wait', m.wait_until_finished)
  rec.layout('after saves')
  rec.call('all_steps', m.all_steps)
  rec.call('restore(0)', m.restore, 0)
  rec.call('restore(0) items=tree', m.restore, 0, items=tree)
  rec.call('restore(1) items=abstract', m.restore, 1, items=abstract(tree))
  rec.call('restore(None)', m.restore, None)
  rec.call('close', m.close)


@scenario
def pytree_checkpointer(cls, root):
  rec = Rec(root)
  m = rec.manager('init', cls, checkpointers=ocp.PyTreeCheckpointer())
  _roundtrip_single(rec, m, root)
  return rec.obs


@scenario
def async_pytree_checkpointer(cls, root):
  rec = Rec(root)
  m = rec.manager('init', cls, checkpointers=ocp.AsyncCheckpointer(
      ocp.PyTreeCheckpointHandler()))
  _roundtrip_single(rec, m, root)
  return rec.obs


@scenario
def item_handlers_single(cls, root):
  rec = Rec(root)
  m = rec.manager('init', cls, item_handlers=ocp.StandardCheckpointHandler())
  _roundtrip_single(rec, m, root)
  return rec.obs


def _roundtrip_composite(rec, m):
  tree = make_tree(3)
  rec.call('save(0) items', m.save, 0, {'state': tree, 'meta': json_doc(0)})
  rec.call('save(1) args', m.save, 1, args=args.Composite(
      state=args.PyTreeSave(make_tree(4)), meta=args.JsonSave(json_doc(1))))
  rec.call('wait', m.wait_until_finished)
  rec.layout('after saves')
  rec.call('restore(0)', m.restore, 0)
  rec.call('restore(0) items state', m.restore, 0, items={'state': tree})
  rec.call('restore(1) items both', m.restore, 1,
           items={'state': abstract(tree), 'meta': None})
  rec.call('restore(0) unknown item', m.restore, 0, items={'nope': 1})
  rec.call('save(2) unknown item', m.save, 2, {'nope': tree})
  rec.call('wait 2', m.wait_until_finished)
  rec.call('all_steps', m.all_steps)
  rec.layout('end')
  # Last: a v0 save failing mid-way leaves a tmp directory behind.
  rec.call('save(2) args of another handler', m.save, 2, args=args.Composite(
      meta=args.PyTreeSave(tree)))
  rec.call('close', m.close)


@scenario
def dict_of_checkpointers(cls, root):
  rec = Rec(root)
  m = rec.manager('init', cls, checkpointers={
      'state': ocp.PyTreeCheckpointer(),
      'meta': ocp.Checkpointer(ocp.JsonCheckpointHandler()),
  })
  _roundtrip_composite(rec, m)
  return rec.obs


@scenario
def item_names_and_handlers(cls, root):
  rec = Rec(root)
  m = rec.manager('init', cls, item_names=('state', 'meta'), item_handlers={
      'state': ocp.PyTreeCheckpointHandler(),
      'meta': ocp.JsonCheckpointHandler(),
  })
  _roundtrip_composite(rec, m)
  return rec.obs


@scenario
def handler_registry(cls, root):
  rec = Rec(root)
  registry = ocp.handlers.DefaultCheckpointHandlerRegistry()
  registry.add('state', args.PyTreeSave, ocp.PyTreeCheckpointHandler())
  registry.add('state', args.PyTreeRestore, ocp.PyTreeCheckpointHandler())
  registry.add('meta', args.JsonSave, ocp.JsonCheckpointHandler())
  registry.add('meta', args.JsonRestore, ocp.JsonCheckpointHandler())
  m = rec.manager('init', cls, handler_registry=registry)
  _roundtrip_composite(rec, m)
  return rec.obs


@scenario
def save_kwargs_and_restore_kwargs(cls, root):
  rec = Rec(root)
  tree = make_tree(5)
  m = rec.manager('init', cls, checkpointers={'state': ocp.PyTreeCheckpointer()})
  rec.call('save(0) save_kwargs', m.save, 0, {'state': tree},
           save_kwargs={'state': {}})
  rec.call('wait', m.wait_until_finished)
  rec.call('restore(0) restore_kwargs only', m.restore, 0,
           restore_kwargs={'state': {}})
  rec.call('close', m.close)
  return rec.obs


@scenario
def bad_legacy_arguments(cls, root):
  rec = Rec(root)
  rec.manager('dict value not a Checkpointer', cls,
              checkpointers={'state': ocp.PyTreeCheckpointHandler()})
  rec.manager('checkpointers of a bad type', cls, checkpointers=3)
  rec.manager('checkpointers + item_names', cls,
              checkpointers={'state': ocp.PyTreeCheckpointer()},
              item_names=('state',))
  rec.manager('item_names + single item_handlers', cls, item_names=('a',),
              item_handlers=ocp.StandardCheckpointHandler())
  rec.manager('checkpointers + handler_registry', cls,
              checkpointers=ocp.PyTreeCheckpointer(),
              handler_registry=ocp.handlers.DefaultCheckpointHandlerRegistry())
  rec.manager('legacy with primary_host=1', cls,
              checkpointers=ocp.PyTreeCheckpointer(),
              options=ocp.CheckpointManagerOptions(
                  multiprocessing_options=ocp.options.MultiprocessingOptions(
                      primary_host=1)))
  rec.layout('after bad constructions')
  return rec.obs


class _MyHandler(ocp.handlers.JsonCheckpointHandler):
  """A user's own v0 handler."""


# Not `item_handlers={'mine': _MyHandler()}`: v0 0.12.8 fails to save an
# AsyncCheckpointHandler without registered args given that way (TypeError
# default-constructing its legacy wrapper); the shim saves it.
@scenario
def custom_v0_handler_runs_like_native(cls, root):
  """A user's handler (here without registered args: v0's legacy wrapper)
  saves and restores through the shim as in v0 (more: test_custom_handlers)."""
  rec = Rec(root)
  m = rec.manager('init', cls, checkpointers={'mine': ocp.Checkpointer(_MyHandler())})
  rec.call('save(0)', m.save, 0, {'mine': json_doc(0)})
  rec.call('wait', m.wait_until_finished)
  rec.call('restore(0)', lambda: dict(m.restore(0)))
  rec.layout('step 0', root / '0')
  rec.call('close', m.close)
  return rec.obs


def test_handler_that_is_not_a_handler_is_refused(tmp_path):
  # v0 accepts it at construction and fails on first use; the shim refuses
  # it before touching the disk.
  root = tmp_path / 'r'
  with pytest.raises(ValueError, match=r"item_handlers\['state'\]"):
    orbax_compat.CheckpointManager(root, item_handlers={'state': 3})
  assert not root.exists()


def _saved(native, shim):
  del shim
  assert by_label(native)['save(0)'] == ('returns', ('builtins.bool', True)), native


@scenario(check=_saved)
def legacy_array_checkpointer_matches_native(cls, root):
  """`CheckpointManager(dir, {'arr': Checkpointer(ArrayCheckpointHandler())})`."""
  rec = Rec(root)
  m = rec.manager('init', cls, checkpointers={
      'arr': ocp.Checkpointer(ocp.ArrayCheckpointHandler())})
  rec.call('save(0)', m.save, 0, {'arr': np.arange(6, dtype=np.float32).reshape(2, 3)})
  rec.call('restore(0)', m.restore, 0)
  rec.layout('step 0', root / '0')
  rec.call('close', m.close)
  return rec.obs
