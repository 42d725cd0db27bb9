import orbax.checkpoint as ocp


def make_manager(directory):
  return ocp.CheckpointManager(directory)  # expect: CheckpointManager
