"""Subclasses of the manager: v0 calls its public members through `self`, so do we.

Each scenario defines the same subclass of native v0's manager and of the shim
and compares what they do.
"""

import logging

import numpy as np
import orbax.checkpoint as ocp
import pytest

import orbax_compat


def _subclass(base):

  class EvenOnly(base):
    """Saves only even steps and hides step 0 from listings."""

    def should_save(self, step):
      return step % 2 == 0 and super().should_save(step)

    def all_steps(self, read=False):
      return [s for s in super().all_steps(read) if s != 0]

    def latest_step(self):
      steps = self.all_steps()
      return max(steps) if steps else None

  return EvenOnly


def _run(base, root):
  cls = _subclass(base)
  out = []
  with cls(root, options=ocp.CheckpointManagerOptions(save_interval_steps=1)) as mngr:
    for step in range(5):
      out.append(('save', step, mngr.save(step, args=ocp.args.StandardSave({'a': np.arange(3) + step}))))
    mngr.wait_until_finished()
    out.append(('all_steps', mngr.all_steps()))
    out.append(('latest', mngr.latest_step()))
    out.append(('best', mngr.best_step()))
    restored = mngr.restore(None)  # v0 restores self.latest_step().
    out.append(('restore(None)', restored['a'].tolist()))
    try:
      mngr.delete(0)  # v0: `step not in self.all_steps()` -> FileNotFoundError.
      out.append(('delete(0)', 'ok'))
    except FileNotFoundError:
      out.append(('delete(0)', 'FileNotFoundError'))
  return out


def test_overridden_members_are_used_by_save_restore_delete(tmp_path, quiet_shim):
  native = _run(ocp.CheckpointManager, tmp_path / 'native')
  shim = _run(orbax_compat.CheckpointManager, tmp_path / 'shim')
  assert shim == native
  assert ('save', 1, False) in shim  # The override decided.


def test_the_shims_own_calls_of_overrides_raise_no_notices(tmp_path, caplog):
  previous = orbax_compat.set_warning_policy('always')
  caplog.set_level(logging.WARNING, logger='orbax_compat')
  try:
    _run(orbax_compat.CheckpointManager, tmp_path)
  finally:
    orbax_compat.set_warning_policy(previous)
  notices = [r.getMessage() for r in caplog.records if r.name == 'orbax_compat']
  # Every notice points at a line of this file (a call or a super() call), none at the shim.
  assert notices and all(n.startswith(f'{__file__}:') for n in notices), notices


@pytest.mark.parametrize('base', [ocp.CheckpointManager, orbax_compat.CheckpointManager])
def test_subclass_constructs_like_v0(tmp_path, base, quiet_shim):
  with _subclass(base)(tmp_path) as mngr:
    assert mngr.latest_step() is None


@pytest.mark.parametrize('cls', [ocp.CheckpointManager, orbax_compat.CheckpointManager])
def test_type_checks_pass_as_for_v0(tmp_path, cls, quiet_shim):
  """Libraries that accept "a CheckpointManager" take the shim."""
  from orbax.checkpoint import abstract_checkpoint_manager  # pylint: disable=g-import-not-at-top

  base = abstract_checkpoint_manager.AbstractCheckpointManager
  mngr = cls(tmp_path)
  assert isinstance(mngr, ocp.CheckpointManager)
  assert base in type(mngr).__mro__
  try:  # A non-runtime Protocol: Python refuses isinstance for v0's manager too.
    outcome = isinstance(mngr, base)
  except TypeError:
    outcome = TypeError
  native = ocp.CheckpointManager(tmp_path / 'native')
  try:
    expected = isinstance(native, base)
  except TypeError:
    expected = TypeError
  assert outcome == expected
  with mngr.__contextmanager__() as entered:  # v0's epy.ContextManager protocol.
    assert entered is mngr
  native.close()
