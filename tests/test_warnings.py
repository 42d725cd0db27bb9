"""Deprecation notices: one per call site, with the caller's file:line."""

import logging
import pathlib
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import orbax_compat
from orbax_compat.mapping import forms
from orbax_compat.runtime import notices as deprecation

THIS_FILE = pathlib.Path(__file__).resolve()


@pytest.fixture
def policy():
  """Runs a test under a given policy with a clean slate of seen call sites."""
  previous = orbax_compat.get_warning_policy()
  deprecation.reset()
  yield orbax_compat.set_warning_policy
  orbax_compat.set_warning_policy(previous)
  deprecation.reset()


def _records(caplog):
  return [r for r in caplog.records if r.name == 'orbax_compat']


def test_once_per_call_site_with_file_and_line(tmp_path, caplog, policy):
  policy('once')
  caplog.set_level(logging.WARNING, logger='orbax_compat')
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter('always')
    mngr = orbax_compat.CheckpointManager(tmp_path); line_init = sys._getframe().f_lineno  # noqa: E702
    for _ in range(3):
      mngr.latest_step(); line_loop = sys._getframe().f_lineno  # noqa: E702
    mngr.latest_step(); line_other = sys._getframe().f_lineno  # noqa: E702
    mngr.close()
  messages = [r.getMessage() for r in _records(caplog)]
  latest = [m for m in messages if 'latest_step()' in m]
  assert len(latest) == 2, messages  # the loop's site once, the other site once
  assert f'{THIS_FILE}:{line_loop}:' in latest[0]
  assert f'{THIS_FILE}:{line_other}:' in latest[1]
  assert forms.BY_NAME['latest_step'].v1 in latest[0]
  assert any(f'{THIS_FILE}:{line_init}:' in m for m in messages)
  ours = [w for w in caught if issubclass(w.category, orbax_compat.OrbaxCompatDeprecationWarning)]
  assert {(pathlib.Path(w.filename).resolve(), w.lineno) for w in ours} >= {
      (THIS_FILE, line_init), (THIS_FILE, line_loop), (THIS_FILE, line_other)}
  assert issubclass(orbax_compat.OrbaxCompatDeprecationWarning, DeprecationWarning)


def test_always_reports_every_call(tmp_path, caplog, policy):
  policy('always')
  caplog.set_level(logging.WARNING, logger='orbax_compat')
  mngr = orbax_compat.CheckpointManager(tmp_path)
  for _ in range(3):
    mngr.all_steps()
  mngr.close()
  assert len([r for r in _records(caplog) if 'all_steps' in r.getMessage()]) == 3


def test_off_is_silent_but_counts(tmp_path, caplog, policy):
  policy('off')
  caplog.set_level(logging.DEBUG, logger='orbax_compat')
  with warnings.catch_warnings():
    warnings.simplefilter('error')
    mngr = orbax_compat.CheckpointManager(tmp_path)
    mngr.latest_step()
    mngr.close()
  assert not _records(caplog)
  members = {member for member, *_ in orbax_compat.usage_report()}
  assert {'__init__', 'latest_step', 'close'} <= members


def test_error_raises_at_the_call_and_touches_nothing(tmp_path, policy):
  policy('error')
  root = tmp_path / 'root'
  with pytest.raises(orbax_compat.OrbaxCompatDeprecationWarning, match='CheckpointManager'):
    orbax_compat.CheckpointManager(root)
  assert not root.exists()


def test_internal_calls_never_warn(tmp_path, caplog, policy):
  """save() calls should_save, all_steps ... internally: only `save` reports."""
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top

  policy('always')
  caplog.set_level(logging.WARNING, logger='orbax_compat')
  mngr = orbax_compat.CheckpointManager(tmp_path)
  caplog.clear()
  mngr.save(0, args=ocp.args.StandardSave({'a': np.arange(2)}))
  mngr.restore(0)
  members = [r.getMessage().split(': mngr.')[1].split('(')[0] for r in _records(caplog)]
  assert members == ['save', 'restore']
  mngr.close()


def test_bad_policy_is_refused(policy):
  with pytest.raises(ValueError, match='policy must be one of off, once, always, error'):
    policy('loud')


def _run(code: str, env_policy: str | None, cwd: pathlib.Path, *launcher: str):
  import os  # pylint: disable=g-import-not-at-top

  env = dict(os.environ)
  env.pop(deprecation.ENV_VAR, None)
  if env_policy:
    env[deprecation.ENV_VAR] = env_policy
  script = cwd / 'train.py'
  script.write_text(textwrap.dedent(code))
  return subprocess.run([sys.executable, *launcher, str(script)], cwd=cwd, env=env,
                        capture_output=True, text=True, timeout=300)


TRAIN = """
import sys, tempfile
import orbax_compat as ocp
{prelude}
def main(argv=None):
    d = tempfile.mkdtemp()
    with ocp.CheckpointManager(d) as mngr:
        for step in range(3):
            mngr.save(step, args=ocp.args.StandardSave({{'x': step}}))
        print('latest', mngr.latest_step())
{run}
"""


def test_plain_script_prints_each_notice_once(tmp_path):
  """The log line is the notice; Python's warning of it is not printed again."""
  proc = _run(TRAIN.format(prelude='', run='main()'), None, tmp_path)
  assert proc.returncode == 0, proc.stderr
  assert 'latest 2' in proc.stdout
  save = 'mngr.save(step, args=ocp.args.StandardSave(tree)) is Orbax v0 API'
  lines = [ln for ln in proc.stderr.splitlines() if save in ln]
  assert len(lines) == 1, proc.stderr
  assert 'train.py:9: ' in lines[0] and 'WARNING' in lines[0]
  assert 'OrbaxCompatDeprecationWarning' not in proc.stderr
  # Each member's notice once: __init__, save, latest_step (close runs in `with`).
  assert proc.stderr.count('is Orbax v0 API') == 3, proc.stderr


def test_python_W_still_shows_the_warning(tmp_path):
  proc = _run(TRAIN.format(prelude='', run='main()'), None, tmp_path, '-W', 'error::DeprecationWarning')
  assert proc.returncode != 0 and 'OrbaxCompatDeprecationWarning' in proc.stderr


def test_absl_app_shows_notices(tmp_path):
  proc = _run(TRAIN.format(prelude='from absl import app', run='app.run(main)'), None, tmp_path)
  assert proc.returncode == 0, proc.stderr
  assert 'train.py:9:' in proc.stderr and 'mngr.save(' in proc.stderr


def test_notices_are_short_and_name_the_form_called(tmp_path, caplog, policy):
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top

  policy('once')
  caplog.set_level(logging.WARNING, logger='orbax_compat')
  with orbax_compat.CheckpointManager(tmp_path, ocp.PyTreeCheckpointer()) as mngr:
    mngr.save(0, {'a': np.arange(2)})
    mngr.restore(0)
  messages = [r.getMessage() for r in _records(caplog)]
  assert any('mngr = ocp.CheckpointManager(directory, checkpointers, options=options)' in m
             for m in messages), messages
  assert any('mngr.save(step, tree) is Orbax v0 API' in m for m in messages), messages
  lines = [line.split(f'{THIS_FILE}:', 1)[-1] for m in messages for line in m.splitlines()]
  assert all(len(line) <= 200 for line in lines), messages
  assert all('ocp_v1' not in m or forms.V1_IMPORT in m for m in messages), messages


def test_env_off_and_error(tmp_path):
  quiet = _run(TRAIN.format(prelude='', run='main()'), 'off', tmp_path)
  assert quiet.returncode == 0 and 'orbax_compat' not in quiet.stderr, quiet.stderr
  strict = _run(TRAIN.format(prelude='', run='main()'), 'error', tmp_path)
  assert strict.returncode != 0
  assert 'OrbaxCompatDeprecationWarning' in strict.stderr and 'train.py:7:' in strict.stderr


def test_pytest_W_error_catches_notice(tmp_path):
  (tmp_path / 'test_legacy.py').write_text(textwrap.dedent("""
      import orbax_compat as ocp
      def test_it(tmp_path):
          ocp.CheckpointManager(tmp_path).close()
  """))
  proc = subprocess.run(
      [sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider',
       '-W', 'error::orbax_compat.OrbaxCompatDeprecationWarning', str(tmp_path / 'test_legacy.py')],
      cwd=tmp_path, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 1, proc.stdout + proc.stderr
  assert 'OrbaxCompatDeprecationWarning' in proc.stdout


def test_two_calls_on_one_line_are_one_site(tmp_path, caplog, policy):
  policy('once')
  caplog.set_level(logging.WARNING, logger='orbax_compat')
  mngr = orbax_compat.CheckpointManager(tmp_path)
  text = f'{mngr.latest_step()} {mngr.latest_step()}'  # noqa: F841
  mngr.close()
  assert len([r for r in _records(caplog) if 'latest_step()' in r.getMessage()]) == 1


def test_call_without_python_caller_runs_and_names_unknown_caller(tmp_path):
  """atexit.register(mngr.close) and a raw _thread target: no Python frame above."""
  script = tmp_path / 'train.py'
  script.write_text(textwrap.dedent(f"""
      import atexit, _thread, threading, numpy as np
      import orbax_compat as ocp
      mngr = ocp.CheckpointManager({str(tmp_path / 'ckpt')!r})
      mngr.save(0, args=ocp.args.StandardSave({{'a': np.arange(3)}}))
      done = threading.Event()
      result = []
      def probe():
          result.append(mngr.latest_step())
          done.set()
      _thread.start_new_thread(mngr.latest_step, ())
      threading.Thread(target=probe).start(); done.wait(60)
      print('latest', result)
      mngr.wait_until_finished()  # v0 too cannot commit from atexit (its executors are shut down).
      atexit.register(mngr.close)
  """))
  proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300,
                        env={**__import__('os').environ, deprecation.ENV_VAR: 'always'})
  assert proc.returncode == 0, proc.stderr
  assert 'latest [0]' in proc.stdout
  assert 'call stack is not deep enough' not in proc.stderr
  # close() ran at exit, and its notice names no file.
  assert '(unknown caller): mngr.close() is Orbax v0 API' in proc.stderr, proc.stderr


def test_exec_in_a_loop_is_one_site_and_keeps_no_code(tmp_path, caplog, policy):
  import gc  # pylint: disable=g-import-not-at-top
  import weakref  # pylint: disable=g-import-not-at-top

  policy('once')
  caplog.set_level(logging.WARNING, logger='orbax_compat')
  mngr = orbax_compat.CheckpointManager(tmp_path)
  codes = []
  for _ in range(50):
    code = compile('mngr.latest_step()', '<notebook-cell>', 'exec')
    codes.append(weakref.ref(code))
    exec(code, {'mngr': mngr})  # pylint: disable=exec-used
    del code
  mngr.close()
  gc.collect()
  assert len([r for r in _records(caplog) if 'latest_step()' in r.getMessage()]) == 1
  assert all(ref() is None for ref in codes)  # No code object kept alive.
  assert len(deprecation.state.locations) < 5
  report = [r for r in orbax_compat.usage_report() if r[0] == 'latest_step']
  assert report == [('latest_step', '<notebook-cell>', 1, 50)]


def test_usage_report_while_threads_call(tmp_path, policy):
  import threading  # pylint: disable=g-import-not-at-top

  policy('off')
  previous = sys.getswitchinterval()
  sys.setswitchinterval(1e-6)  # Switch threads as often as possible.
  mngr = orbax_compat.CheckpointManager(tmp_path)
  stop, errors = threading.Event(), []

  def report():
    while not stop.is_set():
      try:
        orbax_compat.usage_report()
      except Exception as e:  # pylint: disable=broad-except
        errors.append(e)

  def work():
    for _ in range(5000):
      mngr.latest_step()

  try:
    reporter = threading.Thread(target=report)
    reporter.start()
    workers = [threading.Thread(target=work) for _ in range(8)]
    for t in workers:
      t.start()
    for t in workers:
      t.join()
    stop.set()
    reporter.join()
  finally:
    sys.setswitchinterval(previous)
    mngr.close()
  assert not errors, errors[:1]
  calls = [n for member, _, _, n in orbax_compat.usage_report() if member == 'latest_step']
  assert calls == [8 * 5000]


REPORTED = """
import numpy as np, sys
import orbax_compat as ocp
mngr = ocp.CheckpointManager(sys.argv[1])
for step in range(3):
    mngr.save(step, args=ocp.args.StandardSave({'a': np.arange(2) + step}))
print(mngr.latest_step())
mngr.wait_until_finished()
import atexit; atexit.register(mngr.close)
"""


def _run_reported(tmp_path, report, policy='off'):
  import os  # pylint: disable=g-import-not-at-top

  script = tmp_path / 'train.py'
  script.write_text(REPORTED)
  env = {**os.environ, deprecation.ENV_VAR: policy, deprecation.REPORT_VAR: report}
  return subprocess.run([sys.executable, str(script), str(tmp_path / 'ckpt')], cwd=tmp_path,
                        env=env, capture_output=True, text=True, timeout=300)


def test_report_file_at_exit(tmp_path):
  import json  # pylint: disable=g-import-not-at-top

  proc = _run_reported(tmp_path, str(tmp_path / 'report.json'))
  assert proc.returncode == 0, proc.stderr
  data = json.loads((tmp_path / 'report.json').read_text())
  members = {m['member']: m for m in data['members']}
  assert set(members) == {'__init__', 'save', 'latest_step', 'wait_until_finished', 'close'}
  save = members['save']
  assert save['calls'] == 3 and save['table'] == 'MIGRATION_TABLE.md#save'
  assert save['sites'] == [{
      'file': str(tmp_path / 'train.py'), 'line': 6, 'calls': 3,
      'v0': 'mngr.save(step, args=ocp.args.StandardSave(tree))',
      'v1': forms.BY_NAME['save'].forms[0].v1}]
  # close() ran from atexit, before the report: no Python caller.
  assert members['close']['sites'][0]['file'] == deprecation.UNKNOWN_CALLER


def test_report_log_and_unwritable_path(tmp_path):
  logged = _run_reported(tmp_path, 'log')
  assert logged.returncode == 0, logged.stderr
  assert 'ORBAX_COMPAT_REPORT=log' in logged.stderr and 'save: 3 call(s)' in logged.stderr
  bad = _run_reported(tmp_path, str(tmp_path / 'missing' / 'report.json'))
  assert bad.returncode == 0, bad.stderr  # Never a crash ...
  assert bad.stderr.count('could not write the ORBAX_COMPAT_REPORT report') == 1
  assert 'Traceback' not in bad.stderr
  with ocp_manager(tmp_path / 'ckpt') as mngr:  # ... nor a lost checkpoint.
    assert mngr.all_steps() == [0, 1, 2]


def ocp_manager(root):
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top

  return ocp.CheckpointManager(root)
