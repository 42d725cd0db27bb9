"""MaxText shape: the options class under another name."""
import orbax.checkpoint as ocp

CheckpointManagerOptions = ocp.CheckpointManagerOptions
Options = ocp.CheckpointManagerOptions


def make(directory, keep):
  options = Options(max_to_keep=keep, save_interval_steps=2)  # expect: options.max_to_keep, options.save_interval_steps
  other = CheckpointManagerOptions(create=True)  # expect: options.create
  return ocp.CheckpointManager(directory, options=options), other  # expect: CheckpointManager
