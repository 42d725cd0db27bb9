"""t5x shape: a subclass nested in a wrapper class, built as self._Impl(d)."""
import orbax.checkpoint


class OrbaxCheckpointManagerInterface:

  class _CheckpointManagerImpl(orbax.checkpoint.CheckpointManager):  # expect: reference

    def should_save(self, step):
      return super().should_save(step)  # expect: should_save

  def __init__(self, directory):
    self._manager = self._CheckpointManagerImpl(directory)  # expect: CheckpointManager

  def save(self, step, state):
    if self._manager.should_save(step):  # expect: should_save
      self._manager.save(step, args=state)  # expect: save

  def latest_step(self):
    return self._manager.latest_step()  # expect: latest_step
