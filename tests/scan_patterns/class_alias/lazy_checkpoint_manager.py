"""kauldron shape: the class is held in a variable."""
import dataclasses

import orbax.checkpoint as ocp


@dataclasses.dataclass
class LazyCheckpointManager:
  workdir: str
  fast: bool = False

  def _manager(self):
    manager_cls = ocp.CheckpointManager if not self.fast else ocp.CheckpointManager
    mngr = manager_cls(self.workdir)  # expect: CheckpointManager
    return mngr

  def all_steps(self):
    return self._manager().all_steps()  # expect: all_steps


def simple(path):
  cls = ocp.CheckpointManager
  m = cls(path)  # expect: CheckpointManager
  m.reload()  # expect: reload
