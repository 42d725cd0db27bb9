"""Stage 1: the team's legacy v0 training script, unchanged but for its import."""

import sys

from model import batch
from model import init_params
from model import loss_of
from model import train_step

import orbax_compat as ocp  # was: import orbax.checkpoint as ocp


def main(directory, last_step):
  options = ocp.CheckpointManagerOptions(
      save_interval_steps=2, max_to_keep=3, keep_period=4, best_fn=loss_of, best_mode='min')
  with ocp.CheckpointManager(directory, options=options, metadata={'model': 'linear'}) as mngr:
    params, start = init_params(), 0
    if mngr.latest_step() is not None:
      start = mngr.latest_step() + 1
      params = mngr.restore(mngr.latest_step(), args=ocp.args.StandardRestore(params))
    for step in range(start, last_step + 1):
      params, loss = train_step(params, batch())
      mngr.save(step, args=ocp.args.StandardSave(params), metrics={'loss': loss})
    mngr.wait_until_finished()
    print(f'resumed at {start}; steps {mngr.all_steps()}, best {mngr.best_step()}')


if __name__ == '__main__':
  main(sys.argv[1], int(sys.argv[2]))
