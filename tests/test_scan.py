"""`orbax-compat scan`: exact findings, JSON, exit codes, bad input, and `--fix`.

The corpus (tests/scan_corpus/) is legacy v0 programs written for these tests.
The expected findings below are written out by hand from the corpus sources.
The proof by running executes each runnable program before and after `--fix`
(in a subprocess, against temp dirs) and compares their results.
"""

import dataclasses
import json
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap

import pytest

from orbax_compat import option_map
from orbax_compat import scan
from orbax_compat import table

CORPUS = pathlib.Path(__file__).resolve().parent / 'scan_corpus'
RUNNABLE = ('flax_train.py', 'trainer_class.py', 'aliases.py', 'managers.py',
            'already_shimmed.py')
FIXED_BY_SWAP = {'flax_train.py', 'trainer_class.py', 'aliases.py', 'managers.py',
                 'never_runs.py'}

# (file, line, col, label[, fixable]) in file order.
EXPECTED = [
    ('aliases.py', 10, 1, 'import', True),
    ('aliases.py', 11, 1, 'import', False),  # import orbax.checkpoint (no alias)
    ('aliases.py', 12, 1, 'import', True),
    ('aliases.py', 13, 1, 'import', False),  # from orbax.checkpoint.args import ...
    ('aliases.py', 17, 12, 'CheckpointManager'),
    ('aliases.py', 17, 62, 'options.**'),
    ('aliases.py', 22, 9, 'save'),
    ('aliases.py', 23, 5, 'wait_until_finished'),
    ('aliases.py', 27, 35, 'latest_step'),
    ('aliases.py', 32, 12, 'restore'),
    ('aliases.py', 42, 8, 'reached_preemption'),
    ('aliases.py', 43, 9, 'save'),
    ('aliases.py', 44, 9, 'wait_until_finished'),
    ('aliases.py', 52, 15, 'all_steps'),
    ('aliases.py', 54, 5, 'close'),
    ('aliases.py', 56, 10, 'CheckpointManager'),
    ('aliases.py', 58, 59, 'options.save_interval_steps'),
    ('aliases.py', 61, 16, 'should_save'),
    ('aliases.py', 62, 17, 'save'),
    ('aliases.py', 63, 9, 'wait_until_finished'),
    ('aliases.py', 64, 19, 'all_steps'),
    ('aliases.py', 65, 39, 'directory'),
    ('already_shimmed.py', 10, 12, 'CheckpointManager'),
    ('already_shimmed.py', 10, 80, 'options.max_to_keep'),
    ('already_shimmed.py', 11, 5, 'save'),
    ('already_shimmed.py', 12, 5, 'save'),
    ('already_shimmed.py', 13, 5, 'wait_until_finished'),
    ('already_shimmed.py', 14, 16, 'restore'),
    ('already_shimmed.py', 14, 29, 'latest_step'),
    ('already_shimmed.py', 15, 25, 'all_steps'),
    ('already_shimmed.py', 16, 5, 'close'),
    ('flax_train.py', 14, 1, 'import', True),
    ('flax_train.py', 51, 44, 'options.max_to_keep'),
    ('flax_train.py', 51, 59, 'options.save_interval_steps'),
    ('flax_train.py', 52, 12, 'CheckpointManager'),
    ('flax_train.py', 55, 9, 'save'),
    ('flax_train.py', 56, 5, 'wait_until_finished'),
    ('flax_train.py', 60, 14, 'latest_step'),
    ('flax_train.py', 61, 16, 'restore'),
    ('flax_train.py', 62, 13, 'all_steps'),
    ('flax_train.py', 63, 5, 'close'),
    ('managers.py', 8, 1, 'import', True),
    ('managers.py', 19, 17, 'save'),  # super().save in a CheckpointManager subclass
    ('managers.py', 30, 24, 'CheckpointManager'),  # the subclass, constructed
    ('managers.py', 31, 61, 'options.save_interval_steps'),
    ('managers.py', 39, 16, 'all_steps'),  # self.mngr: a property returning self.manager
    ('managers.py', 49, 9, 'save'),  # holder.mngr: holder from a function returning Holder
    ('managers.py', 50, 5, 'wait_until_finished'),
    ('managers.py', 52, 16, 'restore'),
    ('managers.py', 55, 5, 'close'),
    ('never_runs.py', 7, 1, 'import', True),
    ('never_runs.py', 10, 8, 'CheckpointManager'),
    ('never_runs.py', 10, 89, 'options.create'),
    ('never_runs.py', 11, 1, 'delete'),
    ('trainer_class.py', 11, 1, 'import', True),
    ('trainer_class.py', 18, 21, 'CheckpointManager'),
    ('trainer_class.py', 21, 17, 'options.max_to_keep'),
    ('trainer_class.py', 22, 17, 'options.best_fn'),
    ('trainer_class.py', 23, 17, 'options.best_mode'),
    ('trainer_class.py', 24, 17, 'options.keep_checkpoints_without_metrics'),
    ('trainer_class.py', 39, 9, 'save'),
    ('trainer_class.py', 49, 16, 'best_step'),
    ('trainer_class.py', 50, 20, 'restore'),
    ('trainer_class.py', 61, 15, 'item_metadata'),  # in a method never called
    ('trainer_class.py', 61, 39, 'latest_step'),
    ('trainer_class.py', 62, 15, 'metrics'),
    ('trainer_class.py', 62, 33, 'best_step'),
    ('trainer_class.py', 65, 9, 'wait_until_finished'),
    ('trainer_class.py', 66, 9, 'close'),
    ('trainer_class.py', 74, 5, 'wait_until_finished'),  # trainer = Trainer(...); trainer.mngr
    ('trainer_class.py', 76, 13, 'all_steps'),
    ('trainer_class.py', 77, 14, 'latest_step'),
]
EXPECTED_ERRORS = [
    ('blob.py', None, None, 'binary file (NUL byte at offset 31), not Python source'),
    ('broken.py', 3, 12, 'syntax error: invalid syntax'),
]


def _rel(path, root):
  return os.path.relpath(path, root)


def _key(f, root):
  key = (_rel(f.path, root), f.line, f.col, f.label)
  return (*key, f.fixable) if f.kind == 'import' else key


@pytest.fixture
def corpus(tmp_path):
  """A private copy of the corpus (tests may rewrite it)."""
  root = tmp_path / 'corpus'
  shutil.copytree(CORPUS, root)
  return root


def test_finds_exactly_the_expected_uses(corpus):
  result = scan.run([str(corpus)])
  assert [_key(f, corpus) for f in result.findings] == [tuple(e) for e in EXPECTED]
  assert [(_rel(e.path, corpus), e.line, e.col, e.message) for e in result.errors] == (
      EXPECTED_ERRORS)
  assert result.files_scanned == 6 and result.exit_code == 1
  assert not (corpus / 'never_runs.ran').exists()  # Nothing was executed.


def test_findings_carry_the_tables_text(corpus):
  options = {r.field: r for r in option_map.OPTION_ROWS}
  for f in scan.run([str(corpus)]).findings:
    if f.kind in ('init', 'method', 'property'):
      row = table.BY_MEMBER[f.member]
      assert (f.kind, f.v0, f.v1, f.note, f.status) == (row.kind, row.v0, row.v1, row.note,
                                                         row.status)
    elif f.kind == 'option' and f.member != '**':
      assert (f.v1, f.note) == (options[f.member].v1, options[f.member].note)


def _scan_snippet(tmp_path, code, name='snippet.py'):
  path = tmp_path / name
  path.write_text(textwrap.dedent(code))
  return [(f.line, f.col, f.label) for f in scan.run([str(path)]).findings]


def test_bindings_and_aliases(tmp_path):
  got = _scan_snippet(tmp_path, '''\
      import typing
      import orbax_compat as shim
      from orbax.checkpoint import CheckpointManager as CM

      def f(a: 'CM', b: typing.Optional[CM], c: CM | None, d: "shim.CheckpointManager"):
        a.reload(); b.reload(); c.reload(); d.reload()

      def g(x, y: int):
        x.save(0); y.save(0)  # not managers
        m = shim.CheckpointManager('/d')
        m2 = m
        m3 = m2
        m3.save(0)
        if (w := CM('/e')):
          w.close()
        cb = m.wait_until_finished  # a use, not a call
        cb()
        print(m.directory)

      class C:
        def __init__(self):
          self.mngr = None

        def start(self):
          self.mngr = CM('/f')

        def later(self):
          self.mngr.save(1)
          self.other.save(1)  # not a manager

      def h(c: C, m):
        c.mngr.latest_step()
        save = m.save  # m is not a manager
        CM('/g').close()
      ''')
  assert got == [
      (3, 1, 'import'),
      (6, 3, 'reload'), (6, 15, 'reload'), (6, 27, 'reload'), (6, 39, 'reload'),
      (10, 7, 'CheckpointManager'),
      (13, 3, 'save'),
      (14, 12, 'CheckpointManager'),
      (15, 5, 'close'),
      (16, 8, 'wait_until_finished'),
      (18, 9, 'directory'),
      (25, 17, 'CheckpointManager'),
      (28, 5, 'save'),
      (32, 3, 'latest_step'),
      (34, 3, 'CheckpointManager'),
      (34, 3, 'close'),
  ]


def test_imports_found_and_not_found(tmp_path):
  got = _scan_snippet(tmp_path, '''\
      import orbax.checkpoint.experimental.v1 as ocp1
      from orbax.checkpoint.experimental.v1 import training
      from orbax.checkpoint import v1
      import orbax_compat
      import orbax.export
      from orbax import export
      import numpy as orbax_checkpoint
      from orbax.checkpoint import *
      from orbax import checkpoint, export as e2
      import orbax.checkpoint.args as ocp_args, numpy
      from orbax.checkpoint.experimental.emergency import checkpoint_manager as ecm

      ecm.CheckpointManager('/local', '/persistent').save(0)  # Another API: not the v0 manager.
      ocp1.training.Checkpointer('/d').save(0, {})
      ''')
  assert got == [(8, 1, 'import'), (9, 1, 'import'), (10, 1, 'import'), (11, 1, 'import')]


@pytest.mark.parametrize('source, fixed', [
    ('import orbax.checkpoint as ocp\n', 'import orbax_compat as ocp\n'),
    ('import numpy as np, orbax.checkpoint as ocp  # legacy\n',
     'import numpy as np, orbax_compat as ocp  # legacy\n'),
    ('from orbax.checkpoint import (\n    CheckpointManager,  # the manager\n    args as a,\n)\n',
     'from orbax_compat import (\n    CheckpointManager,  # the manager\n    args as a,\n)\n'),
    ('from orbax import checkpoint\n', 'import orbax_compat as checkpoint\n'),
    ('from orbax import checkpoint as ocp;x = 1\n', 'import orbax_compat as ocp;x = 1\n'),
    ('def f():\n    import orbax.checkpoint as ocp\n    return ocp\n',
     'def f():\n    import orbax_compat as ocp\n    return ocp\n'),
    ('import orbax.checkpoint\n', None),  # Code says orbax.checkpoint.X.
    ('from orbax.checkpoint.args import StandardSave\n', None),  # A submodule.
    ('import orbax.checkpoint.args as a\n', None),
    ('from orbax.checkpoint import *\n', None),  # The shim's * is its own names.
    ('from orbax.checkpoint import no_such_name\n', None),
    ('from orbax.checkpoint import __version__\n', None),  # The shim has its own.
    ('from orbax import checkpoint, export\n', None),
    ('import orbax_compat as ocp\n', None),
])
def test_fix_swaps_only_what_stays_correct(tmp_path, source, fixed):
  path = tmp_path / 'm.py'
  path.write_text(source)
  result = scan.run([str(path)], fix=True)
  assert path.read_text() == (fixed or source)
  assert [c['path'] for c in result.changes] == ([str(path)] if fixed else [])
  assert all(f.fixed == f.fixable for f in result.findings)
  assert scan.run([str(path)], fix=True).changes == []  # Idempotent.


def test_json_output(corpus, capsys):
  code = scan.main(['--format', 'json', str(corpus)])
  out = json.loads(capsys.readouterr().out)
  assert code == 1
  assert set(out) == {'schema', 'findings', 'summary', 'errors', 'changes'}
  assert out['schema'] == 'orbax_compat.scan/1'
  assert [(_rel(f['path'], corpus), f['line'], f['col'], f['label']) for f in out['findings']] == [
      tuple(e[:4]) for e in EXPECTED]
  keys = {'path', 'line', 'col', 'end_line', 'end_col', 'kind', 'member', 'label', 'v0', 'v1',
          'note', 'status', 'code', 'receiver', 'fixable', 'fixed'}
  assert all(set(f) == keys for f in out['findings'])
  save = next(f for f in out['findings'] if f['label'] == 'save')
  assert save == {
      'path': str(corpus / 'aliases.py'), 'line': 22, 'col': 9, 'end_line': 22, 'end_col': 57,
      'kind': 'method', 'member': 'save', 'label': 'save', 'v0': table.BY_MEMBER['save'].v0,
      'v1': table.BY_MEMBER['save'].v1, 'note': table.BY_MEMBER['save'].note,
      'status': 'adapted', 'code': 'mngr.save(step, args=oc.args.StandardSave(tree))',
      'receiver': 'mngr', 'fixable': False, 'fixed': False,
  }
  summary = out['summary']
  assert summary['findings'] == summary['remaining'] == len(EXPECTED)
  assert (summary['files_scanned'], summary['files_with_findings'], summary['errors']) == (6, 6, 2)
  assert summary['by_member']['save'] == 9 and summary['by_member']['import'] == 8
  assert summary['by_file'][str(corpus / 'trainer_class.py')] == 18
  assert sum(summary['by_member'].values()) == sum(summary['by_file'].values()) == len(EXPECTED)
  assert [(_rel(e['path'], corpus), e['line'], e['col'], e['message']) for e in out['errors']] == (
      EXPECTED_ERRORS)
  assert out['changes'] == []


def test_text_output(corpus, capsys):
  assert scan.main([str(corpus / 'never_runs.py')]) == 1
  out, err = capsys.readouterr()
  path = corpus / 'never_runs.py'
  row = table.BY_MEMBER['delete']
  create = next(r for r in option_map.OPTION_ROWS if r.field == 'create')
  assert f'{path}:11:1: delete: {row.v1}\n' in out
  assert f'{path}:10:89: options.create: {create.v1}  ({create.note})\n' in out
  assert '4 v0 uses in 1 files (1 scanned)' in out
  assert 'by member:' in out and 'by file:' in out and err == ''


def test_exit_codes_and_bad_input(tmp_path, capsys):
  clean = tmp_path / 'clean.py'
  clean.write_text('import numpy\nx = numpy.zeros(3)\nx.save = 1\n')
  assert scan.main([str(clean)]) == 0
  assert 'no v0 uses found (1 files scanned)' in capsys.readouterr().out
  v0 = tmp_path / 'v0.py'
  v0.write_text('import orbax.checkpoint as ocp\n')
  missing = tmp_path / 'missing.py'
  dangling = tmp_path / 'dangling.py'
  dangling.symlink_to(tmp_path / 'nowhere.py')
  binary = tmp_path / 'data.py'
  binary.write_bytes(b'\x89PNG\r\n\x1a\n\x00\x00')
  latin = tmp_path / 'latin.py'
  latin.write_bytes(b'import orbax.checkpoint as ocp\nname = "\xe9"\n')  # Not UTF-8.
  empty_dir = tmp_path / 'empty'
  empty_dir.mkdir()

  # Errors are reported per file; the rest is scanned.
  assert scan.main([str(missing), str(dangling), str(binary), str(latin), str(v0)]) == 1
  out, err = capsys.readouterr()
  assert f'{v0}:1:1: import:' in out
  assert err.splitlines() == [
      f'{dangling}: error: cannot read: No such file or directory',
      f'{binary}: error: binary file (NUL byte at offset 8), not Python source',
      f'{latin}: error: cannot decode as Python source: '
      "(unicode error) 'utf-8' codec can't decode byte 0xe9 in position 0: unexpected end of data",
      f'{missing}: error: no such file or directory',
  ]
  # Nothing scannable: 2. Nothing found (an empty directory): 0.
  assert scan.main([str(missing), str(binary)]) == 2
  assert scan.main([str(empty_dir)]) == 0
  assert scan.main([str(tmp_path / 'empty'), str(missing)]) == 2
  capsys.readouterr()
  # Usage errors: 2.
  for argv in ([], ['--format', 'xml', str(v0)], ['--jobs', '0', str(v0)], ['--bogus', str(v0)]):
    with pytest.raises(SystemExit) as exit_:
      scan.main(argv)
    assert exit_.value.code == 2
  assert 'usage: orbax-compat scan' in capsys.readouterr().err


@pytest.mark.skipif(os.geteuid() == 0, reason='root reads files regardless of permissions')
def test_unreadable_file_and_directory(tmp_path, capsys):
  secret = tmp_path / 'secret.py'
  secret.write_text('import orbax.checkpoint as ocp\n')
  locked = tmp_path / 'locked'
  locked.mkdir()
  (locked / 'inner.py').write_text('import orbax.checkpoint as ocp\n')
  ok = tmp_path / 'ok.py'
  ok.write_text('import orbax.checkpoint as ocp\n')
  secret.chmod(0)
  locked.chmod(0)
  try:
    result = scan.run([str(tmp_path)])
  finally:
    secret.chmod(0o644)
    locked.chmod(0o755)
  assert [(e.path, e.message) for e in result.errors] == [
      (str(locked), 'cannot list directory: Permission denied'),
      (str(secret), 'cannot read: Permission denied'),
  ]
  assert [f.path for f in result.findings] == [str(ok)]


def test_skips_virtualenvs_hidden_dirs_and_site_packages(tmp_path):
  v0 = 'import orbax.checkpoint as ocp\n'
  for rel in ('src/app.py', '.venv/lib/x.py', 'venv/x.py', 'env/lib/x.py', '.hidden/x.py',
              'lib/site-packages/pkg/x.py', 'src/.cache/x.py'):
    (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / rel).write_text(v0)
  (tmp_path / 'env' / 'pyvenv.cfg').write_text('home = /usr/bin\n')
  (tmp_path / 'src' / 'notes.txt').write_text(v0)
  found = [_rel(f.path, tmp_path) for f in scan.run([str(tmp_path)]).findings]
  assert found == ['src/app.py']
  everything = scan.run([str(tmp_path)], include_skipped=True).findings
  assert sorted(_rel(f.path, tmp_path) for f in everything) == [
      '.hidden/x.py', '.venv/lib/x.py', 'env/lib/x.py', 'lib/site-packages/pkg/x.py',
      'src/.cache/x.py', 'src/app.py', 'venv/x.py']
  # A file named explicitly is scanned whatever its name or place.
  assert len(scan.run([str(tmp_path / '.hidden' / 'x.py'), str(tmp_path / 'src' / 'notes.txt')])
             .findings) == 2


def test_diff_prints_and_writes_nothing(corpus, capsys):
  before = {p.name: p.read_bytes() for p in corpus.iterdir()}
  assert scan.main(['--diff', str(corpus / 'flax_train.py')]) == 1
  out = capsys.readouterr().out
  path = corpus / 'flax_train.py'
  assert out.startswith(
      f'--- a/{path}\n+++ b/{path}\n@@ -11,7 +11,7 @@\n import jax.numpy as jnp\n'
      ' import numpy as np\n import optax\n-import orbax.checkpoint as ocp  # the legacy v0 API\n'
      '+import orbax_compat as ocp  # the legacy v0 API\n')
  assert f'would fix {path}: 1 import(s) swapped to orbax_compat' in out
  assert {p.name: p.read_bytes() for p in corpus.iterdir()} == before


def test_fix_never_writes_unparsable_or_binary_files(corpus):
  broken, blob = (corpus / 'broken.py').read_bytes(), (corpus / 'blob.py').read_bytes()
  assert b'import orbax.checkpoint as ocp' in broken and b'import orbax.checkpoint' in blob
  scan.run([str(corpus)], fix=True)
  assert (corpus / 'broken.py').read_bytes() == broken
  assert (corpus / 'blob.py').read_bytes() == blob


def test_fix_writes_atomically_and_keeps_the_mode(tmp_path, monkeypatch):
  path = tmp_path / 'train.py'
  source = 'import orbax.checkpoint as ocp  # keep me\n\nm = ocp.CheckpointManager("/d")\n'
  path.write_text(source)
  path.chmod(0o640)

  def failing_replace(src, dst):
    raise OSError(28, 'No space left on device')

  monkeypatch.setattr(scan.os, 'replace', failing_replace)
  result = scan.run([str(path)], fix=True)
  assert [(e.path, e.message) for e in result.errors] == [
      (str(path), 'not rewritten: No space left on device')]
  assert path.read_text() == source and result.changes == []
  assert sorted(p.name for p in tmp_path.iterdir()) == ['train.py']  # No temp file left.
  assert not any(f.fixed for f in result.findings)
  monkeypatch.undo()

  link = tmp_path / 'link.py'
  link.symlink_to(path)
  result = scan.run([str(link)], fix=True)
  assert path.read_text() == source.replace('orbax.checkpoint', 'orbax_compat')
  assert link.is_symlink() and path.stat().st_mode & 0o777 == 0o640
  assert sorted(p.name for p in tmp_path.iterdir()) == ['link.py', 'train.py']


def test_parallel_scan_matches_serial(tmp_path):
  for i in range(4):
    shutil.copytree(CORPUS, tmp_path / f'copy{i}')
  serial = scan.run([str(tmp_path)], jobs=1)
  parallel = scan.run([str(tmp_path)], jobs=2)
  assert len(serial.findings) == 4 * len(EXPECTED)
  assert parallel.findings == serial.findings and parallel.errors == serial.errors
  assert parallel.files_scanned == serial.files_scanned == 24


RUNNER = textwrap.dedent('''\
    import json, runpy, sys, warnings
    out = {}
    for path, workdir in zip(sys.argv[2::2], sys.argv[3::2]):
        module = runpy.run_path(path, run_name='corpus_program')
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            result = module['main'](workdir)
        result['shim notices'] = sum(
            w.category.__name__ == 'OrbaxCompatDeprecationWarning' for w in caught)
        out[path.rsplit('/', 1)[-1]] = result
    with open(sys.argv[1], 'w') as f:
        json.dump(out, f)
''')


def _run_programs(corpus, workdir):
  results = workdir / 'results.json'
  argv = [sys.executable, '-c', RUNNER, str(results)]
  for name in RUNNABLE:
    argv += [str(corpus / name), str(workdir / name.removesuffix('.py'))]
  proc = subprocess.run(argv, capture_output=True, text=True, timeout=600,
                        env=dict(os.environ, ORBAX_COMPAT_WARNINGS='once'))
  assert proc.returncode == 0, proc.stderr[-4000:]
  return json.loads(results.read_text())


def test_fixed_programs_give_the_same_results(corpus, tmp_path):
  before = _run_programs(corpus, tmp_path / 'before')
  originals = {p.name: p.read_bytes() for p in corpus.iterdir()}

  result = scan.run([str(corpus)], fix=True)
  changed = {p.name for p in corpus.iterdir() if p.read_bytes() != originals[p.name]}
  assert changed == FIXED_BY_SWAP
  assert sorted(_rel(c['path'], corpus) for c in result.changes) == sorted(FIXED_BY_SWAP)
  assert [_key(f, corpus) for f in result.findings if f.fixed] == [
      e[:4] + (True,) for e in EXPECTED if e[3] == 'import' and e[4]]
  fixed = {p.name: p.read_bytes() for p in corpus.iterdir()}
  assert scan.run([str(corpus)], fix=True).changes == []  # A second --fix changes nothing.
  assert {p.name: p.read_bytes() for p in corpus.iterdir()} == fixed

  after = _run_programs(corpus, tmp_path / 'after')
  strip = lambda r: {k: v for k, v in r.items() if k != 'shim notices'}  # noqa: E731
  assert {k: strip(v) for k, v in after.items()} == {k: strip(v) for k, v in before.items()}
  # Before the swap only the already-shimmed program ran on the shim; after it, all did.
  assert {k for k, v in before.items() if v['shim notices']} == {'already_shimmed.py'}
  assert all(v['shim notices'] for v in after.values())
  # The programs did what they say (a few spot checks of v0 behaviour).
  assert before['flax_train.py']['all_steps'] == [4, 6]
  assert before['flax_train.py']['restored_params'] == before['flax_train.py']['trained_params']
  assert before['trainer_class.py']['best_step'] == 3
  assert before['trainer_class.py']['restored_record'] == {'step': 3, 'eval_loss': 0.5}
  assert before['managers.py'] == {'steps': [0, 3, 6], 'saves': 3, 'restored': [6],
                                   'shim notices': 0}
  assert not (corpus / 'never_runs.ran').exists()


def test_cli_entry_point_and_help():
  proc = subprocess.run([sys.executable, '-m', 'orbax_compat', 'scan', '--help'],
                        capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr
  for option in ('--fix', '--diff', '--format {text,json}', '--include-skipped', '--jobs'):
    assert option in proc.stdout
  proc = subprocess.run([sys.executable, '-m', 'orbax_compat', 'scan',
                         str(CORPUS / 'never_runs.py')], capture_output=True, text=True,
                        timeout=300)
  assert proc.returncode == 1 and ':11:1: delete:' in proc.stdout, proc.stderr
  assert not (CORPUS / 'never_runs.ran').exists()


def test_finding_model_locates_calls_for_rewrites():
  """What a later `--to-v1` needs: the call node, its receiver and arguments."""
  source = b'import orbax.checkpoint as ocp\nm = ocp.CheckpointManager("/d")\nm.save(3, force=True)\n'
  file_scan = scan.scan_source(source, 'x.py')
  save = next(f for f in file_scan.findings if f.member == 'save')
  assert file_scan.module.code_for_node(save.call) == 'm.save(3, force=True)'
  assert file_scan.module.code_for_node(save.receiver_node) == 'm'
  assert [file_scan.module.code_for_node(a.value) for a in save.call.args] == ['3', 'True']
  assert file_scan.module.code_for_node(save.statement) == 'm.save(3, force=True)\n'
  assert dataclasses.replace(save.detached(), fixed=False) == save  # Nodes are not compared.
