import checkpoint_managers


def create(directory, keep):
  options = checkpoint_managers.CheckpointManagerOptions(
      max_to_keep=keep,  # expect: options.max_to_keep
      save_interval_steps=10,  # expect: options.save_interval_steps
      asset_subdir='assets',  # The subclass's own field, not v0's.
  )
  return checkpoint_managers.make(directory, options)
