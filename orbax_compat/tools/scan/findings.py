"""What the scanner reports: findings, errors, and a run's result (plain data).

The JSON form of each is documented in docs/scan-json-schema.md.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Any

import libcst as cst

from orbax_compat.mapping import forms
from orbax_compat.mapping.schema import Member
from orbax_compat.tools.scan.templates import MANAGER_KINDS
from orbax_compat.tools.scan.templates import one_line

SCHEMA = 'orbax_compat.scan/3'
SHIM = 'orbax_compat'
V0 = 'orbax.checkpoint'
TODO = 'TODO(orbax-v1)'

# Exit statuses (documented in docs/scanner.md).
EXIT_CLEAN = 0  # Every file scanned, no v0 use remains.
EXIT_FINDINGS = 1  # v0 uses remain.
EXIT_ERRORS = 2  # Usage error, or files that could not be scanned (and no v0 use remains).


@dataclasses.dataclass(frozen=True)
class Finding:
  """One v0 use in one file (or notebook cell).

  When the file was parsed for a rewrite, `node` is the libcst node of the use
  in the module the codemods transform (the `Call` for a construction or
  method call, the `Attribute` for a property or an uncalled method, the `Arg`
  for an option field, the `Import`/`ImportFrom` for an import); `call` the
  enclosing call (for options, the `CheckpointManagerOptions` call);
  `receiver_node` the manager expression a member is used on; `statement` the
  statement above which a comment goes; `parent` the node's parent. `bindings`
  (plain data) says where each placeholder of the matched form is among the
  call's arguments. For a notebook, `cell` is the index of the cell in the
  notebook's `cells` and `line` a line of that cell.
  """

  path: str
  line: int
  col: int  # 1-based.
  end_line: int
  end_col: int  # 1-based, exclusive.
  kind: str  # import | init | option | method | property
  member: str  # Table key ('__init__', 'save', ...), option field, or imported module.
  v0: str
  v1: str
  note: str
  status: str  # The table's status; '' for imports and options.
  code: str  # The use's source, first line only.
  receiver: str | None = None  # Source of the manager expression (members).
  form: str = ''  # The v0 pattern of the matched form ('' none matches statically).
  mechanical: str = ''  # That form's flag.
  to_v1: bool = False  # --to-v1 rewrites it.
  reason: str = ''  # Why --to-v1 does not (members and constructions).
  fixable: bool = False  # --fix rewrites it (imports, references).
  fixed: bool = False  # This run rewrote it.
  # Imports: the file builds or uses a v0 manager (else there is nothing to
  # migrate there: --fix leaves it, and it counts apart).
  needed: bool = True
  action: str = ''  # What the user must do, where --fix cannot (nonzero exit).
  cell: int | None = None  # Notebooks: the cell's index.
  via: str = dataclasses.field(default='', compare=False)  # How the manager was found.
  bindings: tuple = dataclasses.field(default=(), compare=False, repr=False)
  imports: tuple[str, ...] = dataclasses.field(default=(), compare=False, repr=False)
  helpers: tuple[str, ...] = dataclasses.field(default=(), compare=False, repr=False)
  option_values: tuple = dataclasses.field(default=(), compare=False, repr=False)
  sites: tuple[str, ...] = dataclasses.field(default=(), compare=False, repr=False)
  statement_form: str = dataclasses.field(default='', compare=False, repr=False)
  node: cst.CSTNode | None = dataclasses.field(default=None, compare=False, repr=False)
  call: cst.Call | None = dataclasses.field(default=None, compare=False, repr=False)
  receiver_node: cst.BaseExpression | None = dataclasses.field(
      default=None, compare=False, repr=False)
  statement: cst.CSTNode | None = dataclasses.field(default=None, compare=False, repr=False)
  parent: cst.CSTNode | None = dataclasses.field(default=None, compare=False, repr=False)

  @property
  def label(self) -> str:
    if self.kind == 'init':
      return 'CheckpointManager'
    if self.kind == 'option':
      return f'options.{self.member}'
    if self.kind in ('import', 'reference'):
      return self.kind
    return self.member

  @property
  def row(self) -> Member | None:
    """The table row of a construction or member use."""
    return forms.BY_NAME.get(self.member) if self.kind in MANAGER_KINDS else None

  @property
  def todo(self) -> str:
    """The `# TODO(orbax-v1)` comment --to-v1 leaves above a use it does not rewrite."""
    note = f' \N{EM DASH} {self.note}' if self.note else ''
    return f'# {TODO}: {one_line(self.v1)}{note}'

  @property
  def where(self) -> str:
    cell = f'[{self.cell}]' if self.cell is not None else ''
    return f'{self.path}{cell}:{self.line}:{self.col}'

  def detached(self) -> Finding:
    """A copy without the tree's nodes (plain data)."""
    return dataclasses.replace(self, node=None, call=None, receiver_node=None, statement=None,
                               parent=None)

  def to_json(self) -> dict[str, Any]:
    out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.compare}
    if self.cell is None:
      del out['cell']  # Only notebook findings have a cell.
    out['label'] = self.label
    return out

  def text(self) -> str:
    note = f'  ({self.note})' if self.note else ''
    if self.action and not self.fixed:
      return f'{self.where}: {self.label}: {one_line(self.v1)}{note}  [action: {self.action}]'
    if self.fixed:
      mark = '  [rewritten]' if self.kind in MANAGER_KINDS else '  [fixed]'
    elif self.to_v1:
      mark = '  [--to-v1]'
    else:  # Why a mechanical form is kept (other reasons are the note's).
      mark = f'  [kept: {self.reason}]' if self.mechanical else ''
    return f'{self.where}: {self.label}: {one_line(self.v1)}{note}{mark}'


@dataclasses.dataclass(frozen=True)
class ScanError:
  path: str
  message: str
  line: int | None = None
  col: int | None = None

  def text(self) -> str:
    where = f'{self.path}:{self.line}:{self.col}' if self.line is not None else self.path
    return f'{where}: error: {self.message}'


class Unscannable(Exception):
  """A file that cannot be read or parsed; the rest of the run goes on."""

  def __init__(self, message: str, line: int | None = None, col: int | None = None):
    super().__init__(message)
    self.message, self.line, self.col = message, line, col


@dataclasses.dataclass
class FileScan:
  """One file and its findings; `module` is its libcst tree (findings point into
  it); `finished`: the decisions of `--to-v1` on each construction site
  (`finish.Decision`), where it runs."""

  path: str
  source: bytes
  module: cst.Module | None
  findings: list[Finding]
  finished: dict[str, Any] = dataclasses.field(default_factory=dict)
  positions: Any = None  # The tree's PositionProvider metadata (for layout).


@dataclasses.dataclass
class Result:
  findings: list[Finding] = dataclasses.field(default_factory=list)
  errors: list[ScanError] = dataclasses.field(default_factory=list)
  changes: list[dict[str, Any]] = dataclasses.field(default_factory=list)
  files_scanned: int = 0
  files_indexed: int = 0  # Files of the project read for context (whole-repo analysis).
  mode: str = 'report'  # 'report', 'fix' or 'to_v1'.
  # --to-v1: each construction of orbax_compat's manager, finished or not and why.
  managers: list[dict[str, Any]] = dataclasses.field(default_factory=list)

  @property
  def uses(self) -> list[Finding]:
    """The findings that are v0 uses (not imports in files with no manager)."""
    return [f for f in self.findings if f.needed]

  @property
  def unneeded_imports(self) -> list[Finding]:
    return [f for f in self.findings if not f.needed]

  @property
  def remaining(self) -> list[Finding]:
    return [f for f in self.uses if not f.fixed]

  @property
  def actions(self) -> list[Finding]:
    """What --fix could not do, for the user to do."""
    return [f for f in self.findings if f.action and not f.fixed]

  def summary(self) -> dict[str, Any]:
    uses = self.uses
    by_member = collections.Counter(f.label for f in uses)
    by_file = collections.Counter(f.path for f in uses)
    unneeded = self.unneeded_imports
    return {
        'findings': len(uses),
        'remaining': len(self.remaining),
        'actions': len(self.actions),
        'files_scanned': self.files_scanned,
        'files_with_findings': len(by_file),
        'errors': len(self.errors),
        'files_changed': len(self.changes),
        'by_member': dict(sorted(by_member.items(), key=lambda kv: (-kv[1], kv[0]))),
        'by_file': dict(by_file),
        'imports_without_manager': len(unneeded),
        'files_without_manager': len({f.path for f in unneeded}),
        'managers_finished': sum(m['finished'] for m in self.managers),
        'managers_not_finished': sum(not m['finished'] for m in self.managers),
    }

  def to_json(self) -> dict[str, Any]:
    return {
        'schema': SCHEMA,
        'findings': [f.to_json() for f in self.findings],
        'summary': self.summary(),
        'errors': [dataclasses.asdict(e) for e in self.errors],
        'changes': self.changes,
        'managers': self.managers,
    }

  @property
  def exit_code(self) -> int:
    """0: everything scanned and nothing remains (with --fix: every manager
    runs on orbax_compat); 1: v0 uses remain (with --fix: actions for the user
    remain); 2: files that could not be scanned (or none could), and nothing
    else remains. Imports in files with no manager never count."""
    if self.actions or (self.mode != 'fix' and self.remaining):
      return EXIT_FINDINGS
    return EXIT_ERRORS if self.errors else EXIT_CLEAN
