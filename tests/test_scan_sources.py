"""Any Python syntax, notebooks, exit statuses, and a start-up without jax or Orbax."""

import json
import os
import pathlib
import shutil
import subprocess
import sys

from orbax_compat.tools import scan

SOURCES = pathlib.Path(__file__).resolve().parent / 'scan_sources'


def test_python_312_syntax_is_scanned_whatever_python_runs():
  """PEP 695 (`type X = ...`, `def f[T]`, bounds) and PEP 701 (nested quotes in
  f-strings) parse with libcst's grammar, also under Python 3.11."""
  result = scan.run([str(SOURCES / 'py312.py')])
  assert not result.errors
  assert [(f.line, f.label) for f in result.findings] == [
      (2, 'import'), (18, 'CheckpointManager'), (19, 'all_steps'), (20, 'directory')]
  directory = result.findings[-1]  # In nested f-strings: its v1 code holds no quote.
  assert directory.to_v1 and not directory.reason


def test_calls_in_f_strings_are_rewritten_where_the_v1_code_has_no_clashing_quote(tmp_path):
  """Before Python 3.12 an f-string's expressions cannot hold its quote: the
  v1 code of a call there must not (string literals from the options take the
  other quote)."""
  (tmp_path / 'pyproject.toml').write_text('')
  path = tmp_path / 'f.py'
  path.write_text(
      'import orbax.checkpoint as ocp\n\n\n'
      'def f(d, t, loss):\n'
      "  m = ocp.CheckpointManager(d, options=ocp.CheckpointManagerOptions(best_fn=loss, "
      "best_mode='min'))\n"
      "  print(f'{m.all_steps()} {m.best_step()} {m.save(1, args=ocp.args.StandardSave(t))}')\n"
      '  print(f"{m.save(2, args=ocp.args.StandardSave(t))}")\n')
  result = scan.run([str(path)], to_v1=True)
  kept = {(f.line, f.label): f.reason for f in result.findings if f.mechanical and not f.to_v1}
  assert kept == {(6, 'save'): 'inside an f-string (the v1 code\'s quotes may not nest there)'}
  text = path.read_text()
  assert ("      f'{[c.step for c in m.v1_checkpointer.checkpoints]} "
          '{v0_best_step(m.v1_checkpointer, loss, "min")} '
          "{m.save(1, args=ocp.args.StandardSave(t))}')\n") in text
  assert ('      f"{(2 not in [c.step for c in m.v1_checkpointer.checkpoints] and '
          "m.v1_checkpointer.save_checkpointables_async(2, {'default': t}) is not None)}\")\n"
          ) in text
  compile(text, str(path), 'exec')  # Python 3.11 parses it.


def test_notebook_findings_name_their_cell_and_line():
  result = scan.run([str(SOURCES / 'guide.ipynb')])
  assert not result.errors
  got = [(f.cell, f.line, f.col, f.label) for f in result.findings]
  assert got == [
      (1, 3, 1, 'import'), (2, 1, 40, 'options.max_to_keep'), (2, 2, 8, 'CheckpointManager'),
      (3, 2, 3, 'save'), (3, 3, 1, 'wait_until_finished'), (3, 4, 1, 'all_steps'),
      (5, 1, 12, 'restore'), (5, 1, 25, 'latest_step'), (5, 2, 1, 'close')]
  as_json = [f.to_json() for f in result.findings]
  assert all(j['cell'] == f.cell for j, f in zip(as_json, result.findings, strict=True))
  assert result.findings[3].text().startswith(f'{SOURCES / "guide.ipynb"}[3]:2:3: save:')


def test_notebook_fix_and_to_v1_keep_outputs_metadata_magics_and_layout(tmp_path):
  path = tmp_path / 'guide.ipynb'
  shutil.copy(SOURCES / 'guide.ipynb', path)
  before = json.loads(path.read_text())
  assert scan.run([str(path)], fix=True).changes
  fixed = json.loads(path.read_text())
  assert fixed['cells'][1]['source'][2] == 'import orbax_compat as ocp\n'
  scan.run([str(path)], to_v1=True)
  text = path.read_text()
  after = json.loads(text)
  assert text == json.dumps(after, indent=1, ensure_ascii=False) + '\n'  # nbformat's layout.
  for old, new in zip(before['cells'], after['cells'], strict=True):
    assert {k: v for k, v in old.items() if k != 'source'} == {
        k: v for k, v in new.items() if k != 'source'}
  assert after['metadata'] == before['metadata']
  sources = [''.join(c['source']) for c in after['cells']]
  assert sources[1].startswith('!pip install orbax-checkpoint\n%load_ext autoreload\n')
  assert sources[2].endswith('files = !ls /tmp')
  # The v1 import goes with the cell's imports, where isort would put it.
  assert sources[1].endswith('import numpy as np\n'
                             'from orbax.checkpoint.experimental import v1 as ocp_v1')
  # A save whose argument is a call: each argument evaluated once, as in v0, and
  # v0's False for a step v1 has (v1 raises).
  assert sources[3] == (
      'for step in range(2):\n'
      '  try:\n'
      '    mngr.v1_checkpointer.save_checkpointables_async(\n'
      "        step, {'default': {'w': np.zeros(3)}})\n"
      '  except ocp_v1.training.errors.StepAlreadyExistsError:\n'
      '    pass\n'
      'mngr.v1_checkpointer.wait()\n'
      '[c.step for c in mngr.v1_checkpointer.checkpoints]')
  assert sources[4] == ''.join(before['cells'][4]['source'])  # %%bash: untouched.
  assert scan.run([str(path)], to_v1=True).changes == []  # Idempotent.


def test_unparsable_file_gives_a_non_zero_exit_and_the_rest_is_scanned(tmp_path, capsys):
  clean = tmp_path / 'clean.py'
  clean.write_text('import json\nprint(json.dumps({}))\n')
  broken = tmp_path / 'broken.py'
  broken.write_text('import orbax.checkpoint as ocp\nm = ocp.CheckpointManager(\n')
  assert scan.main([str(clean), str(broken)]) == 2
  out, err = capsys.readouterr()
  assert 'no v0 uses found (1 files scanned)' in out
  assert '1 file(s) could not be scanned' in out
  assert f'{broken}:' in err and 'syntax error' in err
  v0 = tmp_path / 'v0.py'
  v0.write_text('import orbax.checkpoint as ocp\nm = ocp.CheckpointManager("/d")\n')
  assert scan.main([str(v0), str(broken)]) == 1  # v0 uses remain (and the error is listed).
  assert scan.main([str(clean)]) == 0
  notebook = tmp_path / 'bad.ipynb'
  notebook.write_text('{"cells": [')
  assert scan.main([str(notebook)]) == 2
  assert 'not a Jupyter notebook' in capsys.readouterr().err


def test_start_up_imports_neither_jax_nor_orbax(tmp_path):
  """`python -X importtime -m orbax_compat scan EMPTY_DIR`: no jax, Orbax, numpy, etils."""
  empty = tmp_path / 'empty'
  empty.mkdir()
  proc = subprocess.run([sys.executable, '-X', 'importtime', '-m', 'orbax_compat', 'scan',
                         str(empty)], capture_output=True, text=True, timeout=300,
                        cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(
                            pathlib.Path(__file__).resolve().parent.parent)))
  assert proc.returncode == 0, proc.stderr[-2000:]
  imported = {line.split('|')[-1].strip() for line in proc.stderr.splitlines()
              if line.startswith('import time:')}
  assert 'orbax_compat.tools.scan.cli' in imported
  heavy = {m for m in imported if m.split('.')[0] in ('jax', 'jaxlib', 'orbax', 'numpy', 'etils')}
  assert heavy == set()
  # The package's floor check (compat.release) reads metadata only.
  pure = {'orbax_compat.compat', 'orbax_compat.compat.release'}
  assert not {m for m in imported - pure if m.startswith((
      'orbax_compat.runtime', 'orbax_compat.compat', 'orbax_compat.manager'))}
