"""A subclass in another module uses the attribute its base set."""
from base_checkpointer import BaseCheckpointer


class WanCheckpointer(BaseCheckpointer):

  def load(self, like):
    step = self.checkpoint_manager.latest_step()  # expect: latest_step
    if step is None:
      return None
    return self.checkpoint_manager.restore(step)  # expect: restore

  def save(self, step, state):
    self.checkpoint_manager.save(step, args=state)  # expect: save
