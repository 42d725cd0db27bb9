"""A user's own v0 TypeHandler (`register_type_handler`) runs as in v0.

Each scenario runs on native v0 and on the shim and compares results (leaf
types and values), errors and the files written; checkpoints are read across
both ways. The TypeHandler is the common kind: a type of the user's own
(`Box`), serialized by a handler built on one of Orbax's (NumpyHandler),
recorded under its own typestr.
"""

from __future__ import annotations

import dataclasses
import shutil
from typing import Any

from differential import NATIVE
from differential import Rec
from differential import args
from differential import by_label
from differential import norm
from differential import scenario
import numpy as np
from orbax.checkpoint import handlers as v0_handlers
from orbax.checkpoint import type_handlers
import pytest

import orbax_compat
from orbax_compat.compat import orbax as _v1

pytestmark = pytest.mark.usefixtures('quiet_shim')


@dataclasses.dataclass
class Box:
  """A leaf type of the user's own."""

  value: np.ndarray

  # What v0's NumpyHandler reads of a value before serializing it (0.12.0).
  shape = property(lambda self: self.value.shape)
  dtype = property(lambda self: self.value.dtype)
  size = property(lambda self: self.value.size)
  nbytes = property(lambda self: self.value.nbytes)


class BoxHandler(type_handlers.NumpyHandler):
  """Saves a Box's array as NumpyHandler does, under the typestr 'Box'."""

  def typestr(self) -> str:
    return 'Box'

  async def serialize(self, values, infos, args=None):
    return await super().serialize([v.value for v in values], infos, args)

  async def deserialize(self, infos, args=None):
    return [Box(v) for v in await super().deserialize(infos, args)]


def describe(x: Any) -> Any:
  """norm(), with a Box by its value."""
  if isinstance(x, Box):
    return ('Box', norm(x.value))
  if isinstance(x, dict):
    return {k: describe(v) for k, v in sorted(x.items())}
  return norm(x)


def _registry_entries(registry: Any) -> list[Any]:
  return _v1.v0_type_handler_entries(registry)


@pytest.fixture
def box_registered():
  """`register_type_handler(Box, BoxHandler())`, undone after the test (v0's
  global registry has no removal: its entry list is restored)."""
  from orbax.checkpoint._src.serialization import type_handler_registry  # pylint: disable=g-import-not-at-top

  registry = type_handler_registry.GLOBAL_TYPE_HANDLER_REGISTRY
  saved = (list(registry._type_registry), dict(registry._typestr_registry))  # pylint: disable=protected-access
  type_handlers.register_type_handler(Box, BoxHandler(), override=True)
  try:
    yield
  finally:
    registry._type_registry[:] = saved[0]  # pylint: disable=protected-access
    registry._typestr_registry.clear()  # pylint: disable=protected-access
    registry._typestr_registry.update(saved[1])  # pylint: disable=protected-access


def tree(offset: int = 0) -> dict[str, Any]:
  return {'b': Box(np.arange(3.0) + offset), 'a': np.ones(2) + offset}


def _native_raises_nothing(native, shim):
  del shim
  assert not [o for o in native if o[1] == 'raises'], native


def _native_raises_nothing_and_box_is_not_registered(native, shim):
  """The item's own registry alone saved and restored the Box leaves."""
  assert not type_handlers.has_type_handler(Box)
  _native_raises_nothing(native, shim)


@scenario(fixtures=('box_registered',), check=_native_raises_nothing)
def pytree_save_and_restores(cls, root):
  rec = Rec(root)
  m = rec.manager('init', cls)
  rec.call('save', m.save, 0, args=args.PyTreeSave(tree()))
  rec.call('wait', m.wait_until_finished)
  rec.call('restore(item)', m.restore, 0, args=args.PyTreeRestore(tree(9)), post=describe)
  rec.call('restore()', m.restore, 0, post=describe)
  rec.call('restore(restore_args)', m.restore, 0, args=args.PyTreeRestore(
      restore_args={'b': type_handlers.RestoreArgs(restore_type=Box),
                    'a': type_handlers.RestoreArgs(restore_type=np.ndarray)}), post=describe)
  rec.call('item_metadata', m.item_metadata, 0)
  rec.call('close', m.close)
  rec.layout('end')
  return rec.obs


@scenario(check=_native_raises_nothing_and_box_is_not_registered)
def item_registry_on_a_configured_handler(cls, root):
  """The TypeHandler in one item's handler (`type_handler_registry=`) only."""
  registry = type_handlers.create_type_handler_registry(
      *[(t, type_handlers.get_type_handler(t)) for t in type_handlers.supported_types()],
      (Box, BoxHandler()),
  )
  rec = Rec(root)
  handler = v0_handlers.PyTreeCheckpointHandler(type_handler_registry=registry)
  m = rec.manager('init', cls, item_names=('state',), item_handlers={'state': handler})
  rec.call('save', m.save, 0, args=args.Composite(state=args.PyTreeSave(tree())))
  rec.call('restore()', m.restore, 0, post=lambda r: describe(dict(r)))
  rec.call('restore(item)', m.restore, 0, args=args.Composite(
      state=args.PyTreeRestore(tree(5))), post=lambda r: describe(dict(r)))
  rec.call('item_metadata', m.item_metadata, 0)
  rec.call('close', m.close)
  rec.layout('end')
  return rec.obs


# Not here: StandardSave of a Box leaf. v0's Standard handler refuses it
# (ValueError "Unsupported type", as the shim: tests/test_faults.py,
# bad_trees_for_standard_save), and then
# its signalling thread holds the process at exit for 300 s.


def _reads_boxes(native, shim):
  del shim
  assert by_label(native)['restore()'][1]['b'] == ('Box', norm(np.arange(3.0) + 2)), native


@scenario(name='read_across', fixtures=('box_registered',), check=_reads_boxes, params={
    'written_by_native': NATIVE, 'written_by_shim': orbax_compat.CheckpointManager})
def _read_across(cls, root, writer):
  """Steps with Box leaves written by one are read by the other as by itself
  (`cls`: native v0 or the shim, the writer's counterpart or itself)."""
  rec = Rec(root)
  with writer(root) as m:
    m.save(0, args=args.PyTreeSave(tree(2)))
  with cls(root) as m:
    rec.call('restore()', m.restore, 0, post=describe)
    rec.call('restore(item)', m.restore, 0, args=args.PyTreeRestore(tree()), post=describe)
  return rec.obs


def test_a_handler_for_a_type_v1_serializes_is_refused(tmp_path):
  """v1 serializes numpy arrays itself: a user's handler for them is named, not ignored."""
  from orbax.checkpoint._src.serialization import type_handler_registry  # pylint: disable=g-import-not-at-top

  class MyNumpyHandler(type_handlers.NumpyHandler):
    pass

  registry = type_handlers.create_type_handler_registry((np.ndarray, MyNumpyHandler()))
  handler = v0_handlers.PyTreeCheckpointHandler(type_handler_registry=registry)
  with orbax_compat.CheckpointManager(tmp_path, item_names=('state',),
                                      item_handlers={'state': handler}) as m:
    with pytest.raises(NotImplementedError, match='MyNumpyHandler registered for ndarray'):
      m.save(0, args=args.Composite(state=args.PyTreeSave({'a': np.ones(2)})))
  assert m.all_steps() == [] and not list(tmp_path.glob('0*'))
  assert type_handler_registry.GLOBAL_TYPE_HANDLER_REGISTRY.get(np.ndarray) is not None


UNREGISTERED = '''
import sys, numpy as np
sys.path.insert(0, sys.argv[1])
from test_type_handlers import Box
import orbax.checkpoint as ocp
import orbax_compat
m = orbax_compat.CheckpointManager(sys.argv[2])
try:
  m.save(0, args=ocp.args.PyTreeSave({'b': Box(np.ones(2))}))
except ValueError as e:
  print('ValueError', str(e).startswith('TypeHandler lookup failed for'))
m.close()
'''


def test_a_leaf_no_handler_saves_is_refused_at_save(tmp_path):
  """No TypeHandler for Box: v0's ValueError ("TypeHandler lookup failed
  for ...") from save, before anything is written, and the process exits.

  Native v0 raises it from save too, after creating a temporary step
  directory it leaves behind, and its step-directory signalling thread can
  hold the process at exit for 300 s (seen here; so native is not run). v1
  alone raises UnregisteredTypeError inside its save with the same thread
  left waiting; the shim checks before v1 starts.
  """
  import os  # pylint: disable=g-import-not-at-top
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top

  proc = subprocess.run(
      [sys.executable, '-c', UNREGISTERED, os.path.dirname(__file__), str(tmp_path / 'r')],
      capture_output=True, text=True, timeout=240,
      env=dict(os.environ, ORBAX_COMPAT_WARNINGS='off'))
  assert proc.returncode == 0 and proc.stdout.split() == ['ValueError', 'True'], proc.stderr[-3000:]
  assert sorted(p.name for p in (tmp_path / 'r').iterdir()) == []


def test_a_leaf_the_items_registry_lacks_is_refused_at_save(tmp_path):
  """An item's own `type_handler_registry` saves only the types it has a
  TypeHandler for: v0 looks every leaf up in it and raises ValueError
  ("TypeHandler lookup failed for ...") from save (then holds the process at
  exit, as above: native is not run). v1 would save a jax.Array or an int
  with its own defaults; the shim refuses it before anything is written."""
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  registry = type_handlers.create_type_handler_registry(
      (np.ndarray, type_handlers.NumpyHandler()))
  handler = v0_handlers.PyTreeCheckpointHandler(type_handler_registry=registry)
  with orbax_compat.CheckpointManager(tmp_path, item_names=('state',),
                                      item_handlers={'state': handler}) as m:
    assert m.save(0, args=args.Composite(state=args.PyTreeSave({'a': np.arange(3)})))
    m.wait_until_finished()
    for step, leaf in ((1, jnp.arange(2)), (2, 7)):
      with pytest.raises(ValueError, match=r"TypeHandler lookup failed for: type=.*keypath=\['b'\]"
                         r".*type_handler_registry has no TypeHandler"):
        m.save(step, args=args.Composite(state=args.PyTreeSave({'a': np.arange(3), 'b': leaf})))
    assert m.all_steps() == [0]
    assert describe(dict(m.restore(0))) == {'state': {'a': norm(np.arange(3))}}
  assert sorted(p.name for p in tmp_path.iterdir()) == ['0']


def test_restore_type_of_a_user_type_for_another_saved_type(tmp_path, box_registered):
  """README, known differences: `RestoreArgs(restore_type=Box)` for a leaf
  saved as a numpy array. v0 deserializes it with BoxHandler (a Box); the
  shim restores user-typed leaves by their recorded type, and v1 fails."""
  box_args = {'a': type_handlers.RestoreArgs(restore_type=Box)}
  results = {}
  for cls in (NATIVE, orbax_compat.CheckpointManager):
    with cls(tmp_path / cls.__module__) as m:
      m.save(0, args=args.PyTreeSave({'a': np.arange(3.0)}))
      m.wait_until_finished()
      try:
        results[cls] = describe(m.restore(0, args=args.PyTreeRestore(restore_args=box_args)))
      except Exception as e:  # pylint: disable=broad-except
        results[cls] = type(e)
      # Saved as numpy, restored as numpy: the same on both.
      assert describe(m.restore(0)) == {'a': norm(np.arange(3.0))}
  assert results[NATIVE] == {'a': ('Box', norm(np.arange(3.0)))}
  assert results[orbax_compat.CheckpointManager] is AttributeError


def test_restore_with_a_registry_that_lacks_a_recorded_type(tmp_path):
  """An item's own registry restores only the types it has a TypeHandler
  for, as in v0 (ValueError): each `restore_type`, else each recorded type.
  README, known differences: a leaf whose RestoreArgs leave `restore_type`
  None is not checked; v0 refuses it, the shim restores it."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  with NATIVE(tmp_path / 'w', item_names=('s',)) as m:
    m.save(0, args=args.Composite(s=args.PyTreeSave({'a': np.arange(3), 'b': jnp.arange(2)})))
  sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  ra = type_handlers.RestoreArgs
  restores = {
      'bare': None,
      'PyTreeRestore()': args.PyTreeRestore(),
      'as numpy': args.PyTreeRestore(restore_args={
          'a': ra(restore_type=np.ndarray), 'b': ra(restore_type=np.ndarray)}),
      'as jax.Array': args.PyTreeRestore(restore_args={
          'a': ra(restore_type=np.ndarray),
          'b': type_handlers.ArrayRestoreArgs(restore_type=jax.Array, sharding=sharding)}),
      'restore_type None': args.PyTreeRestore(restore_args={
          'a': ra(restore_type=np.ndarray), 'b': ra()}),
  }
  results = {}
  for cls in (NATIVE, orbax_compat.CheckpointManager):
    registry = type_handlers.create_type_handler_registry((np.ndarray, type_handlers.NumpyHandler()))
    handler = v0_handlers.PyTreeCheckpointHandler(type_handler_registry=registry)
    root = tmp_path / cls.__module__
    shutil.copytree(tmp_path / 'w', root)
    with cls(root, item_handlers={'s': handler}) as m:
      for label, arg in restores.items():
        try:
          restored = m.restore(0, args=None if arg is None else args.Composite(s=arg))
          results[cls, label] = describe(dict(restored['s']))
        except ValueError as e:
          results[cls, label] = ('ValueError', 'TypeHandler lookup failed' in str(e))
  for label in restores:
    if label != 'restore_type None':
      assert results[NATIVE, label] == results[orbax_compat.CheckpointManager, label], label
  assert results[NATIVE, 'bare'] == ('ValueError', True)
  assert results[NATIVE, 'as numpy'] == {'a': norm(np.arange(3)), 'b': norm(np.asarray(jnp.arange(2)))}
  assert results[NATIVE, 'restore_type None'] == ('ValueError', True)
  assert results[orbax_compat.CheckpointManager, 'restore_type None'] == {
      'a': norm(np.arange(3)), 'b': norm(jnp.arange(2))}
