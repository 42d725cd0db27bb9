"""Shaped like maxdiffusion and kauldron: a manager of named items (a model
state and its JSON config) saved and restored as a Composite, and legacy code
of the same shape with `checkpointers=` by name, saving and restoring items
by name; then a forced save of a step that exists (v0 and v1 both raise)."""

import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp


def composite(workdir):
  mngr = ocp.CheckpointManager(
      workdir, item_names=('state', 'config'),
      item_handlers={'config': ocp.JsonCheckpointHandler()})
  state = {'w': jnp.arange(4.0)}
  for step in range(2):
    mngr.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), config=ocp.args.JsonSave({'lr': 0.1, 'step': step})))
  mngr.wait_until_finished()
  restored = mngr.restore(1, args=ocp.args.Composite(
      state=ocp.args.StandardRestore(state), config=ocp.args.JsonRestore()))
  try:
    mngr.save(1, args=ocp.args.Composite(state=ocp.args.StandardSave(state)), force=True)
    forced = 'saved'
  except Exception as e:  # pylint: disable=broad-except
    forced = type(e).__name__
  mngr.close()
  return {'state': restored['state'], 'config': restored['config'], 'forced re-save': forced}


def legacy(workdir):
  mngr = ocp.CheckpointManager(
      workdir, {'params': ocp.PyTreeCheckpointer(), 'opt': ocp.PyTreeCheckpointer()})
  items = {'params': {'w': np.ones(2)}, 'opt': {'mu': np.zeros(2)}}
  saved = [mngr.save(0, items), mngr.save(0, items)]  # The second: a step v0 has.
  mngr.wait_until_finished()
  restored = mngr.restore(0, items={'params': items['params'], 'opt': items['opt']})
  mngr.close()
  return {'saved': saved, 'params': restored['params'], 'opt': restored['opt']}


def main(workdir):
  return {'composite': composite(workdir + '/composite'), 'legacy': legacy(workdir + '/legacy')}
