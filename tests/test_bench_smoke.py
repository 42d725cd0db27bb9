"""`python -m bench --smoke` keeps the benchmarks alive (no timing asserts)."""

import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_bench_smoke_runs(tmp_path):
  (ROOT / 'bench' / 'results' / 'smoke.json').unlink(missing_ok=True)
  proc = subprocess.run([sys.executable, '-m', 'bench', '--smoke', '--dir', str(tmp_path)],
                        cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
  results = json.loads((ROOT / 'bench' / 'results' / 'smoke.json').read_text())
  assert {'shim', 'native', 'shim fast', 'v1', 'raw'} <= set(results['save']['1'])
