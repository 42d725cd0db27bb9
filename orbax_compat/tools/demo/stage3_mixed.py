"""Stage 3: calls moved one at a time to the v1 Checkpointer the manager runs on.

The constructor and `best_step` are still v0 (through orbax_compat); restore,
save and the step queries are v1 calls on `mngr.v1_checkpointer`.
"""

import sys

import jax
from model import batch
from model import init_params
from model import loss_of
from model import train_step

import orbax_compat as ocp


def main(directory, last_step):
  options = ocp.CheckpointManagerOptions(
      save_interval_steps=2, max_to_keep=3, keep_period=4, best_fn=loss_of, best_mode='min')
  with ocp.CheckpointManager(directory, options=options, metadata={'model': 'linear'}) as mngr:
    ckptr = mngr.v1_checkpointer  # v1 calls and v0 calls share one state.
    params, start = init_params(), 0
    if ckptr.latest is not None:
      start = ckptr.latest.step + 1
      abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, params)
      params = ckptr.load(ckptr.latest.step, abstract, checkpointable_name='default')
    for step in range(start, last_step + 1):
      params, loss = train_step(params, batch())
      ckptr.save_checkpointables_async(step, {'default': params}, metrics={'loss': loss})
    ckptr.wait()
    steps = [c.step for c in ckptr.checkpoints]
    print(f'resumed at {start}; steps {steps}, best {mngr.best_step()}')


if __name__ == '__main__':
  main(sys.argv[1], int(sys.argv[2]))
