"""The table drives the manager, the notices and MIGRATION_TABLE.md."""

import inspect
import pathlib

import orbax.checkpoint as ocp

import orbax_compat
from orbax_compat import table

ROOT = pathlib.Path(__file__).resolve().parent.parent
MEMBERS = ('directory', 'all_steps', 'latest_step', 'best_step', 'reload', 'reached_preemption',
           'should_save', 'delete', 'save', 'restore', 'item_metadata', 'metrics', 'metadata',
           'wait_until_finished', 'is_saving_in_progress', 'check_for_errors', 'close')


def test_migration_table_is_fresh():
  assert (ROOT / 'MIGRATION_TABLE.md').read_text() == table.render_markdown(), (
      'MIGRATION_TABLE.md is stale: run python -m orbax_compat table --write')


def test_migration_table_lists_every_member():
  text = (ROOT / 'MIGRATION_TABLE.md').read_text()
  for member in MEMBERS:
    assert f'`{table.BY_MEMBER[member].v0}`' in text, member


def test_every_public_v0_member_has_a_row():
  public = {n for n in dir(ocp.CheckpointManager) if not n.startswith('_')}
  assert public <= set(table.BY_MEMBER), public - set(table.BY_MEMBER)


def test_members_come_from_the_table_with_v0_signatures():
  """Each member reads like v0's: its signature, annotations and a PEP 702 message."""
  for row in table.ROWS:
    member = inspect.getattr_static(orbax_compat.CheckpointManager, row.member)
    if row.kind == 'property':
      member = member.fget
    if row.kind in ('method', 'init', 'property'):
      v0 = getattr(ocp.CheckpointManager, row.member)
      v0 = v0.fget if isinstance(v0, property) else v0
      assert inspect.signature(member) == inspect.signature(v0), row.member
      assert list(inspect.signature(member).parameters)[0] == 'self'
      assert member.__annotations__ == v0.__annotations__, row.member
      assert member.__deprecated__ == row.deprecation_message(), row.member
      assert member.__name__ == row.member


def test_table_command_line(tmp_path):
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top

  def run(*argv):
    return subprocess.run([sys.executable, '-m', 'orbax_compat', 'table', *argv],
                          capture_output=True, text=True, timeout=300)

  assert '--write' in run('--help').stdout and '--check' in run('--help').stdout
  ok = run('--check')
  assert ok.returncode == 0 and 'up to date' in ok.stdout
  stale = tmp_path / 'TABLE.md'
  stale.write_text('old')
  assert run('--check', '--path', str(stale)).returncode == 1
