"""Real filesystem failures, on native v0 and on the shim (issue 10).

Each scenario runs on a small tmpfs that it fills up (ENOSPC) or remounts
read-only (EROFS) mid-run: in a child process in its own mount namespace
(`unshare -m`, the harness's `child=`), where each side gets a fresh tmpfs
(the harness's `setup=`, a filesystem fixture). The namespace ends with the
child, so no mount outlives a run or a crash. Needs Linux, root and
`unshare`; skipped, with the reason, elsewhere.

What is compared (`view`): a failed save's temporary directory is listed but
not what it holds (that depends on how far its write got). Where a save fails
twice (its data and its metadata file), v0 raises the two errors at the same
calls but in an order that depends on whether its metadata write was queued
before its finalize thread waited: there the calls are compared without
their error types, and the set of error types raised separately. Each
scenario must see its fault, and the shim must lose nothing it reported as
saved (`check`).
"""

from __future__ import annotations

import contextlib
import functools
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

from differential import Options
from differential import Rec
from differential import args
from differential import scenario
import numpy as np

UNSHARE = ('unshare', '-m', '--propagation', 'private')
_TMP_SUFFIX = '.orbax-checkpoint-tmp/'


@functools.cache
def fault_injection_unavailable() -> str | None:
  """Why this machine cannot mount a private tmpfs, or None if it can."""
  if sys.platform != 'linux':
    return f'fault injection needs Linux mount namespaces (this is {sys.platform})'
  if shutil.which('unshare') is None:
    return 'fault injection needs `unshare` (util-linux) on PATH'
  if os.geteuid() != 0:
    return 'fault injection needs root to mount a tmpfs in a private mount namespace'
  with tempfile.TemporaryDirectory() as d:
    probe = subprocess.run(
        [*UNSHARE, 'sh', '-c',
         f'mount -t tmpfs -o size=1m tmpfs {d} && mount -o remount,ro {d}'],
        capture_output=True, text=True, check=False,
    )
  if probe.returncode != 0:
    return (
        'fault injection: cannot mount a tmpfs and remount it read-only in a private mount '
        f'namespace: {probe.stderr.strip() or probe.returncode}'
    )
  return None


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




def tmpfs(size: str):
  """The filesystem fixture: a fresh tmpfs of `size` per side, the root in it."""

  @contextlib.contextmanager
  def setup(mountpoint: pathlib.Path):
    subprocess.run(
        ['mount', '-t', 'tmpfs', '-o', f'size={size}', 'tmpfs', str(mountpoint)],
        check=True,
    )
    yield mountpoint / 'ckpt', (Disk(mountpoint),)

  return setup


# --------------------------------------------------------------------------
# What is compared, and what must hold.
# --------------------------------------------------------------------------


def masked(obs):
  """A failed save's temporary directory is listed, not what it holds."""
  out = []
  for o in obs:
    if o[1] == 'layout' and isinstance(o[2], list):
      o = (o[0], o[1], [(e[0], None) if e[0].endswith(_TMP_SUFFIX) else e for e in o[2]])
    out.append(o)
  return out


def errors_in_any_order(obs):
  """masked(), each call's error untyped, and the error types raised, sorted."""
  untyped = [(o[0], o[1], 'an exception', o[3]) if o[1] == 'raises' else o
             for o in masked(obs)]
  types = sorted(o[2] for o in obs if o[1] == 'raises')
  return [*untyped, ('error types raised', 'value', types)]


def check_invariants(native, shim) -> None:
  """The fault was seen; never a partial step listed, a raise for work that
  succeeded, or a committed step lost.

  Every step a fresh manager lists restores, and neither its save nor the
  wait after that save raised; every step the manager listed last is still
  listed by a fresh one.
  """
  del native
  obs = shim
  assert any(o[1] == 'raises' for o in obs), obs
  fresh = next(o for o in obs if o[0] == 'fresh all_steps')
  listed = [v for _, v in fresh[2][1]]
  restored = {int(o[0][len('fresh restore('):-1]): o[1] for o in obs
              if o[0].startswith('fresh restore(')}
  assert sorted(restored) == sorted(listed)
  assert all(outcome == 'returns' for outcome in restored.values()), obs
  for step in listed:
    at = next(i for i, o in enumerate(obs) if o[0].startswith(f'save({step})'))
    assert tuple(obs[at][1:]) == ('returns', ('builtins.bool', True)), obs[at]
    wait = next((o for o in obs[at:] if o[0].startswith('wait')), None)
    assert wait is None or wait[1] == 'returns', (step, wait)
  last = [o for o in obs if o[0].startswith('all_steps')][-1]
  assert {v for _, v in last[2][1]} <= set(listed), (last, listed)


def check_sync_tmp_directory(native, shim) -> None:
  """README, known differences: a synchronous save failing on a full disk
  leaves its temporary directory; the shim's holds its item's directory."""
  sides = {'native': native, 'shim': shim}
  tmp = {side: next(e[1] for o in sides[side] if o[1] == 'layout' for e in o[2]
                    if e[0].endswith(_TMP_SUFFIX)) for side in sides}
  assert tmp == {'native': ['_CHECKPOINT_METADATA'],
                 'shim': ['_CHECKPOINT_METADATA', 'default.orbax-checkpoint-tmp/']}, tmp
  check_invariants(native, shim)


def fs_scenario(size: str, view=masked, check=check_invariants, race=None):
  """A scenario `fn(cls, root, disk)` on a tmpfs of `size`, in a child
  process in its own mount namespace."""
  return scenario(child=UNSHARE, setup=tmpfs(size), skip=fault_injection_unavailable,
                  view=view, check=check, race=race)


# --------------------------------------------------------------------------
# Scenarios: `fn(cls, root, disk) -> observations`.
# --------------------------------------------------------------------------


@fs_scenario('2m', view=errors_in_any_order)
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


@fs_scenario('2m', view=errors_in_any_order, race=(
    'whether the failing save\'s metadata write was queued before its finalize thread '
    'waited decides which of the restore and the wait raises which error, and whether the '
    'failed step stays listed'))
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


@fs_scenario('2m', view=errors_in_any_order)
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


@fs_scenario('2m', check=check_sync_tmp_directory)
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


@fs_scenario('1m')
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


@fs_scenario('8m')
def read_only_async(cls, root, disk):
  """The disk turns read-only between saves, then writable again."""
  return _read_only_midrun(cls, root, disk, enable_async=True)


@fs_scenario('8m')
def read_only_sync(cls, root, disk):
  return _read_only_midrun(cls, root, disk, enable_async=False)
