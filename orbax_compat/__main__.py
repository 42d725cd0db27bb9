"""`python -m orbax_compat demo | table [--write|--check] | scan PATH... [options]`."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog='orbax-compat')
  sub = parser.add_subparsers(dest='command', required=True)
  sub.add_parser('demo', help='run a legacy v0 training loop through the shim')
  sub.add_parser('table', help='print, --write or --check MIGRATION_TABLE.md')
  sub.add_parser('scan', add_help=False,
                 help='find v0 usage in code; --fix swaps imports to orbax_compat '
                 '(scan --help for its options)')
  ns, rest = parser.parse_known_args(argv)
  if ns.command == 'demo' and rest:
    parser.error(f'unrecognized arguments: {" ".join(rest)}')
  if ns.command == 'demo':
    from orbax_compat import demo  # pylint: disable=g-import-not-at-top

    return demo.main()
  if ns.command == 'scan':
    from orbax_compat import scan  # pylint: disable=g-import-not-at-top

    return scan.main(rest, prog=f'{parser.prog} scan')
  from orbax_compat import table as table_lib  # pylint: disable=g-import-not-at-top

  return table_lib.main(rest)


if __name__ == '__main__':
  sys.exit(main())
