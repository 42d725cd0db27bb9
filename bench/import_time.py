"""`import orbax_compat` vs `import orbax.checkpoint`, each in a fresh interpreter."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from typing import Any

from bench import stats

MODULES = ('orbax_compat', 'orbax.checkpoint')
CODE = 'import time; t = time.perf_counter(); import {0}; print(time.perf_counter() - t)'


def _once(module: str) -> tuple[float, float]:
  """(seconds inside `import module`, wall seconds of the whole process)."""
  env = dict(os.environ, PYTHONWARNINGS='ignore')
  start = time.perf_counter()
  proc = subprocess.run(
      [sys.executable, '-c', CODE.format(module)],
      capture_output=True, text=True, check=True, env=env,
  )
  return float(proc.stdout.split()[-1]), time.perf_counter() - start


def measure(trials: int, warmup: bool = True) -> dict[str, Any]:
  samples = {m: {'import_s': [], 'process_s': []} for m in MODULES}
  for trial in range(-1 if warmup else 0, trials):
    for module in stats.rotated(MODULES, trial):
      import_s, process_s = _once(module)
      if trial >= 0:
        samples[module]['import_s'].append(import_s)
        samples[module]['process_s'].append(process_s)
  out: dict[str, Any] = {m: {k: stats.summary(v) for k, v in s.items()} for m, s in samples.items()}
  shim, native = (samples[m]['import_s'] for m in MODULES)
  out['ratio'] = statistics.median(shim) / statistics.median(native)
  out['paired_ratio'] = stats.summary([a / b for a, b in zip(shim, native, strict=True)])
  return out
