"""Results -> text tables, BENCHMARKS.md and the query-cost plot."""

from __future__ import annotations

import hashlib
import math
import os
import pathlib
import platform
import re
import time
from typing import Any

Table = tuple[str, list[str], list[list[str]]]  # (title, headers, rows)
TARGETS = {
    'save': 1.03,  # shim/native save+restore time at 64 and 256 MiB.
    'query': 1.2,  # shim/native per call at 1,000 and 5,000 steps.
    'overhead_us': 2.0,  # shim minus implementation, warnings 'once', after the first.
    'import': 1.1,  # import orbax_compat / import orbax.checkpoint.
}
NOTES_BEGIN, NOTES_END = '<!-- notes: kept across runs -->', '<!-- /notes -->'
# Section 7, written by `python bench/scan_recall.py --write` and kept by `python -m bench`.
RECALL_BEGIN = '<!-- scan-recall: written by bench/scan_recall.py --write, kept across runs -->'
RECALL_END = '<!-- /scan-recall -->'


# --- Machine -----------------------------------------------------------------


def _cpu_model() -> str:
  try:
    text = pathlib.Path('/proc/cpuinfo').read_text()
  except OSError:
    return platform.processor() or 'unknown'
  found = re.search(r'^model name\s*:\s*(.+)$', text, re.M)
  return found.group(1).strip() if found else 'unknown'


def _ram_gib() -> float:
  try:
    text = pathlib.Path('/proc/meminfo').read_text()
    return int(re.search(r'^MemTotal:\s+(\d+) kB', text, re.M).group(1)) / 2**20
  except (OSError, AttributeError):
    return float('nan')


def _filesystem(path: str) -> str:
  """'fstype (device on mountpoint)' of the mount holding `path`."""
  path, best = os.path.realpath(path), ('', 'unknown', '')
  try:
    mounts = pathlib.Path('/proc/mounts').read_text().splitlines()
  except OSError:
    return 'unknown'
  for line in mounts:
    device, mount, fstype = line.split()[:3]
    inside = path == mount or path.startswith(mount.rstrip('/') + '/')
    if inside and len(mount) >= len(best[0]):
      best = (mount, fstype, device)
  return f'{best[1]} ({best[2]} on {best[0]})'


def sources() -> str:
  """sha256 (12 hex) of orbax_compat's *.py and the newest file's mtime: the code measured."""
  import orbax_compat

  files = sorted(pathlib.Path(orbax_compat.__file__).parent.glob('*.py'))
  digest = hashlib.sha256()
  for path in files:
    digest.update(path.name.encode() + b'\0' + path.read_bytes())
  newest = max(p.stat().st_mtime for p in files)
  return f'sha256 {digest.hexdigest()[:12]}, newest file {time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(newest))}'


def machine(tmp_dir: str) -> dict[str, Any]:
  import jax
  import numpy
  from orbax.checkpoint import version

  return {
      'nproc': len(os.sched_getaffinity(0)),
      'cpu': _cpu_model(),
      'ram_gib': round(_ram_gib(), 1),
      'python': platform.python_version(),
      'orbax_checkpoint': version.__version__,
      'jax': jax.__version__,
      'numpy': numpy.__version__,
      'orbax_compat': sources(),
      'kernel': platform.release(),
      'tmp_dir': os.path.dirname(tmp_dir),
      'filesystem': _filesystem(tmp_dir),
  }


# --- Formatting --------------------------------------------------------------


def _n(x: float) -> str:
  """3 significant digits, no exponent for ordinary magnitudes."""
  if x == 0 or not math.isfinite(x):
    return str(x)
  digits = max(0, 2 - math.floor(math.log10(abs(x))))
  return f'{x:.{digits}f}'


def _range(s: dict[str, float], scale: float = 1.0) -> str:
  return f'{_n(s["median"] * scale)} [{_n(s["min"] * scale)}–{_n(s["max"] * scale)}]'


def _met(ok: bool) -> str:
  return 'met' if ok else '**missed**'


# --- Tables ------------------------------------------------------------------


def save_tables(results: dict) -> list[Table]:
  headers = [
      'MiB', 'contender', 'save s', 'save CPU s', 'restore s', 'save MiB/s', 'save / raw write',
      'restore MiB/s', 'restore / raw read', 'save+restore / native',
  ]
  rows = []
  for size, by_name in results['save'].items():
    for name, row in by_name.items():
      vs = row.get('vs_native', {}).get('total')
      rows.append([
          size, name, _range(row['save']), _range(row['save_cpu']), _range(row['restore']),
          _n(row['save_mib_s']), _n(row.get('save_vs_raw', math.nan)),
          _n(row['restore_mib_s']), _n(row.get('restore_vs_raw', math.nan)),
          _range(vs) if vs else '',
      ])
  ratio_rows = []
  for size, by_name in results['save'].items():
    for name in ('shim', 'shim fast', 'v1'):
      vs = by_name.get(name, {}).get('vs_native')
      if vs:
        ratio_rows.append([size, name, _range(vs['save']), _range(vs['restore']), _range(vs['total']),
                           _n(vs['total_best'])])
  return [
      ('Save + restore (median [min–max] over trials)', headers, rows),
      ('Ratio to native v0, per trial (median [min–max])',
       ['MiB', 'contender', 'save', 'restore', 'save+restore', 'save+restore, best of each'],
       ratio_rows),
  ]


def _growth(cost: dict[str, dict], who: str) -> float:
  """Exponent k of cost ~ steps^k between the two largest step counts."""
  (n1, a), (n2, b) = sorted(((int(n), c[who]['median']) for n, c in cost.items()))[-2:]
  return math.log(b / a) / math.log(n2 / n1)


def query_tables(results: dict) -> list[Table]:
  rows, growth = [], []
  for query, by_n in results['queries'].items():
    for n, c in by_n.items():
      rows.append([query, n, _range(c['shim_us']), _range(c['native_us']), _range(c['ratio'])])
    if len(by_n) > 1:
      small, large = min(by_n, key=int), max(by_n, key=int)
      growth.append([
          query,
          *(f'{_n(by_n[large][w]["median"] / by_n[small][w]["median"])}×, '
            f'k={_growth(by_n, w):.2f}' for w in ('shim_us', 'native_us')),
      ])
  steps = sorted({int(n) for by_n in results['queries'].values() for n in by_n})
  return [
      ('Per-call query cost, µs (median [min–max] over timed loops)',
       ['query', 'steps', 'shim µs', 'native µs', 'shim / native'], rows),
      (f'Growth from {steps[0]} to {steps[-1]} steps (cost ∝ steps^k, k from the two largest)',
       ['query', 'shim', 'native'], growth),
  ]


def open_table(results: dict) -> Table:
  rows = [[n, _range(o['shim_s']), _range(o['native_s']), _range(o['ratio'])]
          for n, o in results['open'].items()]
  return ('Opening a manager (constructor) on N steps, s',
          ['steps', 'shim s', 'native s', 'shim / native (paired)'], rows)


def overhead_table(results: dict) -> Table:
  rows = []
  for name, row in results['overhead'].items():
    extra = row.get('overhead_us')
    rows.append([name, _range(row['us']), _range(extra) if extra else ''])
  return ('Shim overhead: latest_step() per call, µs', ['path', 'µs per call', 'minus implementation, µs'], rows)


def import_table(results: dict) -> Table:
  imp = results['import']
  rows = [[f'import {m}', _range(imp[m]['import_s']), _range(imp[m]['process_s'])]
          for m in ('orbax_compat', 'orbax.checkpoint')]
  rows.append(['ratio', f'{imp["ratio"]:.3f} (paired: {_range(imp["paired_ratio"])})', ''])
  return ('Import in a fresh interpreter, s', ['', 'import', 'whole process'], rows)


def scan_table(results: dict) -> Table:
  rows = []
  for name, r in results['scan'].items():
    rows.append([name, str(r['files']), str(r['v0_files']), str(r['lines']), str(r['findings']),
                 str(r['jobs']), _range(r['seconds']), _n(r['files_per_s']), _n(r['cli_s']),
                 _n(r['to_v1_s']) if 'to_v1_s' in r else ''])
  return ('Scan: `orbax-compat scan` over generated files, s',
          ['tree', 'files', 'using v0', 'lines', 'findings', 'jobs', 'in process s', 'files/s',
           'fresh process s', '--to-v1 --diff s'], rows)


def settings_table(results: dict) -> Table:
  by_name = results['settings']
  base = by_name.get('v1 default (zarr3, zstd-3, OCDBT)')
  rows = []
  for name, row in by_name.items():
    speed = ['', '']
    if base and name != 'raw':
      speed = [_n(base[p]['median'] / row[p]['median']) for p in ('save', 'restore')]
    rows.append([name, _range(row['save']), _range(row['restore']), _n(row['save_cpu']['median']),
                 _n(row['restore_cpu']['median']), _n(row['disk_mib']), *speed])
  size = results['config']['settings_mib']
  return (f'v1 Context settings, {size} MiB (median [min–max])',
          ['setting', 'save s', 'restore s', 'save CPU s', 'restore CPU s', 'on disk MiB',
           'save speed-up vs v1 default', 'restore speed-up'], rows)


def codec_table(results: dict) -> Table:
  rows = []
  for name, c in results['codecs'].items():
    rows.append([name, _range(c['write'], 1e3), _n(c['write_cpu']['median'] * 1e3),
                 _range(c['read'], 1e3), _n(c['stored_mib'])])
  size = _n(results['config']['profile_mib'] / 4)
  return (f'Array format cost of one {size} MiB float32 leaf, in memory (tensorstore, no disk)',
          ['format', 'encode ms', 'encode CPU ms', 'decode ms', 'stored MiB'], rows)


def profile_table(results: dict) -> Table:
  nproc = results['machine']['nproc']
  rows = []
  for phase, p in results['profile'].items():
    buckets = ', '.join(f'{k}: {_n(v)} s' for k, v in sorted(p['buckets_s'].items(), key=lambda kv: -kv[1]))
    rows.append([phase, _n(p['wall_s']), _n(p['cpu_s']),
                 f'{100 * p["cpu_s"] / p["wall_s"] / nproc:.0f}%', buckets, p['file']])
  return (f'Native v0 profile, {results["config"]["profile_mib"]} MiB (pyinstrument, calling thread)',
          ['phase', 'wall s', 'CPU s (all threads)', f'CPU use of {nproc} cores',
           'calling thread', 'profile'], rows)


def targets(results: dict) -> list[list[str]]:
  rows = []
  if 'save' in results:
    sizes = [s for s in ('64', '256') if s in results['save']]
    got = {s: results['save'][s]['shim']['vs_native']['total'] for s in sizes}
    if got:
      ok = all(g['median'] <= TARGETS['save'] for g in got.values())
      best = {s: results['save'][s]['shim']['vs_native']['total_best'] for s in sizes}
      rows.append([f'save+restore shim/native ≤ {TARGETS["save"]} at 64 and 256 MiB',
                   '; '.join(f'{s} MiB: {_range(g)} (best of each: {_n(best[s])})'
                             for s, g in got.items()), _met(ok)])
  if 'queries' in results:
    worst = {q: max((c['ratio']['median'], n) for n, c in by_n.items() if int(n) >= 1000)
             for q, by_n in results['queries'].items() if any(int(n) >= 1000 for n in by_n)}
    if worst:
      rows.append([f'every query ≤ {TARGETS["query"]}× native at 1,000 and 5,000 steps',
                   '; '.join(f'{q} {r:.2f}× (at {n})' for q, (r, n) in worst.items()),
                   _met(all(r <= TARGETS['query'] for r, _ in worst.values()))
                   + ''.join(f' ({q})' for q, (r, _) in worst.items() if r > TARGETS['query'])])
  if 'overhead' in results:
    limit = TARGETS['overhead_us']
    got = {k: v['overhead_us'] for k, v in results['overhead'].items() if k.startswith("shim 'once'")}
    where = {k: 'a short loop' if k == "shim 'once'" else 'a ' + k.split('[')[1].rstrip(']')
             for k in got}
    ok = {k: g['median'] <= limit for k, g in got.items()}
    verdict = _met(all(ok.values())) if len(set(ok.values())) == 1 else '; '.join(
        f'{_met(ok[k])} from {where[k]}' for k in got)
    rows.append([f'shim overhead ≤ {limit:g} µs per call after the first warning',
                 '; '.join(f'{_range(g)} µs from {where[k]}' for k, g in got.items()), verdict])
  if 'import' in results:
    ratio = results['import']['ratio']
    rows.append([f'import ≤ {TARGETS["import"]}× native', f'{ratio:.3f}×', _met(ratio <= TARGETS['import'])])
  return rows


def tables(results: dict) -> list[Table]:
  out: list[Table] = []
  if 'save' in results:
    out += save_tables(results)
  if 'queries' in results:
    out += query_tables(results)
  if 'open' in results:
    out.append(open_table(results))
  if 'overhead' in results:
    out.append(overhead_table(results))
  if 'import' in results:
    out.append(import_table(results))
  if 'settings' in results:
    out.append(settings_table(results))
  if 'profile' in results:
    out.append(profile_table(results))
  if 'codecs' in results:
    out.append(codec_table(results))
  if 'scan' in results:
    out.append(scan_table(results))
  out.append(('Targets', ['target', 'measured', ''], targets(results)))
  return out


# --- Renderers ---------------------------------------------------------------


def _text_table(title: str, headers: list[str], rows: list[list[str]]) -> str:
  cells = [headers, *rows]
  widths = [max(len(str(r[i])) for r in cells) for i in range(len(headers))]
  line = lambda r: '  '.join(str(c).ljust(w) for c, w in zip(r, widths, strict=False)).rstrip()  # noqa: E731
  return '\n'.join([f'== {title}', line(headers), line(['-' * w for w in widths]),
                    *map(line, rows)])


def _md_table(title: str, headers: list[str], rows: list[list[str]]) -> str:
  esc = lambda c: str(c).replace('|', '\\|')  # noqa: E731
  head = [] if title == 'Targets' else [f'**{title}**', '']
  return '\n'.join([*head, '| ' + ' | '.join(headers) + ' |', '|' + '---|' * len(headers),
                    *('| ' + ' | '.join(map(esc, r)) + ' |' for r in rows)])


def text(results: dict) -> str:
  m = results['machine']
  head = (f'orbax_compat benchmarks ({results["mode"]}): {m["nproc"]} CPUs, {m["cpu"]}, '
          f'{m["ram_gib"]} GiB, {m["filesystem"]}; {results["elapsed_s"]:.0f} s')
  return '\n\n'.join([head, *(_text_table(*t) for t in tables(results))]) + '\n'


def plot(results: dict, path: pathlib.Path) -> None:
  import matplotlib

  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  from matplotlib.ticker import FuncFormatter

  by_query = results['queries']
  fig, axes = plt.subplots(1, len(by_query), figsize=(3 * len(by_query), 3.4), sharey=True)
  for ax, (query, by_n) in zip(axes, by_query.items(), strict=False):
    steps = sorted(by_n, key=int)
    for who, style in (('shim_us', 'o-'), ('native_us', 's--')):
      med = [by_n[n][who]['median'] for n in steps]
      err = [[m - by_n[n][who]['min'] for n, m in zip(steps, med, strict=False)],
             [by_n[n][who]['max'] - m for n, m in zip(steps, med, strict=False)]]
      ax.errorbar([int(n) for n in steps], med, yerr=err, fmt=style, capsize=3,
                  label=who.split('_')[0])
    ax.set(xscale='log', yscale='log', title=f'{query}()', xlabel='existing steps')
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f'{v:g}'))
    ax.grid(True, which='both', alpha=0.3)
  axes[0].set_ylabel('µs per call (median, min–max)')
  axes[0].legend()
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def _kept_notes(md_path: pathlib.Path, begin: str = NOTES_BEGIN, end: str = NOTES_END) -> str:
  if md_path.exists():
    found = re.search(re.escape(begin) + r'\n(.*?)' + re.escape(end), md_path.read_text(), re.S)
    if found:
      return found.group(1)
  return '(none yet)\n'


def markdown(results: dict, png_name: str, notes: str, recall: str = '(none yet)\n') -> str:
  m, c = results['machine'], results['config']
  sections = {title: _md_table(title, h, r) for title, h, r in tables(results)}
  pick = lambda prefix: '\n\n'.join(v for k, v in sections.items() if k.startswith(prefix))  # noqa: E731
  return f"""# orbax_compat benchmarks

<!-- Generated by `{results['command']}` (bench/report.py) except the notes block. -->

Measured {results['started']} in {results['elapsed_s'] / 60:.1f} min with

```bash
{results['command']}    # --smoke: tiny sizes, 1 trial (CI); results also in bench/results/{results['mode']}.json
```


| machine | |
|---|---|
| CPUs (nproc) | {m['nproc']} × {m['cpu']} |
| RAM | {m['ram_gib']} GiB |
| Python / orbax-checkpoint / jax / numpy | {m['python']} / {m['orbax_checkpoint']} / {m['jax']} / {m['numpy']} |
| kernel | {m['kernel']} |
| orbax_compat measured (imported at start) | {m.get('orbax_compat', '?')} |
| temp dir | `{m['tmp_dir']}`: {m['filesystem']} |

## Targets

{pick('Targets')}

## 1. Save + restore

A pytree of {4} float32 arrays (standard-normal values) of {', '.join(map(str, c['sizes_mib']))} MiB in
total; {c['trials']} trials after a discarded warm-up, contenders in rotating order within each trial,
a fresh directory per run. *shim* = `orbax_compat.CheckpointManager`, *native* =
`orbax.checkpoint.CheckpointManager` (both `save(0, args=StandardSave(tree))` +
`wait_until_finished()`, then `restore(0, args=StandardRestore(tree))`), *v1* =
`training.Checkpointer` (`save_checkpointables` / `load_checkpointables`), *raw* = `np.save` +
`flush` + `os.fsync` per array, then `np.load`. Untimed before each phase: `os.sync()`; before each
restore the step's files are dropped from the page cache (`posix_fadvise(DONTNEED)`), so restores read
the device. Save time includes `wait_until_finished()`; constructing and closing managers is untimed.
Ratios to native are paired per trial (adjacent runs); "best of each" is the ratio of the
minima over trials, an estimate of the cost without the stalls described in the notes.

{pick('Save + restore')}

{pick('Ratio to native')}

## 2. Query cost vs number of steps

Roots with {', '.join(map(str, c['steps']))} steps: native v0 saved 10 tiny steps with metrics
(`best_fn=lambda m: m['loss']`, `best_mode='min'`); larger roots are `shutil.copytree` copies of its
step 0, each with its own loss. Shim and native open the same root with those options; warnings
'off'. Each figure: {c['repeats']} timed loops of ~{c['budget_s'] * 1e3:.0f} ms per contender, alternating
(`time.perf_counter_ns`). `should_save(N)` asks about the next step; `metrics(N // 2)` reads one
step's metrics file.

{pick('Per-call query cost')}

{pick('Growth from')}

![per-call query cost vs steps, log-log]({png_name})

## 3. Shim overhead per call

`latest_step()` on the 10-step root: through the shim (the notice + the implementation) vs the implementation
`orbax_compat.runtime.steps.latest_step(mngr)` called directly; {c['overhead_repeats']} loops of
~{c['overhead_budget_s'] * 1e3:.0f} ms each. With 'once', the call site has already reported.

{pick('Shim overhead')}

## 4. Import time

`python -c "import time; t = time.perf_counter(); import X; print(...)"`, {c['import_trials']} trials
after a warm-up, alternating; "whole process" includes interpreter start-up.

{pick('Import')}

## 5. Where native v0's save and restore time goes

Text profiles: `{results.get('profile_dir', 'bench/profiles')}/`. pyinstrument samples only the calling
thread; CPU seconds are the whole process (all threads), so CPU use near 100% of
{m['nproc']} cores means the phase is CPU-bound.

{pick('Native v0 profile')}

{pick('Array format cost')}

Settings the profile points at, measured through v1's `Context` (`training.Checkpointer(dir,
context=ctx)`), {c['settings_trials']} trials, same method as section 1:

{pick('v1 Context settings')}

## 6. Scanning a codebase

`orbax_compat.tools.scan.run(tree, jobs=nproc)` over {c.get('scan_files', '?')} generated modules of ~110
lines ({c.get('scan_trials', '?')} trials after a warm-up; bench/scan.py). *mixed*: one module in ten
uses v0 (a train loop, a trainer class holding a manager, options); *all v0*: every module does, the
worst case, since each is analysed in full (Python's own parser and the scanner's name resolution),
while a module that imports neither `orbax.checkpoint` nor `orbax_compat` is only parsed. "fresh
process" is one `python -m orbax_compat scan` run, importing Orbax included; "--to-v1 --diff" one
run that also parses each v0 module with libcst and rewrites it in memory.

{pick('Scan')}

{RECALL_BEGIN}
{recall}{RECALL_END}

{NOTES_BEGIN}
{notes}{NOTES_END}
"""


def write_markdown(results: dict, md_path: pathlib.Path, png_path: pathlib.Path) -> list[pathlib.Path]:
  plot(results, png_path)
  name = os.path.relpath(png_path, md_path.parent)
  md_path.write_text(markdown(results, name, _kept_notes(md_path),
                              _kept_notes(md_path, RECALL_BEGIN, RECALL_END)))
  return [png_path, md_path]
