"""Shared fixtures, the differential harness's hooks, and a run that ends
without v0's stranded threads."""

import os
import sys
import threading

from differential import plugin
import pytest

import orbax_compat

_EXIT_STATUS = [0]


@pytest.fixture
def quiet_shim(monkeypatch):
  """No deprecation notices (tests of behaviour, not of the notices)."""
  monkeypatch.setenv('ORBAX_COMPAT_WARNINGS', 'off')
  previous = orbax_compat.set_warning_policy('off')
  yield
  orbax_compat.set_warning_policy(previous)


def pytest_pycollect_makemodule(module_path, parent):
  """Each test module that registers scenarios (`@scenario`) gets
  `test_scenario`, which runs them (tests/differential/)."""
  return plugin.make_module(module_path, parent)


def pytest_generate_tests(metafunc):
  """`test_scenario[<name>]`: one test per scenario its module registered."""
  plugin.generate_tests(metafunc)


def pytest_sessionfinish(session, exitstatus):
  del session
  _EXIT_STATUS[0] = int(exitstatus)


def _stranded_orbax_threads() -> list[threading.Thread]:
  """Orbax's signal-waiting future threads still alive (named after their
  target, `_target_setting_result`, on every supported release)."""
  return [t for t in threading.enumerate()
          if t.is_alive() and not t.daemon and '_target_setting_result' in t.name]


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
  """Native v0 refusing a save (which the differential tests compare the
  shim with) leaves a thread waiting 300 s for a step-directory signal that
  never comes, and Python waits for it at exit (docs/compatibility.md, known differences).
  After the report, a serial run ends without waiting, as pytest-xdist's
  workers do; the shim's own threads are checked by
  test_shim_leaves_no_threads_after_close."""
  if hasattr(config, 'workerinput') or not _stranded_orbax_threads():
    return
  sys.stdout.flush()
  sys.stderr.flush()
  os._exit(_EXIT_STATUS[0])  # pylint: disable=protected-access
