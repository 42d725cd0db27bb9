"""`import orbax_compat as ocp` stands in for `import orbax.checkpoint as ocp`."""

import subprocess
import sys

import orbax.checkpoint
import pytest

import orbax_compat


def test_shim_manager_and_orbax_names():
  assert orbax_compat.CheckpointManager is not orbax.checkpoint.CheckpointManager
  for name in ('args', 'CheckpointManagerOptions', 'PyTreeCheckpointer', 'utils', 'test_utils',
               'StandardCheckpointer', 'checkpoint_utils', 'options', 'metadata'):
    assert getattr(orbax_compat, name) is getattr(orbax.checkpoint, name), name


def test_every_public_orbax_name_resolves():
  public = [n for n in dir(orbax.checkpoint) if not n.startswith('_')]
  for name in public:
    getattr(orbax_compat, name)
  assert set(public) <= set(dir(orbax_compat))


def test_unknown_name_is_attribute_error():
  with pytest.raises(AttributeError, match='no_such_thing'):
    orbax_compat.no_such_thing  # noqa: B018


def test_orbax_names_resolve_lazily():
  code = ('import orbax_compat as ocp; before = "PyTreeCheckpointer" in vars(ocp); '
          'ocp.PyTreeCheckpointer; print(before, "PyTreeCheckpointer" in vars(ocp))')
  out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True)
  assert out.stdout.split() == ['False', 'True']
