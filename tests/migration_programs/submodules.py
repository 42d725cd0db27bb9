"""Managers built through Orbax's submodule, as code written against
orbax.checkpoint.checkpoint_manager does: `ocp.checkpoint_manager.CheckpointManager`
and `from orbax.checkpoint import checkpoint_manager as cm`; after the swap
those names are still Orbax's own class unless --fix rewrites them."""

import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_manager as cm


def main(workdir):
  a = ocp.checkpoint_manager.CheckpointManager(workdir + '/a')
  a.save(0, args=ocp.args.StandardSave({'x': np.arange(2)}))
  a.wait_until_finished()
  a_steps = a.all_steps()
  a.close()

  options = cm.CheckpointManagerOptions(max_to_keep=1)
  with cm.CheckpointManager(workdir + '/b', options=options) as b:
    for step in range(3):
      b.save(step, args=ocp.args.StandardSave({'y': np.ones(3) * step}))
    b.wait_until_finished()
    latest = b.latest_step()
    restored = b.restore(latest, args=ocp.args.StandardRestore({'y': np.zeros(3)}))
    b_steps = b.all_steps()
  return {'a': a_steps, 'b': b_steps, 'latest': latest, 'restored': restored}
