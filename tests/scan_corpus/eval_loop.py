"""A train-and-evaluate loop with housekeeping, on Orbax's legacy v0 API.

Saves every other step with its eval loss, one step without, deletes one,
then reads everything back: the steps kept, the latest and best step, each
step's metrics, the parameters of two steps. `resume` reads what `main` wrote,
as a restarted evaluation job would.
"""
import json
import os
import sys

import numpy as np
import orbax.checkpoint as ocp


def params_at(step):
    return {'w': np.arange(4, dtype=np.float32) * step, 'b': np.array([step], np.int32)}


def loss_at(step):
    return abs(step - 4) + 0.25


def as_lists(tree):
    return {k: np.asarray(v).tolist() for k, v in sorted(tree.items())}


def open_manager(workdir):
    options = ocp.CheckpointManagerOptions(
        save_interval_steps=2, best_fn=lambda m: m['loss'], best_mode='min')
    return ocp.CheckpointManager(workdir, options=options)


def export(directory, params):
    """Writes `params` as a PyTree checkpoint and reads them back."""
    with ocp.CheckpointManager(directory) as mngr:
        mngr.save(0, args=ocp.args.PyTreeSave(params))
        mngr.wait_until_finished()
        return as_lists(mngr.restore(0, args=ocp.args.PyTreeRestore(params)))


def main(workdir):
    mngr = ocp.CheckpointManager(workdir, options=ocp.CheckpointManagerOptions(
        save_interval_steps=2, best_fn=lambda m: m['loss'], best_mode='min'))
    decisions = []
    for step in range(7):
        decisions.append(mngr.should_save(step))
        if decisions[-1]:
            mngr.save(step, args=ocp.args.StandardSave(params_at(step)),
                      metrics={'loss': loss_at(step)})
    mngr.wait_until_finished()
    skipped = mngr.save(7, args=ocp.args.StandardSave(params_at(7)))  # Not a save step.
    saved = mngr.save(
        8,  # A step without metrics.
        args=ocp.args.StandardSave(params_at(8)),
    )
    mngr.wait_until_finished()
    busy = mngr.is_saving_in_progress()
    mngr.delete(2)
    mngr.reload()
    steps = mngr.all_steps()
    metrics = {str(s): mngr.metrics(s) for s in steps}
    best = mngr.best_step()
    latest = mngr.latest_step()
    restored = mngr.restore(latest, args=ocp.args.StandardRestore(params_at(0)))
    best_params = mngr.restore(best, args=ocp.args.StandardRestore(params_at(0)))
    name = os.path.basename(os.fspath(mngr.directory))
    mngr.close()
    exported = export(workdir + '_export', restored)
    return {
        'decisions': decisions, 'skipped': skipped, 'saved': saved, 'busy': busy,
        'steps': sorted(steps), 'metrics': metrics, 'best': best, 'latest': latest,
        'restored': as_lists(restored), 'best_params': as_lists(best_params), 'dir': name,
        'exported': exported,
    }


def resume(workdir):
    mngr = open_manager(workdir)
    latest = mngr.latest_step()
    out = {
        'steps': sorted(mngr.all_steps()),
        'latest': latest,
        'best': mngr.best_step(),
        'metrics': [mngr.metrics(s) for s in sorted(mngr.all_steps())],
        'latest_params': as_lists(
            mngr.restore(latest, args=ocp.args.StandardRestore(params_at(0)))),
    }
    mngr.close()
    return out


if __name__ == '__main__':
    print(json.dumps([main(sys.argv[1]), resume(sys.argv[1])]))
