"""Subclasses of the manager: v0 calls its public members through `self`, so do we.

Each scenario defines the same subclass of native v0's manager and of the shim
and compares what they do (registered with the harness: tests/differential/). The second part covers v0's protected hooks
(orbax_compat/runtime/subclassing.py): honoured, refused or warned at class definition.
"""

import datetime
import inspect
import logging
import threading
import warnings

from differential import disk_layout
from differential import scenario
from etils import epath
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint.checkpoint_manager import CheckpointInfo
import pytest

import orbax_compat
from orbax_compat.runtime import subclassing


def _subclass(base):

  class EvenOnly(base):
    """Saves only even steps and hides step 0 from listings."""

    def should_save(self, step):
      return step % 2 == 0 and super().should_save(step)

    def all_steps(self, read=False):
      return [s for s in super().all_steps(read) if s != 0]

    def latest_step(self):
      steps = self.all_steps()
      return max(steps) if steps else None

  return EvenOnly


def _shim_saves_step_1(native, shim):
  del native
  assert ('save', 1, False) in shim  # The override decided.


@scenario(name='overridden_members_are_used_by_save_restore_delete', check=_shim_saves_step_1)
def _run(base, root):
  cls = _subclass(base)
  out = []
  with cls(root, options=ocp.CheckpointManagerOptions(save_interval_steps=1)) as mngr:
    for step in range(5):
      out.append(('save', step, mngr.save(step, args=ocp.args.StandardSave({'a': np.arange(3) + step}))))
    mngr.wait_until_finished()
    out.append(('all_steps', mngr.all_steps()))
    out.append(('latest', mngr.latest_step()))
    out.append(('best', mngr.best_step()))
    restored = mngr.restore(None)  # v0 restores self.latest_step().
    out.append(('restore(None)', restored['a'].tolist()))
    try:
      mngr.delete(0)  # v0: `step not in self.all_steps()` -> FileNotFoundError.
      out.append(('delete(0)', 'ok'))
    except FileNotFoundError:
      out.append(('delete(0)', 'FileNotFoundError'))
  return out


def test_the_shims_own_calls_of_overrides_raise_no_notices(tmp_path, caplog):
  previous = orbax_compat.set_warning_policy('always')
  caplog.set_level(logging.WARNING, logger='orbax_compat')
  try:
    _run(orbax_compat.CheckpointManager, tmp_path)
  finally:
    orbax_compat.set_warning_policy(previous)
  notices = [r.getMessage() for r in caplog.records if r.name == 'orbax_compat']
  # Every notice points at a line of this file (a call or a super() call), none at the shim.
  assert notices and all(n.startswith(f'{__file__}:') for n in notices), notices


@pytest.mark.parametrize('base', [ocp.CheckpointManager, orbax_compat.CheckpointManager])
def test_subclass_constructs_like_v0(tmp_path, base, quiet_shim):
  with _subclass(base)(tmp_path) as mngr:
    assert mngr.latest_step() is None


@pytest.mark.parametrize('cls', [ocp.CheckpointManager, orbax_compat.CheckpointManager])
def test_type_checks_pass_as_for_v0(tmp_path, cls, quiet_shim):
  """Libraries that accept "a CheckpointManager" take the shim."""
  from orbax.checkpoint import abstract_checkpoint_manager  # pylint: disable=g-import-not-at-top

  base = abstract_checkpoint_manager.AbstractCheckpointManager
  mngr = cls(tmp_path)
  assert isinstance(mngr, ocp.CheckpointManager)
  assert base in type(mngr).__mro__
  try:  # A non-runtime Protocol: Python refuses isinstance for v0's manager too.
    outcome = isinstance(mngr, base)
  except TypeError:
    outcome = TypeError
  native = ocp.CheckpointManager(tmp_path / 'native')
  try:
    expected = isinstance(native, base)
  except TypeError:
    expected = TypeError
  assert outcome == expected
  with mngr.__contextmanager__() as entered:  # v0's epy.ContextManager protocol.
    assert entered is mngr
  native.close()


# --- v0's protected hooks (orbax_compat/runtime/subclassing.py) ---------------------
#
# Each scenario below defines its subclass of `base` (native v0's manager or
# the shim), runs it in `root`, and returns what it observed; the harness runs
# it on both and requires the same observations.

Options = ocp.CheckpointManagerOptions
BASES = (ocp.CheckpointManager, orbax_compat.CheckpointManager)


def _tree(step):
  return {'a': np.arange(3) + step}


def _step_dirs(root):
  return sorted(p.name for p in epath.Path(root).iterdir() if p.name[-1].isdigit())


def _tracker_subclass(base):
  """A tracker file names the last finalized step; a restart lists only it."""

  class Tracked(base):

    def __init__(self, *args, tracker='last_step', **kwargs):
      self.tracker_name = tracker  # Set before v0's __init__ lists steps.
      self.events = []
      super().__init__(*args, **kwargs)

    @property
    def tracker(self):
      return epath.Path(self.directory) / self.tracker_name

    def _load_checkpoint_infos(self, skip_metadata_read=False):
      self.events.append(('load', skip_metadata_read))
      if self.tracker.exists():
        step = int(self.tracker.read_text())
        path = self._get_write_step_directory(step, self.directory)
        if ocp.step.is_path_finalized(path):
          when = datetime.datetime.fromtimestamp(self.tracker.stat().mtime)
          return [CheckpointInfo(step, when, None)]
      return super()._load_checkpoint_infos(skip_metadata_read)

    def _finalize_checkpoint(self, step):
      super()._finalize_checkpoint(step)
      path = self._get_write_step_directory(step, self.directory)
      self.events.append(('finalize', step, ocp.step.is_path_finalized(path),
                          _step_dirs(self.directory)))
      if ocp.utils.is_primary_host(self._multiprocessing_options.primary_host):
        if ocp.step.is_path_finalized(path):
          self.tracker.write_text(str(step))

  return Tracked


def _tracker_decides(native, shim):
  del native
  assert ('tracker', '3') in shim  # The override wrote it...
  assert ('steps', [3]) in shim  # ...and a restart lists only that step.


@scenario(name='tracker_file_subclass_across_restarts', check=_tracker_decides, params={
    'async': {},
    'sync': {'enable_async_checkpointing': False},
    'lightweight-prefixed': {'lightweight_initialize': True, 'step_prefix': 'ckpt',
                             'step_format_fixed_length': 6},
})
def _tracker_restarts(base, root, options_kw):
  cls = _tracker_subclass(base)
  options = lambda: Options(max_to_keep=2, **options_kw)  # noqa: E731
  out = []
  with cls(root, options=options()) as m:  # First run: no tracker yet.
    for step in range(4):
      out.append(('save', step, m.save(step, args=ocp.args.StandardSave(_tree(step)))))
      if not options_kw.get('enable_async_checkpointing', True):
        out.append(('finalized before save returned', m.events[-1]))
    m.wait_until_finished()
    out += [('steps', m.all_steps()), ('events', m.events)]
  out += [('tracker', (root / 'last_step').read_text()), ('disk', disk_layout(root))]
  with cls(root, options=options()) as m:  # Restart: the tracker decides.
    out += [('events', m.events), ('steps', m.all_steps()), ('latest', m.latest_step())]
    out.append(('restore(None)', m.restore(None, args=ocp.args.StandardRestore())['a'].tolist()))
    out.append(('save 4', m.save(4, args=ocp.args.StandardSave(_tree(4)))))
    m.wait_until_finished()
    out += [('steps', m.all_steps()), ('tracker', m.tracker.read_text())]
    m.reload()
    out += [('reload', m.all_steps()), ('read=True', list(m.all_steps(read=True)))]
    out += [('events', m.events), ('disk', disk_layout(root))]
  (root / 'last_step').unlink()
  with cls(root, options=options()) as m:  # No tracker: super() lists all.
    out += [('events', m.events), ('steps', m.all_steps())]
  return out


def _deleted_3(native, shim):
  del native
  assert ('deleted', [2, 4], [2, 4]) in shim


@scenario(name='checkpoints_attribute_lists_infos_like_v0', check=_deleted_3)
def _kauldron_like(base, root):
  """Reads the checkpoint infos through v0's `_checkpoints`."""

  class Fast(base):

    def all_steps(self, read=False):
      if read:
        return sorted(ocp.utils.checkpoint_steps(self.directory))
      return [c.step for c in self._checkpoints]

  out = []
  options = Options(max_to_keep=3, best_fn=lambda m: m['loss'], best_mode='min')
  with Fast(root, options=options) as m:
    out.append(('empty', m.all_steps(), m.latest_step()))
    for step in range(5):
      m.save(step, args=ocp.args.StandardSave(_tree(step)), metrics={'loss': 5 - step})
    m.wait_until_finished()
    out.append(('steps', m.all_steps(), m.latest_step(), m.best_step()))
    out.append(('infos', [(type(c).__name__, c.step, c.metrics) for c in m._checkpoints]))
    m.delete(3)
    out.append(('deleted', m.all_steps(), m.all_steps(read=True)))
  with Fast(root, options=options) as m:  # A restart reads them from disk.
    out.append(('restart', m.all_steps(), [(c.step, c.metrics) for c in m._checkpoints]))
  return out


def _finalized_after_commit(native, shim):
  """After commit, before the old step is deleted from disk (it is already
  gone from the listed steps)."""
  del native
  assert ('after wait', [(0, True, True, ['0'], [0]), (2, True, True, ['0', '2'], [0, 2]),
                         (4, True, True, ['0', '2', '4'], [2, 4])]) in shim


@scenario(name='finalize_checkpoint_override_calling_super', check=_finalized_after_commit,
          params={'async': True, 'sync': False})
def _finalize_observer(base, root, async_):
  """Records what `_finalize_checkpoint` sees, and when, calling super()."""

  class Observed(base):
    events = []

    def _finalize_checkpoint(self, step):
      before = list(self.events)
      super()._finalize_checkpoint(step)
      path = self._get_write_step_directory(step, self.directory)
      self.events.append((step, before == self.events, ocp.step.is_path_finalized(path),
                          _step_dirs(self.directory), [c.step for c in self._checkpoints]))

  out = []
  options = Options(max_to_keep=2, enable_async_checkpointing=async_, save_interval_steps=2)
  with Observed(root, options=options) as m:
    for step in range(6):
      saved = m.save(step, args=ocp.args.StandardSave(_tree(step)))
      out.append((step, saved, len(m.events) if not async_ else None))
    m.wait_until_finished()
    out.append(('after wait', list(m.events)))
    out.append(('forced', m.save(7, args=ocp.args.StandardSave(_tree(7)), force=True)))
  out += [('after close', m.events[-1]), ('disk', disk_layout(root))]
  return out


def _kept_even(native, shim):
  del native
  assert ('disk', ['0', '2', '4', '5']) in shim


@scenario(name='old_steps_to_remove_override', check=_kept_even)
def _keep_even(base, root):
  """Overrides which old steps are deleted (t5x overrides this hook)."""

  class KeepEven(base):
    seen = []

    def _get_old_steps_to_remove(self):
      proposed = super()._get_old_steps_to_remove()
      self.seen.append(([c.step for c in self._checkpoints], list(proposed)))
      return [s for s in proposed if s % 2]

  out = []
  with KeepEven(root, options=Options(max_to_keep=2)) as m:
    for step in range(6):
      m.save(step, args=ocp.args.StandardSave(_tree(step)))
    m.wait_until_finished()
    out += [('steps', m.all_steps()), ('seen', m.seen)]
  out.append(('disk', _step_dirs(root)))
  return out


@scenario(name='super_load_checkpoint_infos_is_v0s')
def _super_load_infos(base, root):
  """`super()._load_checkpoint_infos` returns v0's CheckpointInfo list."""

  class Lister(base):

    def infos(self, skip):
      return [(type(i).__module__, type(i).__name__, i.step, i.metrics,
               type(i.time).__name__, i.time == datetime.datetime.min)
              for i in self._load_checkpoint_infos(skip_metadata_read=skip)]

  options = Options(best_fn=lambda m: m['x'])
  with Lister(root, options=options) as m:
    out = [('empty', m.infos(False))]
    for step in range(3):
      m.save(step, args=ocp.args.StandardSave(_tree(step)), metrics={'x': step})
    m.wait_until_finished()
    out += [('full', m.infos(False)), ('light', m.infos(True))]
  return out


@scenario(name='protected_attributes_have_v0s_meaning', params={
    'default': {},
    'prefixed': {'step_prefix': 'ckpt', 'step_format_fixed_length': 4, 'best_fn': lambda m: 0},
    'name_format': {'step_name_format': ocp.step.standard_name_format(step_prefix='s')},
})
def _provided_attributes(base, root, options_kw):
  options = Options(**options_kw)
  with base(root, options=options) as m:
    m.save(3, args=ocp.args.StandardSave(_tree(3)))
    m.wait_until_finished()
    out = [
        ('options', m._options is options),
        ('multiprocessing', m._multiprocessing_options == options.multiprocessing_options),
        ('track_best', m._track_best),
        ('directory', str(m._directory).removeprefix(str(root))),
    ]
    for name in ('_get_save_directory', '_get_write_step_directory', '_get_read_step_directory'):
      for step in (3, 9):
        try:
          path = getattr(m, name)(step, m.directory)
          out.append((name, step, str(path).removeprefix(str(root))))
        except Exception as e:  # pylint: disable=broad-except
          out.append((name, step, type(e).__name__))
  return out


def _define(name, body=None):
  """A subclass of the shim overriding v0's hook `name` as v0 defines it."""
  v0_member = vars(ocp.CheckpointManager)[name]
  if body is None:
    body = property(lambda self: None) if isinstance(v0_member, property) else (lambda self, *a, **k: None)
  return type('Custom', (orbax_compat.CheckpointManager,), {name: body})


@pytest.mark.parametrize('name', [
    n for n in subclassing.V0_HOOKS if subclassing.treatment(n).treatment == subclassing.REFUSED])
def test_refused_hook_fails_at_class_definition(name):
  with pytest.raises(TypeError, match=rf'Custom overrides {name} of Orbax'):
    _define(name)


def test_refusal_names_every_refused_hook_and_mixins_count():

  class Mixin:

    def _add_checkpoint_info(self, step, metrics):
      pass

  with pytest.raises(TypeError) as raised:

    class Custom(Mixin, orbax_compat.CheckpointManager):

      def _get_write_step_directory(self, step, root_dir):
        return root_dir

  message = str(raised.value)
  assert '_add_checkpoint_info' in message and '_get_write_step_directory' in message
  assert 'step_name_format' in message  # Says what to use instead.


@pytest.mark.parametrize('name', [
    n for n in subclassing.V0_HOOKS if subclassing.treatment(n).treatment == subclassing.WARNED])
def test_warned_hook_warns_at_class_definition(name, caplog):
  with pytest.warns(subclassing.UnhonouredHookWarning, match=name) as caught:
    _define(name)
  assert caught[0].filename == __file__  # Points at the class definition.
  assert any(name in r.getMessage() for r in caplog.records if r.name == 'orbax_compat')


def test_warning_points_at_the_class_statement():
  with pytest.warns(subclassing.UnhonouredHookWarning) as caught:
    line = inspect.currentframe().f_lineno + 2

    class Custom(orbax_compat.CheckpointManager):

      def _wait_for_checkpointers(self):
        pass

  assert (caught[0].filename, caught[0].lineno) == (__file__, line)
  assert Custom._wait_for_checkpointers  # Defined, only warned about.


def test_warned_hook_is_reported_once_per_defining_class():
  with pytest.warns(subclassing.UnhonouredHookWarning):
    parent = _define('_validate_args')
  with warnings.catch_warnings():
    warnings.simplefilter('error')
    type('Child', (parent,), {})


def test_a_hook_unknown_to_the_shim_is_refused(monkeypatch):
  """A newer Orbax's new protected hook is refused until reviewed."""
  monkeypatch.setattr(subclassing, 'V0_HOOKS', (*subclassing.V0_HOOKS, '_new_hook'))
  with pytest.raises(TypeError, match='_new_hook.*does not know this hook'):
    type('Custom', (orbax_compat.CheckpointManager,), {'_new_hook': lambda self: None})


# v0 hooks only some supported releases have, with the release that added each.
RELEASE_HOOKS = {'_is_continuous_checkpointing_enabled': '0.12.2'}


def test_hooks_table_covers_v0_exactly():
  """Every protected member of the installed v0 has a row; no stale rows (a
  row for another supported release's member is named in RELEASE_HOOKS)."""
  assert set(subclassing.V0_HOOKS) <= set(subclassing.BY_NAME)
  assert set(subclassing.BY_NAME) - set(subclassing.V0_HOOKS) <= set(RELEASE_HOOKS)
  # The shim class itself overrides none of them (`_overrides` relies on it).
  assert not subclassing.honoured_overrides(orbax_compat.CheckpointManager)
  subclassing.check(orbax_compat.CheckpointManager)  # Neither refused nor warned.


def test_finalize_hook_has_run_when_close_returns(tmp_path, quiet_shim):
  cls = _tracker_subclass(orbax_compat.CheckpointManager)
  with cls(tmp_path, options=Options(max_to_keep=1)) as m:
    m.save(0, args=ocp.args.StandardSave(_tree(0)))
  assert m.events[-1][:3] == ('finalize', 0, True)
  assert not [t for t in threading.enumerate() if 'save_finalize' in t.name]


def _construction_fails(native, shim):
  del native
  assert shim[0] == ('raises', 'no listing')


@scenario(name='load_checkpoint_infos_failing_fails_construction', check=_construction_fails)
def _failing_listing(base, root):

  class Failing(base):

    def _load_checkpoint_infos(self, skip_metadata_read=False):
      raise ValueError('no listing')

  before = set(threading.enumerate())
  try:
    Failing(root)
    out = ['constructed']
  except ValueError as e:
    out = [('raises', str(e))]
  alive = [t for t in threading.enumerate() if t not in before and t.is_alive()]
  return [*out, ('threads left', [t.name for t in alive])]
