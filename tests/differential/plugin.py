"""The pytest side of the harness (its hooks are tests/conftest.py's).

Every test module that registers a scenario gets `harness.test_scenario`,
parametrized with the module's scenarios (`test_scenario[<name>]`); a
scenario with a skip reason is collected, and skipped with it.
"""

from __future__ import annotations

import pytest

from differential import harness
from differential import registry


class ScenarioModule(pytest.Module):
  """A test module; with `test_scenario` if it registered scenarios."""

  def collect(self):
    module = self.obj
    if registry.of_module(module.__name__):
      own = vars(module).setdefault('test_scenario', harness.test_scenario)
      if own is not harness.test_scenario:
        raise TypeError(f'{module.__name__} registers scenarios: test_scenario is the '
                        "harness's name for them, not one of its own tests")
    return super().collect()


def make_module(module_path, parent) -> pytest.Module:
  return ScenarioModule.from_parent(parent, path=module_path)


def generate_tests(metafunc: pytest.Metafunc) -> None:
  if metafunc.function is not harness.test_scenario:
    return
  params = []
  for sc in registry.of_module(metafunc.module.__name__):
    reason = sc.skip_reason()
    marks = () if reason is None else (pytest.mark.skip(reason=reason),)
    params.append(pytest.param(sc, id=sc.name, marks=marks))
  metafunc.parametrize('scenario', params)
