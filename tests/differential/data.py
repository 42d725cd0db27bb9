"""What the scenarios save: small trees of numpy and jax arrays, a JSON doc."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

NATIVE = ocp.CheckpointManager  # The reference: Orbax's own v0 manager.
Options = ocp.CheckpointManagerOptions
args = ocp.args


def make_tree(offset: int = 0) -> dict[str, Any]:
  return {
      'w': np.arange(3, dtype=np.float32) + offset,
      'nested': {
          'j': jnp.array([1, 2], dtype=jnp.int32) + offset,
          'i': np.array([7 + offset, 8], dtype=np.int64),
      },
  }


def abstract(tree: Any) -> Any:
  return jax.tree.map(ocp.utils.to_shape_dtype_struct, tree)


def json_doc(step: int = 0) -> dict[str, Any]:
  return {'lr': 0.5, 'name': 'run', 'step': step, 'tags': ['a', 'b']}
