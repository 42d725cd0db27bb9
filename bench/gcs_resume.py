"""Issue 16, item 7: how often a resume in a fresh process saves on gs://.

`python bench/gcs_resume.py [--n 20] [--contenders native-sync,...]`

Starts fake-gcs-server on 127.0.0.1 (tests/gcs_emulator.py: gcsfs as epath's
backend, TensorStore's gcs driver), then for each contender (native v0 or the
shim, synchronous or asynchronous saves) writes step 0 on a root of its own
and runs N resumes, each in a fresh process, as a training job restarts:
open the manager, restore the latest step, save the next step (step i for
the i-th resume; `wait_until_finished` for an async save), close. A resume
succeeds when all of that raises nothing and the new step is listed after
the save. Contenders take turns, one resume each, so load and noise fall on
all alike. Prints successes/N per contender, and the errors seen.
"""

from __future__ import annotations

import argparse
import collections
import json
import pathlib
import subprocess
import sys
import time

TESTS = pathlib.Path(__file__).resolve().parent.parent / 'tests'
CONTENDERS = ('native-sync', 'native-async', 'shim-sync', 'shim-async')


def _tree(step: int):
  import numpy as np  # pylint: disable=g-import-not-at-top

  return {'w': np.arange(64, dtype=np.float32) + step,
          'b': {'x': np.full((4, 4), step, np.int32)}}


def worker(contender: str, root: str, step: int) -> int:
  """One resume (or, for step 0, the first save), in this fresh process."""
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top

  if contender.startswith('shim'):
    import orbax_compat  # pylint: disable=g-import-not-at-top

    orbax_compat.set_warning_policy('off')
    cls = orbax_compat.CheckpointManager
  else:
    cls = ocp.CheckpointManager
  options = ocp.CheckpointManagerOptions(
      max_to_keep=3, enable_async_checkpointing=contender.endswith('async'))
  try:
    with cls(root, options=options) as mngr:
      latest = mngr.latest_step()
      if step:
        restored = mngr.restore(latest, args=ocp.args.StandardRestore(_tree(0)))
        assert int(restored['b']['x'][0, 0]) == latest, restored
      mngr.save(step, args=ocp.args.StandardSave(_tree(step)))
      mngr.wait_until_finished()
      if step not in mngr.all_steps():
        raise AssertionError(f'step {step} not listed: {mngr.all_steps()}')
  except Exception as e:  # pylint: disable=broad-exception-caught
    print(json.dumps({'error': f'{type(e).__name__}: {str(e)[:300]}'}))
    return 1
  print(json.dumps({'ok': step}))
  return 0


def _run_worker(env, contender, root, step) -> tuple[bool, str]:
  proc = subprocess.run(
      [sys.executable, __file__, '--worker', contender, root, str(step)],
      env=env, capture_output=True, text=True, timeout=300, check=False)
  lines = [line for line in proc.stdout.splitlines() if line.startswith('{')]
  if proc.returncode == 0 and lines and 'ok' in json.loads(lines[-1]):
    return True, ''
  if lines:
    return False, json.loads(lines[-1]).get('error', '?')
  return False, f'exit {proc.returncode}: {proc.stderr.strip()[-300:]}'


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--n', type=int, default=20)
  parser.add_argument('--contenders', default=','.join(CONTENDERS))
  parser.add_argument('--worker', nargs=3, metavar=('CONTENDER', 'ROOT', 'STEP'))
  ns = parser.parse_args(argv)
  if ns.worker:
    contender, root, step = ns.worker
    return worker(contender, root, int(step))

  sys.path.insert(0, str(TESTS))
  import gcs_emulator  # pylint: disable=g-import-not-at-top

  reason = gcs_emulator.unavailable()
  if reason:
    print(f'gcs_resume: cannot run: {reason}')
    return 2
  contenders = ns.contenders.split(',')
  ok = collections.Counter()
  errors = collections.defaultdict(collections.Counter)
  start = time.time()
  with gcs_emulator.Emulator(lifetime=3 * 3600) as emulator:
    env = emulator.env()
    roots = {c: gcs_emulator.root_url(f'resume-{c}-{int(start)}') for c in contenders}
    for c in contenders:
      seeded, error = _run_worker(env, c, roots[c], 0)
      if not seeded:
        print(f'{c}: the first save failed: {error}')
        return 1
    for i in range(1, ns.n + 1):
      for c in contenders:
        success, error = _run_worker(env, c, roots[c], i)
        ok[c] += success
        if not success:
          errors[c][error.split(':')[0] + ': ' + _shorten(error)] += 1
      print(f'round {i}/{ns.n}: ' + ', '.join(f'{c} {ok[c]}/{i}' for c in contenders),
            flush=True)
  print(f'\nfresh-process resumes on gs:// (fake-gcs-server), N={ns.n}, '
        f'{time.time() - start:.0f} s')
  for c in contenders:
    print(f'  {c:13s} {ok[c]}/{ns.n}')
    for error, count in errors[c].most_common():
      print(f'      {count} x {error}')
  return 0


def _shorten(error: str) -> str:
  """The error without its step number and paths (to group repeats)."""
  import re  # pylint: disable=g-import-not-at-top

  text = error.split(':', 1)[-1]
  return re.sub(r'gs://\S+|\b\d+\b', '…', text).strip()[:160]


if __name__ == '__main__':
  sys.exit(main())
