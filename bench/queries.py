"""Per-call cost of v0 queries (shim vs native) and the shim's own overhead.

Roots with N steps are built once: native v0 saves 10 tiny steps (with metrics,
best_fn set); larger roots are copies (shutil.copytree) of its step 0, each
given its own loss. Shim and native then open the same root with the same
options (timed too) and are timed call by call (timeit-style loops).
"""

from __future__ import annotations

from collections.abc import Callable
import functools
import json
import logging
import os
import shutil
import time
from typing import Any
import warnings

import numpy as np
import orbax.checkpoint as ocp

from bench import stats
import orbax_compat
from orbax_compat.runtime import steps

QUERIES = ('latest_step', 'all_steps', 'should_save', 'metrics', 'best_step')
MANAGERS = {'shim': orbax_compat.CheckpointManager, 'native': ocp.CheckpointManager}
SEED_STEPS = 10
PADDED_LINES = 300  # Lines before the call in the "long caller" of `overhead`.


def options() -> Any:
  return ocp.CheckpointManagerOptions(best_fn=lambda m: m['loss'], best_mode='min')


def loss(step: int, n: int) -> float:
  """A distinct, unordered loss per step (7919 is prime)."""
  return 0.5 + (step * 7919 % n) / n


def build_roots(base: str, counts: list[int]) -> dict[int, str]:
  """`{N: root with steps 0..N-1}`; the seed root is saved by native v0."""
  seed = os.path.join(base, f'steps_{SEED_STEPS}')
  with ocp.CheckpointManager(seed, options=options()) as mngr:
    for step in range(SEED_STEPS):
      tree = {'w': np.full(4, step, np.float32)}
      mngr.save(step, args=ocp.args.StandardSave(tree), metrics={'loss': loss(step, SEED_STEPS)})
    mngr.wait_until_finished()
  roots = {SEED_STEPS: seed}
  for n in counts:
    if n == SEED_STEPS:
      continue
    root = roots[n] = os.path.join(base, f'steps_{n}')
    for step in range(n):
      shutil.copytree(os.path.join(seed, '0'), os.path.join(root, str(step)))
      with open(os.path.join(root, str(step), 'metrics', 'metrics'), 'w') as f:
        json.dump({'loss': loss(step, n)}, f)
  return roots


def calls(mngr: Any, n: int) -> dict[str, Callable[[], Any]]:
  """The timed call of each query on a manager whose root has `n` steps."""
  return {
      'latest_step': mngr.latest_step,
      'all_steps': mngr.all_steps,
      'should_save': functools.partial(mngr.should_save, n),  # The next step.
      'metrics': functools.partial(mngr.metrics, n // 2),
      'best_step': mngr.best_step,
  }


def _open(root: str, trials: int) -> tuple[dict[str, Any], dict[str, list[float]]]:
  """Opens shim and native on `root` `trials` times each, alternating."""
  managers: dict[str, Any] = {}
  seconds: dict[str, list[float]] = {name: [] for name in MANAGERS}
  for trial in range(trials):
    for name in stats.rotated(list(MANAGERS), trial):
      if name in managers:
        managers[name].close()
      start = time.perf_counter()
      managers[name] = MANAGERS[name](root, options=options())
      seconds[name].append(time.perf_counter() - start)
  return managers, seconds


def measure(
    roots: dict[int, str], repeats: int, budget_s: float, open_trials: int,
    log: Callable = print,
) -> tuple[dict[str, Any], dict[str, Any]]:
  """(µs per call per query and step count, seconds to open per step count)."""
  previous = orbax_compat.set_warning_policy('off')
  per_query: dict[str, Any] = {}
  opens: dict[str, Any] = {}
  try:
    for n, root in sorted(roots.items()):
      log(f'  {n} steps')
      managers, seconds = _open(root, open_trials)
      opens[str(n)] = {
          **{f'{name}_s': stats.summary(v) for name, v in seconds.items()},
          'ratio': stats.summary([s / v for s, v in zip(seconds['shim'], seconds['native'], strict=False)]),
      }
      both = {name: calls(mngr, n) for name, mngr in managers.items()}
      for query in QUERIES:
        got = {name: fns[query]() for name, fns in both.items()}
        if got['shim'] != got['native']:
          raise AssertionError(f'{query} at {n} steps: shim {got["shim"]!r} != native {got["native"]!r}')
        samples = stats.per_call(
            {name: fns[query] for name, fns in both.items()}, repeats, budget_s
        )
        ratios = [s / v for s, v in zip(samples['shim'], samples['native'], strict=True)]
        per_query.setdefault(query, {})[str(n)] = {
            'shim_us': stats.summary(samples['shim']),
            'native_us': stats.summary(samples['native']),
            'ratio': stats.summary(ratios),
            'answer': repr(got['native'])[:60],
        }
      for mngr in managers.values():
        mngr.close()
  finally:
    orbax_compat.set_warning_policy(previous)
  return per_query, opens


def _caller(call: str, padding: int) -> Callable[[Any], Any]:
  """`caller(m)`: evaluates `call` after `padding` lines that never run.

  The shim finds its call site from the caller's frame; this measures how
  that cost depends on where in a (long) function the call sits.
  """
  body = ''.join(f'    x{i} = {i}\n' for i in range(padding))
  source = f'def caller(m, pad=False):\n  if pad:\n    pass\n{body}  return {call}\n'
  namespace = {'steps': steps}
  exec(compile(source, f'<bench caller, {padding} lines>', 'exec'), namespace)
  return namespace['caller']


def overhead(root: str, repeats: int, budget_s: float) -> dict[str, Any]:
  """latest_step() through the shim vs its implementation, warnings 'once' and 'off'.

  Called from the timing loop itself, and from a function with
  `PADDED_LINES` lines before the call.
  """
  previous = orbax_compat.get_warning_policy()
  shim = orbax_compat.CheckpointManager(root, options=options())
  native = ocp.CheckpointManager(root, options=options())
  long = f' [{PADDED_LINES}-line caller]'
  via_shim = functools.partial(_caller('m.latest_step()', PADDED_LINES), shim)
  fns = {
      'implementation': functools.partial(steps.latest_step, shim),
      "shim 'off'": shim.latest_step,
      "shim 'once'": shim.latest_step,
      'native v0': native.latest_step,
      'implementation' + long: functools.partial(_caller('steps.latest_step(m)', PADDED_LINES), shim),
      "shim 'off'" + long: via_shim,
      "shim 'once'" + long: via_shim,
  }
  policy = lambda p: lambda: orbax_compat.set_warning_policy(p)  # noqa: E731
  before = {name: policy('once' if "'once'" in name else 'off') for name in fns}
  try:
    # The first call from each call site reports; silence it.
    orbax_compat.set_warning_policy('once')
    notices = logging.getLogger('orbax_compat')
    was_disabled, notices.disabled = notices.disabled, True
    with warnings.catch_warnings():
      warnings.simplefilter('ignore')
      stats.loop_us(shim.latest_step, 1)
      via_shim()
    notices.disabled = was_disabled
    samples = stats.per_call(fns, repeats, budget_s, before)
  finally:
    orbax_compat.set_warning_policy(previous)
    shim.close()
    native.close()
  out = {}
  for name, values in samples.items():
    out[name] = {'us': stats.summary(values)}
    if name.startswith('shim'):
      implementation = samples['implementation' + (long if name.endswith(long) else '')]
      out[name]['overhead_us'] = stats.summary(
          [v - a for v, a in zip(values, implementation, strict=True)]
      )
  return out
