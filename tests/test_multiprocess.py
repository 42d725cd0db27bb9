"""Multi-process differential tests: 2 JAX processes on CPU, native v0 vs shim.

Each side (native v0, native v0 again, the shim: the harness's sides) runs
every scenario of `multiprocess_worker.py` in one pair of JAX processes
(`jax.distributed` with a local coordinator, gloo CPU collectives, 2 CPU
devices per process, arrays sharded over all 4), in its own directory. Each
process pickles what it observed per scenario: steps, restored values with
their shardings and the shards it holds, types, metadata, the on-disk layout
(per-process OCDBT directories, the user handlers' `part_<process>` files)
and which process ran `finalize` on what. Each test compares one scenario,
process by process, as the harness compares an in-process scenario: native
twice (deterministic), then the shim (tests/differential/).

Beside the harness's conftest hook, not through it: a scenario needs a pair
of JAX processes per side, and starting them per scenario would take
minutes; the three pairs run once per test session (concurrently), shared
by the tests of this module, also across xdist workers (a file lock).
"""

from __future__ import annotations

import dataclasses
import fcntl
import os
import pathlib
import pickle
import socket
import subprocess
import sys
import time

from differential import SIDES
from differential import assert_runs_agree
import multiprocess_worker as worker
import pytest

WORKER = pathlib.Path(worker.__file__).resolve()
SCENARIOS = worker.names(worker.__name__)
NUM_PROCESSES = 2
RUN_TIMEOUT_SECS = 300  # Whole run; the worker's watchdog bounds each scenario.
XFAIL: dict[str, str] = {}  # scenario -> reason (none today).


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


def _env() -> dict[str, str]:
  env = dict(os.environ)
  flags = [f for f in env.get('XLA_FLAGS', '').split()
           if not f.startswith('--xla_force_host_platform_device_count')]
  env.update(
      JAX_PLATFORMS='cpu',
      XLA_FLAGS=' '.join([*flags, '--xla_force_host_platform_device_count=2']),
      ORBAX_COMPAT_WARNINGS='off',
  )
  return env


@dataclasses.dataclass
class Attempt:
  """One pair of processes running a list of scenarios."""

  scenarios: list[str]
  stderr: list[pathlib.Path]
  returncodes: list[int | None] = dataclasses.field(default_factory=list)
  timed_out: bool = False


@dataclasses.dataclass
class Run:
  """One side's pairs of processes and what they left behind.

  A scenario that makes a process exit (the worker's watchdog, a crash)
  ends its pair; the next pair runs the scenarios after it.
  """

  side: str  # One of the harness's SIDES.
  base: pathlib.Path
  attempts: list[Attempt] = dataclasses.field(default_factory=list)

  @property
  def impl(self) -> str:
    """The worker's IMPL: native or shim."""
    return 'native' if self.side.startswith('native') else 'shim'

  @property
  def out(self) -> pathlib.Path:
    return self.base / 'out'

  def obs(self, name: str, pid: int):
    path = self.out / f'{name}.{pid}.pkl'
    return pickle.loads(path.read_bytes()) if path.exists() else None

  def done(self, name: str) -> bool:
    return all((self.out / f'{name}.{pid}.pkl').exists()
               for pid in range(NUM_PROCESSES))

  def unavailable(self) -> str | None:
    """Why multi-process JAX could not start, or None."""
    for attempt in self.attempts:
      if worker.UNAVAILABLE in attempt.returncodes:
        pid = attempt.returncodes.index(worker.UNAVAILABLE)
        return attempt.stderr[pid].read_text(errors='replace')[-1500:]
    return None

  def report(self, name: str, chars: int = 4000) -> str:
    """Return codes and both processes' stderr of the pair that ran `name`."""
    for attempt in reversed(self.attempts):  # The last pair given `name` ran it.
      if name in attempt.scenarios:
        break
    else:
      return f'{self.side}: {name} never started (run out of time)'
    lines = [f'{self.side}: return codes {attempt.returncodes}'
             + (f' (killed after {RUN_TIMEOUT_SECS}s)' if attempt.timed_out else '')]
    for pid in range(NUM_PROCESSES):
      text = attempt.stderr[pid].read_text(errors='replace')
      # The scenario's part: its first error, then how it ended.
      start = max(text.find(f' {name}: start'), 0)
      end = text.find(f' {name}: done', start)
      text = text[start:] if end < 0 else text[start:end]
      if len(text) > chars:
        text = text[:chars // 2] + '\n[...]\n' + text[-chars // 2:]
      lines.append(f'--- {self.side} process {pid} stderr ---')
      lines.append(text)
    return '\n'.join(lines)


def _launch(run: Run, scenarios: list[str]) -> tuple[Attempt, list[subprocess.Popen]]:
  root = run.base / 'root'
  root.mkdir(parents=True, exist_ok=True)
  run.out.mkdir(parents=True, exist_ok=True)
  port, n = _free_port(), len(run.attempts)
  attempt = Attempt(scenarios, [run.base / f'stderr.{n}.{pid}'
                                for pid in range(NUM_PROCESSES)])
  run.attempts.append(attempt)
  procs = []
  for pid in range(NUM_PROCESSES):
    with open(attempt.stderr[pid], 'wb') as err:
      procs.append(subprocess.Popen(
          [sys.executable, str(WORKER), run.impl, str(pid), str(NUM_PROCESSES),
           str(port), str(root), str(run.out), *scenarios],
          cwd=run.base, env=_env(), stdout=subprocess.DEVNULL, stderr=err))
  return attempt, procs


def _wait(attempt: Attempt, procs: list[subprocess.Popen], deadline: float) -> None:
  for p in procs:
    try:
      p.wait(timeout=max(deadline - time.monotonic(), 0.1))
    except subprocess.TimeoutExpired:
      attempt.timed_out = True
  for p in procs:  # Only the processes this test started.
    if p.poll() is None:
      p.kill()
      p.wait()
  attempt.returncodes = [p.returncode for p in procs]


def _run_all(base: pathlib.Path) -> dict[str, Run]:
  """Every scenario on each side (the three run concurrently)."""
  deadline = time.monotonic() + RUN_TIMEOUT_SECS
  runs = {side: Run(side, base / side) for side in SIDES}
  remaining = {side: list(SCENARIOS) for side in SIDES}
  while any(remaining.values()) and time.monotonic() < deadline:
    started = [(side, *_launch(runs[side], remaining[side]))
               for side in SIDES if remaining[side]]
    for side, attempt, procs in started:
      _wait(attempt, procs, deadline)
      if runs[side].unavailable():
        return runs
      left = [n for n in remaining[side] if not runs[side].done(n)]
      # The first scenario left ended the pair: go on after it.
      remaining[side] = left[1:]
  return runs


@pytest.fixture(scope='module')
def runs(tmp_path_factory) -> dict[str, Run]:
  """Every side's runs, once per session (shared by xdist workers)."""
  session = os.environ.get('PYTEST_XDIST_TESTRUNUID')
  if session:  # Workers share their basetemp's parent for this session.
    base = tmp_path_factory.getbasetemp().parent / f'multiprocess-{session}'
  else:
    base = tmp_path_factory.getbasetemp() / 'multiprocess'
  base.mkdir(exist_ok=True)
  with open(base / 'lock', 'w') as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
      done = base / 'runs.pkl'
      if not done.exists():
        done.write_bytes(pickle.dumps(_run_all(base)))
      result = pickle.loads(done.read_bytes())
    finally:
      fcntl.flock(lock, fcntl.LOCK_UN)
  for run in result.values():
    why = run.unavailable()
    if why is not None:
      pytest.skip('2-process JAX (jax.distributed, local coordinator, gloo CPU '
                  'collectives) could not start on this machine:\n' + why)
  return result


def _params():
  for name in SCENARIOS:
    marks = ()
    if name in XFAIL:
      marks = (pytest.mark.xfail(strict=False, reason=XFAIL[name]),)
    yield pytest.param(name, marks=marks, id=name)


@pytest.mark.parametrize('name', list(_params()))
def test_multiprocess_matches_native(name, runs):
  for run in runs.values():
    assert run.done(name), (
        f'{run.side}: scenario {name!r} did not finish on both processes\n'
        + run.report(name))
  for pid in range(NUM_PROCESSES):
    try:
      assert_runs_agree(*(runs[side].obs(name, pid) for side in SIDES),
                        context=f'process {pid}: ')
    except AssertionError as e:
      reports = '\n'.join(runs[side].report(name, chars=2000) for side in SIDES)
      raise AssertionError(f'{e}\n{reports}') from None


def test_both_processes_worked_on_shared_arrays(runs):
  """The scenarios are truly multi-process: each process holds only its
  half of `w`, and the two halves differ (a guard on the harness itself)."""
  for run in runs.values():
    halves = []
    for pid in range(NUM_PROCESSES):
      obs = dict((o[0], o) for o in run.obs('standard_sharded_async', pid))
      restored = dict(obs['restore(3) abstract'][2][1])
      kind, dtype, shape, sharding, shards = restored["'w'"]
      assert (kind, shape) == ('jax.Array', (8, 4)), restored["'w'"]
      assert sharding[0] == 'NamedSharding' and len(sharding[2]) == 4, sharding
      assert len(shards) == 2, shards  # 2 of the 4 shards live here.
      halves.append(shards)
    assert halves[0] != halves[1]
