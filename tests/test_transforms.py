"""v0's restore-time `transforms` / `legacy_transform_fn`: native v0 vs the shim.

Each scenario saves a pytree through a manager and restores it with
transformations, through `PyTreeRestore(item, restore_args, transforms=...)`
or the legacy `restore(step, items=..., restore_kwargs=...)`. The harness
(tests/differential/) runs it on native v0 and on the shim and requires the
same observations: returned trees (structure, leaf types, dtypes, values,
shardings), what `multi_value_fn`s are given, and exception types.

The scenarios port those of Orbax's own tests (`transform_utils_test.py`
and the transform tests of `pytree_checkpoint_handler_test.py`): renames,
implicit keys, `default_to_original=False`, `use_fallback`, regex keys,
`value_fn` / `multi_value_fn`, non-dict trees, Flax train states, restore_args
with shardings, partial restores with `transforms={}` (the Flax guide) and
bad input.
"""

from __future__ import annotations

import re
from typing import Any

from differential import NATIVE
from differential import Rec
from differential import norm
from differential import scenario
from differential import tname as _tname
import flax
import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint import transform_utils
from orbax.checkpoint._src.composite import Composite as _Composite
import pytest

import orbax_compat

Transform = transform_utils.Transform
RestoreTransform = transform_utils.RestoreTransform
RestoreArgs = ocp.RestoreArgs
ArrayRestoreArgs = ocp.ArrayRestoreArgs
args = ocp.args

pytestmark = pytest.mark.usefixtures('quiet_shim')


# --------------------------------------------------------------------------
# Observations
# --------------------------------------------------------------------------


def _sharding(x: Any) -> Any:
  if isinstance(x, jax.Array):
    s = x.sharding
    if isinstance(s, jax.sharding.NamedSharding):
      return ('NamedSharding', tuple(s.mesh.shape.items()), str(s.spec))
    return (type(s).__name__, str(sorted(str(d) for d in s.device_set)))
  return None


def tree_obs(x: Any) -> Any:
  """Structure (custom classes by name), and per leaf: value, type, sharding."""
  if isinstance(x, _Composite):
    return ('Composite', {k: tree_obs(x[k]) for k in sorted(x.keys())})
  leaves, treedef = jax.tree_util.tree_flatten_with_path(x)
  return (
      re.sub(r' at 0x[0-9a-f]+', '', str(treedef)),
      [(jax.tree_util.keystr(p), norm(v), _sharding(v)) for p, v in leaves],
  )


class MsgRec(Rec):
  """A Rec that also records error messages (v0's, for transform errors)."""

  def call(self, label, fn, *a, post=norm, **kw):
    try:
      result = fn(*a, **kw)
    except Exception as e:  # pylint: disable=broad-except
      text = str(e).replace(str(self.root.parent), '<base>')
      self.obs.append((label, 'raises', _tname(e), bool(text.strip())))
      self.obs.append((label, 'message', re.sub(r'0x[0-9a-f]+', '', text)))
      return e
    self.obs.append((label, 'returns', post(result)))
    return result


def _mesh():
  return jax.sharding.Mesh(np.array(jax.devices()), ('x',))


def replicated():
  return jax.sharding.NamedSharding(_mesh(), jax.sharding.PartitionSpec())


def saved_tree() -> dict[str, Any]:
  """Like Orbax's handler tests: jax and numpy arrays, scalars, nesting."""
  return {
      'a': jax.device_put(np.arange(8), replicated()),
      'b': jax.device_put(np.arange(16), replicated()),
      'c': {
          'a': jax.device_put(np.arange(8).reshape((2, 4)), replicated()),
          'e': np.arange(8, dtype=np.float32).reshape((4, 2)),
      },
      'int_key': 5,
      'float_key': 2.5,
  }


def _array_args(x: Any) -> Any:
  if isinstance(x, jax.Array):
    return ArrayRestoreArgs(restore_type=jax.Array, sharding=replicated(),
                            global_shape=x.shape, dtype=x.dtype)
  if isinstance(x, np.ndarray):
    return RestoreArgs(restore_type=np.ndarray, dtype=x.dtype)
  return RestoreArgs(restore_type=type(x))


def _save(rec: Rec, cls, tree: Any, legacy: bool = False, **kw) -> Any:
  m = rec.manager('init', cls, **kw)
  if legacy:
    rec.call('save(0) items=', m.save, 0, tree)
  else:
    rec.call('save(0)', m.save, 0, args=args.PyTreeSave(tree))
  rec.call('wait', m.wait_until_finished)
  return m


def _restore(rec: Rec, m, label: str, item, restore_args=None, **kw) -> Any:
  return rec.call(label, m.restore, 0, post=tree_obs, args=args.PyTreeRestore(
      item, restore_args, **kw))


def _has_v0s_messages(native, shim):
  """Beyond the types: the transform errors carry v0's own messages (and
  the shim's are the same: they are compared with everything else)."""
  del shim
  assert [o for o in native if o[1] == 'message'], native


def _restores_transformed_trees(native, shim):
  """Not vacuous: native v0 returns transformed trees."""
  del shim
  (restored,) = [o for o in native if o[0] == 'rename']
  assert restored[1] == 'returns', restored
  leaves = dict((k, v[1]) for k, v, _ in restored[2][1])
  assert leaves == {"['a1']": 0, "['c']['a']": 2, "['ca1']": 2, "['ca2']": 2,
                    "['e1']": 3, "['f']": 7, "['g']": 100}, leaves


def _same_args(tree: Any) -> Any:
  return jax.tree.map(lambda _: RestoreArgs(), tree)


# --------------------------------------------------------------------------
# transform_utils_test scenarios, through a checkpoint
# --------------------------------------------------------------------------

ORIGINAL = {'a': 0, 'b': 1, 'c': {'a': 2, 'e': 3}}


@scenario(check=_restores_transformed_trees)
def rename_copy_drop_and_add(cls, root):
  """Renamed, moved, copied, dropped and newly added keys (test_rename)."""
  rec = Rec(root)
  m = _save(rec, cls, ORIGINAL)
  transforms = {
      'a1': Transform(original_key='a'),
      'c': {'a': Transform()},
      'e1': Transform(original_key='c/e'),
      'f': Transform(use_fallback=True),
      'ca1': Transform(original_key='c/a'),
      'ca2': Transform(original_key='c/a'),
  }
  item = {'a1': 0, 'c': {'a': 0}, 'e1': 0, 'f': 7, 'g': 100, 'ca1': 0, 'ca2': 0}
  _restore(rec, m, 'rename', item, _same_args(item), transforms=transforms)
  rec.call('close', m.close)
  return rec.obs


@scenario
def implicit_keys_carried_over(cls, root):
  """Keys not named by any transform keep the checkpoint's values."""
  rec = Rec(root)
  m = _save(rec, cls, ORIGINAL)
  transforms = {
      'a1': Transform(original_key='a'),
      'e1': Transform(original_key='c/e'),
      'e2': Transform(original_key='c/e'),
  }
  item = {'a': 0, 'a1': 0, 'c': {'a': 0, 'e': 0}, 'e1': 0, 'e2': 0, 'f': 9, 'g': 2}
  _restore(rec, m, 'partial transformation', item, _same_args(item),
           transforms=transforms)
  _restore(rec, m, 'subset of keys', {'a': 0, 'c': {'e': 0}},
           _same_args({'a': 0, 'c': {'e': 0}}),
           transforms={'a': Transform(), 'c': {'e': Transform()}})
  rec.call('close', m.close)
  return rec.obs


@scenario
def default_to_new(cls, root):
  """`transforms_default_to_original=False`: the item's values, except where
  `use_fallback` asks for the checkpoint's."""
  rec = Rec(root)
  m = _save(rec, cls, ORIGINAL)
  transforms = {'a': Transform(use_fallback=True), 'b1': Transform(original_key='b')}
  item = {'a': 50, 'c': {'a': 10, 'e': 11}, 'b1': 0, 'f': 4, 'g': 2}
  _restore(rec, m, 'default to new', item, _same_args(item),
           transforms=transforms, transforms_default_to_original=False)
  _restore(rec, m, 'default to new, no transforms', item, _same_args(item),
           transforms={}, transforms_default_to_original=False)
  rec.call('close', m.close)
  return rec.obs


@scenario(check=_has_v0s_messages)
def use_fallback_missing_key(cls, root):
  """`use_fallback` for a key the checkpoint lacks (test_missing_key_default)."""
  rec = MsgRec(root)
  m = _save(rec, cls, ORIGINAL)
  transforms = {'f': Transform(use_fallback=True)}
  item = {'a': 2, 'b': 3, 'c': {'a': 7, 'e': 8}, 'f': 20}
  _restore(rec, m, 'default to new: ValueError', item, _same_args(item),
           transforms=transforms, transforms_default_to_original=False)
  _restore(rec, m, 'default to original', item, _same_args(item),
           transforms=transforms, transforms_default_to_original=True)
  rec.call('close', m.close)
  return rec.obs


@scenario
def regex_keys(cls, root):
  """Regex keys with backreferences, at any depth, with a value_fn."""
  rec = Rec(root)
  m = _save(rec, cls, {
      'a1': np.arange(3),
      'c': {'a2': {'d': 2}, 'a3': 3},
      'd': {'e1': 2, 'e2': np.arange(2, dtype=np.float32)},
      'f': {'e3': 6, 'e4': {'a': 1}},
  })
  transforms = {
      r'(.*)x(\d.*)': Transform(original_key=r'\1a\2'),
      r'(.*)y(\d)': Transform(original_key=r'\1e\2', value_fn=lambda v: v * 2),
  }
  item = {'x1': 0, 'c': {'x2': {'d': 0}, 'x3': 0}, 'd': {'y1': 0, 'y2': 0},
          'f': {'y3': 0}}
  _restore(rec, m, 'regex', item, _same_args(item), transforms=transforms)
  rec.call('close', m.close)
  return rec.obs


@scenario
def multi_value_fns(cls, root):
  """Many-to-many functions of the original tree (test_function), and what
  the functions are given: the tree v0 read (unread leaves as v0 leaves them)
  and the RestoreArgs of the key they compute."""
  rec = Rec(root)
  m = _save(rec, cls, ORIGINAL)
  seen = []

  def fn(compute):
    def multi_value_fn(key, tree, restore_args):
      seen.append((key, tree_obs(tree), repr(restore_args)))
      return compute(tree)
    return multi_value_fn

  every = {r'.*': RestoreArgs()}
  transforms = {
      'a': RestoreTransform(multi_value_fn=fn(lambda t: t['a'] * 2 + 20),
                            multi_value_fn_input_args={'a': RestoreArgs()}),
      'c': {'a': RestoreTransform(
          multi_value_fn=fn(lambda t: t['c']['a'] + t['c']['e']),
          multi_value_fn_input_args={'c/.*': RestoreArgs()})},
      'w': RestoreTransform(multi_value_fn=fn(lambda t: t['a'] + t['b']),
                            multi_value_fn_input_args=every),
      'y': RestoreTransform(multi_value_fn=fn(lambda t: t['a']),
                            multi_value_fn_input_args=every),
  }
  item = {'a': 0, 'c': {'a': 0}, 'w': 0, 'y': 0}
  restore_args = {'a': RestoreArgs(restore_type=int), 'c': {'a': RestoreArgs()},
                  'w': RestoreArgs(dtype=np.int16), 'y': RestoreArgs()}
  _restore(rec, m, 'functions', item, restore_args, transforms=transforms)
  rec.value('multi_value_fn calls', sorted(seen))
  seen.clear()
  narrow = {'n': RestoreTransform(multi_value_fn=fn(lambda t: t['c']['e'] * 3),
                                  multi_value_fn_input_args={'c/e': RestoreArgs()})}
  _restore(rec, m, 'function reading one input', {'n': 0, 'b': 0},
           _same_args({'n': 0, 'b': 0}), transforms=narrow)
  rec.value('multi_value_fn sees unread leaves as v0 leaves them', sorted(seen))
  rec.call('close', m.close)
  return rec.obs


@scenario(check=_has_v0s_messages)
def multi_value_fn_without_restore_transform(cls, root):
  """v0 needs RestoreTransform and its input args for a multi_value_fn."""
  rec = MsgRec(root)
  m = _save(rec, cls, ORIGINAL)
  item = {'a': 0}
  _restore(rec, m, 'plain Transform: ValueError', item, _same_args(item),
           transforms={'a': Transform(multi_value_fn=lambda k, t: t['a'])})
  _restore(rec, m, 'no input args: ValueError', item, _same_args(item),
           transforms={'a': RestoreTransform(multi_value_fn=lambda k, t, a: 1)})
  _restore(rec, m, 'restore args missing the key: KeyError', {'z': 0},
           {'y': RestoreArgs()},
           transforms={'z': RestoreTransform(
               multi_value_fn=lambda k, t, a: t['a'],
               multi_value_fn_input_args={'a': RestoreArgs()})})
  rec.call('close', m.close)
  return rec.obs


@flax.struct.dataclass
class SubTree(flax.struct.PyTreeNode):
  x: Any
  y: Any


@flax.struct.dataclass
class OldTree(flax.struct.PyTreeNode):
  a: Any
  b: Any
  c: SubTree


@flax.struct.dataclass
class NewTree(flax.struct.PyTreeNode):
  a1: Any
  b: Any
  c: SubTree
  d: Any
  e: Any
  f: Any


@scenario
def non_dict_trees(cls, root):
  """Dataclass trees on both sides (test_non_dict_tree): the multi_value_fns
  index the tree v0 read, as v0 hands it to them."""
  rec = Rec(root)
  saved = OldTree(a=10, b=np.arange(3), c=SubTree(x={'i': 0, 'j': 1}, y=[4, 5, 6]))
  m = _save(rec, cls, saved)
  every = {r'.*': RestoreArgs()}

  def pick(getter):
    return RestoreTransform(multi_value_fn=lambda k, t, a: getter(t),
                            multi_value_fn_input_args=every)

  transforms = NewTree(
      a1=Transform(original_key='a'),
      b=pick(lambda t: t['b'] * 2),
      c=jax.tree.map(lambda _: Transform(), saved.c),
      d=Transform(use_fallback=True),
      e=pick(lambda t: t['c']['y'][0]),
      f=[pick(lambda t: t['c']['y'][1]), pick(lambda t: t['c']['y'][2])],
  )
  item = NewTree(a1=0, b=np.zeros(3, np.int64),
                 c=SubTree(x={'i': 0, 'j': 0}, y=[0, 0, 0]), d=7, e=0, f=[0, 0])
  _restore(rec, m, 'dataclasses', item, _same_args(item), transforms=transforms)
  rec.call('close', m.close)
  return rec.obs


# --------------------------------------------------------------------------
# pytree_checkpoint_handler_test scenarios
# --------------------------------------------------------------------------


@scenario
def handler_transform(cls, root):
  """test_transform: renames with value_fns, restore_args giving restore
  types and shardings for the new keys, multi_value_fns reading inputs with
  their own args (padding/truncation with strict=False), `use_fallback`."""
  rec = Rec(root)
  m = _save(rec, cls, saved_tree())

  def twice_plus_three(x):
    return x * 2 + 3

  def add(key, tree, restore_args):
    del key, restore_args
    return jax.jit(lambda a, b: a + b, out_shardings=replicated())(
        tree['a'], tree['b'])

  def split(key, tree, restore_args):
    if key == 'split1':
      value = np.asarray(tree['float_key'] * 2)
      return jax.make_array_from_callback(
          value.shape, restore_args.sharding, lambda idx: value[idx])
    return np.asarray(tree['float_key'] * 4)

  tree_args = jax.tree.map(_array_args, saved_tree())
  item = {'x': 0, 'y': 0, 'c': {'a': 0}, 'z': 100, 'int_key': 0, 'added': 0,
          'split1': 0, 'split2': 0, 'fallback': np.arange(4)}
  restore_args = {
      'x': tree_args['a'],
      'y': tree_args['c']['e'],
      'c': {'a': tree_args['c']['a']},
      'z': RestoreArgs(restore_type=int),
      'int_key': RestoreArgs(restore_type=int),
      'split1': ArrayRestoreArgs(sharding=replicated()),
      'split2': RestoreArgs(restore_type=np.ndarray),
      'added': RestoreArgs(restore_type=None),
      'fallback': RestoreArgs(restore_type=None),
  }
  float_args = {'float_key': RestoreArgs(restore_type=float)}
  transforms = {
      'x': Transform(original_key='a', value_fn=twice_plus_three),
      'y': Transform(original_key='c/e'),
      'c': {'a': Transform(value_fn=twice_plus_three)},
      'int_key': Transform(value_fn=lambda x: x + 2),
      'added': RestoreTransform(
          multi_value_fn=add,
          multi_value_fn_input_args={
              'a': ArrayRestoreArgs(sharding=replicated(), strict=False),
              'b': ArrayRestoreArgs(sharding=replicated(), global_shape=(8,),
                                    strict=False),
          }),
      'split1': RestoreTransform(multi_value_fn=split,
                                 multi_value_fn_input_args=float_args),
      'split2': RestoreTransform(multi_value_fn=split,
                                 multi_value_fn_input_args=float_args),
      'fallback': Transform(use_fallback=True),
  }
  _restore(rec, m, 'transform', item, restore_args, transforms=transforms)
  rec.call('close', m.close)
  return rec.obs


@scenario
def restore_args_decide_types(cls, root):
  """The RestoreArgs of the output key decide how its source is read:
  np.ndarray or jax.Array (with the given sharding), dtype casts, scalars."""
  rec = Rec(root)
  m = _save(rec, cls, saved_tree())
  item = {'n': 0, 'j': 0, 'cast': 0, 'i': 0, 'f': 0, 'same': 0}
  restore_args = {
      'n': RestoreArgs(restore_type=np.ndarray),
      'j': ArrayRestoreArgs(sharding=replicated()),
      'cast': RestoreArgs(restore_type=np.ndarray, dtype=np.float16),
      'i': RestoreArgs(dtype=np.float32),
      'f': RestoreArgs(restore_type=int),
      'same': RestoreArgs(),
  }
  transforms = {
      'n': Transform(original_key='a'),
      'j': Transform(original_key='c/e'),
      'cast': Transform(original_key='b'),
      'i': Transform(original_key='int_key'),
      'f': Transform(original_key='float_key'),
      'same': Transform(original_key='c/a'),
  }
  _restore(rec, m, 'restore types', item, restore_args, transforms=transforms)
  rec.call('close', m.close)
  return rec.obs


@scenario
def partial_restore_with_empty_transforms(cls, root):
  """test_partial_restore: `transforms={}` restores the item's keys only."""
  rec = Rec(root)
  m = _save(rec, cls, saved_tree())
  tree_args = jax.tree.map(_array_args, saved_tree())
  item = {'a': 0, 'c': {'a': 0}}
  restore_args = {'a': tree_args['a'], 'c': {'a': tree_args['c']['a']}}
  _restore(rec, m, 'partial', item, restore_args, transforms={})
  _restore(rec, m, 'partial, partial_restore=True too', item, restore_args,
           transforms={}, partial_restore=True)
  rec.call('close', m.close)
  return rec.obs


class SmallModel(flax.linen.Module):

  @flax.linen.compact
  def __call__(self, x):
    x = flax.linen.Dense(features=4)(x)
    x = flax.linen.sigmoid(x)
    return flax.linen.Dense(features=4)(x)


class LargeModel(flax.linen.Module):

  @flax.linen.compact
  def __call__(self, x):
    x = flax.linen.Dense(features=6)(x)
    x = flax.linen.sigmoid(x)
    x = flax.linen.Dense(features=4)(x)
    x = flax.linen.sigmoid(x)
    x = flax.linen.Dense(features=4)(x)
    x = flax.linen.sigmoid(x)
    return flax.linen.Dense(features=2)(x)


def train_state(model) -> Any:
  from flax.training import train_state as ts  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top

  params = model.init(jax.random.PRNGKey(0), jnp.ones([2, 4]))
  state = ts.TrainState.create(apply_fn=model.apply, params=params,
                               tx=optax.adamw(learning_rate=0.001))
  return jax.tree.map(np.asarray, state)


@scenario
def flax_train_state_surgery(cls, root):
  """test_flax_transform: a small model's TrainState restored into a larger
  one: new layers from the item, moved layers renamed by regex (value_fn),
  one layer the sum of two old ones (multi_value_fn)."""
  rec = Rec(root)
  m = _save(rec, cls, train_state(SmallModel()))
  new_state = train_state(LargeModel())

  def add(key, tree, restore_args):
    del restore_args
    flat = ocp.tree.to_flat_dict(tree, sep='/')
    match = re.fullmatch('(.*)Dense_2(.*)', key)
    return flat[match.expand(r'\1Dense_0\2')] + flat[match.expand(r'\1Dense_1\2')]

  transforms = {
      r'(.*)Dense_0(.*)': Transform(use_fallback=True),
      r'(.*)Dense_1(.*)': Transform(original_key=r'\1Dense_0\2',
                                    value_fn=lambda x: x * 2 + 1),
      r'(.*)Dense_2(.*)': RestoreTransform(
          multi_value_fn=add,
          multi_value_fn_input_args={r'.*Dense_[0,1].*': RestoreArgs()}),
  }
  restore_args = jax.tree.map(lambda x: RestoreArgs(restore_type=type(x)), new_state)
  _restore(rec, m, 'surgery', new_state, restore_args, transforms=transforms)
  _restore(rec, m, 'default to new, old Dense_1 kept', new_state, restore_args,
           transforms={r'(.*)Dense_1(.*)': Transform(use_fallback=True)},
           transforms_default_to_original=False)
  rec.call('close', m.close)
  return rec.obs


# --------------------------------------------------------------------------
# Manager forms: the Flax guide, legacy items=/restore_kwargs=, Composite
# --------------------------------------------------------------------------


def flax_guide_ckpt():
  return {'model': {'params': {'w': np.ones((2, 2), np.float32), 'b': np.zeros(2)}},
          'config': {'dimensions': np.array([5, 3])},
          'data': [np.arange(4)]}


@scenario
def flax_guide_empty_transforms(cls, root):
  """The Flax guide: a target with keys the checkpoint lacks, restored with
  `transforms={}` (legacy Checkpointer manager, `restore_kwargs`)."""
  rec = Rec(root)
  m = _save(rec, cls, flax_guide_ckpt(), legacy=True,
            checkpointers=ocp.PyTreeCheckpointer())
  target = flax_guide_ckpt()
  target['data'] = [np.zeros(4, np.int64), np.ones(3)]  # a new list entry
  target['extra'] = {'k': np.full(2, 7)}  # a new key
  del target['config']  # a dropped key
  restore_args = ocp.checkpoint_utils.construct_restore_args(target)
  rec.call('restore transforms={}', m.restore, 0, post=tree_obs, items=target,
           restore_kwargs={'transforms': {}, 'restore_args': restore_args})
  rec.call('restore transforms={} default to new', m.restore, 0, post=tree_obs,
           items=target, restore_kwargs={
               'transforms': {}, 'restore_args': restore_args,
               'transforms_default_to_original': False})
  rec.call('restore transforms={} without restore_args: ValueError', m.restore,
           0, post=tree_obs, items=target, restore_kwargs={'transforms': {}})
  rec.call('restore without transforms: structure mismatch', m.restore, 0,
           post=tree_obs, items=target, restore_kwargs={'restore_args': restore_args})
  rec.call('close', m.close)
  return rec.obs


@scenario
def legacy_composite_restore_kwargs(cls, root):
  """item_handlers with a PyTree item: per-item `restore_kwargs` transforms,
  next to an untransformed item."""
  rec = Rec(root)
  m = rec.manager('init', cls, item_names=('state', 'other'), item_handlers={
      'state': ocp.PyTreeCheckpointHandler(), 'other': ocp.PyTreeCheckpointHandler()})
  rec.call('save(0) items=', m.save, 0, {'state': ORIGINAL, 'other': {'z': np.arange(2)}})
  rec.call('wait', m.wait_until_finished)
  item = {'a1': 0, 'c': {'e': 0}}
  rec.call('restore items= restore_kwargs=', m.restore, 0, post=tree_obs,
           items={'state': item, 'other': {'z': 0}},
           restore_kwargs={'state': {'transforms': {'a1': Transform(original_key='a')},
                                     'restore_args': _same_args(item)},
                           'other': {'restore_args': {'z': RestoreArgs()}}})
  rec.call('restore args=Composite', m.restore, 0, post=tree_obs,
           args=args.Composite(
               state=args.PyTreeRestore(item, _same_args(item), transforms={
                   'a1': Transform(original_key='a')}),
               other=args.PyTreeRestore()))
  rec.call('close', m.close)
  return rec.obs


@scenario
def standard_handler_has_no_transforms(cls, root):
  """StandardRestore has no `transforms`: v0's TypeError in the legacy form."""
  rec = Rec(root)
  m = rec.manager('init', cls, item_handlers=ocp.StandardCheckpointHandler())
  rec.call('save(0) items=', m.save, 0, ORIGINAL)
  rec.call('wait', m.wait_until_finished)
  rec.call('restore_kwargs transforms: TypeError', m.restore, 0, post=tree_obs,
           items=ORIGINAL, restore_kwargs={'transforms': {}})
  rec.call('close', m.close)
  return rec.obs


# --------------------------------------------------------------------------
# legacy_transform_fn
# --------------------------------------------------------------------------


def _rename_fn(item, structure, param_infos):
  """A legacy fn: output `x` is the checkpoint's `a`, `y` its `c/e`."""
  del item
  return ({'x': structure['a'], 'y': structure['c']['e']},
          {'x': param_infos['a'], 'y': param_infos['c']['e']})


@scenario
def legacy_transform_fn(cls, root):
  rec = Rec(root)
  m = _save(rec, cls, saved_tree())
  seen = []

  def recording_fn(item, structure, param_infos):
    seen.append((tree_obs(item), tree_obs(structure),
                 sorted((k, (i.name, i.skip_deserialize))
                        for k, i in ocp.tree.to_flat_dict(param_infos, sep='/').items())))
    return _rename_fn(item, structure, param_infos)

  item = {'x': 0, 'y': 0}
  _restore(rec, m, 'legacy fn, no restore_args', item,
           legacy_transform_fn=recording_fn)
  rec.value('legacy fn was given', seen)
  _restore(rec, m, 'legacy fn with restore_args', item, {
      'x': RestoreArgs(restore_type=np.ndarray, dtype=np.int32),
      'y': ArrayRestoreArgs(sharding=replicated())}, legacy_transform_fn=_rename_fn)

  def skipping_fn(item, structure, param_infos):
    del item
    skipped = ocp.type_handlers.ParamInfo(
        name='', parent_dir=param_infos['a'].parent_dir, skip_deserialize=True)
    return ({'x': structure['int_key'], 'kept': structure['b']},
            {'x': param_infos['int_key'], 'kept': skipped})

  _restore(rec, m, 'legacy fn skipping a leaf', {'x': 0, 'kept': 0},
           legacy_transform_fn=skipping_fn)
  def unknown_param_fn(item, structure, param_infos):
    del item
    return {'x': structure['a']}, {'x': param_infos['a'].replace(name='nope')}

  _restore(rec, m, 'legacy fn reading an unknown parameter: ValueError',
           {'x': 0}, legacy_transform_fn=unknown_param_fn)
  _restore(rec, m, 'transforms and legacy fn: ValueError', item, _same_args(item),
           transforms={}, legacy_transform_fn=_rename_fn)
  _restore(rec, m, 'legacy fn, restore_args of another structure: ValueError',
           item, {'x': RestoreArgs()}, legacy_transform_fn=_rename_fn)
  rec.call('legacy fn, restore_kwargs', m.restore, 0, post=tree_obs, items=item,
           restore_kwargs={'legacy_transform_fn': _rename_fn})
  rec.call('close', m.close)
  return rec.obs


@scenario
def empty_nodes_and_strings(cls, root):
  """Empty containers, None and strings in the checkpoint, as v0 reads them."""
  rec = Rec(root)
  m = _save(rec, cls, {'none': None, 'empty': {}, 'list': [], 's': 'text',
                       'v': np.arange(3)})
  seen = []

  def look(key, tree, restore_args):
    del key, restore_args
    seen.append(tree_obs(tree))
    return tree['s'] + '!'

  item = {'empty': {}, 's2': '', 'v': 0, 'both': ''}
  transforms = {'s2': Transform(original_key='s'),
                'both': RestoreTransform(multi_value_fn=look,
                                         multi_value_fn_input_args={'s': RestoreArgs()})}
  _restore(rec, m, 'empties and strings', item, _same_args(item), transforms=transforms)
  rec.value('multi_value_fn saw', seen)
  rec.call('close', m.close)
  return rec.obs


@scenario
def checkpoint_written_by_native_v0(cls, root):
  """Both read the same native-written checkpoint, async, with transforms."""
  rec = Rec(root)
  with NATIVE(root) as writer:
    rec.call('native save(3)', writer.save, 3, args=args.PyTreeSave(saved_tree()))
  m = rec.manager('init', cls)
  item = {'renamed': 0, 'c': {'e': 0}}
  restore_args = {'renamed': ArrayRestoreArgs(sharding=replicated()),
                  'c': {'e': RestoreArgs(restore_type=np.ndarray)}}
  rec.call('restore(3)', m.restore, 3, post=tree_obs, args=args.PyTreeRestore(
      item, restore_args, transforms={'renamed': Transform(original_key='c/a')}))
  rec.call('close', m.close)
  return rec.obs


# --------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------


@scenario(check=_has_v0s_messages)
def bad_transforms(cls, root):
  rec = MsgRec(root)
  m = _save(rec, cls, ORIGINAL)
  item = {'a': 0, 'z': 0}
  _restore(rec, m, 'original key missing: ValueError', item, _same_args(item),
           transforms={'z': Transform(original_key='nope')})
  _restore(rec, m, 'transform of a new key without original: ValueError',
           {'q': 0}, _same_args({'q': 0}), transforms={'q': Transform()})
  _restore(rec, m, 'no item: ValueError', None, _same_args(ORIGINAL),
           transforms={})
  _restore(rec, m, 'no restore_args: ValueError', item, None, transforms={})
  _restore(rec, m, 'renamed key missing from restore_args: KeyError', item,
           {'a': RestoreArgs()}, transforms={'z': Transform(original_key='a')})
  _restore(rec, m, 'no restore_args, renamed key: KeyError', item, None,
           transforms={'z': Transform(original_key='a')})
  _restore(rec, m, 'value_fn raising: its error', {'a': 0}, {'a': RestoreArgs()},
           transforms={'a': Transform(value_fn=lambda x: 1 / 0)})
  rec.call('close', m.close)
  return rec.obs


# --------------------------------------------------------------------------
# Refusals (README): the shim raises where v0 restores
# --------------------------------------------------------------------------


def _two_reads_fn(item, structure, param_infos):
  del item
  return ({'x': structure['a'], 'y': structure['a']},
          {'x': param_infos['a'], 'y': param_infos['a']})


def test_legacy_fn_reading_one_leaf_with_two_restore_args_is_refused(tmp_path):
  """A refusal (README): v1 reads each checkpoint leaf once per restore."""
  restore_args = {'x': RestoreArgs(restore_type=np.ndarray),
                  'y': ArrayRestoreArgs(sharding=replicated())}
  restore = args.PyTreeRestore({'x': 0, 'y': 0}, restore_args,
                               legacy_transform_fn=_two_reads_fn)
  with NATIVE(tmp_path / 'native') as m:
    m.save(0, args=args.PyTreeSave(saved_tree()))
    native = m.restore(0, args=restore)
  assert type(native['x']) is np.ndarray and isinstance(native['y'], jax.Array)
  with orbax_compat.CheckpointManager(tmp_path / 'shim') as m:
    m.save(0, args=args.PyTreeSave(saved_tree()))
    with pytest.raises(NotImplementedError, match=r"'a' twice.*'x'.*'y'"):
      m.restore(0, args=restore)
    # The same RestoreArgs for both: one read, as v0 returns it.
    same = args.PyTreeRestore({'x': 0, 'y': 0}, _same_args({'x': 0, 'y': 0}),
                              legacy_transform_fn=_two_reads_fn)
    assert tree_obs(m.restore(0, args=same)) == tree_obs(
        NATIVE(tmp_path / 'native').restore(0, args=same))


def test_legacy_fn_reading_another_directory_is_refused(tmp_path):
  """A refusal (README): v1 loads an item from its own directory only."""
  with NATIVE(tmp_path / 'other') as m:
    m.save(0, args=args.PyTreeSave({'a': np.arange(3)}))

  def elsewhere(item, structure, param_infos):
    del item
    info = param_infos['a'].replace(parent_dir=tmp_path / 'other' / '0' / 'default')
    return {'x': structure['a']}, {'x': info}

  restore = args.PyTreeRestore({'x': 0}, legacy_transform_fn=elsewhere)
  with NATIVE(tmp_path / 'native') as m:
    m.save(0, args=args.PyTreeSave({'a': np.arange(4)}))
    assert m.restore(0, args=restore)['x'].tolist() == [0, 1, 2]
  with orbax_compat.CheckpointManager(tmp_path / 'shim') as m:
    m.save(0, args=args.PyTreeSave({'a': np.arange(4)}))
    with pytest.raises(NotImplementedError, match='legacy_transform_fn'):
      m.restore(0, args=restore)
