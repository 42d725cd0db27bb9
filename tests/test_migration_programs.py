"""The real-program proof of `scan --fix` and `scan --to-v1` (issue 19).

Each program of tests/migration_programs/ is shaped like public training code
(Orbax's guides, Flax's examples and MaxText's resume loop, maxdiffusion's
trainers, t5x's legacy subclass, named items and legacy `checkpointers=`,
managers built through Orbax's submodule). Each runs on native v0, then on a
copy after `--fix`, then after `--to-v1` (which finishes the managers it can:
those programs then run on Orbax v1 alone), and the results are compared:

- what `main(workdir)` returns, with every array's type (jax.Array or numpy),
  dtype, shape and values, and Python scalars by type;
- exceptions, by type name (the programs catch the ones v0 raises);
- the checkpoints written: each root's steps and files (OCDBT data files only
  as present: their names are random and their number varies from run to run,
  in v0 too) and what native v0 reads back of each item of each step.

The rewritten programs also run on copies of the checkpoints native v0 wrote
(they resume from them, or read them); the finished ones once more with
`import orbax_compat` failing, which proves they do not import it.
Each stage runs every program in one subprocess.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap

import pytest

from orbax_compat.tools import scan

PROGRAMS = pathlib.Path(__file__).resolve().parent / 'migration_programs'
NAMES = sorted(p.stem for p in PROGRAMS.glob('*.py'))
# The programs --to-v1 finishes (every manager a v1 Checkpointer), and what
# it names as left for the managers of the others.
FINISHED = {'orbax_guide', 'resume_loop', 'trainer', 'submodules'}

RUNNER = textwrap.dedent('''\
    import json, os, re, runpy, sys, warnings
    if sys.argv[2] == 'no-orbax-compat':
        sys.modules['orbax_compat'] = None  # `import orbax_compat` raises ImportError.
    import jax
    import numpy as np

    def describe(x):
        if isinstance(x, jax.Array):
            return ['jax.Array', str(x.dtype), list(x.shape), np.asarray(x).tolist()]
        if isinstance(x, np.ndarray):
            return ['np.ndarray', str(x.dtype), list(x.shape), x.tolist()]
        if isinstance(x, np.generic):
            return ['np.' + type(x).__name__, x.item()]
        if isinstance(x, dict) or hasattr(x, 'keys') and hasattr(x, '__getitem__'):
            return {str(k): describe(x[k]) for k in x.keys()}
        if isinstance(x, tuple):
            return ['tuple'] + [describe(v) for v in x]
        if isinstance(x, list):
            return [describe(v) for v in x]
        if x is None or isinstance(x, (bool, int, float, str)):
            return [type(x).__name__, x]
        return ['object', type(x).__name__]

    def files(root):
        out = {}
        for dirpath, dirnames, filenames in os.walk(root):
            rel = os.path.relpath(dirpath, root)
            for name in filenames:
                key = os.path.join(rel, name)
                # OCDBT data files: random names, and a number that varies from
                # run to run (in v0 too): there are some.
                key = re.sub(r'/d/[^/]+$', '/d/*', key)
                out[key] = 1
        return out

    def item_args(native, step_dir):
        """v0 args reading each item of a step as it was saved (a pytree, or JSON)."""
        args = {}
        for name in sorted(os.listdir(step_dir)):
            path = os.path.join(step_dir, name)
            if not os.path.isdir(path) or name.startswith('_') or name == 'metrics':
                continue
            pytree = any(os.path.exists(os.path.join(path, f))
                         for f in ('_METADATA', 'manifest.ocdbt'))
            args[name] = native.args.StandardRestore() if pytree else native.args.JsonRestore()
        if list(args) == ['default']:  # One unnamed item.
            return args['default']
        return native.args.Composite(**args)

    def read_back(workdir):
        """Native v0 reads every item of every step of every root a program wrote."""
        import orbax.checkpoint as native
        out = {}
        for dirpath, dirnames, filenames in sorted(os.walk(workdir)):
            steps = sorted(d for d in dirnames if d.isdigit())
            if not steps:
                continue
            dirnames[:] = []  # A root: its steps are not roots.
            with native.CheckpointManager(dirpath) as m:
                root = {'steps': m.all_steps(), 'files': files(dirpath)}
                for step in m.all_steps():
                    args = item_args(native, os.path.join(dirpath, str(step)))
                    root[str(step)] = describe(m.restore(step, args=args))
                    root[f'{step} metrics'] = describe(m.metrics(step))
            out[os.path.relpath(dirpath, workdir)] = root
        return out

    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        for path, workdir in zip(sys.argv[3::2], sys.argv[4::2]):
            module = runpy.run_path(path, run_name='migration_program')
            result = {'returned': describe(module['main'](workdir))}
            result['checkpoints'] = read_back(workdir)
            result['orbax_compat imported'] = sys.modules.get('orbax_compat') is not None
            out[os.path.basename(path)[:-3]] = result
    with open(sys.argv[1], 'w') as f:
        json.dump(out, f)
''')


def run_stage(programs: pathlib.Path, names, workdirs: pathlib.Path, results: pathlib.Path,
              orbax_compat: bool = True) -> dict:
  """Runs each program's main(workdirs/NAME) in one subprocess; {name: result}."""
  argv = [sys.executable, '-c', RUNNER, str(results),
          'with-orbax-compat' if orbax_compat else 'no-orbax-compat']
  for name in names:
    argv += [str(programs / f'{name}.py'), str(workdirs / name)]
  env = dict(os.environ, ORBAX_COMPAT_WARNINGS='off')
  proc = subprocess.run(argv, capture_output=True, text=True, timeout=600, env=env)
  assert proc.returncode == 0, proc.stderr[-6000:]
  return json.loads(results.read_text())


def checkpoints_written_the_same(a: dict, b: dict) -> None:
  assert a.keys() == b.keys()
  for root in a:
    assert a[root] == b[root], root


@pytest.fixture(scope='module')
def stages(tmp_path_factory):
  """Every stage's results: native, after --fix, after --to-v1 (and finished:
  orbax_compat unimportable), and the rewritten programs resuming from what
  native v0 wrote."""
  base = tmp_path_factory.mktemp('migration')
  programs = base / 'programs'
  shutil.copytree(PROGRAMS, programs)
  out = {'native': run_stage(programs, NAMES, base / 'native', base / 'native.json')}

  out['fix result'] = scan.run([str(programs)], fix=True)
  out['fixed sources'] = {n: (programs / f'{n}.py').read_text() for n in NAMES}
  out['fix'] = run_stage(programs, NAMES, base / 'fix', base / 'fix.json')

  out['to_v1 result'] = scan.run([str(programs)], to_v1=True)
  out['to_v1 sources'] = {n: (programs / f'{n}.py').read_text() for n in NAMES}
  out['to_v1'] = run_stage(programs, NAMES, base / 'to_v1', base / 'to_v1.json')
  # The rewritten programs on copies of what native v0 wrote.
  shutil.copytree(base / 'native', base / 'resume')
  out['resume'] = run_stage(programs, NAMES, base / 'resume', base / 'resume.json')
  # The finished programs with orbax_compat unimportable, on what v0 wrote too.
  shutil.copytree(base / 'native', base / 'pure')
  out['pure'] = run_stage(programs, sorted(FINISHED), base / 'pure', base / 'pure.json',
                          orbax_compat=False)
  shutil.copytree(base / 'native', base / 'native_again')
  out['native resume'] = run_stage(PROGRAMS, NAMES, base / 'native_again',
                                   base / 'native_again.json')
  return out


@pytest.mark.parametrize('name', NAMES)
def test_fixed_program_gives_what_native_v0_gives(stages, name):
  native, fixed = stages['native'][name], stages['fix'][name]
  assert fixed['returned'] == native['returned']
  checkpoints_written_the_same(fixed['checkpoints'], native['checkpoints'])
  assert fixed['orbax_compat imported']  # It runs on the shim.


def test_fix_leaves_no_manager_native_and_exits_zero(stages):
  result = stages['fix result']
  assert result.exit_code == 0 and not result.actions
  sources = stages['fixed sources']
  assert 'class LegacyCheckpointManager(orbax_compat.CheckpointManager):' in sources['t5x_legacy']
  assert 'from orbax_compat import CheckpointManager\n' in sources['trainer']
  assert 'a = ocp.CheckpointManager(' in sources['submodules']
  assert 'with orbax_compat.CheckpointManager(' in sources['submodules']


@pytest.mark.parametrize('name', NAMES)
def test_to_v1_program_gives_what_native_v0_gives(stages, name):
  native, rewritten = stages['native'][name], stages['to_v1'][name]
  assert rewritten['returned'] == native['returned']
  checkpoints_written_the_same(rewritten['checkpoints'], native['checkpoints'])


@pytest.mark.parametrize('name', NAMES)
def test_to_v1_program_reads_what_native_v0_wrote(stages, name):
  """On copies of native v0's checkpoints, the rewritten program does what the
  original does on them."""
  native, resumed = stages['native resume'][name], stages['resume'][name]
  assert resumed['returned'] == native['returned']
  checkpoints_written_the_same(resumed['checkpoints'], native['checkpoints'])


def test_to_v1_finishes_the_programs_it_can(stages):
  result = stages['to_v1 result']
  by_program = {}
  for m in result.managers:
    by_program.setdefault(pathlib.Path(m['path']).stem, []).append(m)
  finished = {p for p, ms in by_program.items() if all(m['finished'] for m in ms)}
  assert finished == FINISHED
  for name in FINISHED:
    source = stages['to_v1 sources'][name]
    code = '\n'.join(ln for ln in source.splitlines() if not ln.startswith(('"""', ' ')) or (
        ln.strip() and not ln.strip().startswith('#')))
    assert 'orbax_compat' not in code and 'CheckpointManager(' not in code, name
    assert 'ocp_v1.training.Checkpointer(' in source
  # What is left, named, for the others.
  left = {p: [left for m in ms for left in m['left']] for p, ms in by_program.items()
          if p not in FINISHED}
  assert any('of a subclass' in text or 'subclass' in text for text in left['t5x_legacy']), left
  assert any('item names' in text for text in left['named_items']), left


@pytest.mark.parametrize('name', NAMES)
def test_rewritten_lines_keep_the_files_line_length(stages, name):
  """No project config here: the file's longest line (at least 79) is its
  line length; every line --to-v1 wrote (TODOs, v1 code, constructors)
  stays within it."""
  original = (PROGRAMS / f'{name}.py').read_text().splitlines()
  limit = max(79, *map(len, original))
  written = [ln for ln in stages['to_v1 sources'][name].splitlines() if ln not in original]
  assert written and max(map(len, written)) <= limit, [ln for ln in written if len(ln) > limit]


@pytest.mark.parametrize('name', sorted(FINISHED))
def test_finished_program_runs_on_v1_alone(stages, name):
  """`import orbax_compat` fails in this run, and the program, started on
  copies of native v0's checkpoints, does what the original does there."""
  pure, native = stages['pure'][name], stages['native resume'][name]
  assert not pure['orbax_compat imported']
  assert pure['returned'] == native['returned']
  checkpoints_written_the_same(pure['checkpoints'], native['checkpoints'])


def test_programs_do_what_they_say(stages):
  """Spot checks of native v0's behaviour the programs are about."""
  native = stages['native']
  guide = native['orbax_guide']['returned']
  # eval_shape target: params as jax.Array, the numpy leaf as numpy (item 1).
  assert guide['restored']['params']['w'][0] == 'jax.Array'
  assert guide['restored']['rng'][0] == 'np.ndarray'
  resumed = native['resume_loop']['returned']['resumed run']
  assert resumed['saved'][0] == ['bool', False]  # Re-saving the step it resumed from (item 2).
  assert native['named_items']['returned']['composite']['forced re-save'] == [
      'str', 'StepAlreadyExistsError']
  assert native['named_items']['returned']['legacy']['saved'] == [['bool', True], ['bool', False]]
  assert native['trainer']['returned']['best_step'] == ['int', 1]
