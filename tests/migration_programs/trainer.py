"""Shaped like maxdiffusion's checkpointing_utils and MaxText's trainers: the
manager is imported from orbax.checkpoint.checkpoint_manager, built in a
factory, kept on a Trainer, and used from its methods; the best step by a
metric is restored into an eval_shape tree."""

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp
from orbax.checkpoint.checkpoint_manager import CheckpointManager
from orbax.checkpoint.checkpoint_manager import CheckpointManagerOptions


def loss_of(metrics):
  return metrics['loss']


def create_orbax_checkpoint_manager(checkpoint_dir, enable_checkpointing=True):
  if not enable_checkpointing:
    return None
  options = CheckpointManagerOptions(max_to_keep=2, best_fn=loss_of, best_mode='min')
  return CheckpointManager(checkpoint_dir, options=options)


def init_params():
  return {'dense': {'kernel': jnp.ones((2, 2)), 'bias': jnp.zeros((2,))}}


class Trainer:
  """Holds the manager for its whole life."""

  def __init__(self, workdir):
    self.checkpoint_manager = create_orbax_checkpoint_manager(workdir)

  def save(self, step, params, loss):
    return self.checkpoint_manager.save(step, args=ocp.args.StandardSave(params),
                                        metrics={'loss': loss})

  def best(self):
    step = self.checkpoint_manager.best_step()
    params = self.checkpoint_manager.restore(
        step, args=ocp.args.StandardRestore(jax.eval_shape(init_params)))
    return step, params

  def finish(self):
    self.checkpoint_manager.wait_until_finished()
    steps = self.checkpoint_manager.all_steps()
    metrics = [self.checkpoint_manager.metrics(s) for s in steps]
    self.checkpoint_manager.close()
    return steps, metrics


def main(workdir):
  trainer = Trainer(workdir)
  params = init_params()
  saved = []
  for step, loss in enumerate([0.9, 0.4, 0.6, 0.5]):
    params = jax.tree.map(lambda p: p + 1.0, params)
    saved.append(trainer.save(step, params, loss))
  trainer.checkpoint_manager.wait_until_finished()
  best_step, best_params = trainer.best()
  steps, metrics = trainer.finish()
  return {'saved': saved, 'best_step': best_step, 'best_params': best_params, 'steps': steps,
          'metrics': metrics}
