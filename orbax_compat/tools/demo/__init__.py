"""`python -m orbax_compat demo`: one training run taken through a migration.

Five stages on one checkpoint directory, each a script beside this file run
in its own process, each resuming from the steps the stage before wrote:

1. `stage1_v0.py`: legacy v0 code, unchanged but for `import orbax_compat as
   ocp`; each v0 call site logs a notice with its v1 code.
2. The report of stage 1 (`ORBAX_COMPAT_REPORT`): each v0 member used, where,
   and the v1 code that replaces it.
3. `stage3_mixed.py`: calls moved to `mngr.v1_checkpointer`, beside v0 ones.
4. `stage4_v1.py`: v1 only, with the constructor `orbax_compat.v1_source`
   generated for stage 1's options.
5. The same script with orbax_compat made unimportable: v1 alone reads every
   step the earlier stages wrote.
6. Or the scanner does stages 3-5: `scan --to-v1` on a copy of stage 1's
   script finishes its manager (the v1 Checkpointer `v1_source` writes, plain
   v1 calls, no orbax_compat import), and the finished script runs with
   orbax_compat unimportable, resuming from the same directory.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
# Stage 5: run a script where `import orbax_compat` fails.
_WITHOUT_ORBAX_COMPAT = (
    'import runpy, sys; sys.modules["orbax_compat"] = None; '
    'sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name="__main__")'
)


def _notices(stderr: str) -> list[str]:
  """The orbax_compat notices in a stage's stderr (each with its code lines)."""
  out, keep = [], False
  for line in stderr.splitlines():
    if 'orbax_compat' in line and ('is Orbax v0 API' in line or 'ORBAX_COMPAT' in line):
      keep = True
      out.append(line.split('orbax_compat:', 1)[-1] if line.startswith('WARNING:') else line)
    elif keep and line.startswith('    '):
      out.append(line)
    else:
      keep = False
  return out


def _stage(title: str, command: list[str], env: dict[str, str],
           cwd: pathlib.Path = HERE) -> None:
  print(f'\n== {title}')
  proc = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
  if proc.returncode:
    sys.stderr.write(proc.stderr)
    raise SystemExit(f'stage failed: {" ".join(command)}')
  for line in _notices(proc.stderr):
    print(f'  notice: {line}' if not line.startswith('    ') else f'  {line}')
  for line in proc.stdout.splitlines():
    print(f'  {line}')


def _print_report(path: pathlib.Path) -> None:
  print('\n== stage 2: what stage 1 still uses of v0 (ORBAX_COMPAT_REPORT)')
  for member in json.loads(path.read_text())['members']:
    site = member['sites'][0]
    print(f'  {member["member"]:<20} x{member["calls"]:<3} '
          f'{pathlib.Path(site["file"]).name}:{site["line"]}  ->  {site["v1"].splitlines()[0]}')


def _finish_stage1(project: pathlib.Path, root: str, env: dict[str, str]) -> None:
  """Stage 6: `scan --to-v1` finishes a copy of stage 1; it runs on v1 alone."""
  project.mkdir()
  (project / 'pyproject.toml').write_text('')  # The scan's project root.
  for name in ('stage1_v0.py', 'model.py'):
    shutil.copy(HERE / name, project / name)
  proc = subprocess.run([sys.executable, '-m', 'orbax_compat', 'scan', '--to-v1',
                         'stage1_v0.py'], cwd=project, env=env, capture_output=True, text=True)
  print('\n== stage 6: or the scanner does stages 3-5: scan --to-v1 stage1_v0.py (a copy)')
  for line in proc.stdout.splitlines():
    if line.startswith(('finished ', 'not finished ', 'fixed ')):
      print(f'  {line}')
  if proc.returncode:  # Something was left: the finished script would not run on v1 alone.
    sys.stderr.write(proc.stdout + proc.stderr)
    raise SystemExit('stage failed: scan --to-v1 left v0 uses in stage1_v0.py')
  _stage('stage 6, run: the finished script, orbax_compat unimportable (steps 18-21)',
         [sys.executable, '-c', _WITHOUT_ORBAX_COMPAT, 'stage1_v0.py', root, '21'], env,
         cwd=project)


def main(argv: list[str] | None = None, prog: str = 'python -m orbax_compat demo') -> int:
  argparse.ArgumentParser(prog=prog, description=__doc__).parse_args(argv)
  python = sys.executable
  with tempfile.TemporaryDirectory(prefix='orbax_compat_demo_') as tmp:
    root = os.path.join(tmp, 'ckpt')
    report = pathlib.Path(tmp) / 'report.json'
    env = {**os.environ, 'ORBAX_COMPAT_REPORT': str(report)}
    env.pop('ORBAX_COMPAT_WARNINGS', None)
    print(f'One training run, migrated from Orbax v0 to v1 in six stages, in {root}')
    _stage('stage 1: legacy v0 code, import swapped to orbax_compat (steps 0-5)',
           [python, 'stage1_v0.py', root, '5'], env)
    _print_report(report)
    _stage('stage 3: calls moved to mngr.v1_checkpointer one by one (steps 6-9)',
           [python, 'stage3_mixed.py', root, '9'], env)
    _stage('stage 4: v1 only, with the generated v1 constructor (steps 10-13)',
           [python, 'stage4_v1.py', root, '13'], env)
    _stage('stage 5: orbax_compat dropped (unimportable); v1 reads every old step (14-17)',
           [python, '-c', _WITHOUT_ORBAX_COMPAT, 'stage4_v1.py', root, '17'], env)
    _finish_stage1(pathlib.Path(tmp) / 'finished', root, env)
  print('\nSee README.md, "Migrating", and MIGRATION_TABLE.md.')
  return 0


if __name__ == '__main__':
  sys.exit(main())
