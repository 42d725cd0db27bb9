"""Every CheckpointManagerOptions field: native v0 and the shim run alike.

Each case runs the same small loop (several saves with metrics, a restore,
close, a reopen) on `orbax.checkpoint.CheckpointManager` and on the shim and
compares decisions, steps, latest/best step, metrics, layout and, where a
case asks, file modes and callback counts (harness: tests/differential/).
A case for an option this release lacks is skipped, saying so.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import stat

from differential import NATIVE
from differential import Options
from differential import Rec
from differential import args
from differential import by_label
from differential import make_tree
from differential import scenario
import orbax.checkpoint as ocp
import pytest

import orbax_compat
from orbax_compat.mapping import options as mapping_options
from orbax_compat.runtime import options as option_map

LOSS = {0: 0.5, 1: 0.2, 2: 0.9, 3: 0.1, 4: 0.7}
policies = ocp.checkpoint_managers

pytestmark = pytest.mark.usefixtures('quiet_shim')


@dataclasses.dataclass
class Case:
  options: dict  # CheckpointManagerOptions kwargs (values may be factories).
  init_kw: dict = dataclasses.field(default_factory=dict)
  modes: bool = False  # Record file modes.
  before: object = None  # before(root): prepares the root.


def _modes(root):
  """Modes of the root's entries, their entries and item directories."""
  out = [('.', stat.S_IMODE(os.stat(root).st_mode))]
  for dirpath, dirnames, filenames in os.walk(root):
    rel_dir = os.path.relpath(dirpath, root)
    if rel_dir != '.' and rel_dir.count(os.sep) >= 1:
      continue  # Not below item directories (array files have hashed names).
    for name in dirnames + filenames:
      rel = os.path.normpath(os.path.join(rel_dir, name))
      out.append((rel, stat.S_IMODE(os.stat(os.path.join(dirpath, name)).st_mode)))
  return sorted(out)


def _stray_tmp_dir(root):
  (root / '9.orbax-checkpoint-tmp-1234').mkdir(parents=True)


CALLBACKS: list[int] = []

CASES = {
    'save_interval_steps': Case({'save_interval_steps': 2}),
    'max_to_keep': Case({'max_to_keep': 2}),
    'keep_time_interval': Case({
        'max_to_keep': 1, 'keep_time_interval': datetime.timedelta(hours=1)}),
    'keep_period': Case({'max_to_keep': 1, 'keep_period': 2}),
    'best_fn': Case({'best_fn': lambda mt: mt['loss'], 'best_mode': 'min',
                     'max_to_keep': 2}),
    'best_mode': Case({'best_fn': lambda mt: mt['loss'], 'best_mode': 'max',
                       'max_to_keep': 2}),
    'keep_checkpoints_without_metrics': Case({
        'best_fn': lambda mt: mt['loss'], 'max_to_keep': 1,
        'keep_checkpoints_without_metrics': False}),
    'step_prefix': Case({'step_prefix': 'ckpt'}),
    'step_format_fixed_length': Case({'step_format_fixed_length': 4}),
    'step_name_format': Case({
        'step_name_format': lambda: ocp.step.standard_name_format(step_prefix='x')}),
    'create': Case({'create': False}),
    'cleanup_tmp_directories': Case({'cleanup_tmp_directories': True},
                                    before=_stray_tmp_dir),
    'save_on_steps': Case({'save_interval_steps': 3, 'save_on_steps': [1, 4]}),
    'single_host_load_and_broadcast': Case(
        {'single_host_load_and_broadcast': True}),
    'todelete_subdir': Case({'todelete_subdir': 'trash', 'max_to_keep': 2}),
    # GCS only: deleting a local step with it fails (v0 logs, v1 raises).
    'todelete_full_path': Case({'todelete_full_path': 'trash'}),
    'enable_background_delete': Case({'enable_background_delete': True,
                                      'max_to_keep': 2}),
    'num_deletion_threads': Case({'num_deletion_threads': 2, 'max_to_keep': 2}),
    'read_only': Case({'read_only': True}),
    'enable_async_checkpointing': Case({'enable_async_checkpointing': False}),
    'async_options': Case({'async_options': lambda: ocp.options.AsyncOptions(
        timeout_secs=60, post_finalization_callback=lambda: CALLBACKS.append(1),
        create_directories_asynchronously=False)}),
    'multiprocessing_options': Case({
        'multiprocessing_options': lambda: ocp.options.MultiprocessingOptions(
            primary_host=None, barrier_sync_key_prefix='p')}, init_kw={
                'item_handlers': ocp.StandardCheckpointHandler()}),
    'should_save_fn': Case({'should_save_fn': lambda s, last: s % 2 == 1}),
    'file_options': Case({'file_options': lambda: ocp.options.FileOptions(
        path_permission_mode=0o750)}, modes=True),
    'atomicity_options': Case({'atomicity_options': lambda: ocp.options.AtomicityOptions(
        mode=ocp.options.AtomicityMode.COMMIT_FILE)}),
    'save_root_metadata': Case({'save_root_metadata': False},
                               init_kw={'metadata': {'owner': 'me'}}),
    'temporary_path_class': Case({
        'temporary_path_class': ocp.path.atomicity.CommitFileTemporaryPath}),
    'save_decision_policy': Case({
        'save_decision_policy': lambda: policies.FixedIntervalPolicy(2)}),
    'preservation_policy': Case({
        'preservation_policy': lambda: policies.LatestN(n=2)}),
    'prevent_write_metrics': Case({
        'prevent_write_metrics': True, 'best_fn': lambda mt: mt['loss'],
        'best_mode': 'min', 'max_to_keep': 2}),
    'enable_should_save_is_saving_in_progress_check': Case({
        'enable_should_save_is_saving_in_progress_check': False,
        'save_decision_policy': lambda: policies.ContinuousCheckpointingPolicy()}),
    'enable_per_process_directory_creation': Case({
        'enable_per_process_directory_creation': True,
        'multiprocessing_options': lambda: ocp.options.MultiprocessingOptions(
            primary_host=None)}, init_kw={
                'item_handlers': ocp.StandardCheckpointHandler()}),
    'lightweight_initialize': Case({'lightweight_initialize': True,
                                    'best_fn': lambda mt: mt['loss']}),
    'should_keep_fn': Case({'should_keep_fn': lambda step: step in (0, 3),
                            'max_to_keep': 1}),
}

# This Orbax's option fields, and the fields other supported releases have or
# lack (with the releases that have them).
FIELDS = {f.name for f in dataclasses.fields(Options)}
RELEASE_FIELDS = {
    'should_keep_fn': '0.12.0-0.12.1',
    'num_deletion_threads': '0.12.1+',
    'atomicity_options': '0.12.3+',
}


def _options(case: Case):
  kw = {}
  for k, v in case.options.items():
    is_factory = callable(v) and getattr(v, '__name__', '') == '<lambda>' and (
        k not in ('best_fn', 'should_save_fn', 'should_keep_fn'))
    kw[k] = v() if is_factory else v
  return Options(**kw)


def _init_kw(case: Case, cls):
  kw = dict(case.init_kw)
  if 'item_handlers' in kw:  # A fresh handler per manager.
    kw['item_handlers'] = type(kw['item_handlers'])()
  return kw


def _loop(case: Case):
  def scenario(cls, root):
    CALLBACKS.clear()
    rec = Rec(root)
    if case.before is not None:
      case.before(root)
    m = rec.manager('init', cls, options=_options(case), **_init_kw(case, cls))
    if m is None:
      rec.layout('after failed init')
      return rec.obs
    for s in range(5):
      rec.call(f'should_save({s})', m.should_save, s)
      rec.call(f'save({s})', m.save, s, args=args.StandardSave(make_tree(s)),
               metrics={'loss': LOSS[s]})
      rec.call(f'wait {s}', m.wait_until_finished)
      rec.call(f'all_steps after {s}', m.all_steps)
    rec.call('latest_step', m.latest_step)
    rec.call('best_step', m.best_step)
    for s in m.all_steps():
      rec.call(f'metrics({s})', m.metrics, s)
    latest = m.latest_step()
    if latest is not None:
      rec.call('restore latest', m.restore, latest)
    rec.call('root metadata', lambda: m.metadata().custom_metadata)
    rec.call('close', m.close)
    rec.value('post-finalization callbacks', len(CALLBACKS))
    rec.layout('end')
    if case.modes:
      rec.value('modes', _modes(root))
    m2 = rec.manager('reopen', cls, options=_options(case),
                     **_init_kw(case, cls))
    if m2 is not None:
      rec.call('reopen all_steps', m2.all_steps)
      rec.call('reopen best_step', m2.best_step)
      rec.call('close 2', m2.close)
    return rec.obs

  return scenario


def test_cases_cover_every_option_field():
  assert FIELDS - set(CASES) == set(), 'a field of this Orbax has no case'
  assert set(CASES) - FIELDS <= set(RELEASE_FIELDS), (
      'a case is for a field no supported release has')


def test_option_rows_cover_every_option_field():
  rows = [r.field for r in mapping_options.OPTIONS if '.' not in r.field]
  assert len(rows) == len(set(rows))
  assert FIELDS - set(rows) == set(), 'a field of this Orbax has no row'
  for row in mapping_options.OPTIONS:
    if '.' in row.field:
      continue  # A sub-field: its group is a field.
    if row.field not in FIELDS:  # Another release's field: the row says which.
      assert row.field in RELEASE_FIELDS, row.field
      assert RELEASE_FIELDS[row.field].rstrip('+').split('-')[0] in row.note, row


def _v1_lacks(field: str) -> str | None:
  """Why v1 of this Orbax cannot express the option of this field's case."""
  if field == 'temporary_path_class' and not (
      option_map.ATOMICITY or option_map.V1_TEMPORARY_PATH_CLASS):
    return 'v1 of this release takes no temporary path class (0.12.1-0.12.2)'
  return None


def _not_here(field: str) -> str | None:
  """Why this Orbax cannot run the case of `field` (None: it can)."""
  if field not in FIELDS:
    return (f'orbax-checkpoint {ocp.__version__} has no option {field} '
            f'(releases {RELEASE_FIELDS[field]})')
  if _v1_lacks(field):
    return f'{_v1_lacks(field)}: see test_option_v1_lacks_is_refused'
  return None


for _field, _case in sorted(CASES.items()):
  scenario(_loop(_case), name=f'option-{_field}', skip=_not_here(_field))


# --- Bad input ----------------------------------------------------------------


def _bad(field, value):
  def make():
    opts = Options()
    setattr(opts, field, value)  # Options itself does not check types.
    return opts
  return make


BAD = {
    'file_options': _bad('file_options', 'rw'),
    'async_options': _bad('async_options', 3),
    'multiprocessing_options': _bad('multiprocessing_options', 'host0'),
    'best_mode': _bad('best_mode', 'median'),
    'preservation_policy': lambda: Options(
        max_to_keep=1, preservation_policy=policies.LatestN(n=1)),
    'post_finalization_callback without async': lambda: Options(
        enable_async_checkpointing=False,
        async_options=ocp.options.AsyncOptions(
            post_finalization_callback=lambda: None)),
}


def _native_refuses_it(native, shim):
  del shim
  assert by_label(native)['init'][0] == 'raises', 'native accepts it: not a bad input'


@scenario(params={name: BAD[name] for name in sorted(BAD)}, check=_native_refuses_it)
def bad_option(cls, root, options):
  rec = Rec(root)
  m = rec.manager('init', cls, options=options())
  if m is not None:
    rec.call('close', m.close)
  rec.layout('after')
  return rec.obs


@pytest.mark.parametrize('field', [
    'file_options', 'async_options', 'atomicity_options',
    'multiprocessing_options'])
def test_bad_option_type_message_names_field(field, tmp_path):
  if field not in FIELDS:
    pytest.skip(f'orbax-checkpoint {ocp.__version__} has no option {field}')
  # v0 accepts a bad atomicity_options until its first save; the shim
  # refuses it at construction (v1 copies its options into a Context then).
  bad = BAD.get(field) or _bad(field, 'commit')
  with pytest.raises(AttributeError, match=field):
    orbax_compat.CheckpointManager(tmp_path / 'r', options=bad())
  assert not (tmp_path / 'r').exists()


class _MyTemporaryPath(ocp.path.atomicity.AtomicRenameTemporaryPath):
  pass


REFUSED = {
    'async_options.barrier_sync_fn': lambda: Options(
        async_options=ocp.options.AsyncOptions(
            barrier_sync_fn=lambda *a, **k: None)),
    'multiprocessing_options.active_processes': lambda: Options(
        create=False, multiprocessing_options=ocp.options.MultiprocessingOptions(
            active_processes={0})),
    'temporary_path_class': lambda: Options(
        temporary_path_class=_MyTemporaryPath),
}


@pytest.mark.parametrize('field', sorted(REFUSED))
def test_impossible_option_is_refused_at_construction(field, tmp_path):
  if field == 'temporary_path_class' and option_map.V1_TEMPORARY_PATH_CLASS:
    pytest.skip('v1 of orbax-checkpoint 0.12.0 takes any temporary path class: '
                'see test_custom_temporary_path_class_where_v1_takes_one')
  root = tmp_path / 'r'
  with pytest.raises(NotImplementedError, match=field.replace('.', r'\.')):
    orbax_compat.CheckpointManager(root, options=REFUSED[field]())
  assert not root.exists()


# 0.12.0's v1 takes a TemporaryPath class: a custom one runs as in v0.
scenario(_loop(Case({'temporary_path_class': _MyTemporaryPath})),
         name='custom_temporary_path_class_where_v1_takes_one',
         skip=None if option_map.V1_TEMPORARY_PATH_CLASS else (
             'v1 of this Orbax takes no temporary path class (0.12.0 only)'))


def test_option_v1_lacks_is_refused(tmp_path):
  """An option this release's v0 has and its v1 cannot express is refused
  at construction, naming the release that adds it, with nothing written."""
  if not _v1_lacks('temporary_path_class'):
    pytest.skip(f'v1 of orbax-checkpoint {ocp.__version__} expresses every '
                'option of its v0')
  root = tmp_path / 'r'
  with pytest.raises(NotImplementedError,
                     match=r'temporary_path_class.*orbax-checkpoint 0\.12\.3'):
    orbax_compat.CheckpointManager(root, options=_options(CASES['temporary_path_class']))
  assert not root.exists()
  # v0 of the release saves with the class.
  with NATIVE(tmp_path / 'v0', options=_options(CASES['temporary_path_class'])) as m:
    assert m.save(0, args=args.StandardSave(make_tree(0)))
  assert (tmp_path / 'v0' / '0' / 'commit_success.txt').exists()


# --- Item directories ---------------------------------------------------------


def _tree_with_modes(root):
  """Every path under the root with its mode (array chunk names collapsed)."""
  out = []
  for dirpath, dirnames, filenames in os.walk(root):
    for name in dirnames + filenames:
      path = os.path.join(dirpath, name)
      rel = os.path.relpath(path, root)
      if os.path.basename(dirpath) == 'd':  # Content-hashed chunk files.
        rel = os.path.join(os.path.dirname(rel), '<chunk>')
      out.append((rel, stat.S_IMODE(os.stat(path).st_mode)))
  return sorted(set(out))


ITEM_DIRECTORY_OPTIONS = {
    'file_options': lambda: Options(
        file_options=ocp.options.FileOptions(path_permission_mode=0o750)),
    'file_options, sync': lambda: Options(
        enable_async_checkpointing=False,
        file_options=ocp.options.FileOptions(path_permission_mode=0o750)),
    'temporary_path_class': lambda: Options(
        temporary_path_class=ocp.path.atomicity.CommitFileTemporaryPath),
    'atomicity_options': lambda: Options(
        atomicity_options=ocp.options.AtomicityOptions(
            mode=ocp.options.AtomicityMode.COMMIT_FILE)),
}


def _item_directories(cls, root, case):
  """Every file and mode under the root, as this release's v0 writes them.

  v0 before 0.12.3 makes item directories without the manager's
  temporary_path_class, and without its file_options unless given item
  handlers; from 0.12.3 with both.
  """
  name, form = case
  kw = {}
  if form == 'item_handlers':
    kw['item_handlers'] = {'x': ocp.StandardCheckpointHandler(),
                           'j': ocp.JsonCheckpointHandler()}
  elif form == 'handler_registry':
    registry = ocp.handlers.DefaultCheckpointHandlerRegistry()
    registry.add('x', args.StandardSave, ocp.StandardCheckpointHandler())
    registry.add('x', args.StandardRestore, ocp.StandardCheckpointHandler())
    kw['handler_registry'] = registry
  rec = Rec(root)
  m = rec.manager('init', cls, options=ITEM_DIRECTORY_OPTIONS[name](), **kw)
  for step in (0, 1):
    items = {'x': args.StandardSave(make_tree(step))}
    if form != 'handler_registry':
      items['j'] = args.JsonSave({'step': step})
    rec.call(f'save({step})', m.save, step, args=args.Composite(**items))
  rec.call('close', m.close)
  rec.value('files and modes', _tree_with_modes(root))
  return rec.obs


for _name in sorted(ITEM_DIRECTORY_OPTIONS):
  _field = _name.split(',')[0]
  scenario(_item_directories, name=f'item_directories-{_name}',
           params={form: (_name, form) for form in ('args', 'item_handlers', 'handler_registry')},
           skip=(f'orbax-checkpoint {ocp.__version__} has no option {_field}'
                 if _field not in FIELDS else _v1_lacks(_field)))
