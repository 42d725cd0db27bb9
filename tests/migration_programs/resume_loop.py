"""Shaped like Flax's examples and MaxText's train loop: open the manager,
resume from the latest step if there is one (its eval_shape tree), and keep
training, saving each step; a resumed run saves the step it resumed from
again, which v0 refuses (False)."""

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp


def init():
  return {'w': jnp.zeros((3,)), 'count': jnp.asarray(0, jnp.int32)}


def update(state):
  return {'w': state['w'] + 1.0, 'count': state['count'] + 1}


def train(workdir, num_steps):
  options = ocp.CheckpointManagerOptions(max_to_keep=3)
  with ocp.CheckpointManager(workdir, options=options) as mngr:
    state, start = init(), 0
    if mngr.latest_step() is not None:
      start = mngr.latest_step()
      state = mngr.restore(start, args=ocp.args.StandardRestore(jax.eval_shape(init)))
    saved = []
    for step in range(start, num_steps):
      saved.append(mngr.save(step, args=ocp.args.StandardSave(state)))
      state = update(state)
    mngr.wait_until_finished()
    return {'start': start, 'saved': saved, 'steps': mngr.all_steps(), 'state': state,
            'saving': mngr.is_saving_in_progress()}


def main(workdir):
  return {'first run': train(workdir, 3), 'resumed run': train(workdir, 5)}
