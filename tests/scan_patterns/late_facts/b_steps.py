"""Helpers given the CheckpointManager by their callers."""


def save_every(mngr, steps):
  for step in range(steps):
    mngr.save(step, args=None)  # expect: save
  mngr.wait_until_finished()  # expect: wait_until_finished
