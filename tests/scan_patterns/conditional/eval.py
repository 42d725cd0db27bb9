"""A manager chosen with `a if c else None`."""
import orbax.checkpoint as ocp


def evaluate(workdir, enabled):
  mngr = ocp.CheckpointManager(workdir) if enabled else None  # expect: CheckpointManager
  if mngr is not None:
    print(mngr.all_steps())  # expect: all_steps
  step = mngr and mngr.latest_step()  # expect: latest_step
  return step
