import orbax.checkpoint as ocp

import checkpointing


def train(workdir, state, store):
  manager = ocp.CheckpointManager(workdir)  # expect: CheckpointManager
  for step in range(4):
    checkpointing.maybe_save_checkpoint(manager, state, step)
  checkpointing.unrelated(store)
  return checkpointing.latest(manager=manager)
