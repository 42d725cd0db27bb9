import checkpoints


def main(config, state):
  checkpoint_manager, resuming = checkpoints.initialize_checkpoint_dir(config, resume=True)
  if resuming:
    state = checkpoint_manager.restore(checkpoint_manager.latest_step())  # expect: restore, latest_step
  checkpoint_manager.save(0, args=state)  # expect: save
  checkpoint_manager.wait_until_finished()  # expect: wait_until_finished
  return resuming
