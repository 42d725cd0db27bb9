"""Shaped like Orbax's guides (the CheckpointManager guide, the guide for
PyTorch users): a train loop that saves asynchronously on an interval, then
restores the latest step into `jax.eval_shape` of the init function."""

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp


def init_state():
  return {
      'params': {'w': jnp.ones((2, 3)), 'b': jnp.zeros((3,))},
      'step': jnp.asarray(0),
      'rng': np.arange(4, dtype=np.uint32),  # A host-side leaf: v0 restores it as numpy.
  }


def train_step(state):
  return {
      'params': jax.tree.map(lambda p: p * 0.5 + 1.0, state['params']),
      'step': state['step'] + 1,
      'rng': state['rng'] + 1,
  }


def main(workdir):
  options = ocp.CheckpointManagerOptions(max_to_keep=2, save_interval_steps=2)
  mngr = ocp.CheckpointManager(workdir, options=options)
  state = init_state()
  for step in range(5):
    state = train_step(state)
    mngr.save(step, args=ocp.args.StandardSave(state))
  mngr.wait_until_finished()

  abstract_state = jax.eval_shape(init_state)
  restored = mngr.restore(mngr.latest_step(), args=ocp.args.StandardRestore(abstract_state))
  result = {
      'steps': mngr.all_steps(),
      'latest': mngr.latest_step(),
      'restored': restored,
      'params_on_device': isinstance(restored['params']['w'], jax.Array),
  }
  mngr.close()
  return result
