"""A subclass of the v0 manager, a holder class with a property, and factories."""
import dataclasses
import json
import sys
from typing import Optional, Union

import numpy as np
import orbax.checkpoint as ocp


class CountingManager(ocp.CheckpointManager):
    """Counts its saves; v0 subclasses override public members like this."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.saves = 0

    def save(self, step, *args, **kwargs):
        saved = super().save(step, *args, **kwargs)
        self.saves += int(saved)
        return saved


@dataclasses.dataclass
class Holder:
    root: str
    manager: Optional[ocp.CheckpointManager] = None

    def open(self):
        self.manager = CountingManager(
            self.root, options=ocp.CheckpointManagerOptions(save_interval_steps=3))
        return self

    @property
    def mngr(self):
        return self.manager

    def steps(self):
        return self.mngr.all_steps()


def open_holder(root) -> Union[Holder, None]:
    return Holder(root).open()


def main(workdir):
    holder = open_holder(workdir)
    for step in range(7):
        holder.mngr.save(step, args=ocp.args.StandardSave({'v': np.array([step])}))
    holder.manager.wait_until_finished()
    steps = holder.steps()
    restored = holder.mngr.restore(max(steps), args=ocp.args.StandardRestore({'v': np.array([0])}))
    out = {'steps': sorted(steps), 'saves': holder.manager.saves,
           'restored': restored['v'].tolist()}
    holder.mngr.close()
    return out


if __name__ == '__main__':
    print(json.dumps(main(sys.argv[1])))
