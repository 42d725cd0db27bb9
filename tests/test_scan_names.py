"""orbax.checkpoint's public names, as the scanner's data, are the installed Orbax's."""

import pkgutil

import orbax.checkpoint as ocp

import orbax_compat
from orbax_compat.mapping import orbax_names


def test_public_names_are_the_installed_orbaxs():
  assert orbax_names.PUBLIC_NAMES == {n for n in dir(ocp) if not n.startswith('_')}


def test_shim_names_are_orbax_compats_own():
  assert orbax_names.SHIM_NAMES == set(orbax_compat._OWN)  # pylint: disable=protected-access


def test_shim_submodules_are_orbax_compats():
  """`from orbax_compat import X` imports the submodule orbax_compat.X when there is one."""
  assert orbax_names.SHIM_SUBMODULES == {m.name for m in pkgutil.iter_modules(
      orbax_compat.__path__) if not m.name.startswith('_')}
  assert not orbax_names.fixable_name('handlers')  # Orbax's and orbax_compat's differ.


def test_fixable_means_from_orbax_compat_gives_the_same_object():
  """What the scanner decides from data is what the runtime does."""
  import orbax_compat.handlers  # noqa: F401  (a submodule named like one of Orbax's)
  for name in sorted(orbax_names.PUBLIC_NAMES):
    if orbax_names.fixable_name(name) and name != 'CheckpointManager':
      namespace: dict = {}
      exec(f'from orbax_compat import {name} as value', namespace)  # pylint: disable=exec-used
      assert namespace['value'] is getattr(ocp, name), name
  assert orbax_names.fixable_name('CheckpointManager')
  assert not orbax_names.fixable_name('no_such_name')
  assert not orbax_names.fixable_name('__version__')


def test_submodule_reexports_are_the_installed_orbaxs():
  """`from orbax.checkpoint.checkpoint_manager import CheckpointManager, X` swaps to
  `from orbax_compat import ...` only for names that are the top-level objects."""
  import importlib
  for module, names in orbax_names.SUBMODULE_REEXPORTS.items():
    sub = importlib.import_module(module)
    assert sub.CheckpointManager is ocp.CheckpointManager
    assert names == {n for n in dir(sub) if not n.startswith('_')
                     and getattr(ocp, n, None) is getattr(sub, n)}, module
