"""The differential tests' recorder: one scenario's observations, comparable.

The base of the harness's `Rec` (differential/observe.py) and of the
multi-process worker's (`multiprocess_worker.Rec`, which describes sharded
arrays per process). This module imports neither Orbax nor orbax_compat.
"""

from __future__ import annotations

from collections.abc import Callable
import pathlib
from typing import Any


def tname(x: Any) -> str:
  """The qualified name of x's type."""
  t = type(x)
  return f'{t.__module__}.{t.__qualname__}'


def has(x: Any, name: str) -> bool:
  """Whether getattr(x, name) works (properties may raise anything)."""
  try:
    getattr(x, name)
  except Exception:  # pylint: disable=broad-except
    return False
  return True


class Recorder:
  """Collects one scenario's observations: results, errors, layouts.

  A subclass says how a result is described (`describe`), how a directory is
  listed (`listing`) and what a failed call returns (`raised`).
  """

  def __init__(self, root: pathlib.Path):
    self.root = pathlib.Path(root)
    self.obs: list[tuple[Any, ...]] = []

  @staticmethod
  def describe(x: Any) -> Any:
    raise NotImplementedError

  @staticmethod
  def listing(root: pathlib.Path) -> Any:
    raise NotImplementedError

  def raised(self, label: str, error: Exception) -> Any:
    """What a call that raised returns (after its error is recorded)."""
    del label, error
    return None

  def _raises(self, label: str, error: Exception) -> Any:
    self.obs.append((label, 'raises', tname(error), bool(str(error).strip())))
    return self.raised(label, error)

  def call(self, label: str, fn: Callable[..., Any], *a,
           post: Callable[[Any], Any] | None = None, **kw) -> Any:
    """Calls fn, records post(result) (default: describe) or the error type."""
    try:
      result = fn(*a, **kw)
    except Exception as e:  # pylint: disable=broad-except
      return self._raises(label, e)
    self.obs.append((label, 'returns', (post or self.describe)(result)))
    return result

  def value(self, label: str, value: Any) -> None:
    self.obs.append((label, 'value', value))

  def layout(self, label: str, root: pathlib.Path | None = None) -> Any:
    lay = self.listing(self.root if root is None else root)
    self.obs.append((label, 'layout', lay))
    return lay

  def manager(self, label: str, cls, root=None, **kw) -> Any:
    """Constructs a manager; None (and a recorded error) if it raises."""
    try:
      m = cls(self.root if root is None else root, **kw)
    except Exception as e:  # pylint: disable=broad-except
      self._raises(label, e)
      return None
    self.obs.append((label, 'constructed'))
    return m
