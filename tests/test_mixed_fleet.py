"""Mixed fleets: native v0, the shim and v1 on the same checkpoint roots."""

import json
import pathlib
import shutil

import numpy as np
import orbax.checkpoint as ocp
import pytest

import orbax_compat

NATIVE, SHIM = ocp.CheckpointManager, orbax_compat.CheckpointManager


pytestmark = pytest.mark.usefixtures('quiet_shim')


def _tree(step):
  return {'w': np.full((3,), step, np.float32), 'n': {'i': np.array([step, 2 * step], np.int64)}}


def _options(**extra):
  return ocp.CheckpointManagerOptions(best_fn=lambda m: m['loss'], best_mode='min', max_to_keep=3,
                                      **extra)


LOSSES = {0: 5.0, 1: 1.0, 2: 4.0, 3: 3.0, 4: 0.5, 5: 2.0, 6: 6.0, 7: 0.7, 8: 9.0}


def _run(root, plan, **options):
  """Saves steps with `plan` = [(cls, steps)], each stage in a new manager."""
  seen = []
  for cls, steps in plan:
    with cls(root, options=_options(**options), metadata={'run': 'mixed'}) as mngr:
      for step in steps:
        mngr.save(step, args=ocp.args.StandardSave(_tree(step)), metrics={'loss': LOSSES[step]})
      mngr.wait_until_finished()
      seen.append((cls.__module__.split('.')[0], mngr.all_steps(), mngr.latest_step(),
                   mngr.best_step(), [mngr.metrics(s) for s in mngr.all_steps()],
                   mngr.metadata().custom_metadata))
      for step in mngr.all_steps():
        restored = mngr.restore(step, args=ocp.args.StandardRestore(_tree(0)))
        np.testing.assert_array_equal(restored['w'], _tree(step)['w'])
  return seen, sorted(p.name for p in pathlib.Path(root).iterdir())


@pytest.mark.parametrize('options', [{}, {'step_prefix': 'ckpt', 'step_format_fixed_length': 4}])
def test_native_then_shim_then_native_continues_as_one_program(tmp_path, options):
  stages = [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
  mixed = _run(tmp_path / 'mixed', list(zip([NATIVE, SHIM, NATIVE], stages, strict=True)), **options)
  native = _run(tmp_path / 'native', list(zip([NATIVE] * 3, stages, strict=True)), **options)
  as_native = [('orbax',) + stage[1:] for stage in mixed[0]]
  assert as_native == [('orbax',) + stage[1:] for stage in native[0]]
  assert mixed[1] == native[1]
  assert mixed[0][-1][3] == 4 and mixed[0][-1][1] == [1, 4, 7]  # best 3 kept


@pytest.mark.parametrize('writer,reader', [(NATIVE, SHIM), (SHIM, NATIVE)])
@pytest.mark.parametrize('naming', [
    {'step_prefix': 'step'},
    {'step_format_fixed_length': 6},
    {'step_name_format': 'prefix'},
])
def test_step_naming_interoperates(tmp_path, writer, reader, naming):
  def options():
    if naming.get('step_name_format'):
      return ocp.CheckpointManagerOptions(
          step_name_format=ocp.step.standard_name_format(step_prefix='run'))
    return ocp.CheckpointManagerOptions(**naming)

  with writer(tmp_path, options=options()) as mngr:
    for step in (2, 10):
      mngr.save(step, args=ocp.args.StandardSave(_tree(step)))
  with reader(tmp_path, options=options()) as mngr:
    assert mngr.all_steps() == [2, 10]
    assert mngr.latest_step() == 10
    np.testing.assert_array_equal(mngr.restore(10)['w'], _tree(10)['w'])
    mngr.save(11, args=ocp.args.StandardSave(_tree(11)))
  with writer(tmp_path, options=options()) as mngr:
    assert mngr.all_steps() == [2, 10, 11]
    np.testing.assert_array_equal(
        mngr.restore(11, args=ocp.args.StandardRestore(_tree(0)))['n']['i'], _tree(11)['n']['i'])


def _layout(root):
  return sorted(str(p.relative_to(root)) for p in pathlib.Path(root).rglob('*'))


def _observe(cls, root, step, args):
  """all_steps, then restore(step): the result or the exception type."""
  with cls(root) as mngr:
    steps = mngr.all_steps()
    try:
      restored = mngr.restore(step, args=args)
      outcome = ('ok', np.asarray(restored['w']).tolist())
    except Exception as e:  # noqa: BLE001 - the type is what is compared.
      outcome = ('raises', type(e).__name__, bool(str(e)))
  return steps, outcome


def _damaged_root(tmp_path, damage):
  root = tmp_path / 'root'
  with NATIVE(root) as mngr:
    for step in (0, 1):
      mngr.save(step, args=ocp.args.StandardSave(_tree(step)))
  damage(root)
  return root


def _half_written(root):
  shutil.copytree(root / '1', root / '2.orbax-checkpoint-tmp-1234')


def _no_commit_marker(root):
  shutil.copytree(root / '1', root / '3')
  for marker in (root / '3').rglob('commit_success.txt'):
    marker.unlink()
  (root / '3' / '_CHECKPOINT_METADATA').unlink()


def _unknown_handler(root):
  path = root / '1' / '_CHECKPOINT_METADATA'
  recorded = json.loads(path.read_text())
  recorded['item_handlers'] = {'default': 'not.a.module.NoSuchHandler'}
  path.write_text(json.dumps(recorded))


def _truncated_array(root):
  data = sorted((root / '1' / 'default').rglob('d/*'), key=lambda p: p.stat().st_size)[-1]
  data.write_bytes(data.read_bytes()[:7])


@pytest.mark.parametrize('damage,step,holds', [
    (_half_written, 1, 1), (_half_written, 2, None), (_no_commit_marker, 3, 1),
    (_unknown_handler, 1, 1), (_truncated_array, 1, None)])
@pytest.mark.parametrize('with_args', [True, False])
def test_damaged_roots_listed_and_refused_as_v0(tmp_path, damage, step, holds, with_args):
  """`holds`: the step whose data the damaged directory still holds intact."""
  args = ocp.args.StandardRestore(_tree(0)) if with_args else None
  native_root = _damaged_root(tmp_path / 'native', damage)
  shim_root = _damaged_root(tmp_path / 'shim', damage)
  before = _layout(shim_root)
  native = _observe(NATIVE, native_root, step, args)
  shim = _observe(SHIM, shim_root, step, args)
  assert shim[0] == native[0]  # the same steps listed
  if native[1][0] == 'ok':
    assert shim[1] == native[1]
  elif shim[1][0] == 'raises':  # refused as v0 refuses: the same exception type
    assert shim[1] == native[1], (native, shim)
  else:  # or better than v0, only with the data the directory holds
    assert holds is not None and shim[1] == ('ok', _tree(holds)['w'].tolist()), (native, shim)
  assert _layout(shim_root) == before  # nothing deleted or created
