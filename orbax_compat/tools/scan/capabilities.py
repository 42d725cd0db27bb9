"""Which v1 calls the installed Orbax has, decided without importing it."""

from __future__ import annotations

import functools
import importlib.metadata
import re

from orbax_compat.mapping import members as mapping_members


@functools.cache
def installed_orbax() -> str | None:
  try:
    return importlib.metadata.version('orbax-checkpoint')
  except importlib.metadata.PackageNotFoundError:
    return None


def _release(text: str) -> tuple[int, ...]:
  return tuple(int(p) for p in re.findall(r'\d+', text)[:3])


def capability_missing(name: str) -> str:
  """Why v1 code needing capability `name` does not run on the installed Orbax
  ('' where it does): its release, read from the installed package's metadata
  (a static tool imports no Orbax)."""
  if not name:
    return ''
  needs = mapping_members.CAPABILITIES[name]
  installed = installed_orbax()
  if installed is None or _release(installed) >= _release(needs.release):
    return ''
  return (f'{needs.what} needs orbax-checkpoint {needs.release}; the installed '
          f'{installed} has none: keep the v0 call until you upgrade')
