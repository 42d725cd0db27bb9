"""The training script: no Orbax import of its own."""
from proj import checkpointing
from proj.checkpointing import create_orbax_checkpoint_manager as make


def train(workdir, state):
  mngr = checkpointing.create_orbax_checkpoint_manager(workdir)
  for step in range(3):
    mngr.save(step, args=None)  # expect: save
  mngr.wait_until_finished()  # expect: wait_until_finished
  other = make(workdir + '/eval')
  return other.latest_step()  # expect: latest_step
