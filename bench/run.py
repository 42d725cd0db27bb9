"""The benchmark suite: `python -m bench [--smoke] [--dir DIR]`.

Sections: `save` (save+restore shim / native v0 / v1 / raw numpy), `queries`
(per-call cost vs number of steps), `overhead` (the shim's own cost per call),
`import` (fresh-interpreter import time), `settings` (v1 Context settings the
profile points at), `profile` (pyinstrument of native v0 save and restore) and
`scan` (`orbax-compat scan` over generated files).
Prints tables, writes JSON to bench/results/, and in full mode BENCHMARKS.md and
bench/query_cost.png. --smoke runs tiny sizes once (CI-safe: no timing asserts).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import shutil
import sys
import tempfile
import time

if __package__ in (None, ''):  # `python bench/run.py`: import as the package.
  sys.path[0] = str(pathlib.Path(__file__).resolve().parent.parent)

from absl import logging as absl_logging  # noqa: E402

from bench import import_time  # noqa: E402
from bench import queries  # noqa: E402
from bench import report  # noqa: E402
from bench import saverestore  # noqa: E402
from bench import scan as scan_bench  # noqa: E402
import orbax_compat  # noqa: E402

BENCH = pathlib.Path(__file__).resolve().parent
SECTIONS = ('save', 'queries', 'overhead', 'import', 'settings', 'profile', 'scan')


@dataclasses.dataclass(frozen=True)
class Config:
  sizes_mib: tuple[int, ...]
  trials: int
  steps: tuple[int, ...]
  repeats: int  # Timed loops per query and contender.
  open_trials: int  # Opens of each manager per step count.
  budget_s: float  # Wall time of one timed loop.
  overhead_repeats: int
  overhead_budget_s: float
  import_trials: int
  settings_mib: int
  settings_trials: int
  profile_mib: int
  scan_files: int
  scan_trials: int


FULL = Config(
    sizes_mib=(1, 64, 256), trials=15, steps=(10, 1000, 5000), repeats=9, open_trials=3,
    budget_s=0.05, overhead_repeats=9, overhead_budget_s=0.1, import_trials=7,
    settings_mib=256, settings_trials=7, profile_mib=256, scan_files=1000, scan_trials=3,
)
SMOKE = Config(
    sizes_mib=(1,), trials=1, steps=(10, 30), repeats=2, open_trials=1, budget_s=0.002,
    overhead_repeats=2, overhead_budget_s=0.005, import_trials=1,
    settings_mib=1, settings_trials=1, profile_mib=1, scan_files=20, scan_trials=1,
)


def main(argv: list[str] | None = None, prog: str = 'python -m bench') -> int:
  parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
  parser.add_argument('--smoke', action='store_true', help='tiny sizes, 1 trial')
  parser.add_argument('--dir', help='parent of the temporary directory (default: $TMPDIR or /tmp)')
  parser.add_argument('--trials', type=int, help='override save+restore trials')
  parser.add_argument('--only', help=f'comma-separated subset of {",".join(SECTIONS)}')
  parser.add_argument('--json', type=pathlib.Path, help='results file (default bench/results/<mode>.json)')
  parser.add_argument('--no-markdown', action='store_true', help='full mode: do not write BENCHMARKS.md')
  parser.add_argument('--render', type=pathlib.Path, help='only re-render tables (and, if full, BENCHMARKS.md) from a results JSON')
  ns = parser.parse_args(argv)
  if ns.render:
    results = json.loads(ns.render.read_text())
    print(report.text(results))
    if results['mode'] == 'full' and not ns.no_markdown:
      report.write_markdown(results, BENCH.parent / 'BENCHMARKS.md', BENCH / 'query_cost.png')
    return 0
  config = SMOKE if ns.smoke else FULL
  if ns.trials:
    config = dataclasses.replace(config, trials=ns.trials)
  sections = ns.only.split(',') if ns.only else list(SECTIONS)
  unknown = set(sections) - set(SECTIONS)
  if unknown:
    parser.error(f'unknown sections: {", ".join(sorted(unknown))}')
  mode = 'smoke' if ns.smoke else 'full'
  absl_logging.set_verbosity(absl_logging.ERROR)
  orbax_compat.set_warning_policy('off')  # `overhead` sets its own.

  started = time.perf_counter()

  def log(message: str) -> None:
    print(f'[{time.perf_counter() - started:6.1f}s] {message}', file=sys.stderr, flush=True)

  base = tempfile.mkdtemp(prefix='orbax_compat_bench_', dir=ns.dir)
  results = {
      'mode': mode,
      'command': ' '.join([prog, *(sys.argv[1:] if argv is None else argv)]),
      'config': dataclasses.asdict(config),
      'machine': report.machine(base),
      'started': time.strftime('%Y-%m-%d %H:%M:%S %Z'),
  }
  profiles = BENCH / 'profiles' if mode == 'full' else BENCH / 'results' / 'profiles'
  try:
    if 'save' in sections:
      log('save+restore: shim / native v0 / v1 / raw numpy')
      results['save'] = saverestore.measure(
          saverestore.CONTENDERS, list(config.sizes_mib), config.trials, _fresh(base, 'save'), log=log
      )
    if 'queries' in sections or 'overhead' in sections:
      log(f'building roots with {", ".join(map(str, config.steps))} steps')
      roots = queries.build_roots(_fresh(base, 'roots'), list(config.steps))
      os.sync()  # Flush the copies now, not during the timed calls.
    if 'queries' in sections:
      log('queries: shim vs native')
      results['queries'], results['open'] = queries.measure(
          roots, config.repeats, config.budget_s, config.open_trials, log=log
      )
    if 'overhead' in sections:
      log('shim overhead per call')
      results['overhead'] = queries.overhead(
          roots[min(roots)], config.overhead_repeats, config.overhead_budget_s
      )
    if 'import' in sections:
      log('import time')
      results['import'] = import_time.measure(config.import_trials, warmup=not ns.smoke)
    if 'settings' in sections:
      log(f'v1 Context settings at {config.settings_mib} MiB')
      results['settings'] = saverestore.measure(
          saverestore.SETTINGS, [config.settings_mib], config.settings_trials,
          _fresh(base, 'settings'), warmup=False, log=log,
      )[str(config.settings_mib)]
    if 'profile' in sections:
      log(f'profiling native v0 at {config.profile_mib} MiB')
      results['profile'] = saverestore.profile(_fresh(base, 'profile'), config.profile_mib, str(profiles))
      results['profile_dir'] = os.path.relpath(profiles, BENCH.parent)
      results['codecs'] = saverestore.codecs(
          config.profile_mib * saverestore.MiB // saverestore.LEAVES, config.settings_trials
      )
    if 'scan' in sections:
      log(f'scan: {config.scan_files} generated files')
      results['scan'] = scan_bench.measure(
          config.scan_files, config.scan_trials, _fresh(base, 'scan'), log=log)
  finally:
    shutil.rmtree(base, ignore_errors=True)
  results['elapsed_s'] = time.perf_counter() - started
  sources = report.sources()
  if not results['machine']['orbax_compat'].startswith(sources):
    # Sections in this process keep the code imported at start; only the
    # import section's fresh interpreters can have seen the newer files.
    results['machine']['orbax_compat'] += f'; files changed during the run, now {sources}'
    log('warning: orbax_compat changed on disk during the run (the import section may have seen it)')

  print(report.text(results))
  out = ns.json or BENCH / 'results' / f'{mode}.json'
  out.parent.mkdir(parents=True, exist_ok=True)
  out.write_text(json.dumps(results, indent=1))
  log(f'wrote {out}')
  if mode == 'full' and not ns.no_markdown and set(sections) == set(SECTIONS):
    for path in report.write_markdown(results, BENCH.parent / 'BENCHMARKS.md', BENCH / 'query_cost.png'):
      log(f'wrote {path}')
  return 0


def _fresh(base: str, name: str) -> str:
  path = os.path.join(base, name)
  os.makedirs(path)
  return path


if __name__ == '__main__':
  sys.exit(main(prog='python bench/run.py'))
