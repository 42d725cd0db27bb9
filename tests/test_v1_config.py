"""The generated v1 constructor decides like the v0 manager it replaces.

For each case of the options matrix (`tests/test_options.py`, one per
`CheckpointManagerOptions` field), native v0's manager and the Checkpointer
that `orbax_compat.v1_source` writes (evaluated) run the same loop of saves
with metrics; each save's decision and the steps kept after it must match.
An option v1 cannot express must be named in the source's comments instead.
"""

import datetime
import json
import subprocess
import sys

import numpy as np
import orbax.checkpoint as ocp
import pytest
from test_options import CASES
from test_options import FIELDS
from test_options import LOSS
from test_options import _init_kw
from test_options import _options

import orbax_compat
from orbax_compat.tools import v1_config


def _tree(step):
  return {'w': np.arange(3, dtype=np.float32) + step}


def _native(options, root, init_kw):
  decisions = []
  with ocp.CheckpointManager(root, options=options, **init_kw) as mngr:
    for step in range(5):
      saved = mngr.save(step, args=ocp.args.StandardSave(_tree(step)), metrics={'loss': LOSS[step]})
      mngr.wait_until_finished()
      decisions.append((step, bool(saved), list(mngr.all_steps())))
  return decisions


def _v1(source, options, root):
  decisions = []
  with eval(source, v1_config.namespace(options)) as ckptr:  # pylint: disable=eval-used
    for step in range(5):
      saved = ckptr.save_checkpointables(step, {'default': _tree(step)}, metrics={'loss': LOSS[step]})
      ckptr.wait()
      decisions.append((step, bool(saved), [c.step for c in ckptr.checkpoints]))
  return decisions


# Cases whose v0 behaviour v1 cannot reproduce: the source must say so.
NO_V1_FORM = {'create', 'read_only', 'enable_async_checkpointing', 'todelete_subdir',
              'enable_background_delete', 'num_deletion_threads', 'prevent_write_metrics',
              'enable_should_save_is_saving_in_progress_check',
              'enable_per_process_directory_creation'}


@pytest.mark.parametrize('field', sorted(CASES))
def test_generated_constructor_decides_like_v0(field, tmp_path, quiet_shim):
  if field not in FIELDS:
    pytest.skip(f'orbax-checkpoint {ocp.__version__} has no option {field}')
  case = CASES[field]
  init_kw = _init_kw(case, ocp.CheckpointManager)
  for root in (tmp_path / 'v0', tmp_path / 'v1'):
    if case.before is not None:
      case.before(root)
  options = _options(case)
  source = v1_config.v1_source(tmp_path / 'v1', options, init_kw.get('metadata'))
  compile(source, '<v1_source>', 'eval')
  try:
    native = _native(_options(case), tmp_path / 'v0', init_kw)
  except Exception as e:  # pylint: disable=broad-except
    pytest.skip(f'native v0 refuses the case: {type(e).__name__}')
  if field in NO_V1_FORM:
    assert f'CheckpointManagerOptions.{field} has no v1 form' in source, source
    return
  assert _v1(source, _options(case), tmp_path / 'v1') == native, source


def test_source_from_a_running_manager_evaluates(tmp_path, quiet_shim):
  options = ocp.CheckpointManagerOptions(
      max_to_keep=2, save_interval_steps=2, best_fn=lambda m: m['loss'], best_mode='min',
      keep_time_interval=datetime.timedelta(hours=1),
      async_options=ocp.options.AsyncOptions(timeout_secs=77))
  with orbax_compat.CheckpointManager(tmp_path, options=options, metadata={'run': 1}) as mngr:
    source = orbax_compat.v1_source(mngr)
  assert 'get_metric_fn=options.best_fn' in source and 'timeout_secs=77' in source
  with eval(source, v1_config.namespace(options)) as ckptr:  # pylint: disable=eval-used
    assert ckptr.root_metadata().custom_metadata == {'run': 1}


@pytest.mark.parametrize('refused', ['barrier_sync_fn', 'active_processes'])
def test_refused_options_are_named_never_dropped(refused, tmp_path):
  kw = ({'async_options': ocp.options.AsyncOptions(barrier_sync_fn=lambda *a, **k: None)}
        if refused == 'barrier_sync_fn' else
        {'multiprocessing_options': ocp.options.MultiprocessingOptions(active_processes={0})})
  options = ocp.CheckpointManagerOptions(**kw)
  source = v1_config.v1_source(tmp_path, options)
  assert f'.{refused} has no v1 form' in source
  eval(source, v1_config.namespace(options)).close()  # pylint: disable=eval-used


def test_command_line(tmp_path):
  spec = tmp_path / 'options.json'
  spec.write_text(json.dumps({'max_to_keep': 3, 'save_interval_steps': 5,
                              'keep_time_interval': 3600, 'read_only': True}))
  proc = subprocess.run([sys.executable, '-m', 'orbax_compat', 'v1-config', str(tmp_path / 'ckpt'),
                         '--options', str(spec)], capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr
  assert 'LatestN' not in proc.stdout or 'read_only' in proc.stdout
  assert 'CheckpointManagerOptions.read_only has no v1 form' in proc.stdout
  bad = subprocess.run([sys.executable, '-m', 'orbax_compat', 'v1-config', 'x', '--options', '-'],
                       input='{"no_such_option": 1}', capture_output=True, text=True, timeout=300)
  assert bad.returncode == 2 and 'no_such_option' in bad.stderr
