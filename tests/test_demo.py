"""The README's first command: the demo runs and shows the notices."""

import subprocess
import sys


def test_demo_runs_resumes_and_warns():
  proc = subprocess.run([sys.executable, '-m', 'orbax_compat', 'demo'],
                        capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr
  assert 'resumed from step 4' in proc.stdout
  assert 'steps on disk: [6, 8, 10], latest: 10' in proc.stdout
  assert 'demo.py:53: mngr.save(step, args=ocp.args.StandardSave(tree), metrics=metrics' in proc.stderr
  assert 'ckptr.save_checkpointables_async' in proc.stderr
