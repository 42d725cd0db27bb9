"""One JAX process of a 2-process run of the multi-process scenarios.

Run by tests/test_multiprocess.py, one process per `process_id`, never by
pytest itself:

    python multiprocess_worker.py IMPL PROCESS_ID NUM_PROCESSES PORT ROOT OUT [SCENARIO ...]

IMPL is `native` (Orbax's own v0 CheckpointManager) or `shim`
(orbax_compat.CheckpointManager; a native run never imports orbax_compat:
it stops if orbax_compat is loaded).
Each process sees 2 CPU devices (`XLA_FLAGS=--xla_force_host_platform_device_count=2`,
set by the test), so the global mesh has 4 devices, 2 per process.

Each scenario runs in ROOT/<scenario> and pickles what this process observed
to OUT/<scenario>.<process_id>.pkl when it is done, so a scenario that hangs
(a barrier one process never reaches) loses only itself: a watchdog dumps
every thread's stack to stderr and exits. Exit status 77 means multi-process
JAX could not start on this machine (the test skips, printing why); any other
failure is a failure.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
import dataclasses
import faulthandler
import json
import os
import pathlib
import pickle
import sys
import time
import traceback
from typing import Any

from differential import recorder
from differential import registry
from differential import run_scenario
from differential import scenario
from differential.recorder import has as _has
from differential.recorder import tname as _tname
from etils import epath
import jax
from jax.sharding import Mesh
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
import numpy as np
import orbax.checkpoint as ocp

UNAVAILABLE = 77  # Multi-process JAX cannot start here.
SCENARIO_TIMEOUT_SECS = 45  # Watchdog per scenario (each takes a few seconds).
# A process other than the primary host writes its part of a user handler's
# item this much later than the others: finalize must still see every part
# (v0 has a barrier between the processes' commits and finalize). Not a
# timing assert: it only widens the window of a missing barrier.
LATE_WRITER_DELAY_SECS = 0.5
_LATE_WRITER = [1]  # The process writing late (scenarios set it).

args = ocp.args
Options = ocp.CheckpointManagerOptions


# --------------------------------------------------------------------------
# Observations
# --------------------------------------------------------------------------


def _sharding(s: Any) -> Any:
  if isinstance(s, NamedSharding):
    return ('NamedSharding', dict(s.mesh.shape),
            [d.id for d in s.mesh.devices.flat], str(s.spec))
  return (type(s).__name__, sorted(d.id for d in s.device_set))


def describe(x: Any) -> Any:
  """A comparable, type-preserving description of a value as one process
  sees it: jax.Arrays by global shape, dtype, sharding and the shards this
  process holds (never gathered: they span both processes)."""
  if x is None or isinstance(x, (bool, int, float, str)):
    return (_tname(x), x)
  if isinstance(x, jax.Array):
    shards = sorted(
        (str(sh.index), sh.device.id, np.asarray(sh.data).tolist())
        for sh in x.addressable_shards
    )
    return ('jax.Array', str(x.dtype), tuple(x.shape), _sharding(x.sharding),
            shards)
  if isinstance(x, np.ndarray):
    return (_tname(x), str(x.dtype), tuple(x.shape), x.tolist())
  if isinstance(x, np.generic):
    return (_tname(x), str(x.dtype), x.item())
  if isinstance(x, jax.ShapeDtypeStruct):
    return (_tname(x), str(x.dtype), tuple(x.shape))
  if isinstance(x, (pathlib.PurePath, epath.Path)):
    return ('path', str(x))
  if isinstance(x, args.Composite):
    return (_tname(x), {k: describe(x[k]) for k in sorted(x.keys())})
  if _has(x, 'tree') and _has(x, 'custom_metadata'):  # TreeMetadata
    return (_tname(x), describe(x.tree), describe(x.custom_metadata))
  if _has(x, 'shape') and _has(x, 'dtype'):  # ArrayMetadata & co.
    return (_tname(x), tuple(x.shape), str(np.dtype(x.dtype)),
            _sharding_metadata(x))
  if isinstance(x, Mapping):
    return (_tname(x), sorted((repr(k), describe(v)) for k, v in x.items()))
  if isinstance(x, (list, tuple)):
    return (_tname(x), [describe(v) for v in x])
  return (_tname(x),)


def _sharding_metadata(x: Any) -> Any:
  s = getattr(x, 'sharding', None)
  if s is None:
    return None
  return (type(s).__name__, str(getattr(s, 'partition_spec', '')),
          str(getattr(s, 'axis_names', '')))


def step_metadata_obs(md: Any) -> Any:
  """What StepMetadata says, without its timestamps' values."""
  return {
      'type': _tname(md),
      'item_handlers': describe(md.item_handlers),
      'item_metadata': describe(md.item_metadata),
      'metrics': describe(md.metrics),
      'custom_metadata': describe(md.custom_metadata),
  }


def listing(root: pathlib.Path) -> list[str]:
  """Every file and directory under root (relative; hidden names skipped).
  OCDBT data files (under a `d/` directory) have content-hash names: shown
  as `d/<data>`, once. Per-process directories (`ocdbt.process_N`) and the
  user handlers' `part_N` files show which process wrote what."""
  root = pathlib.Path(root)
  if not root.exists():
    return ['MISSING']
  out = set()
  for p in root.rglob('*'):
    rel = p.relative_to(root)
    if any(part.startswith('.') for part in rel.parts):
      continue
    if p.parent.name == 'd' and p.is_file():
      rel = rel.parent / '<data>'
    out.add(str(rel) + ('/' if p.is_dir() else ''))
  return sorted(out)


def read_json(path: pathlib.Path) -> Any:
  try:
    return json.loads(pathlib.Path(path).read_text())
  except FileNotFoundError:
    return 'MISSING'


class Rec(recorder.Recorder):
  """Collects one process's observations of one scenario."""

  describe = staticmethod(describe)
  listing = staticmethod(listing)

  def raised(self, label: str, error: Exception) -> Any:
    # Stderr of the failing process, for the test's failure message.
    print(f'[process {jax.process_index()}] {label} raised:', file=sys.stderr)
    traceback.print_exception(error)
    return None


# --------------------------------------------------------------------------
# Data: arrays sharded across both processes' devices
# --------------------------------------------------------------------------


def mesh() -> Mesh:
  # Global devices in process order: ('proc', 'local') = (2, 2).
  return Mesh(np.array(jax.devices()).reshape(2, 2), ('proc', 'local'))


def sharded(value: np.ndarray, spec: P) -> jax.Array:
  s = NamedSharding(mesh(), spec)
  return jax.make_array_from_callback(value.shape, s, lambda idx: value[idx])


def state(step: int) -> dict[str, Any]:
  return {
      # Split over all 4 devices: each process holds half of it.
      'w': sharded(np.arange(32, dtype=np.float32).reshape(8, 4) + step,
                   P('proc', 'local')),
      # Split over each process's 2 devices, replicated across processes.
      'b': sharded(np.arange(4, dtype=np.int32) * (step + 1), P('local')),
      # Fully replicated.
      'r': sharded(np.array([step, -step], dtype=np.float32), P()),
      'n': np.array([step, 2 * step], dtype=np.int64),  # host numpy
  }


def abstract(tree: Any) -> Any:
  def one(x):
    if isinstance(x, jax.Array):
      return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding)
    return ocp.utils.to_shape_dtype_struct(x)

  return jax.tree.map(one, tree)


# --------------------------------------------------------------------------
# A user's own v0 handlers: each process writes its shards of one array as
# `part_<process>.npz`; `finalize` (v0: once, on the primary host, after every
# process committed) records which parts it saw, as `finalized_by_<process>`.
# --------------------------------------------------------------------------


def _write_part(directory: Any, shards: dict[str, np.ndarray]) -> None:
  pid = jax.process_index()
  if pid == _LATE_WRITER[0]:
    time.sleep(LATE_WRITER_DELAY_SECS)
  np.savez(pathlib.Path(directory) / f'part_{pid}.npz', **shards)


def _own_shards(array: jax.Array) -> dict[str, np.ndarray]:
  """This process's primary replicas, keyed by their global index."""
  return {
      repr(tuple((sl.start, sl.stop) for sl in sh.index)): np.asarray(sh.data)
      for sh in array.addressable_shards
      if sh.replica_id == 0
  }


def _finalize(directory: Any) -> None:
  directory = pathlib.Path(directory)
  parts = sorted(p.name for p in directory.iterdir() if p.name.startswith('part_'))
  name = f'finalized_by_{jax.process_index()}.json'
  (directory / name).write_text(json.dumps(parts))


def _read_parts(directory: Any) -> dict[str, Any]:
  directory = pathlib.Path(directory)
  out: dict[str, Any] = {'files': sorted(p.name for p in directory.iterdir())}
  for p in sorted(directory.glob('finalized_by_*.json')):
    out[p.name] = read_json(p)
  shards = {}
  for p in sorted(directory.glob('part_*.npz')):
    with np.load(p) as z:
      shards.update({k: z[k].tolist() for k in z.files})
  out['shards'] = sorted(shards.items())
  return out


class PartsHandler(ocp.CheckpointHandler):
  """Sync: writes this process's part in `save`."""

  def save(self, directory, args):
    _write_part(directory, _own_shards(args.array))

  def restore(self, directory, args=None):
    return _read_parts(directory)

  def metadata(self, directory):
    return {'parts': sorted(p.name for p in pathlib.Path(directory).glob('part_*'))}

  def finalize(self, directory):
    _finalize(directory)


@ocp.args.register_with_handler(PartsHandler, for_save=True)
@dataclasses.dataclass
class PartsSave(ocp.args.CheckpointArgs):
  array: jax.Array


@ocp.args.register_with_handler(PartsHandler, for_restore=True)
@dataclasses.dataclass
class PartsRestore(ocp.args.CheckpointArgs):
  pass


class AsyncPartsHandler(ocp.AsyncCheckpointHandler):
  """Async: copies its shards in `async_save`, writes them in a commit future
  (which may wait for the directory, created in the background)."""

  async def async_save(self, directory, args):
    shards = _own_shards(args.array)

    async def write():
      await asyncio.to_thread(_write_part, directory, shards)

    return [ocp.future.CommitFutureAwaitingContractedSignals(write())]

  def save(self, directory, args):
    _write_part(directory, _own_shards(args.array))

  def restore(self, directory, args=None):
    return _read_parts(directory)

  def finalize(self, directory):
    _finalize(directory)


@ocp.args.register_with_handler(AsyncPartsHandler, for_save=True)
@dataclasses.dataclass
class AsyncPartsSave(ocp.args.CheckpointArgs):
  array: jax.Array


@ocp.args.register_with_handler(AsyncPartsHandler, for_restore=True)
@dataclasses.dataclass
class AsyncPartsRestore(ocp.args.CheckpointArgs):
  pass


# --------------------------------------------------------------------------
# Scenarios: scenario(cls, root) -> this process's observations. Registered
# with the harness's `@scenario`, under this module (not a test module, so
# the conftest hook does not run them: test_multiprocess.py runs them all,
# per side, in one pair of processes, and compares with the harness).
# --------------------------------------------------------------------------


def _finalized(rec: Rec, step_dir: pathlib.Path) -> None:
  """Which process finalized each user item, and the parts it saw."""
  for item in ('user_sync', 'user_async'):
    for pid in (0, 1):
      name = f'finalized_by_{pid}.json'
      rec.value(f'{item}/{name}', read_json(step_dir / item / name))


def _standard(cls, root, *, enable_async: bool) -> list[Any]:
  rec = Rec(root)
  m = rec.manager('init', cls, options=Options(
      max_to_keep=2, enable_async_checkpointing=enable_async))
  for s in range(4):
    rec.call(f'save({s})', m.save, s, args=args.StandardSave(state(s)))
  rec.call('wait', m.wait_until_finished)
  rec.call('all_steps', m.all_steps)
  rec.call('latest_step', m.latest_step)
  rec.layout('after saves (pruned to 2)')
  rec.call('restore(3) abstract', m.restore, 3,
           args=args.StandardRestore(abstract(state(3))))
  rec.call('restore(2) concrete target', m.restore, 2,
           args=args.StandardRestore(state(0)))
  rec.call('item_metadata(3)', m.item_metadata, 3)
  rec.call('metadata(3)', m.metadata, 3, post=step_metadata_obs)
  rec.call('delete(2)', m.delete, 2)
  rec.call('all_steps after delete', m.all_steps)
  rec.call('close', m.close)
  # A fresh manager on the same directory, on both processes.
  fresh = rec.manager('fresh', cls)
  rec.call('fresh all_steps', fresh.all_steps)
  rec.call('fresh restore(3) abstract', fresh.restore, 3,
           args=args.StandardRestore(abstract(state(3))))
  rec.call('fresh restore(3) no args', fresh.restore, 3)
  rec.call('fresh item_metadata(3)', fresh.item_metadata, 3)
  rec.call('fresh close', fresh.close)
  rec.layout('at the end')
  return rec.obs


@scenario
def standard_sharded_async(cls, root):
  return _standard(cls, root, enable_async=True)


@scenario
def standard_sharded_sync(cls, root):
  return _standard(cls, root, enable_async=False)


def _composite(cls, root, *, enable_async: bool) -> list[Any]:
  rec = Rec(root)
  m = rec.manager('init', cls, options=Options(
      max_to_keep=2, enable_async_checkpointing=enable_async))
  for s in range(3):
    st = state(s)
    rec.call(f'save({s})', m.save, s, args=args.Composite(
        arr=args.ArraySave(st['w']),
        user_sync=PartsSave(st['w']),
        user_async=AsyncPartsSave(st['w']),
        state=args.StandardSave({'b': st['b'], 'n': st['n']}),
    ))
  rec.call('wait', m.wait_until_finished)
  rec.call('all_steps', m.all_steps)
  rec.layout('after saves (pruned to 2)')
  _finalized(rec, root / '2')
  w = state(2)['w']
  rec.call('restore(2) args', m.restore, 2, args=args.Composite(
      arr=args.ArrayRestore(ocp.ArrayRestoreArgs(sharding=w.sharding)),
      user_sync=PartsRestore(),
      user_async=AsyncPartsRestore(),
      state=args.StandardRestore(abstract({'b': state(2)['b'], 'n': state(2)['n']})),
  ))
  rec.call('item_metadata(2)', m.item_metadata, 2)
  rec.call('metadata(2)', m.metadata, 2, post=step_metadata_obs)
  rec.call('close', m.close)
  fresh = rec.manager('fresh', cls)
  # v0 resolves each item's handler by its recorded type name.
  rec.call('fresh restore(2) no args', fresh.restore, 2)
  rec.call('fresh restore(2) user items', fresh.restore, 2,
           args=args.Composite(user_sync=PartsRestore(),
                               user_async=AsyncPartsRestore()))
  rec.call('fresh restore(1) arr', fresh.restore, 1, args=args.Composite(
      arr=args.ArrayRestore(ocp.ArrayRestoreArgs(sharding=w.sharding))))
  rec.call('fresh close', fresh.close)
  return rec.obs


@scenario
def composite_bridges_async(cls, root):
  return _composite(cls, root, enable_async=True)


@scenario
def composite_bridges_sync(cls, root):
  return _composite(cls, root, enable_async=False)


@scenario
def user_handlers_finalize(cls, root):
  """Only user-written handlers: finalize once, on the primary host, after
  every process wrote its part."""
  rec = Rec(root)
  m = rec.manager('init', cls)
  w = state(0)['w']
  rec.call('save(0)', m.save, 0, args=args.Composite(
      user_sync=PartsSave(w), user_async=AsyncPartsSave(w)))
  rec.call('wait', m.wait_until_finished)
  rec.layout('after save')
  _finalized(rec, root / '0')
  rec.call('restore(0)', m.restore, 0, args=args.Composite(
      user_sync=PartsRestore(), user_async=AsyncPartsRestore()))
  rec.call('close', m.close)
  return rec.obs


@scenario
def best_fn_metrics(cls, root):
  rec = Rec(root)
  options = Options(max_to_keep=2, best_fn=lambda mt: mt['loss'],
                    best_mode='min', keep_checkpoints_without_metrics=False)
  m = rec.manager('init', cls, options=options)
  losses = {0: 5.0, 1: 3.0, 2: 4.0, 3: 1.0, 4: 2.0}
  for s, loss in losses.items():
    rec.call(f'save({s})', m.save, s, args=args.StandardSave(state(s)),
             metrics={'loss': loss})
  rec.call('wait', m.wait_until_finished)
  rec.call('all_steps', m.all_steps)
  rec.call('best_step', m.best_step)
  rec.call('latest_step', m.latest_step)
  rec.call('metrics(3)', m.metrics, 3)
  rec.layout('after saves (best 2 kept)')
  rec.call('close', m.close)
  fresh = rec.manager('fresh', cls, options=options)
  rec.call('fresh all_steps', fresh.all_steps)
  rec.call('fresh best_step', fresh.best_step)
  rec.call('fresh restore(best)', fresh.restore, fresh.best_step(),
           args=args.StandardRestore(abstract(state(3))))
  rec.call('fresh close', fresh.close)
  return rec.obs


@scenario
def primary_host_1(cls, root):
  _LATE_WRITER[0] = 0  # Not the primary host.
  try:
    return _primary_host_1(cls, root)
  finally:
    _LATE_WRITER[0] = 1


def _primary_host_1(cls, root):
  rec = Rec(root)
  options = Options(
      max_to_keep=1,
      multiprocessing_options=ocp.options.MultiprocessingOptions(primary_host=1),
  )
  m = rec.manager('init', cls, options=options)
  for s in range(2):
    st = state(s)
    rec.call(f'save({s})', m.save, s, args=args.Composite(
        state=args.StandardSave(st),
        arr=args.ArraySave(st['w']),
        user_async=AsyncPartsSave(st['w']),
        user_sync=PartsSave(st['w']),
    ))
  rec.call('wait', m.wait_until_finished)
  rec.call('all_steps', m.all_steps)
  rec.layout('after saves')
  _finalized(rec, root / '1')
  rec.call('restore(1)', m.restore, 1, args=args.Composite(
      state=args.StandardRestore(abstract(state(1))),
      user_async=AsyncPartsRestore(),
  ))
  rec.call('close', m.close)
  return rec.obs


@scenario
def per_item_handler_settings(cls, root):
  rec = Rec(root)
  m = rec.manager('init', cls, item_handlers={
      'zarr3': ocp.PyTreeCheckpointHandler(use_zarr3=True),
      'zarr2': ocp.PyTreeCheckpointHandler(use_zarr3=False),
      'index': ocp.JsonCheckpointHandler(filename='index'),
      'user': AsyncPartsHandler(),
  }, options=Options(max_to_keep=1))
  if m is None:
    return rec.obs
  for s in range(2):
    st = state(s)
    rec.call(f'save({s})', m.save, s, args=args.Composite(
        zarr3=args.PyTreeSave(st),
        zarr2=args.PyTreeSave(st),
        index=args.JsonSave({'step': s}),
        user=AsyncPartsSave(st['w']),
    ))
  rec.call('wait', m.wait_until_finished)
  rec.call('all_steps', m.all_steps)
  rec.layout('after saves')
  for item in ('zarr3', 'zarr2'):
    md = read_json(root / '1' / item / '_METADATA')
    rec.value(f'{item}/_METADATA use_zarr3',
              md.get('use_zarr3') if isinstance(md, dict) else md)
  rec.value('user/finalized_by_0.json',
            read_json(root / '1' / 'user' / 'finalized_by_0.json'))
  target = abstract(state(1))
  restore_args = jax.tree.map(
      lambda x: ocp.ArrayRestoreArgs(sharding=x.sharding)
      if isinstance(x.sharding, NamedSharding) else ocp.RestoreArgs(),
      target)
  rec.call('restore(1)', m.restore, 1, args=args.Composite(
      zarr3=args.PyTreeRestore(target, restore_args=restore_args),
      zarr2=args.PyTreeRestore(target, restore_args=restore_args),
      index=args.JsonRestore(),
      user=AsyncPartsRestore(),
  ))
  rec.call('item_metadata(1)', m.item_metadata, 1)
  rec.call('close', m.close)
  return rec.obs



def _tracked(base):
  """A subclass keeping a tracker file (v0's hooks; see test_subclass.py)."""

  class Tracked(base):

    def __init__(self, *a, **kw):
      self.finalized = []
      super().__init__(*a, **kw)

    def _load_checkpoint_infos(self, skip_metadata_read=False):
      infos = super()._load_checkpoint_infos(skip_metadata_read)
      tracker = pathlib.Path(self.directory) / 'tracker'
      if tracker.exists():
        step = int(tracker.read_text().split()[0])
        infos = [i for i in infos if i.step == step]
      return infos

    def _finalize_checkpoint(self, step):
      super()._finalize_checkpoint(step)
      path = self._get_write_step_directory(step, self.directory)
      self.finalized.append((step, ocp.step.is_path_finalized(path)))
      if ocp.utils.is_primary_host(self._multiprocessing_options.primary_host):
        tracker = pathlib.Path(self.directory) / 'tracker'
        tracker.write_text(f'{step} written by process {jax.process_index()}')

  return Tracked


@scenario
def tracker_subclass_primary_host_1(cls, root):
  rec = Rec(root)
  tracked = _tracked(cls)
  options = Options(
      max_to_keep=2,
      multiprocessing_options=ocp.options.MultiprocessingOptions(primary_host=1),
  )
  m = rec.manager('init', tracked, options=options)
  for s in range(3):
    rec.call(f'save({s})', m.save, s, args=args.StandardSave(state(s)))
  rec.call('wait', m.wait_until_finished)
  rec.value('finalized', m.finalized)
  rec.call('close', m.close)
  tracker = root / 'tracker'
  rec.value('tracker', tracker.read_text() if tracker.exists() else 'MISSING')
  fresh = rec.manager('fresh', tracked, options=options)
  rec.call('fresh all_steps', fresh.all_steps)
  rec.call('fresh restore(None)', fresh.restore, None,
           args=args.StandardRestore(abstract(state(2))))
  rec.call('fresh close', fresh.close)
  rec.layout('at the end')
  return rec.obs

def names(module: str = __name__) -> list[str]:
  """The scenarios, in order (`module`: this file's name where imported)."""
  return [s.name for s in registry.of_module(module)]


def run(name: str, cls, root: pathlib.Path) -> list[Any]:
  obs = run_scenario(registry.get(__name__, name).fn, cls, root)
  if obs and obs[0][0] == 'SCENARIO ABORTED':
    print(obs[0][2], file=sys.stderr)
  return obs


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------


def _start_jax(num_processes: int, process_id: int, port: int) -> None:
  """`jax.distributed` with a local coordinator and gloo CPU collectives."""
  try:
    # Cross-process CPU collectives (Orbax's directory-consistency check and
    # v0's `sync_global_devices` barriers are computations over both
    # processes' devices).
    jax.config.update('jax_cpu_collectives_implementation', 'gloo')
    jax.distributed.initialize(
        f'localhost:{port}',
        num_processes=num_processes,
        process_id=process_id,
        initialization_timeout=60,
        heartbeat_timeout_seconds=20,
        shutdown_timeout_seconds=20,
    )
    if jax.process_count() != num_processes or len(jax.local_devices()) != 2:
      raise RuntimeError(
          f'expected {num_processes} processes with 2 CPU devices each, got '
          f'{jax.process_count()} processes and devices {jax.devices()}'
      )
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top

    multihost_utils.sync_global_devices('orbax_compat_multiprocess_worker_start')
  except Exception:  # pylint: disable=broad-except
    print('JAX_MULTIPROCESS_UNAVAILABLE', file=sys.stderr)
    traceback.print_exc()
    sys.stderr.flush()
    os._exit(UNAVAILABLE)  # pylint: disable=protected-access


def main(argv: list[str]) -> None:
  impl, process_id, num_processes, port, root, out = argv[1:7]
  todo = argv[7:] or names()
  process_id, num_processes, port = int(process_id), int(num_processes), int(port)
  _start_jax(num_processes, process_id, port)
  if impl == 'native':
    cls = ocp.CheckpointManager
  elif impl == 'shim':
    import orbax_compat  # pylint: disable=g-import-not-at-top

    orbax_compat.set_warning_policy('off')
    cls = orbax_compat.CheckpointManager
  else:
    raise ValueError(f'IMPL must be native or shim, got {impl!r}')
  root, out = pathlib.Path(root), pathlib.Path(out)
  for name in todo:
    print(f'[process {process_id}] {impl} {name}: start', file=sys.stderr,
          flush=True)
    if impl == 'native' and 'orbax_compat' in sys.modules:
      sys.exit(f'a native run imported orbax_compat (before {name})')
    faulthandler.dump_traceback_later(SCENARIO_TIMEOUT_SECS, exit=True)
    obs = run(name, cls, root / name)
    faulthandler.cancel_dump_traceback_later()
    tmp = out / f'.{name}.{process_id}.pkl'
    tmp.write_bytes(pickle.dumps(obs))
    tmp.rename(out / f'{name}.{process_id}.pkl')
    print(f'[process {process_id}] {impl} {name}: done', file=sys.stderr,
          flush=True)


if __name__ == '__main__':
  main(sys.argv)
