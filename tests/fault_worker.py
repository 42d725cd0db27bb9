"""Real filesystem failures, run on native v0 and on the shim (see test_faults.py).

Run as `unshare -m --propagation private python fault_worker.py SCENARIO DIR`
(root): in its own mount namespace, each side gets a fresh small tmpfs under
DIR that the scenario fills up (ENOSPC) or remounts read-only (EROFS) mid-run.
The namespace ends with the process, so no mount outlives a run or a crash.
Prints one JSON object: {side: observations}.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

from absl import logging as absl_logging
import numpy as np
import orbax.checkpoint as ocp
from test_differential import NATIVE
from test_differential import Rec
from test_differential import run_scenario

import orbax_compat

args = ocp.args
Options = ocp.CheckpointManagerOptions
SCENARIOS = {}


def scenario(size: str):
  def register(fn):
    SCENARIOS[fn.__name__] = (fn, size)
    return fn

  return register


class Disk:
  """The tmpfs a scenario runs on."""

  def __init__(self, mountpoint: pathlib.Path):
    self.mountpoint = mountpoint
    self._ballast = mountpoint / 'ballast'

  def fill(self) -> None:
    """Takes every free block (tmpfs counts whole pages)."""
    with open(self._ballast, 'ab', buffering=0) as f:
      for size in (1 << 16, 1 << 12):
        try:
          while True:
            f.write(b'\0' * size)
        except OSError:
          pass
    stat = os.statvfs(self.mountpoint)
    assert stat.f_bavail == 0, f'{stat.f_bavail} blocks still free'

  def free(self) -> None:
    self._ballast.unlink()

  def read_only(self, flag: bool) -> None:
    mode = 'ro' if flag else 'rw'
    subprocess.run(
        ['mount', '-o', f'remount,{mode}', str(self.mountpoint)], check=True
    )


def tree(step: int, size: int = 20_000) -> dict:
  return {'a': np.arange(size, dtype=np.float32) + step}


def noise(step: int) -> dict:
  """Incompressible: about 280 KB on disk."""
  return {'a': np.random.default_rng(step).standard_normal(70_000).astype(np.float32)}


def first(result) -> object:
  return None if result is None else float(np.asarray(result['a'])[0])


def end_state(rec: Rec, cls, m, root: pathlib.Path) -> None:
  """What is left: the layout, and what a fresh manager lists and restores."""
  rec.layout('layout')
  fresh = rec.manager('fresh manager', cls, root)
  steps = rec.call('fresh all_steps', fresh.all_steps)
  for step in steps:
    rec.call(f'fresh restore({step})', lambda s=step: first(fresh.restore(s)))
  rec.call('fresh close', fresh.close)


# --------------------------------------------------------------------------
# Scenarios: `fn(cls, root, disk) -> observations`.
# --------------------------------------------------------------------------


@scenario('2m')
def full_disk_async(cls, root, disk):
  """The disk fills up: the data and the metadata file of step 1 both fail.

  v0 raises the metadata error (OSError) at the next wait, and the data error
  (ValueError, its checkpointer's) at the next save, which then saves nothing.
  """
  rec = Rec(root)
  m = rec.manager('init', cls)
  rec.call('save(0)', m.save, 0, args=args.StandardSave(tree(0)))
  rec.call('wait', m.wait_until_finished)
  disk.fill()
  rec.call('save(1) on a full disk', m.save, 1, args=args.StandardSave(tree(1)))
  rec.call('all_steps', m.all_steps)
  rec.call('wait', m.wait_until_finished)
  rec.call('wait again', m.wait_until_finished)
  rec.call('all_steps after the error', m.all_steps)
  rec.call('latest_step', m.latest_step)
  rec.call('save(2) on a full disk', m.save, 2, args=args.StandardSave(tree(2)))
  rec.call('all_steps', m.all_steps)
  disk.free()
  rec.call('save(3)', m.save, 3, args=args.StandardSave(tree(3)))
  rec.call('wait', m.wait_until_finished)
  rec.call('all_steps', m.all_steps)
  rec.call('restore(3)', lambda: first(m.restore(3)))
  rec.call('close', m.close)
  end_state(rec, cls, m, root)
  return rec.obs


@scenario('2m')
def full_disk_restore_first(cls, root, disk):
  """A restore during the failing save raises the data error; wait the other."""
  rec = Rec(root)
  m = rec.manager('init', cls)
  rec.call('save(0)', m.save, 0, args=args.StandardSave(tree(0)))
  rec.call('wait', m.wait_until_finished)
  disk.fill()
  rec.call('save(1) on a full disk', m.save, 1, args=args.StandardSave(tree(1)))
  rec.call('restore(0)', lambda: first(m.restore(0)))
  rec.call('restore(0) again', lambda: first(m.restore(0)))
  rec.call('all_steps', m.all_steps)
  rec.call('wait', m.wait_until_finished)
  rec.call('all_steps after the error', m.all_steps)
  disk.free()
  rec.call('save(2)', m.save, 2, args=args.StandardSave(tree(2)))
  rec.call('wait', m.wait_until_finished)
  rec.call('close', m.close)
  end_state(rec, cls, m, root)
  return rec.obs


@scenario('2m')
def full_disk_close(cls, root, disk):
  """close() raises the data error once the wait has raised the other."""
  rec = Rec(root)
  m = rec.manager('init', cls)
  rec.call('save(0)', m.save, 0, args=args.StandardSave(tree(0)))
  rec.call('wait', m.wait_until_finished)
  disk.fill()
  rec.call('save(1) on a full disk', m.save, 1, args=args.StandardSave(tree(1)))
  rec.call('wait', m.wait_until_finished)
  rec.call('close', m.close)
  rec.call('close again', m.close)
  rec.call('all_steps', m.all_steps)
  disk.free()
  end_state(rec, cls, m, root)
  return rec.obs


@scenario('2m')
def full_disk_sync(cls, root, disk):
  """A synchronous save on a full disk raises from `save`, and only there."""
  rec = Rec(root)
  m = rec.manager('init', cls, options=Options(enable_async_checkpointing=False))
  rec.call('save(0)', m.save, 0, args=args.StandardSave(tree(0)))
  disk.fill()
  rec.call('save(1) on a full disk', m.save, 1, args=args.StandardSave(tree(1)))
  rec.call('all_steps', m.all_steps)
  rec.call('wait', m.wait_until_finished)
  rec.call('check_for_errors', m.check_for_errors)
  disk.free()
  rec.call('save(2)', m.save, 2, args=args.StandardSave(tree(2)))
  rec.call('all_steps', m.all_steps)
  rec.call('close', m.close)
  end_state(rec, cls, m, root)
  return rec.obs


@scenario('1m')
def disk_fills_up(cls, root, disk):
  """Steps of about 280 KB on a 1 MB disk: the fourth does not fit."""
  rec = Rec(root)
  m = rec.manager('init', cls)
  for step in range(5):
    rec.call(f'save({step})', m.save, step, args=args.StandardSave(noise(step)))
    rec.call('wait', m.wait_until_finished)
  rec.call('all_steps', m.all_steps)
  rec.call('delete(0)', m.delete, 0)
  rec.call('delete(1)', m.delete, 1)
  rec.call('save(5)', m.save, 5, args=args.StandardSave(noise(5)))
  rec.call('wait', m.wait_until_finished)
  rec.call('all_steps', m.all_steps)
  rec.call('close', m.close)
  end_state(rec, cls, m, root)
  return rec.obs


def _read_only_midrun(cls, root, disk, enable_async: bool):
  rec = Rec(root)
  m = rec.manager(
      'init', cls,
      options=Options(max_to_keep=2, enable_async_checkpointing=enable_async),
  )
  rec.call('save(0)', m.save, 0, args=args.StandardSave(tree(0, 2000)))
  rec.call('save(1)', m.save, 1, args=args.StandardSave(tree(1, 2000)))
  rec.call('wait', m.wait_until_finished)
  disk.read_only(True)
  rec.call('save(2) read-only', m.save, 2, args=args.StandardSave(tree(2, 2000)))
  rec.call('all_steps', m.all_steps)
  rec.call('wait', m.wait_until_finished)
  rec.call('wait again', m.wait_until_finished)
  rec.call('all_steps after the error', m.all_steps)
  rec.call('save(3) read-only', m.save, 3, args=args.StandardSave(tree(3, 2000)))
  rec.call('wait', m.wait_until_finished)
  disk.read_only(False)
  rec.call('save(4)', m.save, 4, args=args.StandardSave(tree(4, 2000)))
  rec.call('wait', m.wait_until_finished)
  rec.call('all_steps', m.all_steps)
  rec.call('restore(4)', lambda: first(m.restore(4)))
  rec.call('close', m.close)
  end_state(rec, cls, m, root)
  return rec.obs


@scenario('8m')
def read_only_async(cls, root, disk):
  """The disk turns read-only between saves, then writable again."""
  return _read_only_midrun(cls, root, disk, enable_async=True)


@scenario('8m')
def read_only_sync(cls, root, disk):
  return _read_only_midrun(cls, root, disk, enable_async=False)


def main(name: str, base: str) -> None:
  absl_logging.set_verbosity(absl_logging.FATAL)
  orbax_compat.set_warning_policy('off')
  fn, size = SCENARIOS[name]
  out = {}
  for side, cls in (('native', NATIVE), ('shim', orbax_compat.CheckpointManager)):
    mountpoint = pathlib.Path(base) / side
    mountpoint.mkdir(parents=True)
    subprocess.run(
        ['mount', '-t', 'tmpfs', '-o', f'size={size}', 'tmpfs', str(mountpoint)],
        check=True,
    )
    disk = Disk(mountpoint)
    out[side] = run_scenario(
        lambda c, r, disk=disk: fn(c, r, disk), cls, mountpoint / 'ckpt'
    )
  print(json.dumps(out))
  sys.stdout.flush()
  # Orbax can leave a thread waiting for a signal after a failed directory
  # creation, which would keep the interpreter from exiting.
  os._exit(0)


if __name__ == '__main__':
  main(*sys.argv[1:])
