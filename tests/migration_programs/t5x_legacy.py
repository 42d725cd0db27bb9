"""Shaped like t5x's utils.LegacyCheckpointManager: `import orbax.checkpoint`
with no alias, a subclass of orbax.checkpoint.CheckpointManager overriding
save, and the legacy `checkpointers=` constructor with a save of the bare tree
(items=), restored the same way."""

import numpy as np
import orbax.checkpoint


class LegacyCheckpointManager(orbax.checkpoint.CheckpointManager):
  """Counts saves, as t5x's wrapper tracks its own state."""

  def __init__(self, directory, **kwargs):
    super().__init__(directory, orbax.checkpoint.PyTreeCheckpointer(), **kwargs)
    self.saves = 0

  def save(self, step, items, **kwargs):
    self.saves += 1
    return super().save(step, items, **kwargs)


def main(workdir):
  options = orbax.checkpoint.CheckpointManagerOptions(max_to_keep=2)
  manager = LegacyCheckpointManager(workdir, options=options)
  tree = {'target': {'w': np.arange(3.0)}, 'state': {'step': 1}}
  saved = [manager.save(step, tree) for step in range(3)]
  manager.wait_until_finished()
  restored = manager.restore(manager.latest_step(), tree)
  result = {'saved': saved, 'saves': manager.saves, 'steps': manager.all_steps(),
            'restored': restored, 'is_v0_class': isinstance(
                manager, orbax.checkpoint.CheckpointManager)}
  manager.close()
  return result
