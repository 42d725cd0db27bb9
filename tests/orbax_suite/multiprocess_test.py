"""orbax_compat's stand-in for Orbax's test-only `multiprocess_test` module.

Orbax's `checkpoint_manager_test.py` imports
`orbax.checkpoint._src.testing.multiprocess_test`, which no orbax-checkpoint
wheel or sdist ships. The suite uses two things of it: `MultiProcessTest`,
whose `setUp` lines every JAX process up at the same test, and
`multiprocess_create_tempdir`. This module provides those two, written for
this project; `sitecustomize.py` beside it makes it importable under Orbax's
name in the suite's interpreter only.
"""

from __future__ import annotations

import os

from absl.testing import absltest
import jax
from jax.experimental import multihost_utils
from orbax.checkpoint._src.multihost import multihost


class MultiProcessTest(absltest.TestCase):
  """A TestCase whose processes meet at the start of each test."""

  def setUp(self):
    super().setUp()
    client = multihost.get_jax_distributed_client()
    client.wait_at_barrier(f'orbax_compat_suite_case_{self._testMethodName}', 60_000)

  def multiprocess_create_tempdir(self, name: str | None = None) -> str:
    """A fresh directory shared by every process of the test (process 0 makes it)."""
    directory = self.create_tempdir().full_path
    if name is not None:
      directory = os.path.join(directory, name)
    if jax.process_index() == 0:
      os.makedirs(directory, exist_ok=False)
    multihost_utils.sync_global_devices('orbax_compat_suite_create_tempdir')
    return directory
