"""One side of a gs:// scenario, in a fresh process (see test_gcs.py).

    python gcs_worker.py SIDE SCENARIO ROOT [ROOT ...]

SIDE is `native` (Orbax's own v0 CheckpointManager; orbax_compat is never
imported) or `shim` (orbax_compat.CheckpointManager). ROOT is a gs:// URL on
the emulator whose address the environment names (gcs_emulator.Emulator.env).
Prints one JSON line: the scenario's observations (results with their types,
error types, the bucket's object keys under ROOT).
"""

from __future__ import annotations

import json
import os
import re
import sys
import traceback
from typing import Any
import urllib.parse
import urllib.request

from differential import recorder
from differential.recorder import has as _has
from differential.recorder import tname as _tname
import jax
import numpy as np
import orbax.checkpoint as ocp

args = ocp.args
Options = ocp.CheckpointManagerOptions
BUCKET = 'orbax-compat-test'
SCENARIOS = {}


def scenario(fn):
  SCENARIOS[fn.__name__] = fn
  return fn


# --------------------------------------------------------------------------
# The bucket, through the emulator's JSON API (not through the libraries).
# --------------------------------------------------------------------------


def _api(method: str, path: str) -> dict:
  url = os.environ['STORAGE_EMULATOR_HOST'] + path
  with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=30) as r:
    text = r.read()
  return json.loads(text) if text else {}


def _key(root: str) -> str:
  return root.split(f'gs://{BUCKET}/', 1)[1].rstrip('/')


def object_keys(root: str) -> list[str]:
  """The object keys under root, relative to it (paginated listing)."""
  prefix = _key(root) + '/'
  out, token = [], None
  while True:
    query = {'prefix': prefix, **({'pageToken': token} if token else {})}
    page = _api('GET', f'/storage/v1/b/{BUCKET}/o?{urllib.parse.urlencode(query)}')
    out += [item['name'][len(prefix):] for item in page.get('items', [])]
    token = page.get('nextPageToken')
    if not token:
      return sorted(out)


def upload_object(root: str, relative: str, data: bytes) -> None:
  """Writes an object past gcsfs, as TensorStore's `gcs` driver does."""
  query = urllib.parse.urlencode({'uploadType': 'media', 'name': f'{_key(root)}/{relative}'})
  url = f"{os.environ['STORAGE_EMULATOR_HOST']}/upload/storage/v1/b/{BUCKET}/o?{query}"
  with urllib.request.urlopen(urllib.request.Request(url, data=data, method='POST'), timeout=30):
    pass


def remove_object(root: str, relative: str) -> None:
  key = urllib.parse.quote(f'{_key(root)}/{relative}', safe='')
  _api('DELETE', f'/storage/v1/b/{BUCKET}/o/{key}')


_HASHED = re.compile(r'/d/[0-9a-f]{32}$')
_TMP = re.compile(r'\.orbax-checkpoint-tmp-?\d*')


def bucket_layout(root: str) -> list[str]:
  """Object keys, with data files (content-hashed names, whose number
  follows the data: issue 16, item 6) as one `d/*` entry per directory."""
  return sorted({_TMP.sub('.orbax-checkpoint-tmp', _HASHED.sub('/d/*', k))
                 for k in object_keys(root)})


# --------------------------------------------------------------------------
# Observations
# --------------------------------------------------------------------------


def describe(x: Any) -> Any:
  """A JSON-able, type-preserving description of a returned value."""
  if x is None or isinstance(x, (bool, int, float, str)):
    return [_tname(x), x]
  if isinstance(x, jax.Array):
    return [_tname(x), 'jax.Array', str(x.dtype), list(x.shape), np.asarray(x).tolist()]
  if isinstance(x, np.ndarray):
    return [_tname(x), str(x.dtype), list(x.shape), x.tolist()]
  if isinstance(x, np.generic):
    return [_tname(x), str(x.dtype), x.item()]
  if isinstance(x, args.Composite) or _tname(x).endswith('.Composite'):
    return [_tname(x), {k: describe(x[k]) for k in sorted(x.keys())}]
  if _has(x, 'tree') and _has(x, 'custom_metadata'):  # TreeMetadata
    return [_tname(x), describe(x.tree), describe(x.custom_metadata)]
  if _has(x, 'shape') and _has(x, 'dtype'):  # ArrayMetadata & co.
    return [_tname(x), list(x.shape), str(np.dtype(x.dtype))]
  if isinstance(x, dict):
    return [_tname(x), sorted([repr(k), describe(v)] for k, v in x.items())]
  if isinstance(x, (list, tuple)):
    return [_tname(x), [describe(v) for v in x]]
  return [_tname(x)]


class Rec(recorder.Recorder):
  describe = staticmethod(describe)
  listing = staticmethod(bucket_layout)

  def __init__(self, root: str):
    super().__init__('.')
    self.root = root  # A gs:// URL (kept as text: pathlib would mangle it).

  def message(self, label: str, fn, *a, **kw) -> None:
    """Records the error's type and its message up to the first path."""
    try:
      fn(*a, **kw)
    except Exception as e:  # pylint: disable=broad-exception-caught
      self.obs.append((label, 'raises', _tname(e), str(e).split(' gs://')[0]))
      return
    self.obs.append((label, 'returned'))


def tree(step: int) -> dict:
  """Small numpy and jax leaves (jax.Arrays exercise ArrayMetadata)."""
  return {'w': np.arange(6, dtype=np.float32) + step,
          'b': {'j': jax.numpy.full((2, 3), step, dtype=jax.numpy.int32),
                's': np.full((1,), step, np.int64)}}


def target() -> dict:
  return tree(0)


def numpy_tree(step: int) -> dict:
  """numpy leaves only: TensorStore writes them at once, so a race with the
  step's first metadata write (issue 16, item 7) shows most."""
  return {'w': np.arange(6, dtype=np.float32) + step,
          'b': {'x': np.full((2, 3), step, np.int32)}}


# --------------------------------------------------------------------------
# Scenarios: fn(cls, roots) -> observations
# --------------------------------------------------------------------------


def _saves_gc_and_queries(cls, root: str, *, asynchronous: bool) -> list:
  rec = Rec(root)
  options = Options(max_to_keep=2, best_fn=lambda m: m['loss'], best_mode='min',
                    keep_checkpoints_without_metrics=False,
                    enable_async_checkpointing=asynchronous)
  # v0 on gs:// through gcsfs cannot write root metadata (`mkdir` makes no
  # object there, and v0 then finds no `metadata/` directory): ValueError.
  rec.manager('init with metadata=', cls, root, options=options, metadata={'run': 'gcs'})
  m = rec.manager('init', cls, root, options=options)
  for step, loss in zip(range(5), (3.0, 1.0, 4.0, 0.5, 2.0), strict=True):
    rec.call(f'save({step})', m.save, step, args=args.StandardSave(tree(step)),
             metrics={'loss': loss})
  rec.call('wait', m.wait_until_finished)
  rec.call('all_steps', m.all_steps)
  rec.call('latest_step', m.latest_step)
  rec.call('best_step', m.best_step)
  for step in m.all_steps():
    rec.call(f'metrics({step})', m.metrics, step)
    rec.call(f'restore({step}, StandardRestore)', m.restore, step,
             args=args.StandardRestore(target()))
  rec.call('restore(latest) without args', m.restore, m.latest_step())
  rec.call('item_metadata', m.item_metadata, m.latest_step())
  rec.call('should_save(5)', m.should_save, 5)
  rec.call('delete(3)', m.delete, 3)
  rec.call('reload', m.reload)
  rec.call('all_steps after reload', m.all_steps)
  rec.call('close', m.close)
  rec.layout('bucket')
  return rec.obs


@scenario
def sync_saves(cls, roots):
  return _saves_gc_and_queries(cls, roots[0], asynchronous=False)


@scenario
def async_saves(cls, roots):
  return _saves_gc_and_queries(cls, roots[0], asynchronous=True)


@scenario
def seed(cls, roots):
  """A training job's first run: async saves of steps 0-2, then it ends."""
  rec = Rec(roots[0])
  with cls(roots[0], options=Options(max_to_keep=2)) as m:
    for step in range(3):
      rec.call(f'save({step})', m.save, step, args=args.StandardSave(numpy_tree(step)))
    rec.call('all_steps', m.all_steps)
  rec.layout('bucket')
  return rec.obs


@scenario
def resume(cls, roots):
  """A restarted job (fresh process): open, restore the latest step, save the
  next one synchronously, as a training loop resuming does. Observations are
  relative to the latest step, so resumes of any length compare."""
  rec = Rec(roots[0])
  options = Options(max_to_keep=2, enable_async_checkpointing=False)
  m = rec.manager('init', cls, roots[0], options=options)
  latest = m.latest_step()
  rec.value('listed', [s - latest for s in m.all_steps()])
  restored = rec.call('restore(latest)', m.restore, latest,
                      args=args.StandardRestore(numpy_tree(0)),
                      post=lambda r: describe(jax.tree.map(lambda x: x - latest, r)))
  del restored
  rec.call('save(latest + 1)', m.save, latest + 1,
           args=args.StandardSave(numpy_tree(latest + 1)))
  rec.value('listed after', [s - latest for s in m.all_steps()])
  rec.call('close', m.close)
  rec.value('steps on gs://', sorted(
      {int(k.split('/')[0]) - latest for k in object_keys(roots[0])}))
  return rec.obs


@scenario
def stale_listing(cls, roots):
  """Issue 16 item 7's cause, step by step: gcsfs answers from the root's
  cached listing for an item directory written past it; the shim's save
  drops that listing first (`compat.storage.forget_cached_listings`)."""
  del cls
  from etils import epath  # pylint: disable=g-import-not-at-top

  from orbax_compat.compat import storage  # pylint: disable=g-import-not-at-top

  rec = Rec(roots[0])
  root = epath.Path(roots[0])
  (root / '0' / 'x').write_text('step 0')  # Through gcsfs.
  rec.value('listed', sorted(p.name for p in root.iterdir()))  # Now cached.
  upload_object(roots[0], '1/default/x', b'step 1')  # As TensorStore writes.
  rec.value('exists, cached listing', (root / '1' / 'default').exists())
  storage.forget_cached_listings(root / '1')
  rec.value('exists, listing dropped', (root / '1' / 'default').exists())
  return rec.obs


@scenario
def write(cls, roots):
  """Steps 0 and 1 (a Composite with metrics) for the other sides to read."""
  rec = Rec(roots[0])
  options = Options(best_fn=lambda m: m['loss'])
  with cls(roots[0], options=options) as m:
    for step in (0, 1):
      rec.call(f'save({step})', m.save, step, metrics={'loss': 1.0 / (step + 1)},
               args=args.Composite(state=args.StandardSave(tree(step)),
                                   meta=args.JsonSave({'step': step})))
  rec.layout('bucket')
  return rec.obs


@scenario
def write_v1(cls, roots):
  """Steps 0 and 1 written by v1's training.Checkpointer."""
  del cls
  from orbax.checkpoint.experimental.v1 import training  # pylint: disable=g-import-not-at-top

  rec = Rec(roots[0])
  with training.Checkpointer(roots[0]) as ckptr:
    for step in (0, 1):
      rec.call(f'v1 save({step})', ckptr.save_checkpointables, step,
               {'state': tree(step)})
  rec.layout('bucket')
  return rec.obs


@scenario
def read(cls, roots):
  """Every root read by this side, and (native side) by v1 too."""
  rec = Rec(roots[0])
  for root in roots:
    name = root.rsplit('/', 1)[1]
    with cls(root) as m:
      rec.call(f'{name}: all_steps', m.all_steps)
      rec.call(f'{name}: latest_step', m.latest_step)
      rec.call(f'{name}: restore(1)', m.restore, 1, args=args.Composite(
          state=args.StandardRestore(target())))
      rec.call(f'{name}: restore(0) without args', m.restore, 0)
      rec.call(f'{name}: item_metadata(1)', m.item_metadata, 1)
  if cls is ocp.CheckpointManager:
    from orbax.checkpoint.experimental.v1 import training  # pylint: disable=g-import-not-at-top

    for root in roots:
      name = root.rsplit('/', 1)[1]
      with training.Checkpointer(root) as ckptr:
        rec.call(f'{name}: v1 steps', lambda c=ckptr: [x.step for x in c.checkpoints])
        rec.call(f'{name}: v1 load(1)', ckptr.load_checkpointables, 1,
                 {'state': target()})
  return rec.obs


@scenario
def cleanup_fails_after_commit(cls, roots):
  """Issue 16 item 8: `todelete_full_path` names a folder that does not exist
  (yet): each synchronous save commits its step, then moving the step
  garbage collection drops there fails."""
  rec = Rec(roots[0])
  options = Options(max_to_keep=1, enable_async_checkpointing=False,
                    todelete_full_path='trash/not-created-yet')
  m = rec.manager('init', cls, roots[0], options=options)
  for step in range(4):
    rec.call(f'save({step})', m.save, step, args=args.StandardSave(tree(step)))
    rec.call(f'all_steps after save({step})', m.all_steps)
    rec.call(f'latest_step after save({step})', m.latest_step)
  rec.call('restore(latest)', m.restore, m.latest_step(),
           args=args.StandardRestore(target()))
  rec.call('wait', m.wait_until_finished)
  rec.call('close', m.close)
  with cls(roots[0], options=options) as again:
    rec.call('all_steps reopened', again.all_steps)
  rec.layout('bucket')
  return rec.obs


def _save_two(cls, root: str) -> None:
  with cls(root) as m:
    for step in (0, 1):
      m.save(step, args=args.StandardSave(tree(step)))


@scenario
def recovery(cls, roots):
  """Issue 16 item 9: step 1 lost its `_METADATA` (a partial copy of the
  bucket, an older writer); step 2 lost its OCDBT manifest too."""
  rec = Rec(roots[0])
  with cls(roots[0]) as m:
    for step in (0, 1, 2):
      m.save(step, args=args.StandardSave(tree(step)))
  remove_object(roots[0], '1/default/_METADATA')
  remove_object(roots[0], '2/default/_METADATA')
  remove_object(roots[0], '2/default/manifest.ocdbt')
  with cls(roots[0]) as m:
    rec.call('all_steps', m.all_steps)
    for step in (1, 2):
      rec.call(f'restore({step}) without args', m.restore, step)
      rec.call(f'restore({step}, StandardRestore)', m.restore, step,
               args=args.StandardRestore(target()))
  rec.layout('bucket')
  return rec.obs


@scenario
def uncommitted_step(cls, roots):
  """Issue 16 item 10: step 1's `commit_success.txt` is missing (its writer
  was preempted before the commit, or the copy is partial)."""
  rec = Rec(roots[0])
  _save_two(cls, roots[0])
  remove_object(roots[0], '1/commit_success.txt')
  with cls(roots[0]) as m:
    rec.call('all_steps', m.all_steps)
    rec.call('latest_step', m.latest_step)
    rec.message('restore(1)', m.restore, 1)
    rec.message('restore(1, StandardRestore)', m.restore, 1,
                args=args.StandardRestore(target()))
    rec.call('item_metadata(1)', m.item_metadata, 1)
    rec.call('save(1) again', m.save, 1, args=args.StandardSave(tree(1)))
    rec.call('wait', m.wait_until_finished)
    rec.call('all_steps', m.all_steps)
    rec.call('restore(1)', m.restore, 1, args=args.StandardRestore(target()))
  rec.layout('bucket')
  return rec.obs


def main(argv: list[str]) -> int:
  side, name, *roots = argv
  if side == 'shim':
    import orbax_compat  # pylint: disable=g-import-not-at-top

    orbax_compat.set_warning_policy('off')
    cls = orbax_compat.CheckpointManager
  else:
    cls = ocp.CheckpointManager
  try:
    obs = SCENARIOS[name](cls, roots)
  except Exception as e:  # pylint: disable=broad-exception-caught
    obs = [('SCENARIO ABORTED', _tname(e), traceback.format_exc())]
  sys.stdout.flush()
  print('\n' + json.dumps(obs))
  sys.stdout.flush()
  return 0


if __name__ == '__main__':
  sys.exit(main(sys.argv[1:]))
