"""axlearn shape: a checkpointer wraps the manager in a private attribute."""

import orbax.checkpoint as ocp


class BaseCheckpointer:

  def save(self, step, state):
    raise NotImplementedError


class OrbaxCheckpointer(BaseCheckpointer):

  def __init__(self, directory):
    self._manager = ocp.CheckpointManager(directory)  # expect: CheckpointManager

  def save(self, step, state):
    self._manager.save(step, args=state)  # expect: save


class OtherCheckpointer(BaseCheckpointer):

  def __init__(self):
    self._manager = None
