"""Shared fixtures."""

import pytest

import orbax_compat


@pytest.fixture
def quiet_shim(monkeypatch):
  """No deprecation notices (tests of behaviour, not of the notices)."""
  monkeypatch.setenv('ORBAX_COMPAT_WARNINGS', 'off')
  previous = orbax_compat.set_warning_policy('off')
  yield
  orbax_compat.set_warning_policy(previous)
