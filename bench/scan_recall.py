"""Scanner recall and precision on real codebases (issue 18).

`python bench/scan_recall.py [--corpus bench/scan_corpus] [--only NAME ...]
[--scan-cmd 'python -m orbax_compat scan'] [--mirror /work/.mirror] [--details]
[--json OUT] [--time NAME [--trials 3]] [--write [BENCHMARKS.md]]`

For each corpus entry (`bench/scan_corpus/<name>.json`, described in that
folder's README), exports the repository at its fixed commit from a bare git
mirror (`<mirror>/<owner>+<name>/repo`) into a temp dir, the files under the
entry's `paths` minus its `exclude` only, runs the scanner on those paths as a
subprocess (`<scan-cmd> PATH... --format json`; the command is configurable so
that the same script measures a rebuilt scanner), and matches its findings
against the hand-made labels:

- a manager call (kind `init`, `method` or `property`) is found when a finding
  has the label's path and member and its line span (`line`..`end_line`)
  contains the label's line; each finding matches at most one label;
- a finding of those kinds that matches no label is a false positive;
- a labelled `CheckpointManagerOptions(...)` construction is found when the
  scanner reports it (any finding whose member is `CheckpointManagerOptions`)
  or any of its fields (kind `option`) inside the construction's lines; option
  findings inside no labelled construction are counted separately;
- a notebook label (`cell`, 0-based index into the notebook's `cells`, and
  `line`, 1-based inside that cell) is found by a finding on that notebook with
  the same `cell` and a line span containing the label's line. Today's scanner
  skips `.ipynb`, so those labels are missed;
- a finding on an `ambiguous` entry (a call whose receiver the labeller could
  not call a v0 manager or not, each with its note) counts neither way;
- labels in files the scanner reports as errors (cannot parse, ...) are missed
  and those files are listed.

Prints Markdown tables: per codebase, per category (production / test /
docs), per pattern, and the options. `--time NAME` also times the scanner on
that codebase (runs pinned to one CPU); `--write` puts the corpus table, the
tables and that timing into section 7 of BENCHMARKS.md, a block that
`python -m bench` keeps. Keeps the benchmark out of pass/fail
tests; `tests/test_scan_corpus.py` checks only that the corpus is well-formed.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import fnmatch
import json
import os
import pathlib
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

if __package__ in (None, ''):  # `python bench/scan_recall.py`: import `bench` as the package.
  sys.path[0] = str(pathlib.Path(__file__).resolve().parent.parent)

HERE = pathlib.Path(__file__).resolve().parent
CORPUS_DIR = HERE / 'scan_corpus'
DEFAULT_MIRROR = pathlib.Path(os.environ.get('ORBAX_COMPAT_MIRROR', '/work/.mirror'))
CALL_KINDS = frozenset({'init', 'method', 'property'})
CATEGORIES = ('production', 'test', 'docs')
OPTIONS = 'CheckpointManagerOptions'


def load_corpus(corpus_dir: pathlib.Path = CORPUS_DIR) -> list[dict[str, Any]]:
  """Every corpus entry, sorted: v0 users first, then the controls."""
  entries = []
  for path in sorted(corpus_dir.glob('*.json')):
    entry = json.loads(path.read_text())
    entry['_file'] = str(path)
    entries.append(entry)
  return sorted(entries, key=lambda e: (e['role'] != 'v0', e['name']))


def git_dir(entry: dict[str, Any], mirror: pathlib.Path = DEFAULT_MIRROR) -> pathlib.Path:
  return mirror / entry['repo'].replace('/', '+') / 'repo'


def category_of(entry: dict[str, Any], path: str) -> str:
  """The category a file's findings count in: the entry's rules, first match."""
  for category, patterns in entry.get('categories', {}).items():
    if any(fnmatch.fnmatch(path, p) for p in patterns):
      return category
  return 'production'


def _excluded(entry: dict[str, Any], path: str) -> bool:
  return any(path == x or path.startswith(x.rstrip('/') + '/') for x in entry.get('exclude', []))


def tracked_files(entry: dict[str, Any], gdir: pathlib.Path) -> list[tuple[str, str, str]]:
  """(mode, blob, path) of the files under the entry's paths, less its excludes."""
  paths = [p for p in entry['paths'] if p != '.']
  out = subprocess.run(
      ['git', '--git-dir', str(gdir), 'ls-tree', '-r', '-z', entry['commit'], '--', *paths],
      check=True, capture_output=True).stdout.decode()
  files = []
  for record in filter(None, out.split('\0')):
    meta, path = record.split('\t', 1)
    mode, kind, blob = meta.split()
    if kind == 'blob' and mode != '120000' and not _excluded(entry, path):
      files.append((mode, blob, path))
  return files


def export(entry: dict[str, Any], gdir: pathlib.Path, dest: pathlib.Path) -> list[str]:
  """Writes the entry's files at its commit under `dest`; returns the paths absent.

  Uses `git cat-file --batch` rather than `git archive`, since a mirror may
  lack the blobs of its largest files (those are skipped and returned).
  """
  files = tracked_files(entry, gdir)
  missing = []
  proc = subprocess.Popen(['git', '--git-dir', str(gdir), 'cat-file', '--batch'],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE)
  assert proc.stdin and proc.stdout
  for _, blob, path in files:
    proc.stdin.write(blob.encode() + b'\n')
    proc.stdin.flush()
    header = proc.stdout.readline().split()
    if len(header) < 3 or header[1] == b'missing':
      missing.append(path)
      continue
    data = proc.stdout.read(int(header[2]))
    proc.stdout.read(1)
    target = dest / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
  proc.stdin.close()
  proc.wait()
  return missing


@dataclasses.dataclass
class Run:
  findings: list[dict[str, Any]]
  errors: list[dict[str, Any]]
  seconds: float
  returncode: int
  missing_blobs: list[str]
  trials: list[float] = dataclasses.field(default_factory=list)  # one-CPU wall times


def scan(entry: dict[str, Any], scan_cmd: list[str], gdir: pathlib.Path,
         timing_trials: int = 0) -> Run:
  """Exports the entry and runs the scanner on its paths; paths come back relative.

  With `timing_trials`, first times that many extra runs pinned to one CPU
  (`taskset -c 0`, where it exists) and keeps their wall times in `Run.trials`.
  """
  trials = []
  with tempfile.TemporaryDirectory(prefix=f'scan-{entry["name"]}-') as tmp:
    root = pathlib.Path(tmp)
    missing = export(entry, gdir, root)
    targets = [p for p in entry['paths'] if p == '.' or (root / p).exists()]
    pin = ['taskset', '-c', '0'] if shutil.which('taskset') else []
    for _ in range(timing_trials):
      start = time.perf_counter()
      subprocess.run([*pin, *scan_cmd, *targets, '--format', 'json'], cwd=root,
                     capture_output=True, check=False)
      trials.append(time.perf_counter() - start)
    start = time.perf_counter()
    proc = subprocess.run([*scan_cmd, *targets, '--format', 'json'], cwd=root,
                          capture_output=True, text=True)
    seconds = time.perf_counter() - start
    try:
      report = json.loads(proc.stdout)
    except json.JSONDecodeError:
      sys.exit(f'{entry["name"]}: the scanner printed no JSON (exit {proc.returncode}):\n'
               f'{proc.stderr[-2000:]}')

  def rel(path: str | None) -> str:
    path = os.path.normpath(path or '')
    if os.path.isabs(path):
      path = os.path.relpath(path, os.path.realpath(tmp) if path.startswith(os.path.realpath(tmp))
                             else tmp)
    return path.replace(os.sep, '/')

  findings = [dict(f, path=rel(f['path'])) for f in report.get('findings', [])]
  errors = [dict(e, path=rel(e.get('path'))) for e in report.get('errors', [])]
  return Run(findings, errors, seconds, proc.returncode, missing, trials)


def _span(finding: dict[str, Any]) -> tuple[int, int]:
  line = finding.get('line') or 0
  return line, max(line, finding.get('end_line') or line)


def _key(item: dict[str, Any]) -> tuple[str, int | None]:
  return item['path'], item.get('cell')


@dataclasses.dataclass
class Result:
  entry: dict[str, Any]
  run: Run
  found: list[dict[str, Any]]          # manager-call labels found
  missed: list[dict[str, Any]]         # manager-call labels missed
  false_positives: list[dict[str, Any]]
  options_found: list[dict[str, Any]]
  options_missed: list[dict[str, Any]]
  options_unlabelled: list[dict[str, Any]]  # option findings outside every labelled construction
  unparsed: dict[str, int]             # file with an error -> its labels
  ambiguous_reported: int = 0          # `ambiguous` entries the scanner reported


def match(entry: dict[str, Any], run: Run) -> Result:
  """Matches one run's findings against the entry's labels (see the module docstring)."""
  labels = entry['labels']
  calls = [lab for lab in labels if lab['member'] != OPTIONS]
  options = [lab for lab in labels if lab['member'] == OPTIONS]
  by_file: dict[tuple[str, int | None], list[dict[str, Any]]] = collections.defaultdict(list)
  for f in run.findings:
    if f.get('kind') in CALL_KINDS or f.get('kind') == 'option' or f.get('member') == OPTIONS:
      by_file[_key(f)].append(f)
  used: set[int] = set()
  found, missed = [], []
  for label in sorted(calls, key=lambda lab: (lab['path'], lab.get('cell') or 0, lab['line'])):
    candidates = [f for f in by_file[_key(label)]
                  if id(f) not in used and f.get('kind') in CALL_KINDS
                  and f.get('member') == label['member']
                  and _span(f)[0] <= label['line'] <= _span(f)[1]]
    if candidates:
      best = min(candidates, key=lambda f: (abs(f['line'] - label['line']), f['line']))
      used.add(id(best))
      found.append(label)
    else:
      missed.append(label)
  ambiguous_reported = 0
  for label in entry.get('ambiguous', []):  # neither a label nor a false positive
    for f in by_file[_key(label)]:
      if (id(f) not in used and f.get('kind') in CALL_KINDS and f.get('member') == label['member']
          and _span(f)[0] <= label['line'] <= _span(f)[1]):
        used.add(id(f))
        ambiguous_reported += 1
        break
  false_positives = [f for f in run.findings
                     if f.get('kind') in CALL_KINDS and f.get('member') != OPTIONS
                     and id(f) not in used]

  options_found, options_missed = [], []
  inside: set[int] = set()
  for label in options:
    lo, hi = label['line'], label.get('end_line', label['line'])
    hits = [f for f in by_file[_key(label)]
            if (f.get('kind') == 'option' or f.get('member') == OPTIONS)
            and lo <= (f.get('line') or 0) <= hi]
    inside.update(id(f) for f in hits)
    (options_found if hits else options_missed).append(label)
  options_unlabelled = [f for f in run.findings
                        if (f.get('kind') == 'option' or f.get('member') == OPTIONS)
                        and id(f) not in inside]

  error_paths = {e['path'] for e in run.errors}
  unparsed = collections.Counter(lab['path'] for lab in labels if lab['path'] in error_paths)
  return Result(entry, run, found, missed, false_positives, options_found, options_missed,
                options_unlabelled, dict(unparsed), ambiguous_reported)


def _pct(num: int, den: int) -> str:
  return f'{100 * num / den:.0f}%' if den else 'n/a'


def _table(header: list[str], rows: list[list[Any]]) -> str:
  lines = ['| ' + ' | '.join(header) + ' |',
           '| ' + ' | '.join('---' if i == 0 else '---:' for i in range(len(header))) + ' |']
  lines += ['| ' + ' | '.join(str(c) for c in row) + ' |' for row in rows]
  return '\n'.join(lines)


def _counts(found: int, labelled: int, fps: int) -> list[Any]:
  return [labelled, found, _pct(found, labelled), fps, _pct(found, found + fps)]


def report(results: list[Result]) -> str:
  """The Markdown tables."""
  out = []
  head = ['codebase', 'commit', 'files', 'labelled', 'found', 'recall', 'false pos.',
          'precision', 'ambiguous (reported)', 'scan (s)']
  rows = []
  tot = collections.Counter()
  for r in results:
    n_lab, n_found, n_fp = len(r.found) + len(r.missed), len(r.found), len(r.false_positives)
    tot.update(labelled=n_lab, found=n_found, fp=n_fp)
    role = '' if r.entry['role'] == 'v0' else ' (control)'
    rows.append([r.entry['name'] + role, r.entry['commit'][:10],
                 r.entry.get('_files', ''), *_counts(n_found, n_lab, n_fp),
                 f"{len(r.entry.get('ambiguous', []))} ({r.ambiguous_reported})",
                 f'{r.run.seconds:.1f}'])
  rows.append(['**all**', '', '', *_counts(tot['found'], tot['labelled'], tot['fp']), '', ''])
  out += ['### Manager calls, per codebase', '', _table(head, rows), '']

  head = ['codebase', *[f'{c}: found/labelled (recall), false pos.' for c in CATEGORIES]]
  rows = []
  totc: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
  for r in results:
    row = [r.entry['name']]
    for c in CATEGORIES:
      f = sum(1 for lab in r.found if lab['category'] == c)
      n = f + sum(1 for lab in r.missed if lab['category'] == c)
      fp = sum(1 for x in r.false_positives if category_of(r.entry, x['path']) == c)
      totc[c].update(found=f, labelled=n, fp=fp)
      row.append(f'{f}/{n} ({_pct(f, n)}), {fp}' if n or fp else '')
    rows.append(row)
  rows.append(['**all**', *[f"{totc[c]['found']}/{totc[c]['labelled']} "
                            f"({_pct(totc[c]['found'], totc[c]['labelled'])}), {totc[c]['fp']}"
                            for c in CATEGORIES]])
  out += ['### Per category', '', _table(head, rows), '']

  head = ['category', 'labelled', 'found', 'recall', 'false pos.', 'precision']
  rows = [[c, *_counts(totc[c]['found'], totc[c]['labelled'], totc[c]['fp'])] for c in CATEGORIES]
  pc = collections.Counter()
  for c in ('production', 'docs'):
    pc.update(totc[c])
  rows.append(['production + docs', *_counts(pc['found'], pc['labelled'], pc['fp'])])
  out += [_table(head, rows), '']

  pat: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
  for r in results:
    for lab in r.found:
      pat[lab['pattern']].update(found=1, labelled=1, **{lab['category']: 1})
    for lab in r.missed:
      pat[lab['pattern']].update(labelled=1, **{lab['category']: 1})
  head = ['pattern', 'labelled', 'found', 'recall', 'production', 'test', 'docs']
  rows = [[p, c['labelled'], c['found'], _pct(c['found'], c['labelled']),
           c['production'], c['test'], c['docs']]
          for p, c in sorted(pat.items(), key=lambda kv: (-kv[1]['labelled'], kv[0]))]
  out += ['### Per pattern (manager calls)', '', _table(head, rows), '']

  head = ['codebase', 'labelled', 'found', 'recall', 'option findings outside them']
  rows, t = [], collections.Counter()
  for r in results:
    n = len(r.options_found) + len(r.options_missed)
    t.update(found=len(r.options_found), labelled=n, fp=len(r.options_unlabelled))
    rows.append([r.entry['name'], n, len(r.options_found), _pct(len(r.options_found), n),
                 len(r.options_unlabelled)])
  rows.append(['**all**', t['labelled'], t['found'], _pct(t['found'], t['labelled']), t['fp']])
  out += ['### `CheckpointManagerOptions(...)` constructions', '', _table(head, rows), '']

  unparsed = [(r.entry['name'], p, n) for r in results for p, n in sorted(r.unparsed.items())]
  errors = [(r.entry['name'], e['path'], e.get('message', '')) for r in results
            for e in r.run.errors]
  if errors:
    out += ['### Files the scanner reported as errors', '',
            _table(['codebase', 'path', 'labels in it', 'message'],
                   [[n, p, sum(c for m, q, c in unparsed if (m, q) == (n, p)),
                     msg.replace('|', '\\|')[:90]] for n, p, msg in errors]), '']
  missing = [(r.entry['name'], p) for r in results for p in r.run.missing_blobs]
  if missing:
    out += ['Files absent from the mirror (not exported): ' +
            ', '.join(f'{n}:{p}' for n, p in missing), '']
  return '\n'.join(out)


def details(results: list[Result]) -> str:
  """Every miss and false positive, for reading."""
  out = []
  for r in results:
    out.append(f'## {r.entry["name"]}')
    for lab in r.missed:
      where = f'{lab["path"]}' + (f'[cell {lab["cell"]}]' if 'cell' in lab else '')
      out.append(f'  missed {where}:{lab["line"]} {lab["member"]} ({lab["category"]}, {lab["pattern"]})')
    for f in r.false_positives:
      out.append(f'  false positive {f["path"]}:{f["line"]} {f["member"]} ({f.get("kind")})')
    for lab in r.options_missed:
      out.append(f'  options missed {lab["path"]}:{lab["line"]}')
    for f in r.options_unlabelled:
      out.append(f'  option finding outside labels {f["path"]}:{f["line"]} {f["member"]}')
  return '\n'.join(out)


def corpus_table(results: list[Result]) -> str:
  """The corpus: repository, commit, paths scanned and labels per category."""
  rows = []
  for r in results:
    e = r.entry
    cats = collections.Counter(lab['category'] for lab in e['labels']
                               if lab['member'] != OPTIONS)
    paths = ', '.join(f'`{p}`' for p in e['paths'])
    if e.get('exclude'):
      paths += ' less ' + ', '.join(f'`{p}`' for p in e['exclude'])
    rows.append([e['name'] + ('' if e['role'] == 'v0' else ' (control)'), e['repo'],
                 f"`{e['commit'][:12]}`", paths,
                 ' / '.join(str(cats[c]) for c in CATEGORIES),
                 sum(1 for lab in e['labels'] if lab['member'] == OPTIONS),
                 len(e.get('ambiguous', []))])
  return _table(['codebase', 'repository', 'commit', 'paths scanned',
                 'manager calls: production / test / docs', 'options', 'ambiguous'], rows)


def section(results: list[Result], scan_cmd: str, timed: Result | None) -> str:
  """Section 7 of BENCHMARKS.md (kept across `python -m bench` runs)."""
  when = time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())
  scan_cmd = scan_cmd.replace(shlex.quote(sys.executable), 'python', 1)
  out = [f"""## 7. Scanner recall on real codebases

Measured {when} with `python bench/scan_recall.py --write --time maxtext` (scanner:
`{scan_cmd}`). The scanner runs as a subprocess on each codebase exported at a fixed commit, and its
findings are matched against calls labelled by hand (bench/scan_corpus/: what counts as a v0 manager
call, how the labels were made, the patterns). A finding matches a label with the same path, member
and line; a manager finding (kind init / method / property) that matches no label is a false
positive; "ambiguous" entries (receivers the labeller could not settle) count neither way.
Notebooks are labelled by cell; today's scanner skips `.ipynb`, so those labels count as missed.
Controls use Orbax but not the v0 manager: every manager finding there is a false positive.
Needs the bare git mirrors of the repositories (`/work/.mirror/<owner>+<name>/repo`, or `--mirror`);
to measure another scanner, `--scan-cmd 'CMD'` (CMD PATH... --format json must print the same JSON).

{corpus_table(results)}
"""]
  out.append(report(results).replace('### ', '#### '))
  if timed is not None and timed.run.trials:
    t = sorted(timed.run.trials)
    out.append(f"""**Speed on {timed.entry['name']}** ({timed.entry['_files']} Python and notebook files):
the scanner command as given, pinned to one CPU (`taskset -c 0`), wall time of {len(t)} runs:
median {t[len(t) // 2]:.2f} s [{t[0]:.2f}–{t[-1]:.2f}], start-up (importing the scanner) included.
""")
  return '\n'.join(out).replace('\n\n\n', '\n\n')


def write_section(md_path: pathlib.Path, text: str) -> None:
  """Replaces (or inserts, before the notes) the kept scan-recall block of BENCHMARKS.md."""
  from bench import report as report_lib  # pylint: disable=import-outside-toplevel
  begin, end = report_lib.RECALL_BEGIN, report_lib.RECALL_END
  md = md_path.read_text()
  block = f'{begin}\n{text.rstrip()}\n{end}'
  if begin in md:
    head, rest = md.split(begin, 1)
    md = head + block + rest.split(end, 1)[1]
  else:
    head, rest = md.split(report_lib.NOTES_BEGIN, 1)
    md = head + block + '\n\n' + report_lib.NOTES_BEGIN + rest
  md_path.write_text(md)


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--corpus', type=pathlib.Path, default=CORPUS_DIR)
  parser.add_argument('--only', nargs='*', default=None, help='corpus entry names')
  parser.add_argument('--scan-cmd', default=f'{shlex.quote(sys.executable)} -m orbax_compat scan',
                      help='the scanner command; PATH... --format json is appended')
  parser.add_argument('--mirror', type=pathlib.Path, default=DEFAULT_MIRROR)
  parser.add_argument('--details', action='store_true', help='list every miss and false positive')
  parser.add_argument('--json', type=pathlib.Path, help='also write the raw results here')
  parser.add_argument('--time', metavar='NAME', help='also time NAME: runs pinned to one CPU')
  parser.add_argument('--trials', type=int, default=3, help='runs for --time (default 3)')
  parser.add_argument('--write', nargs='?', const=HERE.parent / 'BENCHMARKS.md', type=pathlib.Path,
                      metavar='MD', help='write section 7 of BENCHMARKS.md (or MD)')
  args = parser.parse_args(argv)
  scan_cmd = shlex.split(args.scan_cmd)
  results = []
  for entry in load_corpus(args.corpus):
    if args.only and entry['name'] not in args.only:
      continue
    gdir = git_dir(entry, args.mirror)
    if not gdir.is_dir():
      print(f'skipping {entry["name"]}: no mirror at {gdir}', file=sys.stderr)
      continue
    entry['_files'] = sum(1 for *_, p in tracked_files(entry, gdir) if p.endswith(('.py', '.ipynb')))
    run = scan(entry, scan_cmd, gdir, args.trials if entry['name'] == args.time else 0)
    results.append(match(entry, run))
    print(f'{entry["name"]}: {len(run.findings)} findings, {len(run.errors)} errors, '
          f'{run.seconds:.1f}s' + (f', one-CPU runs {run.trials}' if run.trials else ''),
          file=sys.stderr)
  print(f'Scanner: `{args.scan_cmd}`\n')
  print(report(results))
  timed = next((r for r in results if r.entry['name'] == args.time), None)
  if timed is not None:
    t = sorted(timed.run.trials)
    print(f'{args.time}: one CPU, {len(t)} runs, wall median {t[len(t) // 2]:.2f} s '
          f'[{t[0]:.2f}-{t[-1]:.2f}]\n')
  if args.write:
    write_section(args.write, section(results, args.scan_cmd, timed))
  if args.details:
    print(details(results))
  if args.json:
    args.json.write_text(json.dumps([{
        'name': r.entry['name'], 'commit': r.entry['commit'], 'seconds': r.run.seconds,
        'found': r.found, 'missed': r.missed, 'false_positives': r.false_positives,
        'options_found': r.options_found, 'options_missed': r.options_missed,
        'options_unlabelled': r.options_unlabelled, 'errors': r.run.errors,
    } for r in results], indent=1, default=str))
  return 0


if __name__ == '__main__':
  sys.exit(main())
