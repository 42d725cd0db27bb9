"""Managers reached through aliases, annotations and context managers (v0 API)."""
from __future__ import annotations

import json
import os
import sys
from typing import Optional

import numpy as np
from orbax import checkpoint as oc
import orbax.checkpoint
from orbax.checkpoint import CheckpointManager as CM
from orbax.checkpoint.args import StandardRestore


def make_manager(directory, **options) -> 'CM':
    return CM(directory, options=oc.CheckpointManagerOptions(**options))


def save_all(mngr: CM, trees):
    for step, tree in enumerate(trees):
        mngr.save(step, args=oc.args.StandardSave(tree))
    mngr.wait_until_finished()


def newest(m: Optional[CM]):
    return None if m is None else m.latest_step()


def restore_newest(manager: 'oc.CheckpointManager | None', like):
    step = newest(manager)
    return manager.restore(
        step,
        args=StandardRestore(
            like,
        ),
    )


def _resume_after_preemption(m: orbax.checkpoint.CheckpointManager, step):
    # Never called in this program.
    if m.reached_preemption(step):
        m.save(step, args=orbax.checkpoint.args.StandardSave({}), force=True)
        m.wait_until_finished()


def main(workdir):
    trees = [{'x': np.full((2,), i, np.float32)} for i in range(4)]
    first = make_manager(os.path.join(workdir, 'a'), max_to_keep=3)
    save_all(first, trees)
    alias = first
    steps_a = alias.all_steps()
    restored = restore_newest(alias, trees[0])
    first.close()

    with orbax.checkpoint.CheckpointManager(
        os.path.join(workdir, 'b'),
        options=orbax.checkpoint.CheckpointManagerOptions(save_interval_steps=2),
    ) as mngr:
        for step, tree in enumerate(trees):
            if mngr.should_save(step):
                mngr.save(step, args=oc.args.StandardSave(tree))
        mngr.wait_until_finished()
        steps_b = mngr.all_steps()
        name_b = os.path.basename(str(mngr.directory))
    return {
        'steps_a': sorted(steps_a),
        'restored': restored['x'].tolist(),
        'steps_b': sorted(steps_b),
        'dir_b': name_b,
    }


if __name__ == '__main__':
    print(json.dumps(main(sys.argv[1])))
