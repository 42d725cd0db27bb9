"""Running a scenario on native v0 and on the shim, and comparing the runs.

`assert_matches_native(scenario, tmp_path)` runs the scenario three times,
each in a fresh directory: native v0 twice, then the shim. The two native
runs must record the same observations (else the scenario, not the shim, is
at fault: a timing, a thread order), and the shim the same as native.

`test_scenario` is that check as a test: tests/conftest.py adds it to every
test module that registers a scenario and parametrizes it with the module's
scenarios. Imports orbax_compat only when a scenario runs on the shim.
"""

from __future__ import annotations

import os
import pathlib
import pickle
import subprocess
import sys
import traceback
from typing import Any

from differential.data import NATIVE
from differential.observe import based_at
from differential.recorder import tname
from differential.registry import Observations
from differential.registry import Scenario

TESTS = pathlib.Path(__file__).resolve().parents[1]
SIDES = ('native', 'native-2', 'shim')  # The runs, in this order.
ABORTED = 'SCENARIO ABORTED'
CHILD_TIMEOUT_SECS = 600


def shim_cls():
  import orbax_compat  # pylint: disable=g-import-not-at-top

  return orbax_compat.CheckpointManager


def cls_of(side: str):
  return NATIVE if side.startswith('native') else shim_cls()


def run_scenario(fn, cls, root: pathlib.Path, *extra: Any) -> Observations:
  """One run of `fn(cls, root, *extra)`: its observations, or an `ABORTED`
  one if the scenario itself failed outside its recorded calls."""
  root = pathlib.Path(root)
  root.parent.mkdir(parents=True, exist_ok=True)
  with based_at(root.parent):
    try:
      return fn(cls, root, *extra)
    except Exception as e:  # pylint: disable=broad-except
      return [(ABORTED, tname(e), traceback.format_exc())]


def run_side(sc: Scenario, side: str, base: pathlib.Path) -> Observations:
  """Runs `sc` on `side` in `base/side`, inside its filesystem fixture."""
  directory = pathlib.Path(base) / side
  if sc.setup is None:
    return run_scenario(sc.fn, cls_of(side), directory / 'root')
  directory.mkdir(parents=True, exist_ok=True)
  with sc.setup(directory) as (root, extra):
    return run_scenario(sc.fn, cls_of(side), root, *extra)


def observe(sc: Scenario, base: pathlib.Path,
            sides: tuple[str, ...] = SIDES) -> dict[str, Observations]:
  """Each side's observations of `sc`, in this process or in a child."""
  if sc.child is None:
    return {side: run_side(sc, side, base) for side in sides}
  out = pathlib.Path(base) / 'observations.pkl'
  proc = subprocess.run(
      [*sc.child, sys.executable, '-m', 'differential.child', sc.module, sc.name,
       str(base), *sides],
      cwd=TESTS, capture_output=True, text=True, timeout=CHILD_TIMEOUT_SECS, check=False,
      env=dict(os.environ, ORBAX_COMPAT_WARNINGS='off'))
  assert proc.returncode == 0 and out.exists(), (
      f'child process of {sc.name}: exit status {proc.returncode}\n{proc.stderr[-4000:]}')
  return pickle.loads(out.read_bytes())


def run_native_and_shim(fn, tmp_path: pathlib.Path) -> tuple[Observations, Observations]:
  """One native run and one shim run of `fn`, not compared: for the tests
  that pin a known difference (each asserts what differs)."""
  sc = as_scenario(fn)
  sides = observe(sc, tmp_path, ('native', 'shim'))
  return sides['native'], sides['shim']


def describe_differences(a: list[Any], b: list[Any],
                         names: tuple[str, str] = ('native', 'shim'),
                         limit: int = 6) -> str:
  """Every differing observation (up to `limit`), for the failure message."""
  lines = []
  for i, (x, y) in enumerate(zip(a, b, strict=False)):
    if x != y:
      lines.append(
          f'observation #{i} ({x[0]!r}):\n  {names[0]}: {x!r}\n'
          f'  {names[1]}: {y!r}'
      )
  if len(a) != len(b):
    extra = a[len(b):] if len(a) > len(b) else b[len(a):]
    side = names[0] if len(a) > len(b) else names[1]
    lines.append(
        f'{side} has {abs(len(a) - len(b))} more observations: {extra!r}'
    )
  shown = lines[:limit]
  if len(lines) > limit:
    shown.append(f'... and {len(lines) - limit} more differences')
  return f'{len(lines)} difference(s)\n' + '\n'.join(shown)


def assert_runs_agree(native: Observations, again: Observations, shim: Observations,
                      view=None, context: str = '') -> None:
  """Native ran, ran the same twice (through `view`), and the shim as native."""
  assert native and native[0][0] != ABORTED, f'{context}native v0: {native}'
  if view is not None:
    native, again, shim = view(native), view(again), view(shim)
  assert native == again, (
      f'{context}native v0 observed differently on a second run: the scenario '
      'is not deterministic (record no timings, no thread order)\n'
      + describe_differences(native, again, ('native run 1', 'native run 2')))
  assert native == shim, context + describe_differences(native, shim)


def assert_one_native_outcome(native: Observations, again: Observations, shim: Observations,
                              sc: Scenario) -> None:
  """For a scenario where native v0 races (`race`): the shim as one of
  native's runs (through `view`)."""
  assert native and native[0][0] != ABORTED, f'native v0: {native}'
  view = sc.view or (lambda obs: obs)
  outcomes = [view(native), view(again)]
  assert view(shim) in outcomes, (
      f'the shim matches neither native run (native v0 races: {sc.race})\n'
      + describe_differences(outcomes[0], view(shim)))


def as_scenario(fn) -> Scenario:
  if isinstance(fn, Scenario):
    return fn
  return Scenario(getattr(fn, '__name__', 'scenario'), fn, getattr(fn, '__module__', ''))


def assert_matches_native(scenario, tmp_path: pathlib.Path) -> dict[str, Observations]:
  """Runs a scenario (registered, or any `fn(cls, root)`) on native v0
  twice and on the shim, and asserts they agree; then its `check`.
  Returns each side's observations."""
  sc = as_scenario(scenario)
  sides = observe(sc, tmp_path)
  if sc.race is not None:
    assert_one_native_outcome(sides['native'], sides['native-2'], sides['shim'], sc)
  else:
    assert_runs_agree(sides['native'], sides['native-2'], sides['shim'], view=sc.view)
  if sc.check is not None:
    sc.check(sides['native'], sides['shim'])
  return sides


def test_scenario(scenario: Scenario, request, tmp_path, quiet_shim):
  """Native v0 twice (the same observations), then the shim (the same as
  native). tests/conftest.py parametrizes it with a module's scenarios."""
  del quiet_shim
  for fixture in scenario.fixtures:
    request.getfixturevalue(fixture)
  assert_matches_native(scenario, tmp_path)
