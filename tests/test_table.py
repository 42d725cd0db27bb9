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
  for row in table.ROWS:
    member = inspect.getattr_static(orbax_compat.CheckpointManager, row.member)
    if row.kind == 'property':
      member = member.fget
    if row.kind in ('method', 'init'):
      assert member.__wrapped__ is row.adapter
      v0 = inspect.signature(getattr(ocp.CheckpointManager, row.member))
      shim = inspect.signature(member)
      assert list(shim.parameters)[1:] == list(v0.parameters)[1:], row.member
      for name in list(v0.parameters)[1:]:
        assert shim.parameters[name].default == v0.parameters[name].default, (row.member, name)
