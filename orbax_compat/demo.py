"""A legacy v0 training loop, written exactly as v0 code, run through the shim.

It trains a tiny linear model, checkpoints with v0's CheckpointManager API,
"crashes", resumes from the latest checkpoint, and finishes. The deprecation
notices in the log show each v0 call site and the v1 call that replaces it.
"""

from __future__ import annotations

import logging
import sys
import tempfile

import jax
import jax.numpy as jnp
import numpy as np

import orbax_compat as ocp  # was: import orbax.checkpoint as ocp


def _train_step(params, batch):
  x, y = batch

  def loss_fn(p):
    return jnp.mean((x @ p['w'] + p['b'] - y) ** 2)

  loss, grads = jax.value_and_grad(loss_fn)(params)
  return jax.tree.map(lambda p, g: p - 0.1 * g, params, grads), float(loss)


def run(directory: str, first_step: int, last_step: int) -> dict:
  """Trains from the latest checkpoint in `directory` up to `last_step`."""
  options = ocp.CheckpointManagerOptions(
      save_interval_steps=2, max_to_keep=3, best_fn=lambda m: m['loss'],
      best_mode='min',
  )
  rng = np.random.default_rng(0)
  x = rng.normal(size=(32, 4)).astype(np.float32)
  y = x @ np.arange(1, 5, dtype=np.float32)[:, None]
  params = {'w': jnp.zeros((4, 1)), 'b': jnp.zeros((1,))}
  with ocp.CheckpointManager(
      directory, options=options, metadata={'model': 'linear'}
  ) as mngr:
    start = first_step
    if mngr.latest_step() is not None:
      start = mngr.latest_step() + 1
      params = mngr.restore(
          mngr.latest_step(), args=ocp.args.StandardRestore(params)
      )
      print(f'resumed from step {start - 1}')
    for step in range(start, last_step + 1):
      params, loss = _train_step(params, (x, y))
      mngr.save(step, args=ocp.args.StandardSave(params), metrics={'loss': loss})
    mngr.wait_until_finished()
    print(
        f'steps on disk: {mngr.all_steps()}, latest: {mngr.latest_step()}, '
        f'best: {mngr.best_step()} (loss {mngr.metrics(mngr.best_step())})'
    )
    return params


def main(argv: list[str] | None = None, prog: str = 'python -m orbax_compat demo') -> int:
  import argparse  # pylint: disable=g-import-not-at-top

  argparse.ArgumentParser(prog=prog, description=__doc__).parse_args(argv)
  logging.basicConfig(level=logging.WARNING, format='%(levelname)s %(name)s: %(message)s')
  with tempfile.TemporaryDirectory(prefix='orbax_compat_demo_') as root:
    print(f'== legacy v0 training loop through orbax_compat, in {root}')
    run(root, 0, 5)
    print('== "preempted"; a new manager resumes from the latest checkpoint')
    params = run(root, 0, 11)
  print(f'== done; w = {np.asarray(params["w"]).ravel().round(2).tolist()}')
  print('Migration report (v0 calls still in use):')
  for member, filename, line, calls in ocp.usage_report():
    print(f'  {member:<20} {filename}:{line}  x{calls}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
