"""The mapping table: one row per v0 CheckpointManager member.

Everything else reads it: `CheckpointManager` gets its members from it, the
deprecation notices are built from it, `MIGRATION_TABLE.md` is generated from it
(`python -m orbax_compat table --write`), and so are the scanner's patterns.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
import dataclasses
import pathlib
import sys

from orbax_compat import adapters as a
from orbax_compat import option_map as options_lib

STATUSES = ('direct', 'adapted', 'emulated', 'unsupported-in-v1')


@dataclasses.dataclass(frozen=True)
class Row:
  """One v0 member: what it was, what replaces it, and who performs it."""

  member: str
  v0: str  # v0 signature, as users call it.
  v1: str  # The v1 replacement, as users should write it.
  adapter: Callable
  status: str
  note: str = ''
  kind: str = 'method'  # method | property | init | protocol (no notice)

  def __post_init__(self):
    assert self.status in STATUSES, self.status

  def deprecation_message(self) -> str:
    call = self.v0 if self.kind == 'init' else f'CheckpointManager.{self.v0}'
    text = (
        f'{call} is Orbax\'s legacy v0 API (running on v1 through'
        f' orbax_compat); replace it with: {self.v1}'
    )
    return f'{text} ({self.note})' if self.note else text


ROWS = (
    Row('__init__', 'CheckpointManager(directory, options=..., metadata=...)',
        'ocp.training.Checkpointer(directory, save_decision_policy=..., '
        'preservation_policy=..., step_name_format=..., custom_metadata=...)',
        a.init, 'adapted', 'options become v1 policies; see the options table',
        kind='init'),
    Row('directory', 'directory', 'ckptr.directory', a.directory, 'direct',
        kind='property'),
    Row('all_steps', 'all_steps(read=False)',
        '[c.step for c in ckptr.checkpoints]', a.all_steps, 'adapted',
        'read=True: ckptr.reload() first'),
    Row('latest_step', 'latest_step()',
        'ckptr.latest.step if ckptr.latest else None', a.latest_step, 'adapted'),
    Row('best_step', 'best_step()',
        'max(ckptr.checkpoints, key=lambda c: best_fn(c.metrics)).step',
        a.best_step, 'emulated', 'v1 keeps metrics per checkpoint; the best is '
        'computed'),
    Row('reload', 'reload()', 'ckptr.reload()', a.reload, 'direct'),
    Row('reached_preemption', 'reached_preemption(step)',
        'save_decision_policies.PreemptionCheckpointingPolicy() in the '
        'Checkpointer\'s save_decision_policy', a.reached_preemption,
        'unsupported-in-v1', 'answered through JAX\'s preemption sync point, as v0'),
    Row('should_save', 'should_save(step)', 'ckptr.should_save(step)',
        a.should_save, 'direct', 'read_only: always False, as v0'),
    Row('delete', 'delete(step)', 'ckptr.delete(step)', a.delete, 'direct'),
    Row('save', 'save(step, args=..., metrics=..., force=..., custom_metadata=...)',
        'ckptr.save_checkpointables_async(step, {name: tree}, metrics=..., '
        'force=..., custom_metadata=...)  # or ckptr.save(step, tree)',
        a.save, 'adapted', 'v0 args become checkpointables; a single item is '
        'stored under "default"'),
    Row('restore', 'restore(step, args=...)',
        'ckptr.load_checkpointables(step, {name: abstract_tree})  '
        '# or ckptr.load(step, abstract_tree)',
        a.restore, 'adapted', 'returns the tree, or an args.Composite for '
        'several items, as v0'),
    Row('item_metadata', 'item_metadata(step)',
        'ckptr.checkpointables_metadata(step).metadata', a.item_metadata,
        'adapted', 'v0 metadata types'),
    Row('metrics', 'metrics(step)', 'ckptr.metadata(step).metrics', a.metrics,
        'adapted'),
    Row('metadata', 'metadata(step=None)',
        'ckptr.checkpointables_metadata(step)  # ckptr.root_metadata() for None',
        a.metadata, 'adapted', 'returns v0 StepMetadata / RootMetadata'),
    Row('wait_until_finished', 'wait_until_finished()',
        'ckptr.wait()  # or response.result() of save_*_async',
        a.wait_until_finished, 'adapted'),
    Row('is_saving_in_progress', 'is_saving_in_progress()',
        'ckptr.is_saving_in_progress()', a.is_saving_in_progress, 'direct'),
    Row('check_for_errors', 'check_for_errors()',
        'response.result() of save_*_async', a.check_for_errors, 'emulated',
        'v0 never blocks here'),
    Row('close', 'close()', 'ckptr.close()', a.close, 'direct'),
    Row('__enter__', 'with CheckpointManager(...) as mngr',
        'with ocp.training.Checkpointer(...) as ckptr', a.enter, 'direct',
        kind='protocol'),
    Row('__exit__', '(end of with block)', '(end of with block)', a.exit_,
        'direct', kind='protocol'),
)
BY_MEMBER = {row.member: row for row in ROWS}


def _md_cell(text: str) -> str:
  return text.replace('|', '\\|')


def render_markdown() -> str:
  """MIGRATION_TABLE.md, from ROWS and options.OPTION_ROWS."""
  lines = [
      '# Migrating from v0 CheckpointManager to v1 training.Checkpointer',
      '',
      '<!-- Generated by `python -m orbax_compat table --write`; do not edit. -->',
      '',
      '`ckptr` is an `orbax.checkpoint.experimental.v1.training.Checkpointer`.',
      'Status: *direct* (same call), *adapted* (v1 call, reshaped), *emulated*',
      '(orbax_compat computes it), *unsupported-in-v1* (no v1 equivalent).',
      '',
      '## Members',
      '',
      '| v0 | v1 replacement | status | note |',
      '|---|---|---|---|',
  ]
  for row in ROWS:
    lines.append(
        f'| `{_md_cell(row.v0)}` | `{_md_cell(row.v1)}` | {row.status} | '
        f'{_md_cell(row.note)} |'
    )
  lines += [
      '',
      '## CheckpointManagerOptions',
      '',
      '| option | v1 equivalent | note |',
      '|---|---|---|',
  ]
  for opt in options_lib.OPTION_ROWS:
    lines.append(
        f'| `{opt.field}` | `{_md_cell(opt.v1)}` | {_md_cell(opt.note)} |'
    )
  return '\n'.join(lines) + '\n'


DEFAULT_PATH = pathlib.Path(__file__).resolve().parent.parent / 'MIGRATION_TABLE.md'


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog='python -m orbax_compat table')
  parser.add_argument('--write', action='store_true', help='write the file')
  parser.add_argument('--check', action='store_true', help='fail if stale')
  parser.add_argument('--path', type=pathlib.Path, default=DEFAULT_PATH)
  ns = parser.parse_args(argv)
  text = render_markdown()
  if ns.write:
    ns.path.write_text(text)
    print(f'wrote {ns.path}')
  elif ns.check:
    if not ns.path.exists() or ns.path.read_text() != text:
      print(f'{ns.path} is stale: run python -m orbax_compat table --write')
      return 1
  else:
    sys.stdout.write(text)
  return 0


if __name__ == '__main__':
  sys.exit(main())
