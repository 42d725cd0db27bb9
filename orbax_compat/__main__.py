"""`python -m orbax_compat COMMAND ...` (also `orbax-compat COMMAND ...`).

Each command is a module's `main(argv)`; `COMMAND --help` shows its options.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import sys

COMMANDS = {
    'demo': ('tools.demo', 'run a legacy v0 training loop through each stage of a migration'),
    'table': ('tools.migration_table', 'print, --write or --check MIGRATION_TABLE.md'),
    'v1-config': ('tools.v1_config', 'print the v1 Checkpointer for v0 CheckpointManagerOptions'),
    'scan': ('tools.scan', 'find v0 usage in code; --fix swaps imports to orbax_compat, '
                     '--to-v1 rewrites mechanical calls'),
}


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog='orbax-compat')
  sub = parser.add_subparsers(dest='command', required=True)
  for name, (_, text) in COMMANDS.items():
    sub.add_parser(name, help=text, add_help=False)
  ns, rest = parser.parse_known_args(argv)
  module = importlib.import_module(f'orbax_compat.{COMMANDS[ns.command][0]}')
  return module.main(rest, prog=f'{parser.prog} {ns.command}')


def _program() -> int:
  """`main()` as the process itself. A scan is a one-shot process that builds
  millions of libcst nodes and keeps them to its end: the cyclic garbage
  collector stays off (`tools.scan.engine.run` turns it off for its own run
  only), and what is left at exit is frozen, so that the interpreter's last
  collection does not walk it all once more (about 1 s on MaxText)."""
  scan = sys.argv[1:2] == ['scan']
  if scan:
    gc.disable()
  status = main()
  if scan:
    gc.freeze()
  return status


if __name__ == '__main__':
  sys.exit(_program())
