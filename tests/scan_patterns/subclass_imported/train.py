from my_manager import TrackingManager


def train(workdir, state):
  mngr = TrackingManager(workdir)  # expect: CheckpointManager
  mngr.save(1, args=state)  # expect: save
  return mngr.all_steps()  # expect: all_steps
