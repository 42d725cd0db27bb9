"""Per-call cost of v0 queries, shim vs native, for two checkouts in one run.

    python bench/percall_ab.py [--before CHECKOUT] [--rounds 2]

Each round runs, in fresh processes and alternately, this tree and (with
`--before`) another checkout of orbax_compat put first on PYTHONPATH (e.g.
`git worktree add /tmp/before a912af7`): `latest_step`, `all_steps`,
`should_save` and `best_step` on a 10-step root written by native v0 with
`best_fn` set, each the best of 15 loops of 20,000 calls, with warnings
'off' and 'once' (the site has reported). Prints µs per call and the ratio
to native v0, measured in the same process.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys

QUERIES = (('latest_step', ()), ('all_steps', ()), ('should_save', (11,)), ('best_step', ()))

_CHILD = r'''
import json, logging, sys, tempfile, timeit, warnings
import numpy as np
import orbax.checkpoint as ocp
import orbax_compat
logging.getLogger('orbax_compat').disabled = True
warnings.simplefilter('ignore')
root = tempfile.mkdtemp()
options = lambda: ocp.CheckpointManagerOptions(best_fn=lambda m: m['loss'], best_mode='min')
with ocp.CheckpointManager(root, options=options()) as m:
  for s in range(10):
    m.save(s, args=ocp.args.StandardSave({'w': np.full(4, s, np.float32)}), metrics={'loss': s / 10})
native = ocp.CheckpointManager(root, options=options())
shim = orbax_compat.CheckpointManager(root, options=options())

def per_call(fn, n=20000):
  return min(timeit.repeat(fn, number=n, repeat=15)) / n * 1e6

out = {'orbax_compat': orbax_compat.__file__}
for name, args in json.loads(sys.argv[1]):
  native_fn, shim_fn = getattr(native, name), getattr(shim, name)
  row = {'native': per_call(lambda: native_fn(*args))}
  for policy in ('off', 'once'):
    orbax_compat.set_warning_policy(policy)
    call = lambda: shim_fn(*args)
    call()  # The site's first call (and notice).
    row[policy] = per_call(call)
  out[name] = row
shim.close()
native.close()
print(json.dumps(out))
'''


def _run(checkout: str | None) -> dict:
  env = dict(os.environ)
  if checkout:
    env['PYTHONPATH'] = os.pathsep.join(filter(None, [checkout, env.get('PYTHONPATH')]))
  proc = subprocess.run([sys.executable, '-c', _CHILD, json.dumps(QUERIES)], env=env,
                        capture_output=True, text=True, check=True, timeout=600,
                        cwd=pathlib.Path(__file__).resolve().parent)
  return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--before', help='another orbax_compat checkout to compare with')
  parser.add_argument('--rounds', type=int, default=2)
  ns = parser.parse_args()
  sides = {'after': None, **({'before': ns.before} if ns.before else {})}
  print('| round | side | query | native µs | shim \'off\' µs | shim \'once\' µs |')
  print('|---|---|---|---|---|---|')
  for r in range(ns.rounds):
    for side, checkout in sorted(sides.items(), key=lambda kv: (kv[0] == 'after') == bool(r % 2)):
      result = _run(checkout)
      for name, _ in QUERIES:
        row = result[name]
        print(f"| {r + 1} | {side} | `{name}` | {row['native']:.3f} | {row['off']:.3f} "
              f"({row['off'] / row['native']:.2f}×) | {row['once']:.3f} "
              f"({row['once'] / row['native']:.2f}×) |")
  return 0


if __name__ == '__main__':
  sys.exit(main())
