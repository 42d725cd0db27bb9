"""Every CheckpointManagerOptions field: native v0 and the shim run alike.

Each case runs the same small loop (several saves with metrics, a restore,
close, a reopen) on `orbax.checkpoint.CheckpointManager` and on the shim and
compares decisions, steps, latest/best step, metrics, layout and, where a
case asks, file modes and callback counts (harness: tests/test_differential).
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import stat

import orbax.checkpoint as ocp
import pytest
from test_differential import NATIVE
from test_differential import Options
from test_differential import Rec
from test_differential import args
from test_differential import describe_differences
from test_differential import disk_layout
from test_differential import make_tree
from test_differential import run_scenario

import orbax_compat
from orbax_compat import option_map

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
}


def _options(case: Case):
  kw = {}
  for k, v in case.options.items():
    is_factory = callable(v) and getattr(v, '__name__', '') == '<lambda>' and (
        k not in ('best_fn', 'should_save_fn'))
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
  fields = {f.name for f in dataclasses.fields(Options)}
  assert len(fields) == 33
  assert set(CASES) == fields


def test_option_rows_cover_every_option_field():
  fields = [f.name for f in dataclasses.fields(Options)]
  rows = [r.field for r in option_map.OPTION_ROWS]
  assert sorted(rows) == sorted(fields)


@pytest.mark.parametrize('field', sorted(CASES))
def test_option_matches_native(field, tmp_path):
  fn = _loop(CASES[field])
  native = run_scenario(fn, NATIVE, tmp_path / 'a' / 'root')
  shim = run_scenario(fn, orbax_compat.CheckpointManager, tmp_path / 'b' / 'root')
  assert native and native[0][0] != 'SCENARIO ABORTED', native
  assert native == shim, describe_differences(native, shim)


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


@pytest.mark.parametrize('name', sorted(BAD))
def test_bad_option_raises_like_native(name, tmp_path):
  results = []
  for cls, sub in ((NATIVE, 'a'), (orbax_compat.CheckpointManager, 'b')):
    root = tmp_path / sub / 'root'
    try:
      cls(root, options=BAD[name]()).close()
      results.append(('constructed', disk_layout(root)))
    except Exception as e:  # pylint: disable=broad-except
      results.append((type(e), disk_layout(root)))
  assert results[0] == results[1]
  assert results[0][0] != 'constructed', 'native accepts it: not a bad input'


@pytest.mark.parametrize('field', [
    'file_options', 'async_options', 'atomicity_options',
    'multiprocessing_options'])
def test_bad_option_type_message_names_field(field, tmp_path):
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
  root = tmp_path / 'r'
  with pytest.raises(NotImplementedError, match=field.replace('.', r'\.')):
    orbax_compat.CheckpointManager(root, options=REFUSED[field]())
  assert not root.exists()
