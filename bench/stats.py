"""Timing helpers: summaries, rotation of contenders, timeit-style loops."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
import statistics
import time


def summary(values: Sequence[float]) -> dict[str, float]:
  """Median, min and max of `values` (and how many)."""
  return {
      'median': statistics.median(values),
      'min': min(values),
      'max': max(values),
      'n': len(values),
  }


def rotated(items: Sequence, trial: int) -> list:
  """`items` rotated by `trial`: each contender takes each position in turn."""
  k = trial % len(items)
  return list(items[k:]) + list(items[:k])


def loop_us(fn: Callable[[], object], number: int) -> float:
  """Microseconds per call of `fn` over `number` back-to-back calls."""
  start = time.perf_counter_ns()
  for _ in range(number):
    fn()
  return (time.perf_counter_ns() - start) / number / 1e3


def calls_for(fn: Callable[[], object], budget_s: float) -> int:
  """How many calls of `fn` take about `budget_s` (timeit's autorange idea)."""
  number = 1
  while True:
    spent = loop_us(fn, number) * number / 1e6
    if spent >= budget_s / 10 or number >= 10**7:
      return max(1, int(number * budget_s / max(spent, 1e-9)))
    number *= 10


def per_call(
    fns: dict[str, Callable[[], object]],
    repeats: int,
    budget_s: float,
    before: dict[str, Callable[[], object]] | None = None,
) -> dict[str, list[float]]:
  """µs per call of each of `fns`, `repeats` times, alternating the order.

  `before[name]`, if given, runs (untimed) before each loop of `fns[name]`.
  """
  before = before or {}
  nothing = lambda: None  # noqa: E731
  numbers = {}
  for name, fn in fns.items():
    before.get(name, nothing)()
    numbers[name] = calls_for(fn, budget_s)
  samples: dict[str, list[float]] = {name: [] for name in fns}
  for r in range(repeats):
    for name in rotated(list(fns), r):
      before.get(name, nothing)()
      samples[name].append(loop_us(fns[name], numbers[name]))
  return samples
