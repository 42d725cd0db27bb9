"""MaxText shape: helpers take the manager as an unannotated parameter."""


def maybe_save_checkpoint(checkpoint_manager, state, step):
  if checkpoint_manager is None:
    return False
  saved = checkpoint_manager.save(step, args=state)  # expect: save
  checkpoint_manager.wait_until_finished()  # expect: wait_until_finished
  return saved


def latest(manager):
  return manager.latest_step() if manager else None  # expect: latest_step


def unrelated(store):
  return store.save(1)  # Never given a manager.
