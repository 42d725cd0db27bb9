"""The README's first command: the demo takes one run through every stage."""

import pathlib
import re
import subprocess
import sys
import textwrap

import orbax.checkpoint as ocp

from orbax_compat import v1_source

DEMO = pathlib.Path(__file__).resolve().parent.parent / 'orbax_compat' / 'tools' / 'demo'


def test_demo_runs_every_stage_each_resuming_from_the_last():
  proc = subprocess.run([sys.executable, '-m', 'orbax_compat', 'demo'],
                        capture_output=True, text=True, timeout=900)
  assert proc.returncode == 0, proc.stdout + proc.stderr
  out = proc.stdout
  resumed = [int(n) for n in re.findall(r'resumed at (\d+);', out)]
  # Each stage starts after the last one's latest step.
  assert resumed == [0, 5, 9, 13, 17], out
  # Stage 1 shows the notices; its report lists what it uses.
  assert 'stage1_v0.py:23: mngr.save(step, args=ocp.args.StandardSave(tree)' in out
  assert re.search(r'save +x6 +stage1_v0.py:23 +-> +step not in \[c.step for c in '
                   r'ckptr.checkpoints\] and ckptr.save_checkpointables_async', out)
  # Stage 3 still has a v0 constructor and best_step, nothing else of v0.
  stage3 = out.split('== stage 3')[1].split('== stage 4')[0]
  assert set(re.findall(r'\.py:\d+: (.*?) is Orbax v0 API', stage3)) == {'mngr = ocp.CheckpointManager(directory, options=options, '
                                    'metadata=metadata)', 'mngr.best_step()'}
  # Stages 4 and 5 are v1 only; 5 runs with orbax_compat unimportable and
  # loads the steps stages 1 and 3 wrote (kept by keep_period).
  stage5 = out.split('== stage 5')[1]
  assert 'steps [0, 4, 8, 12, 14, 16] (all loaded)' in stage5
  assert 'orbax_compat imported: False' in stage5
  assert 'notice:' not in out.split('== stage 4')[1]
  # Stage 6: scan --to-v1 finishes stage 1's manager; the script runs on v1
  # alone (orbax_compat unimportable) from the same directory.
  stage6 = out.split('== stage 6', 1)[1]
  assert 'finished stage1_v0.py:16:8: CheckpointManager -> ocp_v1.training.Checkpointer' in stage6
  assert 'not finished' not in stage6
  assert re.search(r'resumed at 17; steps \[0, 4, 8, 12, 16, 18, 20\], best 20', stage6), stage6


def test_stage4_constructor_is_the_generated_one():
  sys.path.insert(0, str(DEMO))
  try:
    from model import loss_of  # pylint: disable=g-import-not-at-top
  finally:
    sys.path.remove(str(DEMO))
  options = ocp.CheckpointManagerOptions(save_interval_steps=2, max_to_keep=3, keep_period=4,
                                         best_fn=loss_of, best_mode='min')
  generated = v1_source('unused', options, {'model': 'linear'}, directory_source='directory')
  script = (DEMO / 'stage4_v1.py').read_text()
  block = script.split('# BEGIN generated')[1].split('\n', 1)[1].split('  # END generated')[0]
  assert textwrap.dedent(block.replace('  return ', '  ', 1)).strip() == generated.strip()
  assert not re.search(r'^\s*(import|from) orbax_compat', script, re.M)
  for stage in ('stage1_v0.py', 'stage3_mixed.py'):
    assert ('save_interval_steps=2, max_to_keep=3, keep_period=4, best_fn=loss_of, '
            "best_mode='min'") in (DEMO / stage).read_text()
