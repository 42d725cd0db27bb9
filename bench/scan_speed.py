"""The speed goals of issue 18, measured: before and after, in one run.

`python bench/scan_speed.py [--code NAME=DIR ...] [--trials 5] [--jobs 2]
[--files 1000] [--maxtext DIR] [--mirror /work/.mirror]`

Goals: MaxText (692 files at the corpus commit) scanned in at most 2 s wall on
one core; `--to-v1 --diff` of 1,000 files in at most 5 s with parallel jobs.

Each `--code NAME=DIR` is a scanner checkout (DIR is put first on PYTHONPATH;
default: this checkout as `here`). For each trial, the versions run one after
the other (so that the load of a shared machine falls on all alike):

- `maxtext`: `taskset -c 0 python -m orbax_compat scan . --format json` in
  MaxText exported at the corpus commit (bench/scan_corpus/maxtext.json,
  from the bare mirror, as bench/scan_recall.py does; or `--maxtext DIR`);
- `to-v1`: `python -m orbax_compat scan TREE --to-v1 --diff --jobs N --format
  json` over bench/scan.py's *mixed* tree of `--files` generated modules (one
  in ten uses v0).

Wall time (start-up included) and CPU time (user + system of the process and
its workers) per run; the table gives the minimum and median wall, the minimum
CPU, and whether each version's output is byte-identical to the first's.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import pathlib
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

if __package__ in (None, ''):  # `python bench/scan_speed.py`: import as the package.
  sys.path[0] = str(pathlib.Path(__file__).resolve().parent.parent)

from bench import scan as scan_bench  # noqa: E402
from bench import scan_recall  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
GOALS = {'maxtext': 2.0, 'to-v1': 5.0}  # Wall seconds (issue 18).


def _children_cpu() -> float:
  usage = resource.getrusage(resource.RUSAGE_CHILDREN)
  return usage.ru_utime + usage.ru_stime


def timed(cmd: list[str], cwd: str, code: str) -> tuple[float, float, str]:
  """(wall s, CPU s, sha256 of stdout) of one run of `cmd` with `code` first on PYTHONPATH."""
  env = dict(os.environ, PYTHONPATH=code + os.pathsep + os.environ.get('PYTHONPATH', ''))
  cpu = _children_cpu()
  start = time.perf_counter()
  proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, check=False)
  wall = time.perf_counter() - start
  if proc.returncode not in (0, 1):
    sys.exit(f'{cmd} failed ({proc.returncode}):\n{proc.stderr.decode()[-2000:]}')
  return wall, _children_cpu() - cpu, hashlib.sha256(proc.stdout).hexdigest()


def export_maxtext(dest: pathlib.Path, mirror: pathlib.Path) -> None:
  entry = next(e for e in scan_recall.load_corpus() if e['name'] == 'maxtext')
  gdir = scan_recall.git_dir(entry, mirror)
  if not gdir.is_dir():
    sys.exit(f'no mirror of MaxText at {gdir} (see bench/scan_recall.py; or --maxtext DIR)')
  scan_recall.export(entry, gdir, dest)


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--code', action='append', default=[], metavar='NAME=DIR',
                      help='a scanner checkout to time (repeat; default: this one)')
  parser.add_argument('--trials', type=int, default=5)
  parser.add_argument('--jobs', type=int, default=os.cpu_count() or 1)
  parser.add_argument('--files', type=int, default=1000)
  parser.add_argument('--maxtext', type=pathlib.Path, help='MaxText already exported here')
  parser.add_argument('--mirror', type=pathlib.Path, default=scan_recall.DEFAULT_MIRROR)
  args = parser.parse_args(argv)
  versions = [tuple(c.split('=', 1)) for c in args.code] or [('here', str(HERE.parent))]
  pin = ['taskset', '-c', '0'] if shutil.which('taskset') else []
  python = sys.executable
  tmp = pathlib.Path(tempfile.mkdtemp(prefix='orbax_compat_scan_speed_'))
  try:
    maxtext = args.maxtext
    if maxtext is None:
      maxtext = tmp / 'maxtext'
      export_maxtext(maxtext, args.mirror)
    tree = tmp / 'mixed'
    scan_bench.generate(str(tree), args.files, 10)
    runs = {
        'maxtext': ([*pin, python, '-m', 'orbax_compat', 'scan', '.', '--format', 'json'],
                    str(maxtext)),
        'to-v1': ([python, '-m', 'orbax_compat', 'scan', str(tree), '--to-v1', '--diff',
                   '--jobs', str(args.jobs), '--format', 'json'], str(tmp)),
    }
    results: dict[tuple[str, str], list[tuple[float, float, str]]] = {}
    for trial in range(args.trials):
      for name, (cmd, cwd) in runs.items():
        for version, code in versions:
          results.setdefault((name, version), []).append(timed(cmd, cwd, code))
      print(f'trial {trial + 1}/{args.trials} done', file=sys.stderr)
  finally:
    shutil.rmtree(tmp, ignore_errors=True)
  print(f'{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end; '
        f'{args.trials} trials; to-v1 with {args.jobs} jobs over {args.files} files\n')
  print('| run | version | wall s, min | wall s, median | CPU s, min | goal | same output |')
  print('|---|---|---|---|---|---|---|')
  for name in runs:
    first = results[(name, versions[0][0])][0][2]
    for version, _ in versions:
      r = results[(name, version)]
      walls, cpus = [w for w, _, _ in r], [c for _, c, _ in r]
      same = all(h == first for _, _, h in r)
      print(f'| {name} | {version} | {min(walls):.2f} | {statistics.median(walls):.2f} | '
            f'{min(cpus):.2f} | {GOALS[name]:g} s | {"yes" if same else "NO"} |')
  return 0


if __name__ == '__main__':
  sys.exit(main())
