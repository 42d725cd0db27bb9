"""A scan from paths to a `Result`: the project, the index, findings, rewrites.

1. The files given (`.py` and `.ipynb`), and the project's files around them
   (`source.project_root`), each read once.
2. The whole-repo index (`index.index`): the modules that can matter are
   parsed with libcst, collected and solved together.
3. For each file given: its findings (`detect`), and with `--fix` /
   `--to-v1` the codemod (`import_swap.ImportSwapCommand`,
   `to_v1.ToV1Command`) run on the very tree the findings point into; the
   result is checked to parse, diffed, and written atomically. This step runs
   in forked worker processes when there are enough files (`jobs`).

A file given that cannot be read, decoded or parsed is an error (the rest is
scanned); a file that names neither `orbax` nor anything manager-related is
only checked to be text, since it cannot hold a v0 use.
"""

from __future__ import annotations

from collections.abc import Callable
import concurrent.futures
import dataclasses
import difflib
import gc
import multiprocessing
import os
import tempfile
from typing import Any

import libcst as cst

from orbax_compat.tools.scan import collect
from orbax_compat.tools.scan import detect
from orbax_compat.tools.scan import fixes
from orbax_compat.tools.scan import index as index_lib
from orbax_compat.tools.scan import notebooks
from orbax_compat.tools.scan import source as source_lib
from orbax_compat.tools.scan.findings import FileScan
from orbax_compat.tools.scan.findings import Finding
from orbax_compat.tools.scan.findings import Result
from orbax_compat.tools.scan.findings import ScanError
from orbax_compat.tools.scan.findings import Unscannable
from orbax_compat.tools.scan.templates import MANAGER_KINDS

_PARALLEL_MIN_FILES = 16


@dataclasses.dataclass
class _Outcome:
  """One file's results, as plain data (no libcst nodes: it crosses processes)."""

  findings: list[Finding] = dataclasses.field(default_factory=list)
  errors: list[ScanError] = dataclasses.field(default_factory=list)
  changes: list[dict[str, Any]] = dataclasses.field(default_factory=list)
  scanned: int = 0


class Scan:
  """The state of one run: the project, its texts, the loaded modules and the analysis."""

  def __init__(self, paths: list[str], include_skipped: bool, use_project: bool = True):
    self.errors: list[ScanError] = []
    self.targets = list(source_lib.iter_files(paths, self.errors, include_skipped))
    target_set = set(self.targets)
    roots = {}
    files: dict[str, str] = {}
    texts: dict[str, bytes] = {}
    self.read_errors: dict[str, Unscannable] = {}
    for path in self.targets:
      root = source_lib.project_root(path) if use_project else None
      base = root or (path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path)))
      files[path] = source_lib.module_name(path, base)
      if root is not None:
        roots[root] = True
    real_targets = {os.path.realpath(t) for t in self.targets}
    index_files = [p for p in source_lib.iter_files(list(roots), None) if p not in target_set
                   and os.path.realpath(p) not in real_targets]
    for path in index_files:
      root = source_lib.project_root(path)
      files[path] = source_lib.module_name(path, root or os.path.dirname(path))
    for path in files:
      try:
        texts[path] = source_lib.read(path)
      except Unscannable as e:
        if path in target_set:
          self.read_errors[path] = e
    self.texts = texts
    self.files_indexed = len(texts)
    self.project = index_lib.Project(
        {p: n for p, n in files.items() if p in texts}, target_set, self.load)
    self.parse_errors: dict[str, Unscannable] = {}
    self.analysis = index_lib.index(self.project, texts, self.load)
    self._findings: dict[str, list[Finding]] = {}
    self.finished: dict[str, Any] = {}  # Construction site -> finish.Decision (--to-v1).

  def load(self, path: str, light: bool = False) -> collect.Module | None:
    """Parses and collects one file; None if it cannot. `light`: its imports
    only, which the analysis never reads, so nothing is parsed until its
    findings are reported (`_light`) or it is needed whole."""
    target = path in self.project.targets
    if light and path not in self.project.modules:
      return collect.Module(path, self.project.files[path], None, None, target, light=True)
    try:
      text, notebook = self._source(path)
      tree = source_lib.parse(text)
    except Unscannable as e:
      if target:
        self.parse_errors[path] = e
      return None
    mod = collect.Module(path, self.project.files[path], text, tree, target, notebook)
    mod.finder = detect.ModuleFindings(mod, None)
    if target and detect.may_use_orbax(text):
      mod.finder.imports()
    return mod

  def _source(self, path: str) -> tuple[bytes | str, notebooks.Notebook | None]:
    """What is parsed of a file (a notebook's: its code cells); raises Unscannable."""
    raw = self.texts[path]
    if path.endswith('.ipynb'):
      notebook = notebooks.Notebook(raw)
      return notebook.source, notebook
    return raw, None

  def _light(self, path: str, whole: bool) -> collect.Module:
    """A light module's imports, with their findings; raises Unscannable.

    Unless `whole` (a rewrite needs the file's tree), only its import statements
    naming orbax are parsed with libcst, where Python's parser finds them; a
    file Python cannot parse is parsed whole with libcst.
    """
    text, notebook = self._source(path)
    name = self.project.files[path]
    statements, decoded = None, text
    if not whole and isinstance(text, bytes) and b'\0' not in text:
      try:
        decoded = source_lib.decode(text)
      except Unscannable:
        decoded = None  # The whole parse says why, as for any file.
    if not whole and isinstance(decoded, str):
      statements = source_lib.import_statements(decoded)
    if statements is None:
      mod = collect.Module(path, name, text, source_lib.parse(text), True, notebook, light=True)
    else:
      mod = collect.Module.imports_only(path, name, decoded, statements, True, notebook)
    mod.finder = detect.ModuleFindings(mod, None)
    if detect.may_use_orbax(text):
      mod.finder.imports()
    return mod

  def process(self, path: str, *, write: bool, rewrite: bool, to_v1: bool,
              swap_all: bool = False) -> _Outcome:
    outcome = _Outcome()
    error = self.read_errors.get(path) or self.parse_errors.get(path)
    mod = self.project.modules.get(path)
    if error is None and mod is None:
      error = _check_text(self.texts.get(path, b''), path)
    if error is not None:
      outcome.errors.append(ScanError(path, error.message, error.line, error.col))
      return outcome
    if mod is not None and mod.tree is None:
      try:
        mod = self._light(path, whole=rewrite)
      except Unscannable as e:
        outcome.errors.append(ScanError(path, e.message, e.line, e.col))
        return outcome
    outcome.scanned = 1
    if mod is None:
      return outcome
    findings = self.findings_of(mod, swap_all)
    scan = FileScan(path, mod.source if isinstance(mod.source, bytes) else b'', mod.tree,
                    findings, self.finished, mod.positions)
    if rewrite and any((f.fixable and f.needed) or (to_v1 and f.kind in MANAGER_KINDS)
                       for f in findings):
      findings = _fix(scan, mod, outcome, write=write, to_v1=to_v1)
    outcome.findings = [f.detached() for f in findings]
    return outcome


  def findings_of(self, mod: collect.Module, swap_all: bool = False) -> list[Finding]:
    """A module's findings, with --fix decided (`fixes.plan`); computed once."""
    cached = self._findings.get(mod.path)
    if cached is None:
      finder = mod.finder
      finder.analysis = self.analysis
      cached = self._findings[mod.path] = fixes.plan(finder, finder.uses(), swap_all)
    return cached


def _check_text(raw: bytes, path: str) -> Unscannable | None:
  """A file that cannot hold a v0 use: only that it is text in its encoding."""
  try:
    source_lib.check_binary(raw)
    if path.endswith('.ipynb'):
      notebooks.Notebook(raw)
    else:
      source_lib.decode(raw)
  except Unscannable as e:
    return e
  return None


def rewrite(scan: FileScan, command) -> bytes:
  """The module's new code (same encoding and newlines; comments kept)."""
  return command.transform_module(scan.module).bytes


def _fix(scan: FileScan, mod: collect.Module, outcome: _Outcome, write: bool,
         to_v1: bool) -> list[Finding]:
  # The codemods (and libcst's codemod framework) load only for rewrites.
  from libcst.codemod import CodemodContext  # pylint: disable=import-outside-toplevel

  from orbax_compat.tools.scan import import_swap  # pylint: disable=import-outside-toplevel
  from orbax_compat.tools.scan import to_v1 as to_v1_lib  # pylint: disable=import-outside-toplevel
  context = CodemodContext(filename=scan.path, full_module_name=mod.name)
  command = (to_v1_lib.ToV1Command if to_v1 else import_swap.ImportSwapCommand)(context, scan)
  new = rewrite(scan, command)
  nb = mod.notebook
  old = scan.source if nb is None else nb.text.encode('utf-8')
  if nb is not None:
    new = nb.rewritten(new.decode('utf-8')) or old
  if new == old:
    return scan.findings
  try:  # Never write what does not parse.
    source_lib.check_parses(new if nb is None else notebooks.Notebook(new).source)
  except Unscannable as e:
    outcome.errors.append(
        ScanError(scan.path, f'not rewritten, the rewrite would not parse: {e.message}'))
    return scan.findings
  encoding = mod.tree.encoding if nb is None else 'utf-8'
  text = difflib.unified_diff(
      old.decode(encoding).splitlines(keepends=True),
      new.decode(encoding).splitlines(keepends=True),
      fromfile=f'a/{scan.path}', tofile=f'b/{scan.path}')
  counts = command.counts
  change = {'path': scan.path, 'edits': len(command.edits), 'swapped': counts.get('swapped', 0),
            'references': counts.get('references', 0),
            'rewritten': counts.get('rewritten', 0), 'todos': counts.get('todos', 0),
            'written': False, 'diff': ''.join(text)}
  if write:
    try:
      write_atomic(scan.path, new)
    except OSError as e:
      outcome.errors.append(ScanError(scan.path, f'not rewritten: {e.strerror or e}'))
      return scan.findings
    change['written'] = True
  outcome.changes.append(change)
  if not write:
    return scan.findings
  return [dataclasses.replace(f, fixed=True) if id(f.node) in command.done else f
          for f in scan.findings]


def write_atomic(path: str, data: bytes) -> None:
  """Replaces `path`'s contents: a temp file in the same directory, then rename.

  Keeps the file's permission bits; follows a symlink to its target. Nothing
  partial is ever visible at `path`; the temp file is removed on failure.
  """
  target = os.path.realpath(path)
  mode = os.stat(target).st_mode & 0o7777
  fd, tmp = tempfile.mkstemp(dir=os.path.dirname(target),
                             prefix=f'.{os.path.basename(target)}.', suffix='.tmp')
  try:
    with os.fdopen(fd, 'wb') as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())
    os.chmod(tmp, mode)
    os.replace(tmp, target)
  except BaseException:
    try:
      os.unlink(tmp)
    except OSError:
      pass
    raise


_STATE: dict[str, Any] = {}


def _task(i: int) -> _Outcome:
  state = _STATE
  return state['scan'].process(state['targets'][i], **state['options'])


def _map(task: Callable[[int], _Outcome], n: int, jobs: int) -> list[_Outcome]:
  """`task` over range(n), in order; in `jobs` forked processes if worth it (they
  start with the index already built)."""
  jobs = min(jobs, n // (_PARALLEL_MIN_FILES // 2))
  if jobs <= 1 or 'fork' not in multiprocessing.get_all_start_methods():
    return [task(i) for i in range(n)]
  pool = concurrent.futures.ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context('fork'))
  with pool:
    return list(pool.map(task, range(n), chunksize=max(1, min(32, n // (4 * jobs)))))


def run(paths: list[str] | tuple[str, ...], *, fix: bool = False, diff: bool = False,
        to_v1: bool = False, include_skipped: bool = False, jobs: int = 1,
        project: bool = True, swap_all: bool = False) -> Result:
  """Scans `paths`; with `fix` writes the import swap, with `to_v1` the swap and
  the v1 rewrites and TODO comments (with `diff`, only diffs either).
  `project`: also index the project around the paths (whole-repo analysis).
  `swap_all`: swap imports also in files that build or use no manager.

  Python's cyclic garbage collector is off for the run: the scan allocates
  millions of libcst nodes and keeps most of them to the end, so each full
  collection walks them all again for nothing (a third of the time on
  MaxText); the few cycles it leaves are collected after it."""
  enabled = gc.isenabled()
  gc.disable()
  try:
    return _run(list(paths), fix=fix, diff=diff, to_v1=to_v1, include_skipped=include_skipped,
                jobs=jobs, project=project, swap_all=swap_all)
  finally:
    if enabled:
      gc.enable()


def _run(paths: list[str], *, fix: bool, diff: bool, to_v1: bool, include_skipped: bool,
         jobs: int, project: bool, swap_all: bool) -> Result:
  scan = Scan(paths, include_skipped, project)
  result = Result(errors=list(scan.errors), files_indexed=scan.files_indexed,
                  mode='to_v1' if to_v1 else 'fix' if fix else 'report')
  options = dict(write=(fix or to_v1) and not diff, rewrite=fix or diff or to_v1, to_v1=to_v1,
                 swap_all=swap_all)
  if to_v1:
    from orbax_compat.tools.scan import finish  # pylint: disable=import-outside-toplevel
    scan.finished = finish.decide(scan, swap_all)
    result.managers = [d.to_json() for d in scan.finished.values() if d.first]
  _STATE.update(scan=scan, targets=scan.targets, options=options)
  try:
    outcomes = _map(_task, len(scan.targets), jobs)
  finally:
    _STATE.clear()
  for outcome in outcomes:
    result.findings.extend(outcome.findings)
    result.errors.extend(outcome.errors)
    result.changes.extend(outcome.changes)
    result.files_scanned += outcome.scanned
  result.errors.sort(key=lambda e: e.path)
  return result


def scan_tree(tree: cst.Module, path: str = '<string>') -> FileScan:
  """One module on its own (no project): its findings, pointing into `tree`."""
  name = os.path.splitext(os.path.basename(path))[0].strip('<>') or 'module'
  project = index_lib.Project({path: name}, {path}, None)
  code = tree.code
  mod = collect.Module(path, project.files[path], code, tree, True)
  mod.finder = detect.ModuleFindings(mod, None)
  mod.finder.imports()
  project.modules[path] = mod
  analysis = index_lib.Analysis(project)
  analysis.solve()
  mod.finder.analysis = analysis
  findings = fixes.plan(mod.finder, mod.finder.uses())
  return FileScan(path, code.encode(tree.encoding), tree, findings, {}, mod.positions)


def scan_source(source: bytes, path: str = '<string>') -> FileScan:
  """Scans one file's bytes on their own, with its libcst tree and the
  findings' nodes in it (what a rewrite needs); raises Unscannable."""
  tree = source_lib.parse(source)
  scan = scan_tree(tree, path)
  return dataclasses.replace(scan, source=source)
