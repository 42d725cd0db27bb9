"""docs/compatibility.md's "Known differences from native v0", each pinned on both sides.

Every bullet of that README section names one deviation the shim keeps on
purpose, with v0's behaviour beside it. Each has a test here (or elsewhere,
named in `PINNED`) that runs native v0 and the shim and asserts both
behaviours, so a change on either side fails a test, and
`test_readme_lists_exactly_the_pinned_differences` keeps the README list and
the tests one to one.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import pathlib
import re
import threading
import warnings

from differential import NATIVE
from differential import Options
from differential import args
from differential import json_doc
from etils import epath
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

import orbax_compat
from orbax_compat.runtime import subclassing

SHIM = orbax_compat.CheckpointManager
README = pathlib.Path(__file__).resolve().parent.parent / 'docs' / 'compatibility.md'

pytestmark = pytest.mark.usefixtures('quiet_shim')

# A phrase of each README bullet -> the test that pins it ('module::test').
PINNED = {
    '`PyTreeRestore(item)` (or legacy `restore(step, items=...)`':
        'test_metadata_logging::test_pytree_restore_with_item_warns_in_v0_only',
    'A subclass overriding a refused v0 hook':
        'test_known_differences::test_subclass_refused_and_warned_hooks',
    "A subclass's `_finalize_checkpoint` runs in v1's finalize thread":
        'test_known_differences::test_subclass_finalize_thread_and_checkpoints_attribute',
    'Two differently configured instances':
        'test_known_differences::test_two_configured_instances_for_one_item',
    'A save v0 refuses for its args':
        'test_known_differences::test_refused_save_writes_nothing',
    'The jax.Array `type_handlers.ArrayHandler` registered globally':
        'test_known_differences::test_primary_host_none_array_files',
    'A user-written `AsyncCheckpointHandler` without registered args':
        'test_known_differences::test_async_handler_without_args_in_item_handlers',
    'with item name `None` and a user-written handler':
        'test_known_differences::test_handler_registry_default_entry_instance',
    'An item named `metrics`':
        'test_differential::test_item_named_metrics_is_refused_cleanly',
    '`legacy_transform_fn` gets the `ParamInfo`s':
        'test_known_differences::test_legacy_transform_fn_param_infos',
    'whose `_METADATA` file is missing':
        'test_known_differences::test_pytree_without_metadata_file_with_restore_args',
    'what older or damaged steps still hold':
        'test_known_differences::test_bare_restore_reads_damaged_steps',
    'With `item_names` and no handlers':
        'test_known_differences::test_item_names_without_handlers_bare_restore',
    '`options` given as a dict':
        'test_known_differences::test_options_as_dict',
    'A non-integer step':
        'test_known_differences::test_float_step',
    '`item_handlers` values that are not':
        'test_known_differences::test_item_handlers_not_handlers',
    '`handler_registry` that is not':
        'test_known_differences::test_handler_registry_not_a_registry',
    'atomicity_options` of the wrong type':
        'test_known_differences::test_atomicity_options_of_wrong_type',
    'a Standard item and a PyTree item in one call':
        'test_known_differences::test_mixed_standard_and_pytree_sharding_warnings',
    '`delete(step)` of the step a save is still writing':
        'test_faults::test_delete_of_the_step_being_saved',
    '`save` after `close()`': 'test_faults::test_save_after_close',
    'An empty `Composite()`': 'test_faults::test_empty_composite',
    "Items v0's Standard/PyTree handlers refuse":
        'test_faults::test_refused_items_write_nothing',
    'After a synchronous save fails': 'test_faults::test_sync_save_error_leaves_no_save_in_progress',
    'A synchronous save that fails on a full disk':
        'test_filesystem_faults::full_disk_sync',
    'Metrics of a type that cannot carry a separate truth value':
        'test_faults::test_metrics_without_a_separate_truth_value',
    '`RestoreArgs(restore_type=MyType)`, where `MyType` has a user\'s own TypeHandler':
        'test_type_handlers::test_restore_type_of_a_user_type_for_another_saved_type',
    "A handler's own `type_handler_registry` restores only":
        'test_type_handlers::test_restore_with_a_registry_that_lacks_a_recorded_type',
    'On orbax-checkpoint 0.12.1 and 0.12.2, `temporary_path_class`':
        'test_options::test_option_v1_lacks_is_refused',
}


def _known_differences() -> list[str]:
  text = README.read_text()
  section = text.split('### Known differences from native v0', 1)[1]
  section = re.split(r'\n#+ ', section, maxsplit=1)[0]
  bullets, current = [], None
  for line in section.splitlines():
    if line.startswith('- '):
      current = [line[2:]]
      bullets.append(current)
    elif line.startswith('  ') and current is not None:
      current.append(line.strip())
    elif not line.strip():
      current = None
  return [' '.join(b) for b in bullets]


def test_readme_lists_exactly_the_pinned_differences():
  bullets = _known_differences()
  for bullet in bullets:
    matches = [p for p in PINNED if p in bullet]
    assert len(matches) == 1, f'README bullet pinned by {matches}, not one test: {bullet}'
  for phrase, test in PINNED.items():
    assert sum(phrase in b for b in bullets) == 1, f'no README bullet for {phrase!r}'
    module, name = test.split('::')
    assert callable(getattr(importlib.import_module(module), name, None)), test


def _outcome(fn):
  try:
    return ('returns', fn())
  except Exception as e:  # pylint: disable=broad-except
    return ('raises', type(e), str(e))


def _files(root) -> list[str]:
  root = pathlib.Path(root)
  if not root.exists():
    return []
  return sorted(str(p.relative_to(root)) for p in root.rglob('*'))


# --------------------------------------------------------------------------
# User-written handlers
# --------------------------------------------------------------------------


class _MyJsonHandler(ocp.handlers.JsonCheckpointHandler):
  """A user's AsyncCheckpointHandler; its args are not registered."""


# Native v0's refused save leaves its step-directory signalling thread
# waiting 300 s, which holds the process at exit: run in a child that reports
# the outcome and leaves without waiting.
_UNREGISTERED_ARGS = """
import os, sys
sys.path.insert(0, sys.argv[1])
from test_known_differences import _MyJsonHandler, _outcome, NATIVE, SHIM, json_doc
cls = {'native': NATIVE, 'shim': SHIM}[sys.argv[3]]
m = cls(sys.argv[2], item_handlers={'mine': _MyJsonHandler()})
result = _outcome(lambda: (m.save(0, {'mine': json_doc()}), m.wait_until_finished(),
                           dict(m.restore(0))))
print(repr(result[:2] if result[0] == 'raises' else result), flush=True)
os._exit(0)
"""


def test_async_handler_without_args_in_item_handlers(tmp_path):
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top

  results = {}
  for side in ('native', 'shim'):
    proc = subprocess.run(
        [sys.executable, '-c', _UNREGISTERED_ARGS, os.path.dirname(__file__),
         str(tmp_path / side), side],
        capture_output=True, text=True, timeout=240,
        env=dict(os.environ, ORBAX_COMPAT_WARNINGS='off'))
    assert proc.returncode == 0, proc.stderr[-3000:]
    results[side] = proc.stdout.strip().splitlines()[-1]
  assert results['native'] == "('raises', <class 'TypeError'>)", results['native']
  assert results['shim'] == repr(('returns', (True, None, {'mine': json_doc()})))


class _TaggedHandler(ocp.CheckpointHandler):
  """Writes its constructor's tag as a file name beside the item."""

  def __init__(self, tag: str = 'default-constructed'):
    self.tag = tag

  def save(self, directory, args):
    (epath.Path(directory) / f'{self.tag}.tag').write_text(json.dumps(args.item))

  def restore(self, directory, args=None):
    (path,) = epath.Path(directory).glob('*.tag')
    return json.loads(path.read_text())


@ocp.args.register_with_handler(_TaggedHandler, for_save=True)
@dataclasses.dataclass
class _TaggedSave(ocp.args.CheckpointArgs):
  item: dict


@ocp.args.register_with_handler(_TaggedHandler, for_restore=True)
@dataclasses.dataclass
class _TaggedRestore(ocp.args.CheckpointArgs):
  item: dict | None = None


def test_handler_registry_default_entry_instance(tmp_path):
  tags = {}
  for cls in (NATIVE, SHIM):
    registry = ocp.handlers.DefaultCheckpointHandlerRegistry()
    handler = _TaggedHandler('registered')
    registry.add(None, _TaggedSave, handler)
    registry.add(None, _TaggedRestore, handler)
    root = tmp_path / cls.__module__
    with cls(root, handler_registry=registry) as m:
      m.save(0, args=args.Composite(x=_TaggedSave({'a': 1})))
      m.wait_until_finished()
      assert m.restore(0, args=args.Composite(x=_TaggedRestore()))['x'] == {'a': 1}
    tags[cls] = sorted(p.name for p in (root / '0' / 'x').glob('*.tag'))
  assert tags[NATIVE] == ['registered.tag']
  assert tags[SHIM] == ['default-constructed.tag']


# --------------------------------------------------------------------------
# Restoring
# --------------------------------------------------------------------------


def _rename_with_infos(seen):
  def fn(item, structure, param_infos):
    del item
    seen.append(param_infos['a'].ts_context)
    return {'x': structure['a']}, {'x': param_infos['a']}
  return fn


def _missing_param(item, structure, param_infos):
  del item
  return {'x': structure['a']}, {'x': param_infos['a'].replace(name='nope')}


def test_legacy_transform_fn_param_infos(tmp_path):
  results = {}
  for cls in (NATIVE, SHIM):
    seen = []
    with cls(tmp_path / cls.__module__) as m:
      m.save(0, args=args.PyTreeSave({'a': np.arange(3)}))
      m.wait_until_finished()
      restored = m.restore(0, args=args.PyTreeRestore(
          {'x': 0}, legacy_transform_fn=_rename_with_infos(seen)))
      missing = _outcome(lambda m=m: m.restore(0, args=args.PyTreeRestore(
          {'x': 0}, legacy_transform_fn=_missing_param)))
    results[cls] = (restored['x'].tolist(), seen, missing)
  native, shim = results[NATIVE], results[SHIM]
  assert native[0] == shim[0] == [0, 1, 2]
  assert native[1] and native[1][0] is not None
  assert shim[1] == [None]
  assert native[2][:2] == shim[2][:2] == ('raises', ValueError)
  assert 'NOT_FOUND' in native[2][2]
  assert "'nope'" in shim[2][2] or 'nope' in shim[2][2]


def _save_and_drop(cls, root, save_args, *drop):
  with cls(root) as m:
    m.save(0, args=save_args)
    m.wait_until_finished()
  for name in drop:
    os.remove(root / '0' / name)


def test_pytree_without_metadata_file_with_restore_args(tmp_path):
  tree = {'j': jnp.arange(3), 'n': np.arange(2)}
  restore = args.PyTreeRestore(
      tree, restore_args=ocp.checkpoint_utils.construct_restore_args(tree))
  results = {}
  for cls in (NATIVE, SHIM):
    root = tmp_path / cls.__module__
    _save_and_drop(cls, root, args.PyTreeSave(tree), 'default/_METADATA')
    with cls(root) as m:
      results[cls] = _outcome(lambda m=m: m.restore(0, args=restore))
  assert results[NATIVE][0] == 'returns'
  assert np.asarray(results[NATIVE][1]['j']).tolist() == [0, 1, 2]
  assert results[SHIM][:2] == ('raises', FileNotFoundError)


def test_bare_restore_reads_damaged_steps(tmp_path):
  tree = {'j': jnp.arange(3), 'n': np.arange(2)}
  damage = {
      'no _METADATA': (args.StandardSave(tree), 'default/_METADATA'),
      'no _CHECKPOINT_METADATA': (args.Composite(s=args.StandardSave(tree)),
                                  '_CHECKPOINT_METADATA'),
  }
  for label, (save_args, drop) in damage.items():
    results = {}
    for cls in (NATIVE, SHIM):
      root = tmp_path / label.replace(' ', '_') / cls.__module__
      _save_and_drop(cls, root, save_args, drop)
      with cls(root) as m:
        results[cls] = _outcome(lambda m=m: m.restore(0))
    assert results[NATIVE][0] == 'raises', (label, results[NATIVE])
    assert results[NATIVE][1] in (ValueError, FileNotFoundError), label
    assert results[SHIM][0] == 'returns', (label, results[SHIM])
    restored = results[SHIM][1]
    restored = restored if label == 'no _METADATA' else restored['s']
    assert {k: np.asarray(v).tolist() for k, v in restored.items()} == {
        'j': [0, 1, 2], 'n': [0, 1]}, label


def test_item_names_without_handlers_bare_restore(tmp_path):
  results = {}
  for cls in (NATIVE, SHIM):
    root = tmp_path / cls.__module__
    with cls(root, item_names=('s', 'j')) as m:
      m.save(0, args=args.Composite(s=args.StandardSave({'a': np.arange(2)}),
                                    j=args.JsonSave(json_doc())))
    with cls(root, item_names=('s', 'j')) as m:
      results[cls] = _outcome(lambda m=m: m.restore(0))
  assert results[NATIVE][:2] == ('raises', ValueError)
  assert 'undetermined' in results[NATIVE][2]
  restored = results[SHIM][1]
  assert results[SHIM][0] == 'returns' and isinstance(restored, ocp.args.Composite)
  assert restored['j'] == json_doc() and restored['s']['a'].tolist() == [0, 1]


def test_mixed_standard_and_pytree_sharding_warnings(tmp_path):
  tree = {'j': jnp.arange(3), 'n': np.arange(2)}
  counts = {}
  for cls in (NATIVE, SHIM):
    root = tmp_path / cls.__module__
    with cls(root) as m:
      m.save(0, args=args.Composite(s=args.StandardSave(tree), p=args.PyTreeSave(tree)))
    with cls(root) as m, warnings.catch_warnings(record=True) as caught:
      warnings.simplefilter('always')
      m.restore(0)
    counts[cls] = sum('Sharding info not provided' in str(w.message) for w in caught)
  assert counts == {NATIVE: 1, SHIM: 2}  # One jax.Array leaf per item.


# --------------------------------------------------------------------------
# Bad input: clearer or earlier errors
# --------------------------------------------------------------------------


def test_options_as_dict(tmp_path):
  for cls, error in ((NATIVE, AttributeError), (SHIM, ValueError)):
    root = tmp_path / cls.__module__
    with pytest.raises(error) as raised:
      cls(root, options={'max_to_keep': 2})
    if cls is SHIM:
      assert '`options`' in str(raised.value)
    assert _files(root) == []


def test_float_step(tmp_path):
  results = {}
  for cls in (NATIVE, SHIM):
    root = tmp_path / cls.__module__
    with cls(root) as m:
      saved = _outcome(lambda m=m: m.save(5.0, args=args.StandardSave({'a': np.arange(2)})))
      m.wait_until_finished()
      should = _outcome(lambda m=m: m.should_save(7.0))
      listed = m.all_steps()
    with cls(root) as m:
      reopened = m.all_steps()
    step_dirs = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.exists() else []
    results[cls] = (saved[:2], should[:2], listed, reopened, step_dirs)
  assert results[NATIVE] == (('returns', True), ('returns', True), [5.0], [], ['5.0'])
  assert results[SHIM] == (('raises', TypeError), ('raises', TypeError), [], [], [])


def test_item_handlers_not_handlers(tmp_path):
  root = tmp_path / 'native'
  m = NATIVE(root, item_handlers={'a': 3})  # v0 accepts it here.
  with pytest.raises(ValueError):
    m.save(0, args=args.Composite(a=args.StandardSave({'x': 1})))
  with pytest.raises(AttributeError):
    m.close()
  for bad, argument in (({'a': 3}, r"item_handlers\['a'\]"), (5, '`item_handlers`')):
    root = tmp_path / f'shim_{type(bad).__name__}'
    with pytest.raises(ValueError, match=argument):
      SHIM(root, item_handlers=bad)
    assert _files(root) == []


def test_handler_registry_not_a_registry(tmp_path):
  with pytest.raises(AttributeError):
    NATIVE(tmp_path / 'native', handler_registry=object())
  with pytest.raises(ValueError, match='handler_registry'):
    SHIM(tmp_path / 'shim', handler_registry=object())
  assert _files(tmp_path / 'shim') == []


def _bad_atomicity():
  options = Options()
  options.atomicity_options = 'commit'  # Options itself does not check types.
  return options


def test_atomicity_options_of_wrong_type(tmp_path):
  if 'atomicity_options' not in {f.name for f in dataclasses.fields(Options)}:
    pytest.skip(f'orbax-checkpoint {ocp.__version__} has no atomicity_options (0.12.3+)')
  m = NATIVE(tmp_path / 'native', options=_bad_atomicity())  # v0 accepts it here.
  with pytest.raises(AttributeError):
    m.save(0, args=args.StandardSave({'a': np.arange(2)}))
  with pytest.raises(AttributeError, match='atomicity_options'):
    SHIM(tmp_path / 'shim', options=_bad_atomicity())
  assert _files(tmp_path / 'shim') == []


# --------------------------------------------------------------------------
# Subclasses
# --------------------------------------------------------------------------


def _save_one(m, step=0):
  m.save(step, args=args.StandardSave({'a': np.arange(2)}))
  m.wait_until_finished()


def test_subclass_refused_and_warned_hooks(tmp_path):
  calls = []

  def with_refused_hook(base):

    class Custom(base):

      def _get_write_step_directory(self, step, root_dir):
        calls.append('write directory')
        return super()._get_write_step_directory(step, root_dir)

    return Custom

  def with_warned_hook(base):

    class Custom(base):

      def _validate_args(self, items, args):
        calls.append('validate')
        return super()._validate_args(items, args)

    return Custom

  for define in (with_refused_hook, with_warned_hook):
    with define(NATIVE)(tmp_path / define.__name__) as m:
      _save_one(m)
  assert calls == ['write directory', 'validate']  # v0 calls both.
  with pytest.raises(TypeError, match='_get_write_step_directory'):
    with_refused_hook(SHIM)
  with pytest.warns(subclassing.UnhonouredHookWarning, match='_validate_args'):
    custom = with_warned_hook(SHIM)
  with custom(tmp_path / 'shim') as m:
    _save_one(m)
  assert calls == ['write directory', 'validate']  # Not called by the shim.


def test_subclass_finalize_thread_and_checkpoints_attribute(tmp_path):
  threads = {}
  for cls in (NATIVE, SHIM):

    class Custom(cls):  # pylint: disable=missing-class-docstring
      seen = []

      def _finalize_checkpoint(self, step):
        self.seen.append(threading.current_thread() is threading.main_thread())
        return super()._finalize_checkpoint(step)

    m = Custom(tmp_path / cls.__module__, options=Options(enable_async_checkpointing=False))
    m.save(0, args=args.StandardSave({'a': np.arange(2)}))
    threads[cls] = list(Custom.seen)  # Has run when `save` returns, on both.
    assignment = _outcome(lambda m=m: setattr(m, '_checkpoints', m._checkpoints))
    threads[cls].append(assignment[:2])
    m.close()
  assert threads[NATIVE] == [True, ('returns', None)]
  assert threads[SHIM] == [False, ('raises', AttributeError)]


# --------------------------------------------------------------------------
# Handler settings
# --------------------------------------------------------------------------


def _conflicting_registry():
  registry = ocp.handlers.DefaultCheckpointHandlerRegistry()
  registry.add('state', args.PyTreeSave, ocp.PyTreeCheckpointHandler(use_zarr3=True))
  registry.add('state', args.PyTreeRestore, ocp.PyTreeCheckpointHandler(use_zarr3=False))
  return registry


def test_two_configured_instances_for_one_item(tmp_path):
  tree = {'a': np.arange(3)}
  with NATIVE(tmp_path / 'native', handler_registry=_conflicting_registry()) as m:
    m.save(0, args=args.Composite(state=args.PyTreeSave(tree)))
    m.wait_until_finished()
    restored = m.restore(0, args=args.Composite(state=args.PyTreeRestore()))
  assert restored['state']['a'].tolist() == [0, 1, 2]
  metadata = json.loads((tmp_path / 'native' / '0' / 'state' / '_METADATA').read_text())
  assert metadata['use_zarr3'] is True  # Saved with the PyTreeSave instance.
  with pytest.raises(ValueError) as raised:
    SHIM(tmp_path / 'shim', handler_registry=_conflicting_registry())
  assert 'PyTreeSave' in str(raised.value) and 'PyTreeRestore' in str(raised.value)
  assert _files(tmp_path / 'shim') == []


@pytest.mark.parametrize('item_names,refused,error', [
    (('a',), args.Composite(zzz=args.StandardSave({'x': np.arange(2)})), ValueError),
    (('a', 'zzz'), args.Composite(a=args.StandardSave({'x': np.arange(2)}), zzz=None),
     ValueError),
    (('a', 'zzz'), args.Composite(zzz=args.JsonSave), AttributeError),
], ids=['item outside item_names', 'None for an unknown item', 'args class without item'])
def test_refused_save_writes_nothing(tmp_path, item_names, refused, error):
  inside = args.Composite(a=args.StandardSave({'x': np.arange(2)}))
  results = {}
  for cls in (NATIVE, SHIM):
    root = tmp_path / cls.__module__
    with cls(root, item_names=item_names, options=Options(enable_async_checkpointing=False)) as m:
      outcome = _outcome(lambda m=m: m.save(0, args=refused))
      m.wait_until_finished()
      left = sorted(p.name for p in root.iterdir())
      saved = _outcome(lambda m=m: m.save(0, args=inside))
      m.wait_until_finished()
    results[cls] = (outcome[:2], left, saved, sorted(p.name for p in root.iterdir()))
  assert results[NATIVE] == (('raises', error), ['0.orbax-checkpoint-tmp'],
                             ('returns', True), ['0'])
  assert results[SHIM] == (('raises', error), [], ('returns', True), ['0'])


def test_primary_host_none_array_files(tmp_path):
  """One process: v0's (0, 0) and v1's derived (None, None) write the same."""
  mp = ocp.options.MultiprocessingOptions(primary_host=None)
  tree = {'j': jnp.arange(4), 'n': np.arange(2)}
  results = {}
  for cls in (NATIVE, SHIM):
    root = tmp_path / cls.__module__
    with cls(root, item_handlers={
        'state': ocp.PyTreeCheckpointHandler(multiprocessing_options=mp)},
             options=Options(multiprocessing_options=mp)) as m:
      m.save(0, args=args.Composite(state=args.PyTreeSave(tree)))
      m.wait_until_finished()
      restored = m.restore(0, args=args.Composite(state=args.PyTreeRestore()))
    files = [re.sub(r'^d/[0-9a-f]+$', 'd/<data file>', f)
             for f in _files(root / '0' / 'state') if 'ocdbt.process' not in f]
    results[cls] = ({k: np.asarray(v).tolist() for k, v in restored['state'].items()}, files)
  assert results[NATIVE] == results[SHIM]
  assert results[NATIVE][0] == {'j': [0, 1, 2, 3], 'n': [0, 1]}
