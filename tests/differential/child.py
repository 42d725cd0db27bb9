"""Runs one registered scenario's sides in this (child) process.

    python -m differential.child MODULE SCENARIO BASE SIDE...   (cwd: tests/)

For a scenario registered with `child=`: differential/harness.py starts this,
prefixed by the scenario's words (e.g. `unshare -m` for a private mount
namespace), and reads BASE/observations.pkl, {side: observations}. Each side
runs in BASE/<side>, inside the scenario's filesystem fixture. The process
ends without waiting for threads Orbax may leave waiting on a failed write.
"""

from __future__ import annotations

import importlib
import os
import pathlib
import pickle
import sys

from absl import logging as absl_logging

from differential import harness
from differential import registry


def main(module: str, name: str, base: str, *sides: str) -> None:
  absl_logging.set_verbosity(absl_logging.FATAL)
  importlib.import_module(module)
  sc = registry.get(module, name)
  if 'shim' in sides:
    import orbax_compat  # pylint: disable=g-import-not-at-top

    orbax_compat.set_warning_policy('off')
  out = {side: harness.run_side(sc, side, pathlib.Path(base)) for side in sides}
  tmp = pathlib.Path(base) / '.observations.pkl'
  tmp.write_bytes(pickle.dumps(out))
  tmp.rename(pathlib.Path(base) / 'observations.pkl')
  sys.stdout.flush()
  sys.stderr.flush()
  os._exit(0)  # pylint: disable=protected-access


if __name__ == '__main__':
  main(*sys.argv[1:])
