"""openpi shape: the factory returns (manager, resuming)."""
import orbax.checkpoint as ocp


def initialize_checkpoint_dir(directory, *, resume):
  mngr = ocp.CheckpointManager(directory)  # expect: CheckpointManager
  resuming = resume and mngr.latest_step() is not None  # expect: latest_step
  return mngr, resuming
