"""orbax.checkpoint's public names, as the scanner's data, are the installed Orbax's."""

import orbax.checkpoint as ocp

import orbax_compat
from orbax_compat.mapping import orbax_names


def test_public_names_are_the_installed_orbaxs():
  assert orbax_names.PUBLIC_NAMES == {n for n in dir(ocp) if not n.startswith('_')}


def test_shim_names_are_orbax_compats_own():
  assert orbax_names.SHIM_NAMES == set(orbax_compat._OWN)  # pylint: disable=protected-access


def test_fixable_means_from_orbax_compat_gives_the_same_object():
  """What the scanner decides from data is what the runtime does."""
  for name in sorted(orbax_names.PUBLIC_NAMES):
    if orbax_names.fixable_name(name) and name != 'CheckpointManager':
      assert getattr(orbax_compat, name) is getattr(ocp, name), name
  assert orbax_names.fixable_name('CheckpointManager')
  assert not orbax_names.fixable_name('no_such_name')
  assert not orbax_names.fixable_name('__version__')
