"""The table drives the manager, the notices and MIGRATION_TABLE.md."""

import inspect
import pathlib

import orbax.checkpoint as ocp

import orbax_compat
from orbax_compat.mapping import forms
from orbax_compat.runtime import notices
from orbax_compat.tools import migration_table as table

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
    assert f'`{forms.BY_NAME[member].v0}`' in text, member


def test_every_public_v0_member_has_a_row():
  public = {n for n in dir(ocp.CheckpointManager) if not n.startswith('_')}
  assert public <= set(forms.BY_NAME), public - set(forms.BY_NAME)


def test_members_come_from_the_table_with_v0_signatures():
  """Each member reads like v0's: its signature, annotations and a PEP 702 message."""
  for row in forms.MEMBERS:
    member = inspect.getattr_static(orbax_compat.CheckpointManager, row.name)
    if row.kind == 'property':
      member = member.fget
    if row.kind in ('method', 'init', 'property'):
      v0 = getattr(ocp.CheckpointManager, row.name)
      v0 = v0.fget if isinstance(v0, property) else v0
      assert inspect.signature(member) == inspect.signature(v0), row.name
      assert list(inspect.signature(member).parameters)[0] == 'self'
      assert member.__annotations__ == v0.__annotations__, row.name
      assert member.__deprecated__ == notices.message(row), row.name
      assert member.__name__ == row.name


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
