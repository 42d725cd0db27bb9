"""maxdiffusion shape: the base class builds the manager."""
import orbax.checkpoint as ocp


class BaseCheckpointer:

  def __init__(self, directory):
    self.checkpoint_manager = ocp.CheckpointManager(directory)  # expect: CheckpointManager
