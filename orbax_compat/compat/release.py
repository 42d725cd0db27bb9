"""The orbax-checkpoint releases orbax_compat supports, checked without importing Orbax.

`import orbax_compat` refuses a release older than the floor at once, from
the installed distribution's metadata: the static tools (`scan`, `table`)
import neither jax nor Orbax, so the runtime's feature checks
(`compat.orbax`) would only run at the first manager, in the middle of a
program. Above the floor the shim detects what a release has, never its
version.
"""

from __future__ import annotations

from importlib import metadata
import re

SUPPORTED_ORBAX = '>=0.12.0,<0.13'
"""orbax-checkpoint releases this shim supports (setup.cfg's install_requires).

Each release in the range is tested (`tox -e orbax-oldest`, `tox -e
orbax-latest`).
"""

FLOOR = (0, 12, 0)
INSTALL = f'pip install "orbax-checkpoint{SUPPORTED_ORBAX}"'


def release(text: str) -> tuple[int, ...]:
  """'0.11.40' -> (0, 11, 40); the leading numbers of a version string."""
  return tuple(int(x) for x in re.findall(r'\d+', text.split('+')[0])[:3])


def unsupported_orbax(version: str, problem: str) -> str:
  """The one message for an Orbax the shim cannot run on."""
  return (
      f'orbax_compat supports orbax-checkpoint {SUPPORTED_ORBAX}; the installed'
      f' orbax-checkpoint {version} {problem}. Install a supported'
      f' release into this environment ({INSTALL}), or an orbax_compat'
      ' release made for this Orbax.'
  )


def installed_orbax() -> str | None:
  """The installed orbax-checkpoint's version, None when it is not installed."""
  try:
    return metadata.version('orbax-checkpoint')
  except metadata.PackageNotFoundError:
    return None


def refuse_below_floor(version: str | None) -> None:
  """ImportError naming both releases when `version` is older than the floor."""
  if version is not None and release(version) < FLOOR:
    raise ImportError(unsupported_orbax(version, 'is older than the floor'))
