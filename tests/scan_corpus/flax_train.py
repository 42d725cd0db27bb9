"""A Flax-style training loop written against Orbax's legacy v0 API.

Run: python flax_train.py WORKDIR  (prints the results as one JSON line)
"""
import json
import sys

import flax.linen as nn
from flax.training import train_state
import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp  # the legacy v0 API


class MLP(nn.Module):
    features: int = 4

    @nn.compact
    def __call__(self, x):
        x = nn.Dense(self.features)(x)
        return nn.Dense(1)(nn.relu(x))


def create_state(rng):
    model = MLP()
    params = model.init(rng, jnp.ones((1, 3)))['params']
    return train_state.TrainState.create(
        apply_fn=model.apply, params=params, tx=optax.sgd(0.05))


@jax.jit
def train_step(state, batch):
    x, y = batch

    def loss_fn(params):
        pred = state.apply_fn({'params': params}, x)
        return jnp.mean((pred - y) ** 2)

    loss, grads = jax.value_and_grad(loss_fn)(state.params)
    return state.apply_gradients(grads=grads), loss


def main(workdir, num_steps=7):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 3)).astype(np.float32)
    y = x.sum(axis=1, keepdims=True)
    state = create_state(jax.random.PRNGKey(0))

    options = ocp.CheckpointManagerOptions(max_to_keep=2, save_interval_steps=2)
    mngr = ocp.CheckpointManager(workdir, options=options)
    for step in range(num_steps):
        state, loss = train_step(state, (x, y))
        mngr.save(step, args=ocp.args.StandardSave(state))
    mngr.wait_until_finished()

    # Resume as a restarted job would: a fresh state as the target.
    target = create_state(jax.random.PRNGKey(1))
    latest = mngr.latest_step()
    restored = mngr.restore(latest, args=ocp.args.StandardRestore(target))
    steps = mngr.all_steps()
    mngr.close()
    leaves = jax.tree_util.tree_leaves(restored.params)
    return {
        'all_steps': sorted(steps),
        'latest_step': latest,
        'restored_step': int(restored.step),
        'restored_params': [np.asarray(l).ravel().tolist() for l in leaves],
        'trained_params': [np.asarray(l).ravel().tolist()
                           for l in jax.tree_util.tree_leaves(state.params)],
    }


def resume(workdir):
    """Reads what main() wrote, as a restarted job would."""
    mngr = ocp.CheckpointManager(workdir)
    latest = mngr.latest_step()
    restored = mngr.restore(latest, args=ocp.args.StandardRestore(create_state(jax.random.PRNGKey(2))))
    steps = mngr.all_steps()
    mngr.close()
    return {'all_steps': sorted(steps), 'latest_step': latest, 'restored_step': int(restored.step),
            'restored_params': [np.asarray(l).ravel().tolist()
                                for l in jax.tree_util.tree_leaves(restored.params)]}

if __name__ == '__main__':
    print(json.dumps(main(sys.argv[1])))
