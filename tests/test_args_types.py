"""Differential tests of v0 args types and fields beyond Standard/PyTree/Json.

PyTreeRestore `restore_args`/`partial_restore`, StandardRestore `strict`/
`fallback_sharding`, `save_args`, ArraySave/ArrayRestore, ProtoSave/
ProtoRestore and JsonSave as the default item: each scenario runs on native v0
and on the shim (tests/differential/), plus cross-reads both ways.
"""

from __future__ import annotations

from differential import NATIVE
from differential import Rec
from differential import abstract
from differential import args
from differential import json_doc
from differential import norm
from differential import scenario
from google.protobuf import duration_pb2
import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

import orbax_compat

R = ocp.RestoreArgs
SHARDING = jax.sharding.SingleDeviceSharding(jax.devices()[0])

pytestmark = pytest.mark.usefixtures('quiet_shim')


def with_msg(composite):
  """norm() of a Composite, plus its proto item's text (norm shows types)."""
  return (norm(composite), str(composite['msg']))


def mixed_tree(offset: int = 0):
  return {
      'a': np.arange(3, dtype=np.float32) + offset,
      'b': jnp.arange(2, dtype=jnp.int32) + offset,
      'c': np.array([1, 2], np.int64),
      's': 3 + offset,
      'f': 2.5,
  }


RESTORE_ARGS = {
    'dtype casts': {'a': R(dtype=np.float16), 'b': R(dtype=np.float32), 'c': R(),
                    's': R(dtype=np.float32), 'f': R()},
    'as numpy': {'a': R(restore_type=np.ndarray), 'b': R(restore_type=np.ndarray, dtype=np.int8),
                 'c': R(restore_type=np.ndarray), 's': R(restore_type=int),
                 'f': R(restore_type=np.ndarray)},
    'as jax': {'a': ocp.ArrayRestoreArgs(sharding=SHARDING),
               'b': ocp.ArrayRestoreArgs(sharding=SHARDING, dtype=np.float32),
               'c': ocp.ArrayRestoreArgs(sharding=SHARDING, global_shape=(2,)),
               's': R(restore_type=np.ndarray), 'f': R(restore_type=int)},
    'jax.Array without sharding': {'a': R(), 'b': R(restore_type=jax.Array), 'c': R(),
                                   's': R(), 'f': R()},
    'np leaf as jax.Array without sharding': {
        'a': R(restore_type=jax.Array), 'b': R(), 'c': R(), 's': R(), 'f': R()},
    'subtree without partial_restore': {'a': R()},
}


@scenario
def pytree_restore_args(cls, root):
  rec = Rec(root)
  tree = mixed_tree()
  m = rec.manager('init', cls)
  rec.call('save(0)', m.save, 0, args=args.PyTreeSave(tree))
  rec.call('wait', m.wait_until_finished)
  for name, restore_args in RESTORE_ARGS.items():
    rec.call(f'restore_args {name}', m.restore, 0,
             args=args.PyTreeRestore(restore_args=restore_args))
    rec.call(f'item + restore_args {name}', m.restore, 0,
             args=args.PyTreeRestore(item=tree, restore_args=restore_args))
  for label, item in (('concrete', {'a': tree['a'], 'b': tree['b']}),
                      ('abstract', {'a': jax.ShapeDtypeStruct((3,), np.float32)})):
    rec.call(f'partial {label}', m.restore, 0,
             args=args.PyTreeRestore(item=item, partial_restore=True))
    restore_args = jax.tree.map(lambda _: R(restore_type=np.ndarray, dtype=np.float16), item)
    rec.call(f'partial {label} + restore_args', m.restore, 0, args=args.PyTreeRestore(
        item=item, restore_args=restore_args, partial_restore=True))
  rec.layout('end')
  rec.call('close', m.close)
  return rec.obs


@scenario
def standard_restore_strict_and_fallback(cls, root):
  rec = Rec(root)
  tree = {'x': jnp.arange(4, dtype=jnp.float32), 'y': np.arange(2, dtype=np.int32)}
  m = rec.manager('init', cls)
  rec.call('save(0)', m.save, 0, args=args.StandardSave(tree))
  rec.call('wait', m.wait_until_finished)
  longer = {'x': jax.ShapeDtypeStruct((6,), jnp.float32, sharding=SHARDING),
            'y': np.zeros(2, np.int32)}
  rec.call('strict, longer target', m.restore, 0, args=args.StandardRestore(longer))
  rec.call('strict=False, longer target', m.restore, 0,
           args=args.StandardRestore(longer, strict=False))
  rec.call('fallback_sharding', m.restore, 0, args=args.StandardRestore(
      abstract(tree), fallback_sharding=SHARDING))
  rec.call('close', m.close)
  return rec.obs


@scenario
def save_args_and_target_file_size(cls, root):
  rec = Rec(root)
  tree = mixed_tree(1)
  m = rec.manager('init', cls)
  save_args = jax.tree.map(lambda _: ocp.SaveArgs(), tree)
  save_args['a'] = ocp.SaveArgs(dtype=np.dtype('float16'))
  save_args['b'] = ocp.SaveArgs(dtype=np.dtype('float32'))
  rec.call('save(0) PyTreeSave save_args', m.save, 0, args=args.PyTreeSave(
      tree, save_args=save_args, ocdbt_target_data_file_size=1 << 20))
  std = rec.manager('init std', cls, root=root / 'std')
  rec.call('save(1) StandardSave save_args', std.save, 1, args=args.StandardSave(
      tree, save_args={**save_args, 'c': None, 'a': ocp.SaveArgs(dtype=np.dtype('int32'))}))
  rec.call('std wait', std.wait_until_finished)
  rec.call('std restore(1)', std.restore, 1)
  rec.call('std close', std.close)
  rec.call('wait', m.wait_until_finished)
  rec.layout('after saves')
  rec.call('restore(0)', m.restore, 0)
  rec.call('item_metadata(0)', m.item_metadata, 0)
  rec.call('close', m.close)
  return rec.obs


def _array_checks(rec, m, step, label=''):
  rec.call(f'{label}restore({step})', m.restore, step)
  rec.call(f'{label}restore({step}) ArrayRestore()', m.restore, step,
           args=args.ArrayRestore())
  rec.call(f'{label}restore({step}) ArrayRestore(float16)', m.restore, step,
           args=args.ArrayRestore(restore_args=R(restore_type=np.ndarray, dtype=np.float16)))


@scenario
def array_save_restore(cls, root):
  rec = Rec(root)
  m = rec.manager('init', cls)
  rec.call('save(0) np', m.save, 0, args=args.ArraySave(np.arange(3, dtype=np.int32)))
  rec.call('save(1) jax', m.save, 1, args=args.ArraySave(jnp.arange(2.0)))
  rec.call('save(2) scalar', m.save, 2, args=args.ArraySave(7))
  rec.call('save(3) save_args', m.save, 3, args=args.ArraySave(
      np.arange(4, dtype=np.float32), save_args=ocp.SaveArgs(dtype=np.dtype('float16'))))
  rec.call('wait', m.wait_until_finished)
  rec.layout('after saves')
  for step in (0, 1, 3):
    _array_checks(rec, m, step)
  rec.call('restore(2)', m.restore, 2)
  rec.call('item_metadata(0)', m.item_metadata, 0)
  rec.call('close', m.close)
  m2 = rec.manager('fresh', cls)
  _array_checks(rec, m2, 1, 'fresh ')
  rec.call('fresh restore(2)', m2.restore, 2)
  rec.call('close 2', m2.close)
  return rec.obs


@scenario
def array_and_proto_in_composite(cls, root):
  rec = Rec(root)
  m = rec.manager('init', cls, options=ocp.CheckpointManagerOptions(max_to_keep=1))
  for s in (0, 1):
    rec.call(f'save({s})', m.save, s, args=args.Composite(
        arr=args.ArraySave(np.arange(3) + s),
        msg=args.ProtoSave(duration_pb2.Duration(seconds=s + 1)),
        cfg=args.JsonSave(json_doc(s)),
        state=args.StandardSave({'w': np.ones(2) * s})))
  rec.call('wait', m.wait_until_finished)
  rec.layout('after saves')
  rec.call('restore(1) all args', m.restore, 1, args=args.Composite(
      arr=args.ArrayRestore(), msg=args.ProtoRestore(duration_pb2.Duration),
      cfg=args.JsonRestore(), state=args.StandardRestore()), post=with_msg)
  rec.call('restore(1) arr + msg', m.restore, 1, args=args.Composite(
      arr=args.ArrayRestore(), msg=args.ProtoRestore(duration_pb2.Duration)), post=with_msg)
  rec.call('restore(1) no args', m.restore, 1)
  rec.call('item_metadata(1)', m.item_metadata, 1)
  rec.call('close', m.close)
  m2 = rec.manager('fresh', cls)
  rec.call('fresh restore(1) msg', m2.restore, 1,
           args=args.Composite(msg=args.ProtoRestore(duration_pb2.Duration)))
  rec.call('close 2', m2.close)
  return rec.obs


@scenario
def proto_default_item(cls, root):
  rec = Rec(root)
  m = rec.manager('init', cls)
  rec.call('save(0)', m.save, 0, args=args.ProtoSave(duration_pb2.Duration(seconds=3)))
  rec.call('wait', m.wait_until_finished)
  rec.layout('after save')
  rec.call('restore ProtoRestore', m.restore, 0,
           args=args.ProtoRestore(duration_pb2.Duration), post=str)
  rec.call('restore no args', m.restore, 0)
  rec.call('close', m.close)
  m2 = rec.manager('fresh', cls)
  rec.call('fresh restore no args', m2.restore, 0)
  rec.call('fresh restore ProtoRestore', m2.restore, 0,
           args=args.ProtoRestore(duration_pb2.Duration), post=str)
  rec.call('close 2', m2.close)
  return rec.obs


@scenario
def json_default_item(cls, root):
  rec = Rec(root)
  m = rec.manager('init', cls)
  rec.call('save(0)', m.save, 0, args=args.JsonSave(json_doc(0)))
  rec.call('save(1)', m.save, 1, args=args.JsonSave(json_doc(1)))
  rec.call('wait', m.wait_until_finished)
  rec.layout('after saves')
  rec.call('restore(0) no args', m.restore, 0)
  rec.call('restore(1) JsonRestore', m.restore, 1, args=args.JsonRestore())
  rec.call('restore latest', m.restore, None)
  rec.call('item_metadata(1)', m.item_metadata, 1)
  rec.call('close', m.close)
  m2 = rec.manager('fresh', cls)
  rec.call('fresh restore(1) no args', m2.restore, 1)
  rec.call('fresh restore(0) JsonRestore', m2.restore, 0, args=args.JsonRestore())
  rec.call('close 2', m2.close)
  return rec.obs


def _write_all(w, rec, label):
  rec.call(f'{label} save(0) array', w.save, 0, args=args.Composite(
      arr=args.ArraySave(jnp.arange(3, dtype=jnp.float32)),
      msg=args.ProtoSave(duration_pb2.Duration(seconds=9)),
      state=args.PyTreeSave(mixed_tree(2), save_args=jax.tree.map(
          lambda _: ocp.SaveArgs(dtype=np.dtype('float16')), {'a': 0, 'b': 0, 'c': 0, 's': 0, 'f': 0}))))


def _read_all(r, rec, label):
  rec.call(f'{label} restore args', r.restore, 0, args=args.Composite(
      arr=args.ArrayRestore(), msg=args.ProtoRestore(duration_pb2.Duration),
      state=args.PyTreeRestore(restore_args=RESTORE_ARGS['dtype casts'])), post=with_msg)


def _cross(writer, reader):
  def fn(_cls, root):
    rec = Rec(root)
    with writer(root / 'multi') as w:
      _write_all(w, rec, 'writer')
    with writer(root / 'json') as w:
      rec.call('writer save(0) json', w.save, 0, args=args.JsonSave(json_doc()))
    with writer(root / 'array') as w:
      rec.call('writer save(0) array', w.save, 0, args=args.ArraySave(np.arange(2)))
    rec.layout('multi', root / 'multi')
    with reader(root / 'multi') as r:
      _read_all(r, rec, 'reader')
    with reader(root / 'multi') as r:
      rec.call('reader fresh restore no args (proto: v0 fails)', r.restore, 0)
    for name in ('json', 'array'):
      with reader(root / name) as r:
        rec.call(f'reader fresh {name} restore no args', r.restore, 0)
    with reader(root / 'json') as r:
      rec.call('reader fresh json JsonRestore', r.restore, 0, args=args.JsonRestore())
    return rec.obs
  return fn


@scenario
def cross_native_writes_cls_reads(cls, root):
  return _cross(NATIVE, cls)(cls, root)


@scenario
def cross_cls_writes_native_reads(cls, root):
  return _cross(cls, NATIVE)(cls, root)


@scenario
def bad_args_for_items(cls, root):
  rec = Rec(root)
  m = rec.manager('init', cls)
  rec.call('save(0)', m.save, 0, args=args.Composite(
      arr=args.ArraySave(np.arange(2)),
      msg=args.ProtoSave(duration_pb2.Duration(seconds=1))))
  rec.call('wait', m.wait_until_finished)
  before = rec.layout('before')
  rec.call('ArrayRestore for the proto item', m.restore, 0,
           args=args.Composite(msg=args.ArrayRestore()))
  rec.call('ProtoRestore for the array item', m.restore, 0,
           args=args.Composite(arr=args.ProtoRestore(duration_pb2.Duration)))
  rec.call('ProtoRestore(None)', m.restore, 0,
           args=args.Composite(msg=args.ProtoRestore(None)))
  rec.call('wait 2', m.wait_until_finished)
  rec.value('disk unchanged', before == rec.layout('after'))
  rec.call('close', m.close)
  return rec.obs


BAD_SAVES = {
    'ArraySave of a dict': args.Composite(arr=args.ArraySave({'x': 1})),
    'ProtoSave for the array item': args.Composite(
        arr=args.ProtoSave(duration_pb2.Duration(seconds=1))),
    'ArraySave for the proto item': args.Composite(msg=args.ArraySave(np.arange(2))),
    'save_args of another structure': args.Composite(state=args.StandardSave(
        {'a': np.arange(2), 'b': np.arange(3)},
        save_args={'a': ocp.SaveArgs(dtype=np.dtype('float16'))})),
}


@pytest.mark.parametrize('label', sorted(BAD_SAVES))
def test_bad_save_raises_like_native_and_writes_nothing(label, tmp_path):
  """v0 raises, but may leave a temporary step behind; the shim writes nothing."""
  errors = {}
  for name, cls in (('native', NATIVE), ('shim', orbax_compat.CheckpointManager)):
   root = tmp_path / name
   with cls(root) as m:
    m.save(0, args=args.Composite(
      arr=args.ArraySave(np.arange(2)),
      msg=args.ProtoSave(duration_pb2.Duration(seconds=1))))
    m.wait_until_finished()
    before = sorted(p.name for p in root.iterdir())
    with pytest.raises(Exception) as info:  # noqa: PT011 - compared below.
     m.save(1, args=BAD_SAVES[label])
     m.wait_until_finished()
    errors[name] = (type(info.value), str(info.value))
   if name == 'shim':
    assert sorted(p.name for p in root.iterdir()) == before
  assert errors['shim'][0] is errors['native'][0], errors
  assert errors['shim'][1].strip()
