"""Save+restore of float32 pytrees: shim vs native v0 vs v1 vs raw numpy.

Every contender saves one step into a fresh directory and restores it; the
order of contenders rotates from trial to trial. Untimed, before each phase,
`os.sync()` flushes what earlier runs left dirty, and before each restore the
step's files are evicted from the page cache (posix_fadvise DONTNEED), so all
contenders, the np.load reference included, read from the device. Save time
includes `wait_until_finished()`; manager construction and close are untimed.
"""

from __future__ import annotations

from collections.abc import Callable
import dataclasses
import itertools
import os
import resource
import shutil
import statistics
import time
from typing import Any

import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint.experimental import v1
from orbax.checkpoint.experimental.v1 import training

from bench import stats
import orbax_compat

MiB = 1 << 20
LEAVES = 4
Tree = dict[str, np.ndarray]
Result = tuple[dict[str, float], Tree]  # ({phase or metric: value}, restored)
Run = Callable[[str, Tree], Result]
_fresh_names = itertools.count()


def make_tree(nbytes: int, seed: int = 0) -> Tree:
  """`LEAVES` float32 arrays of standard-normal values, `nbytes` in total."""
  rng = np.random.default_rng(seed)
  n = nbytes // 4 // LEAVES
  return {f'w{i}': rng.standard_normal(n, dtype=np.float32) for i in range(LEAVES)}


def _evict(path: str) -> None:
  for root, _, files in os.walk(path):
    for name in files:
      fd = os.open(os.path.join(root, name), os.O_RDONLY)
      try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
      finally:
        os.close(fd)


def _cpu_s() -> float:
  """CPU seconds of this process so far, all threads."""
  usage = resource.getrusage(resource.RUSAGE_SELF)
  return usage.ru_utime + usage.ru_stime


def _timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
  """(wall s, CPU s, value) of `fn()`."""
  cpu, start = _cpu_s(), time.perf_counter()
  value = fn()
  return time.perf_counter() - start, _cpu_s() - cpu, value


def _phases(path: str, save: Callable[[], Any], restore: Callable[[], Tree]) -> Result:
  os.sync()
  save_s, save_cpu_s, _ = _timed(save)
  os.sync()
  _evict(path)
  restore_s, restore_cpu_s, restored = _timed(restore)
  times = {'save': save_s, 'restore': restore_s, 'save_cpu': save_cpu_s,
           'restore_cpu': restore_cpu_s, 'disk_mib': _disk_mib(path)}
  return times, restored


def _disk_mib(path: str) -> float:
  return sum(
      os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(path) for f in files
  ) / MiB


# --- Contenders: (directory, tree) -> ({save, restore, ...: s}, restored) ----


def v0_style(cls: type, profile: str | None = None) -> Run:
  """A v0-API manager class: native `ocp.CheckpointManager` or the shim.

  `profile`: the shim's opt-in performance profile for this manager.
  """

  def run(path: str, tree: Tree):
    previous = profile and orbax_compat.set_performance_profile(profile)
    try:
      mngr = cls(path)
    finally:
      if previous:
        orbax_compat.set_performance_profile(previous)
    try:
      return _phases(
          path,
          lambda: (
              mngr.save(0, args=ocp.args.StandardSave(tree)),
              mngr.wait_until_finished(),
          ),
          lambda: mngr.restore(0, args=ocp.args.StandardRestore(tree)),
      )
    finally:
      mngr.close()

  return run


def v1_checkpointer(context: Callable[[], Any] = lambda: None) -> Run:
  """v1 `training.Checkpointer`, with the Context `context()` returns."""

  def run(path: str, tree: Tree):
    ckptr = training.Checkpointer(path, context=context())
    try:
      return _phases(
          path,
          lambda: ckptr.save_checkpointables(0, {'default': tree}),
          lambda: ckptr.load_checkpointables(0, {'default': tree})['default'],
      )
    finally:
      ckptr.close()

  return run


def raw_numpy(path: str, tree: Tree):
  """The physical reference: np.save + flush + fsync per leaf, then np.load."""
  os.makedirs(path)
  files = {name: os.path.join(path, f'{name}.npy') for name in tree}

  def save():
    for name, leaf in tree.items():
      with open(files[name], 'wb') as f:
        np.save(f, leaf)
        f.flush()
        os.fsync(f.fileno())

  return _phases(path, save, lambda: {n: np.load(f) for n, f in files.items()})


CONTENDERS: dict[str, Run] = {
    'shim': v0_style(orbax_compat.CheckpointManager),
    'native': v0_style(ocp.CheckpointManager),
    'shim fast': v0_style(orbax_compat.CheckpointManager, profile='fast'),
    'v1': v1_checkpointer(),
    'raw': raw_numpy,
}


# v1 `MemoryOptions.deepcopy_host_arrays`: orbax-checkpoint 0.12.5.
HOST_DEEPCOPY_OPTION = 'deepcopy_host_arrays' in {
    f.name for f in dataclasses.fields(v1.options.MemoryOptions)
}


def _context(
    chunk_bytes: int | None = None, deepcopy: bool = True, **saving: Any
) -> Callable[[], Any]:
  """A factory of v1 Contexts with these array-saving and memory options."""

  def make():
    memory = {'deepcopy_host_arrays': deepcopy} if HOST_DEEPCOPY_OPTION else {}
    ctx = v1.Context(memory_options=v1.options.MemoryOptions(**memory))
    for name, value in saving.items():
      setattr(ctx.array_options.saving, name, value)
    ctx.array_options.saving.storage_options.chunk_byte_size = chunk_bytes
    return ctx

  return make


# Settings the native-v0 profile points at, applied through v1's Context.
SETTINGS: dict[str, Run] = {
    'native v0 (zarr2, zstd-1, OCDBT)': v0_style(ocp.CheckpointManager),
    'v1 default (zarr3, zstd-3, OCDBT)': v1_checkpointer(),
    'zarr2 + zstd-1 (native v0 format)': v1_checkpointer(_context(use_zarr3=False)),
    'no compression': v1_checkpointer(_context(use_compression=False)),
    '16 MiB chunks': v1_checkpointer(_context(chunk_bytes=16 * MiB)),
    'no compression, 16 MiB chunks': v1_checkpointer(
        _context(chunk_bytes=16 * MiB, use_compression=False)
    ),
    'no OCDBT': v1_checkpointer(_context(use_ocdbt=False)),
    **({
        'no host deepcopy': v1_checkpointer(_context(deepcopy=False)),
        'no compression, 16 MiB chunks, no deepcopy': v1_checkpointer(
            _context(chunk_bytes=16 * MiB, use_compression=False, deepcopy=False)
        ),
    } if HOST_DEEPCOPY_OPTION else {}),
    'raw': raw_numpy,
}


METRICS = ('save', 'restore', 'save_cpu', 'restore_cpu', 'disk_mib')


def _check(restored: Tree, tree: Tree, name: str) -> None:
  for key, leaf in tree.items():
    got = restored[key]
    if not isinstance(got, np.ndarray) or not np.array_equal(got, leaf):
      raise AssertionError(f'{name}: restored {key!r} differs from what was saved')


def measure(
    contenders: dict[str, Run],
    sizes_mib: list[int],
    trials: int,
    base: str,
    warmup: bool = True,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
  """Samples (s) per size, contender and phase; a discarded warm-up first."""
  out = {}
  for size in sizes_mib:
    tree = make_tree(size * MiB)
    samples = {name: {k: [] for k in METRICS} for name in contenders}
    for trial in range(-1 if warmup else 0, trials):
      log(f'  {size} MiB, {"warm-up" if trial < 0 else f"trial {trial + 1}/{trials}"}')
      for name in stats.rotated(list(contenders), trial):
        path = os.path.join(base, f'{name.split()[0]}-{next(_fresh_names)}')
        times, restored = contenders[name](path, tree)
        _check(restored, tree, name)
        del restored
        shutil.rmtree(path)
        if trial >= 0:
          for key in METRICS:
            samples[name][key].append(times[key])
    out[str(size)] = summarize(samples, size)
  return out


def _paired(a: list[float], b: list[float]) -> dict[str, float]:
  return stats.summary([x / y for x, y in zip(a, b, strict=True)])


def summarize(samples: dict[str, dict[str, list[float]]], size_mib: int) -> dict[str, Any]:
  """Per contender: times, throughput, ratio to native and to raw numpy."""
  out = {}
  raw = samples.get('raw')
  for name, phases in samples.items():
    total = [s + r for s, r in zip(phases['save'], phases['restore'], strict=True)]
    row: dict[str, Any] = {
        'samples': phases,
        'total': stats.summary(total),
        'disk_mib': statistics.median(phases['disk_mib']),
    }
    for phase in ('save', 'restore'):
      times = phases[phase]
      row[phase] = stats.summary(times)
      row[f'{phase}_cpu'] = stats.summary(phases[f'{phase}_cpu'])
      row[f'{phase}_mib_s'] = size_mib / statistics.median(times)
      if raw:
        row[f'{phase}_vs_raw'] = statistics.median(raw[phase]) / statistics.median(times)
    if 'native' in samples and name != 'native':
      native = samples['native']
      native_total = [s + r for s, r in zip(native['save'], native['restore'], strict=True)]
      row['vs_native'] = {
          'save': _paired(phases['save'], native['save']),
          'restore': _paired(phases['restore'], native['restore']),
          'total': _paired(total, native_total),
          'total_best': min(total) / min(native_total),  # Best-of-N: without stalls.
      }
    out[name] = row
  return out


# --- Where native v0's time goes ---------------------------------------------


WAITS = ('acquire', 'poll', 'select', 'wait', 'sleep')  # Leaf names, e.g. lock.acquire.


def _buckets(frame: Any, inside_copy: bool = False, acc: dict | None = None) -> dict:
  """Self time of the profiled thread: host copy, waiting, or Python work."""
  acc = acc if acc is not None else {}
  inside_copy = inside_copy or frame.function.rsplit('.', 1)[-1] in ('deepcopy', '__deepcopy__')
  if frame.total_self_time:
    if inside_copy:
      key = 'host copy (ndarray deepcopy)'
    elif frame.function.rsplit('.', 1)[-1] in WAITS:
      key = 'waiting on background threads (tensorstore)'
    else:
      key = 'Python on the calling thread'
    acc[key] = acc.get(key, 0.0) + frame.total_self_time
  for child in frame.children:
    if not child.is_synthetic:  # Its time is in `frame.total_self_time`.
      _buckets(child, inside_copy, acc)
  return acc


def _profiled(fn: Callable[[], Any], path: str, out_file: str) -> dict[str, Any]:
  from pyinstrument import Profiler

  os.sync()
  _evict(path)
  profiler = Profiler(interval=0.001)
  cpu, start = _cpu_s(), time.perf_counter()
  profiler.start()
  fn()
  profiler.stop()
  wall, cpu = time.perf_counter() - start, _cpu_s() - cpu
  with open(out_file, 'w') as f:
    f.write(profiler.output_text(show_all=True, color=False, unicode=False))
  return {
      'file': os.path.basename(out_file),
      'wall_s': wall,
      'cpu_s': cpu,
      'buckets_s': _buckets(profiler.last_session.root_frame()),
  }


def profile(base: str, size_mib: int, out_dir: str) -> dict[str, Any]:
  """pyinstrument profiles of native v0's save and restore at `size_mib`.

  pyinstrument samples the calling thread only: the async save's background
  commit shows there as a wait, so the save is profiled synchronously too
  (`enable_async_checkpointing=False`: the commit runs under the call).
  CPU seconds count every thread of the process.
  """
  os.makedirs(out_dir, exist_ok=True)
  tree = make_tree(size_mib * MiB)
  result = {}
  for phase, asynchronous in (('save', True), ('save_sync', False)):
    path = os.path.join(base, f'profile_{phase}')
    options = ocp.CheckpointManagerOptions(enable_async_checkpointing=asynchronous)
    mngr = ocp.CheckpointManager(path, options=options)
    out = lambda p: os.path.join(out_dir, f'native_v0_{p}_{size_mib}MiB.txt')  # noqa: E731
    result[phase] = _profiled(
        lambda: (
            mngr.save(0, args=ocp.args.StandardSave(tree)),
            mngr.wait_until_finished(),
        ),
        path,
        out(phase),
    )
    if asynchronous:
      result['restore'] = _profiled(
          lambda: mngr.restore(0, args=ocp.args.StandardRestore(tree)),
          path,
          out('restore'),
      )
    mngr.close()
    shutil.rmtree(path)
  return result


# --- Codec cost of one leaf, in memory ----------------------------------------


def _zarr3(shape: tuple[int, ...], chunk: tuple[int, ...], level: int | None) -> dict:
  codecs = [{'name': 'bytes', 'configuration': {'endian': 'little'}}]
  if level is not None:
    codecs.append({'name': 'zstd', 'configuration': {'level': level}})
  grid = {'name': 'regular', 'configuration': {'chunk_shape': chunk}}
  return {'driver': 'zarr3', 'metadata': {
      'shape': shape, 'chunk_grid': grid, 'data_type': 'float32', 'codecs': codecs}}


def _codec_specs(n: int) -> dict[str, dict]:
  """tensorstore specs of the array formats v0 and v1 write (one chunk per leaf)."""
  whole, quarter = (n,), (max(1, n // 4),)
  return {
      'zarr2 + zstd-1 (native v0)': {'driver': 'zarr', 'metadata': {
          'shape': whole, 'chunks': whole, 'dtype': '<f4',
          'compressor': {'id': 'zstd', 'level': 1}}},
      'zarr3 + zstd-3 (v1 default, shim)': _zarr3(whole, whole, 3),
      'zarr3 + zstd-1': _zarr3(whole, whole, 1),
      'zarr3, no compression': _zarr3(whole, whole, None),
      'zarr3 + zstd-3, 4 chunks': _zarr3(whole, quarter, 3),
  }


def codecs(leaf_bytes: int, trials: int) -> dict[str, Any]:
  """Encode (write) and decode (read) one float32 leaf in memory (no disk).

  The same leaf as the save+restore tree's, through tensorstore to a
  `memory://` kvstore: the array format's CPU cost alone, free of the
  disk's and the page cache's noise.
  """
  import tensorstore as ts

  leaf = make_tree(leaf_bytes * LEAVES)['w0']
  specs = _codec_specs(leaf.size)
  samples = {name: {'write': [], 'write_cpu': [], 'read': []} for name in specs}
  stored = {}
  for trial in range(trials):
    for name in stats.rotated(list(specs), trial):
      store = ts.open({**specs[name], 'kvstore': 'memory://'}, create=True).result()
      write_s, write_cpu, _ = _timed(lambda: store.write(leaf).result())
      read_s, _, got = _timed(lambda: store.read().result())
      if not np.array_equal(got, leaf):
        raise AssertionError(f'{name}: read back differs')
      kv = store.kvstore
      stored[name] = sum(len(kv.read(k).result().value) for k in kv.list().result()) / MiB
      for key, value in (('write', write_s), ('write_cpu', write_cpu), ('read', read_s)):
        samples[name][key].append(value)
  return {
      name: {**{k: stats.summary(v) for k, v in s.items()}, 'stored_mib': stored[name]}
      for name, s in samples.items()
  }
