"""The scenario registry: `@scenario` and what a scenario may ask for.

A scenario is a function `fn(cls, root) -> observations` that drives a
manager of class `cls` (native v0's or the shim's) in the fresh directory
`root`, recording through a `Rec`. `@scenario` registers it under its module;
tests/conftest.py then runs it as `test_scenario[<name>]` of that module
(differential/harness.py says how). This module imports neither Orbax nor
orbax_compat.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
import contextlib
import dataclasses
import functools
import pathlib
from typing import Any

Observations = list[Any]
# A filesystem fixture: setup(side_directory) is a context manager yielding
# (root, extra): the scenario runs as fn(cls, root, *extra) inside it.
Setup = Callable[[pathlib.Path], contextlib.AbstractContextManager[tuple[pathlib.Path, tuple]]]


@dataclasses.dataclass(frozen=True)
class Scenario:
  """A registered scenario and what running it needs."""

  name: str
  fn: Callable[..., Observations]
  module: str
  # Why it cannot run here (a missing Orbax capability, a machine that cannot
  # do it), or a function computing that once; None: it runs.
  skip: str | Callable[[], str | None] | None = None
  # pytest fixtures the test requests before running it (e.g. a TypeHandler
  # registered for the test's duration).
  fixtures: tuple[str, ...] = ()
  # What is compared of each run's observations (default: all of them).
  view: Callable[[Observations], Observations] | None = None
  # check(native, shim), after the comparisons: what the scenario is about
  # did happen (it cannot pass vacuously).
  check: Callable[[Observations, Observations], None] | None = None
  # Run every side in one child process (`python -m differential.child`),
  # its command line prefixed by these words (e.g. `unshare -m`); None:
  # in the test's own process.
  child: Sequence[str] | None = None
  # A filesystem fixture per side (in the child, with `child`).
  setup: Setup | None = None
  # Where native v0 itself races (what decides which outcome it takes): its
  # two runs may differ, and the shim must match one of them.
  race: str | None = None

  def skip_reason(self) -> str | None:
    return self.skip() if callable(self.skip) else self.skip


_BY_MODULE: dict[str, dict[str, Scenario]] = {}


def scenario(fn: Callable[..., Observations] | None = None, /, *, name: str | None = None,
             params: Mapping[str, Any] | None = None, **options: Any):
  """Registers `fn` as a scenario: `@scenario`, `@scenario(**options)`, or
  `scenario(fn, name=...)` for a generated one. Returns `fn` unchanged.

  `params={id: value, ...}` registers one scenario per value, `<name>-<id>`,
  run as `fn(cls, root, value)`. `options` are the fields of `Scenario`.
  """

  def register(fn):
    base = name or fn.__name__
    module = _BY_MODULE.setdefault(fn.__module__, {})
    if params is None:
      variants = {base: fn}
    else:
      variants = {f'{base}-{pid}': functools.partial(_with_param, fn, value)
                  for pid, value in params.items()}
    for key, call in variants.items():
      if key in module:
        raise ValueError(f'{fn.__module__} registers the scenario {key!r} twice')
      module[key] = Scenario(key, call, fn.__module__, **options)
    return fn

  return register if fn is None else register(fn)


def _with_param(fn, value, cls, root, *extra):
  return fn(cls, root, value, *extra)


def of_module(module: str) -> list[Scenario]:
  """The scenarios `module` registered, in the order it registered them."""
  return list(_BY_MODULE.get(module, {}).values())


def get(module: str, name: str) -> Scenario:
  return _BY_MODULE[module][name]
