"""What a scenario records, in a comparable form: `norm`, the layouts, `Rec`.

* return values and their types (arrays by dtype, shape, values and array
  type: np.ndarray and jax.Array are told apart);
* exceptions: the exact class, and that the message is not empty;
* the on-disk layout: the entries directly under the root and, for each
  directory there, the names of its entries (no contents; names starting with
  '.' are ignored).

Paths are recorded relative to the running scenario's base directory (the
parent of its root, `<base>`), so two runs in two directories compare equal.
Imports Orbax, never orbax_compat.
"""

from __future__ import annotations

from collections.abc import Mapping
import contextlib
import dataclasses
import pathlib
from typing import Any

import jax
import numpy as np
from orbax.checkpoint._src.composite import Composite as _Composite

from differential import recorder
from differential.recorder import has
from differential.recorder import tname

_BASE: list[str] = []  # The running scenario's base directory (a stack).


@contextlib.contextmanager
def based_at(base: pathlib.Path):
  """Paths under `base` are recorded as `<base>/...` meanwhile."""
  _BASE.append(str(base))
  try:
    yield
  finally:
    _BASE.pop()


def mask_base(text: str) -> str:
  """`text` with the running scenario's base directory written `<base>`."""
  return text.replace(_BASE[-1], '<base>') if _BASE else text


def _relative(path: Any) -> str:
  text = str(path)
  if _BASE and text.startswith(_BASE[-1]):
    return '<base>' + text[len(_BASE[-1]):]
  return text


def norm(x: Any) -> Any:
  """A comparable, type-preserving description of a returned value."""
  if x is None or isinstance(x, (bool, int, float, str)):
    return (tname(x), x)
  if isinstance(x, jax.Array):
    return (tname(x), 'jax.Array', str(x.dtype), tuple(x.shape),
            np.asarray(x).tolist())
  if isinstance(x, np.ndarray):
    return (tname(x), str(x.dtype), tuple(x.shape), x.tolist())
  if isinstance(x, np.generic):
    return (tname(x), str(x.dtype), x.item())
  if isinstance(x, jax.ShapeDtypeStruct):
    return (tname(x), str(x.dtype), tuple(x.shape))
  if isinstance(x, pathlib.PurePath) or tname(x).startswith('etils.epath'):
    return (tname(x), _relative(x))
  if isinstance(x, _Composite):
    return (tname(x), {k: norm(x[k]) for k in sorted(x.keys())})
  # Tree metadata (v0 `TreeMetadata`): the tree of leaf metadata + custom.
  if has(x, 'tree') and has(x, 'custom_metadata'):
    return (tname(x), norm(x.tree), norm(x.custom_metadata))
  # Leaf metadata (ArrayMetadata, ScalarMetadata, ...).
  if has(x, 'shape') and has(x, 'dtype'):
    return (tname(x), tuple(x.shape), str(np.dtype(x.dtype)))
  if isinstance(x, Mapping):
    return (tname(x), sorted((repr(k), norm(v)) for k, v in x.items()))
  if isinstance(x, (list, tuple, set, frozenset)):
    items = [norm(v) for v in x]
    if isinstance(x, (set, frozenset)):
      items = sorted(items, key=repr)
    return (tname(x), items)
  return (tname(x),)


def step_metadata_obs(md: Any) -> Any:
  """What StepMetadata says, without its timestamps' values."""
  return {
      'type': tname(md),
      'item_handlers': norm(md.item_handlers),
      'item_metadata': norm(md.item_metadata),
      'metrics': norm(md.metrics),
      'custom_metadata': norm(md.custom_metadata),
      'init_timestamp_nsecs': tname(md.init_timestamp_nsecs),
      'commit_timestamp_nsecs': tname(md.commit_timestamp_nsecs),
      'performance_metrics': tname(md.performance_metrics),
  }


def root_metadata_obs(md: Any) -> Any:
  return {
      'type': tname(md),
      'custom_metadata': norm(md.custom_metadata),
  }


def disk_layout(root: pathlib.Path) -> Any:
  """Entries under root and, per directory there, its entries' names."""
  root = pathlib.Path(root)
  if not root.exists():
    return 'MISSING'
  out = []
  for p in sorted(root.iterdir()):
    if p.name.startswith('.'):
      continue
    if p.is_dir():
      children = sorted(
          c.name + ('/' if c.is_dir() else '')
          for c in p.iterdir()
          if not c.name.startswith('.')
      )
      out.append((p.name + '/', children))
    else:
      out.append((p.name, None))
  return out


def by_label(obs: list[Any]) -> dict[str, Any]:
  """{label: the rest of its observation} (a repeated label: its last one)."""
  return {o[0]: tuple(o[1:]) for o in obs}


@dataclasses.dataclass
class Raised:
  """What `Rec.call` returns for a call that raised."""

  error: BaseException


class Rec(recorder.Recorder):
  """Collects one scenario's observations; a failed call returns `Raised`."""

  describe = staticmethod(norm)
  listing = staticmethod(disk_layout)

  def raised(self, label: str, error: Exception) -> Any:
    del label
    return Raised(error)
