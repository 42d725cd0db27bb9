"""Checkpoints written by native v0 or the shim read back in every pairing.

Writers: native v0 CheckpointManager, shim. Readers: native v0 with args,
native v0 without args in a fresh process that never imports orbax_compat,
shim with and without args, and v1's `load_checkpointables`.
"""

import json
import pathlib
import subprocess
import sys
import textwrap

import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint.experimental import v1
import pytest

import orbax_compat

TREE = {'w': np.arange(6, dtype=np.float32).reshape(2, 3), 'b': {'i': np.array([7, 8], np.int32)},
        'j': jnp.arange(3, dtype=jnp.int32)}
META = {'name': 'run', 'lr': 0.5}
OPTIONS = dict(best_fn=lambda m: m['loss'], best_mode='min')


pytestmark = pytest.mark.usefixtures('quiet_shim')


def _save_args(layout):
  if layout == 'single':
    return ocp.args.StandardSave(TREE)
  return ocp.args.Composite(state=ocp.args.StandardSave(TREE), meta=ocp.args.JsonSave(META))


def _restore_args(layout):
  if layout == 'single':
    return ocp.args.StandardRestore(TREE)
  return ocp.args.Composite(state=ocp.args.StandardRestore(TREE), meta=ocp.args.JsonRestore())


def _write(writer, layout, root):
  cls = ocp.CheckpointManager if writer == 'native' else orbax_compat.CheckpointManager
  with cls(root, options=ocp.CheckpointManagerOptions(**OPTIONS)) as mngr:
    mngr.save(0, args=_save_args(layout), metrics={'loss': 0.25})


def _as_plain(value):
  """Restored value -> JSON-able plain data with array dtypes and types."""
  if isinstance(value, dict) or hasattr(value, 'items'):
    return {k: _as_plain(v) for k, v in sorted(dict(value).items())}
  if hasattr(value, 'dtype'):
    return [type(value).__name__ if isinstance(value, np.ndarray) else 'jax.Array',
            str(value.dtype), np.asarray(value).tolist()]
  return value


def _expected(layout, with_metrics):
  data = {'default': TREE} if layout == 'single' else {'state': TREE, 'meta': META}
  if with_metrics and layout != 'single':
    data['metrics'] = {'loss': 0.25}
  plain = _as_plain(data)
  return plain['default'] if layout == 'single' else plain


def _read(reader, layout, root):
  if reader == 'v1':
    loaded = v1.load_checkpointables(root / '0')
    return _as_plain(loaded['default'] if layout == 'single' else loaded)
  if reader == 'native-noargs-fresh':
    code = textwrap.dedent(f"""
        import json, sys, numpy as np, orbax.checkpoint as ocp
        with ocp.CheckpointManager({str(root)!r}) as m:
            r = m.restore(0)
        def plain(v):
            if hasattr(v, 'items'):
                return {{k: plain(x) for k, x in sorted(dict(v).items())}}
            if hasattr(v, 'dtype'):
                return [type(v).__name__ if isinstance(v, np.ndarray) else 'jax.Array',
                        str(v.dtype), np.asarray(v).tolist()]
            return v
        print(json.dumps(plain(r)))
        assert 'orbax_compat' not in sys.modules
    """)
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])
  cls = ocp.CheckpointManager if reader.startswith('native') else orbax_compat.CheckpointManager
  args = _restore_args(layout) if reader.endswith('-args') else None
  with cls(root) as mngr:
    return _as_plain(mngr.restore(0, args=args))


READERS = ('native-args', 'native-noargs-fresh', 'shim-args', 'shim-noargs', 'v1')


@pytest.mark.parametrize('layout', ['single', 'composite'])
@pytest.mark.parametrize('writer', ['native', 'shim'])
def test_every_reader_reads_every_writer(tmp_path, writer, layout):
  root = tmp_path / 'root'
  _write(writer, layout, root)
  for reader in READERS:
    got = json.loads(json.dumps(_read(reader, layout, root)))
    with_metrics = reader in ('native-noargs-fresh', 'shim-noargs')
    assert got == json.loads(json.dumps(_expected(layout, with_metrics))), (writer, reader)


def test_shim_steps_name_v0_handlers(tmp_path):
  """Plain v0 resolves the handlers a shim step records (no v1 type names)."""
  _write('shim', 'composite', tmp_path)
  recorded = json.loads(pathlib.Path(tmp_path / '0' / '_CHECKPOINT_METADATA').read_text())
  assert all(name.startswith('orbax.checkpoint._src.handlers.')
             for name in recorded['item_handlers'].values()), recorded


def test_shim_writes_v0s_array_format(tmp_path):
  """Item files and pytree `_METADATA` (zarr2, OCDBT) are exactly native v0's."""
  layouts = {}
  for writer in ('native', 'shim'):
    _write(writer, 'composite', tmp_path / writer)
    step = tmp_path / writer / '0'
    layouts[writer] = {
        'state': sorted(p.name for p in (step / 'state').iterdir()),
        'meta': sorted(p.name for p in (step / 'meta').iterdir()),
        'metrics': sorted(p.name for p in (step / 'metrics').iterdir()),
        '_METADATA': json.loads((step / 'state' / '_METADATA').read_text()),
    }
  assert layouts['shim'] == layouts['native']
  assert layouts['shim']['_METADATA']['use_zarr3'] is False
