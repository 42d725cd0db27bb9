"""A trainer class that holds its checkpoint manager (legacy v0 Orbax).

The manager is created in __init__ and used from the other methods; each step
saves a Composite (the model state and a JSON record) with metrics, and the
best step by eval loss is kept and restored at the end.
"""
import json
import sys

import numpy as np
from orbax.checkpoint import CheckpointManager, CheckpointManagerOptions, args


class Trainer:

    def __init__(self, workdir, keep=2):
        self.workdir = workdir
        self.mngr = CheckpointManager(
            workdir,
            options=CheckpointManagerOptions(
                max_to_keep=keep,
                best_fn=lambda metrics: metrics['eval_loss'],
                best_mode='min',
                keep_checkpoints_without_metrics=False,
            ),
            item_names=('state', 'record'),
        )
        self.params = {'w': np.zeros((3,), np.float32), 'b': np.zeros((1,), np.float32)}

    def train_step(self, step):
        self.params = {
            'w': self.params['w'] + np.float32(0.5),
            'b': self.params['b'] - np.float32(0.25),
        }
        # A loss that is lowest at step 3.
        return float((step - 3) ** 2 + 0.5)

    def save(self, step, eval_loss):
        self.mngr.save(
            step,
            args=args.Composite(
                state=args.StandardSave(self.params),
                record=args.JsonSave({'step': step, 'eval_loss': eval_loss}),
            ),
            metrics={'eval_loss': eval_loss},
        )

    def restore_best(self):
        best = self.mngr.best_step()
        restored = self.mngr.restore(
            best,
            args=args.Composite(
                state=args.StandardRestore(self.params),
                record=args.JsonRestore(),
            ),
        )
        return best, restored

    def _debug_dump(self):
        # Never called: the scanner must still find these.
        print(self.mngr.item_metadata(self.mngr.latest_step()))
        print(self.mngr.metrics(self.mngr.best_step()))

    def close(self):
        self.mngr.wait_until_finished()
        self.mngr.close()


def main(workdir):
    trainer = Trainer(workdir)
    for step in range(6):
        loss = trainer.train_step(step)
        trainer.save(step, loss)
    trainer.mngr.wait_until_finished()
    best, restored = trainer.restore_best()
    steps = trainer.mngr.all_steps()
    latest = trainer.mngr.latest_step()
    trainer.close()
    return {
        'all_steps': sorted(steps),
        'latest_step': latest,
        'best_step': best,
        'restored_state': {k: np.asarray(v).tolist() for k, v in restored['state'].items()},
        'restored_record': restored['record'],
    }


def resume(workdir):
    """Reads what main() wrote, as a restarted job would."""
    trainer = Trainer(workdir)
    best, restored = trainer.restore_best()
    out = {'all_steps': sorted(trainer.mngr.all_steps()), 'latest_step': trainer.mngr.latest_step(),
           'best_step': best, 'restored_record': restored['record']}
    trainer.close()
    return out

if __name__ == '__main__':
    print(json.dumps(main(sys.argv[1])))
