"""maxdiffusion / MaxText shape: the factory lives in a library module."""
import orbax.checkpoint as ocp


def create_orbax_checkpoint_manager(directory, max_to_keep=3):
  options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep)  # expect: options.max_to_keep
  return ocp.CheckpointManager(directory, options=options)  # expect: CheckpointManager
