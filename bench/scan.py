"""Scanner speed: `orbax-compat scan` over generated files.

`python bench/scan.py [--files 1000] [--trials 3] [--jobs N] [--dir DIR]` (also
the `scan` section of `python -m bench`). Two trees of N generated modules of
~110 lines each: *mixed*, where one module in ten uses v0 Orbax (a train loop,
a trainer class holding a manager, options, helpers) and the others are
ordinary code of the same size, and *all v0*, every module a v0 user (the worst
case: each is parsed with libcst and analysed in full). Times
`orbax_compat.tools.scan.run(dir, jobs=N)` in this process after one warm-up,
the same with one job (`one_job_s`: one core), one fresh `python -m
orbax_compat scan` process per tree (start-up included: libcst and the mapping,
no jax, no Orbax), and one `--to-v1 --diff` run with N jobs (each v0 file
rewritten in memory by the codemod, nothing written). A real codebase's timing
on one core: `python bench/scan_recall.py --time maxtext`.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

if __package__ in (None, ''):  # `python bench/scan.py`: import as the package.
  sys.path[0] = str(pathlib.Path(__file__).resolve().parent.parent)

from bench import stats  # noqa: E402
from orbax_compat.tools import scan  # noqa: E402

# Plain code both kinds of module share (the scanner reads it all).
COMMON = '''def filler_{i}(values):
  total = 0
  for v in values:
    if v % 3 == 0:
      total += v * {i}
    elif v % 3 == 1:
      total -= v
    else:
      total ^= v
  return total


@functools.lru_cache(maxsize=None)
def table_{i}(n):
  return [[(r * c) % (n + 1) for c in range(n)] for r in range(n)]


def train(workdir, steps=10):
  rng = np.random.default_rng({i})
  params = {{'w': np.zeros((4, 1), np.float32)}}
'''

TEMPLATE = '''"""Generated legacy training module {i}."""
import functools
import os
from typing import Optional

import jax
import numpy as np
import orbax.checkpoint as ocp{alias}
from orbax.checkpoint import CheckpointManagerOptions


def make_options(keep):
  return CheckpointManagerOptions(
      max_to_keep=keep,
      save_interval_steps={i} % 7 + 1,
      best_fn=lambda m: m['loss'],
      best_mode='min',
  )


def loss_fn(params, batch):
  x, y = batch
  return np.mean((x @ params['w'] - y) ** 2)


class Trainer{i}:
  """Holds a manager created in __init__ and used in other methods."""

  def __init__(self, workdir: str, keep: int = 3):
    self.workdir = workdir
    self.mngr = ocp.CheckpointManager(
        os.path.join(workdir, 'ckpt'), options=make_options(keep))
    self.step = 0

  def maybe_restore(self, params):
    latest = self.mngr.latest_step()
    if latest is None:
      return params
    return self.mngr.restore(latest, args=ocp.args.StandardRestore(params))

  def save(self, params, loss):
    self.mngr.save(self.step, args=ocp.args.StandardSave(params),
                   metrics={{'loss': float(loss)}})

  def finish(self):
    self.mngr.wait_until_finished()
    print(self.mngr.all_steps(), self.mngr.best_step())
    self.mngr.close()


def evaluate(mngr: Optional[ocp.CheckpointManager], params):
  if mngr is None:
    return None
  step = mngr.best_step()
  return mngr.metrics(step) if step is not None else None


{common}  with ocp.CheckpointManager(workdir, options=make_options(2)) as mngr:
    for step in range(steps):
      batch = (rng.normal(size=(8, 4)), rng.normal(size=(8, 1)))
      loss = loss_fn(params, batch)
      if mngr.should_save(step):
        mngr.save(step, args=ocp.args.StandardSave(params), metrics={{'loss': loss}})
    mngr.wait_until_finished()
    alias = mngr
    return alias.latest_step(), str(mngr.directory)


def unrelated(x):
  # Calls named like v0 members on objects that are not managers.
  x.save(1)
  x.restore()
  return jax.tree.map(lambda a: a + 1, x)
'''


PLAIN = '''"""Generated module {i}: ordinary code, no Orbax."""
import functools
import json
import os

import numpy as np


class Store{i}:
  """Has save/restore methods of its own (not a checkpoint manager)."""

  def __init__(self, root):
    self.root = root
    self.items = {{}}

  def save(self, key, value):
    self.items[key] = value
    with open(os.path.join(self.root, key + '.json'), 'w') as f:
      json.dump(value, f)

  def restore(self, key):
    with open(os.path.join(self.root, key + '.json')) as f:
      return json.load(f)

  def latest_step(self):
    return max(self.items, default=None)


def loss_fn(params, batch):
  x, y = batch
  return np.mean((x @ params['w'] - y) ** 2)


{common}  store = Store{i}(workdir)
  for step in range(steps):
    batch = (rng.normal(size=(8, 4)), rng.normal(size=(8, 1)))
    loss = loss_fn(params, batch)
    if step % 2 == 0:
      store.save(str(step), {{'loss': float(loss)}})
  best = min(store.items, key=lambda k: store.items[k]['loss'])
  print(store.latest_step(), best)
  return store.restore(best)


def evaluate(store, params):
  if store is None:
    return None
  step = store.latest_step()
  return store.restore(step) if step is not None else None


def describe(x):
  lines = []
  for key, value in sorted(vars(x).items()):
    if isinstance(value, (int, float)):
      lines.append(f'{{key}} = {{value:g}}')
    elif isinstance(value, str):
      lines.append(f'{{key}} = {{value!r}}')
    else:
      lines.append(f'{{key}}: {{type(value).__name__}}')
  return chr(10).join(lines)


def unrelated(x):
  x.save(1)
  x.restore()
  return [v + 1 for v in x]
'''


def generate(directory: str, n_files: int, v0_every: int = 1) -> int:
  """Writes n_files modules into `directory` (10 per package), one in `v0_every`
  using v0 Orbax; returns the total number of lines."""
  lines = 0
  for i in range(n_files):
    package = os.path.join(directory, f'pkg{i // 10:03d}')
    os.makedirs(package, exist_ok=True)
    if i % v0_every:
      text = PLAIN.format(i=i, common=COMMON.format(i=i))
    else:
      text = TEMPLATE.format(i=i, common=COMMON.format(i=i), alias='' if i % 2 else '  # v0')
    lines += text.count('\n')
    with open(os.path.join(package, f'module{i:04d}.py'), 'w') as f:
      f.write(text)
  return lines


SCENARIOS = {'mixed': 10, 'all v0': 1}  # Name -> one module in N uses v0.


def measure(n_files: int, trials: int, base: str, jobs: int | None = None,
            log=lambda m: None) -> dict[str, Any]:
  """{scenario: timings} for each of SCENARIOS."""
  jobs = jobs or os.cpu_count() or 1
  return {name: _measure_one(n_files, every, trials, base, jobs, log)
          for name, every in SCENARIOS.items()}


def _measure_one(n_files, v0_every, trials, base, jobs, log) -> dict[str, Any]:
  directory = os.path.join(base, f'scan_corpus_{v0_every}')
  os.makedirs(directory)
  try:
    lines = generate(directory, n_files, v0_every)
    log(f'scan: {n_files} files ({lines} lines), one in {v0_every} using v0, {jobs} jobs')
    result = scan.run([directory], jobs=jobs)  # Warm-up (and the counts).
    assert result.files_scanned == n_files and not result.errors, result.errors
    seconds = []
    for _ in range(trials):
      start = time.perf_counter()
      scan.run([directory], jobs=jobs)
      seconds.append(time.perf_counter() - start)
    start = time.perf_counter()
    scan.run([directory], jobs=1)
    one_job_s = time.perf_counter() - start
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, '-m', 'orbax_compat', 'scan', '--format', 'json',
                           '--jobs', str(jobs), directory], capture_output=True, text=True)
    cli_s = time.perf_counter() - start
    assert proc.returncode == 1, proc.stderr[-2000:]
    start = time.perf_counter()
    rewrite = scan.run([directory], jobs=jobs, to_v1=True, diff=True)
    to_v1_s = time.perf_counter() - start
    assert len(rewrite.changes) == len({f.path for f in result.findings}), rewrite.errors
  finally:
    shutil.rmtree(directory, ignore_errors=True)
  summary = stats.summary(seconds)
  return {
      'files': n_files, 'v0_files': len({f.path for f in result.findings}), 'lines': lines,
      'findings': len(result.findings), 'jobs': jobs, 'seconds': summary,
      'files_per_s': n_files / summary['median'], 'cli_s': cli_s, 'to_v1_s': to_v1_s,
      'one_job_s': one_job_s,
  }


def lines(results: dict[str, Any]) -> list[str]:
  out = []
  for name, r in results.items():
    s = r['seconds']
    out.append(
        f'{name}: {r["files"]} files ({r["v0_files"]} using v0, {r["lines"]} lines, '
        f'{r["findings"]} findings, {r["jobs"]} jobs): median {s["median"]:.2f} s '
        f'(min {s["min"]:.2f}, max {s["max"]:.2f}, {s["n"]} trials), {r["files_per_s"]:.0f} '
        f'files/s; one job {r["one_job_s"]:.2f} s; a fresh `orbax-compat scan` process '
        f'{r["cli_s"]:.2f} s; '
        f'`--to-v1 --diff` {r["to_v1_s"]:.2f} s')
  return out


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog='python bench/scan.py', description=__doc__.splitlines()[0])
  parser.add_argument('--files', type=int, default=1000)
  parser.add_argument('--trials', type=int, default=3)
  parser.add_argument('--jobs', type=int, help='worker processes (default: the number of CPUs)')
  parser.add_argument('--dir', help='parent of the temporary directory (default: $TMPDIR or /tmp)')
  ns = parser.parse_args(argv)
  base = tempfile.mkdtemp(prefix='orbax_compat_bench_scan_', dir=ns.dir)
  try:
    results = measure(ns.files, ns.trials, base, ns.jobs,
                      log=lambda m: print(m, file=sys.stderr, flush=True))
  finally:
    shutil.rmtree(base, ignore_errors=True)
  print('\n'.join(lines(results)))
  return 0


if __name__ == '__main__':
  sys.exit(main())
