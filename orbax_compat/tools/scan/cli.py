"""`orbax-compat scan PATH...`: the command line and its output formats.

Text: one line per finding, `path:line:col: label: v1 code  (note)` (a
notebook's: `path[cell]:line:col: ...`), a summary by member and by file,
what --fix / --to-v1 changed, and errors on stderr. JSON (`--format json`):
docs/scan-json-schema.md. Exit status: docs/scanner.md (0 nothing remains, 1
v0 uses remain, 2 usage error or files that could not be scanned).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from orbax_compat.tools.scan import engine
from orbax_compat.tools.scan.findings import SHIM
from orbax_compat.tools.scan.findings import TODO
from orbax_compat.tools.scan.findings import Result


def render_text(result: Result, diff: bool) -> str:
  lines = []
  if diff:
    lines.extend(c['diff'].rstrip('\n') for c in result.changes)
  lines.extend(f.text() for f in result.uses)
  summary = result.summary()
  if result.uses:
    lines.append('')
    lines.append(f'{summary["findings"]} v0 uses in {summary["files_with_findings"]} files '
                 f'({summary["files_scanned"]} scanned)')
    lines.append('by member:')
    lines.extend(f'  {k:<40} {v}' for k, v in summary['by_member'].items())
    lines.append('by file:')
    lines.extend(f'  {k:<40} {v}' for k, v in summary['by_file'].items())
  else:
    lines.append(f'no v0 uses found ({summary["files_scanned"]} files scanned)')
  if summary['imports_without_manager']:
    lines.append(f'{summary["imports_without_manager"]} Orbax import(s) in '
                 f'{summary["files_without_manager"]} file(s) that build and use no v0 manager: '
                 'nothing to migrate there (not counted; --fix leaves them)')
  for m in result.managers:
    where = f'{m["path"]}:{m["line"]}:{m["col"]}'
    if m['finished']:
      lines.append(f'finished {where}: CheckpointManager -> ocp_v1.training.Checkpointer')
    else:
      lines.append(f'not finished {where}: ' + '; '.join(m['left']))
  actions = result.actions
  if actions:
    lines.append(f'{len(actions)} finding(s) marked [action] need you: --fix cannot make them '
                 'run on orbax_compat')
  if result.errors:
    lines.append(f'{len(result.errors)} file(s) could not be scanned (see the errors)')
  for c in result.changes:
    verb = 'fixed' if c['written'] else 'would fix'
    line = f'{verb} {c["path"]}: {c["swapped"]} import(s) swapped to {SHIM}'
    if c.get('references'):
      line += f', {c["references"]} reference(s) to Orbax\'s class rewritten to {SHIM}\'s'
    if c['rewritten'] or c['todos']:
      line += (f', {c["rewritten"]} use(s) rewritten to v1, {c["todos"]} '
               f'# {TODO} comment(s)')
    lines.append(line)
  return '\n'.join(lines) + '\n'


def _positive(text: str) -> int:
  try:
    value = int(text)
  except ValueError:
    value = 0
  if value < 1:
    raise argparse.ArgumentTypeError(f'expected a positive integer, got {text!r}')
  return value


def main(argv: list[str] | None = None, prog: str = 'orbax-compat scan') -> int:
  parser = argparse.ArgumentParser(
      prog=prog, description='Find Orbax v0 CheckpointManager usage in Python files and '
      'notebooks (never imports or runs the code; reads the whole project around the paths); '
      'optionally swap `orbax.checkpoint` imports to orbax_compat, and rewrite the calls the '
      'table marks mechanical into v1.',
      epilog='Exit status: 0 nothing remains (--fix: every manager runs on orbax_compat), 1 v0 '
      'uses remain (--fix: findings marked [action] need you), 2 usage error or files that '
      'could not be scanned. Columns are 1-based. See docs/scanner.md.')
  parser.add_argument('paths', nargs='+', metavar='PATH',
                      help='files (.py, .ipynb) or directories to scan')
  parser.add_argument('--fix', action='store_true',
                      help='in files that build or use a v0 manager, rewrite `import '
                      'orbax.checkpoint as X` / `from orbax.checkpoint import A` to orbax_compat, '
                      'and references to Orbax\'s manager class the swap does not reach '
                      '(atomic writes)')
  parser.add_argument('--to-v1', action='store_true',
                      help='the --fix swap, and rewrite each call whose table form is '
                      'mechanical into v1 code on `<manager>.v1_checkpointer`; a '
                      f'`# {TODO}` comment above every other manager call; a manager whose '
                      'every use is rewritten becomes a v1 Checkpointer (finished)')
  parser.add_argument('--swap-all', action='store_true',
                      help='with --fix / --to-v1, swap imports also in files that build and use '
                      'no v0 manager (never in files already on v1)')
  parser.add_argument('--diff', action='store_true',
                      help='print the --fix / --to-v1 changes as a unified diff; write nothing')
  parser.add_argument('--format', choices=('text', 'json'), default='text',
                      help='output format (json: see docs/scan-json-schema.md)')
  parser.add_argument('--include-skipped', action='store_true',
                      help='also walk hidden directories, virtualenvs and site-packages')
  parser.add_argument('--no-project', action='store_true',
                      help='read only the paths given, not the project around them')
  parser.add_argument('--jobs', '-j', type=_positive, default=os.cpu_count() or 1,
                      help='processes for large scans (default: the number of CPUs)')
  ns = parser.parse_args(argv)
  result = engine.run(ns.paths, fix=ns.fix, diff=ns.diff, to_v1=ns.to_v1,
                      include_skipped=ns.include_skipped, jobs=ns.jobs,
                      project=not ns.no_project, swap_all=ns.swap_all)
  if ns.format == 'json':
    sys.stdout.write(json.dumps(result.to_json(), indent=1) + '\n')
  else:
    sys.stdout.write(render_text(result, ns.diff))
    for e in result.errors:
      print(e.text(), file=sys.stderr)
  return result.exit_code


if __name__ == '__main__':
  sys.exit(main())
