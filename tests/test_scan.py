"""`orbax-compat scan`: exact findings, JSON, exit codes, bad input, `--fix` and `--to-v1`.

The corpus (tests/scan_corpus/) is legacy v0 programs written for these tests.
The expected findings below (with the table form each call matches and whether
`--to-v1` rewrites it) are written out by hand from the corpus sources. The
proof by running executes each runnable program (in a subprocess, against temp
dirs) before and after `--fix`, and on native v0 before and after `--fix` +
`--to-v1`, and compares their results; the rewritten programs also read the
checkpoints the originals wrote.
"""

import dataclasses
import json
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap

import orbax.checkpoint as ocp_v0
import pytest

from orbax_compat.compat import orbax as _v1
from orbax_compat.mapping import forms
from orbax_compat.mapping import members as mapping_members
from orbax_compat.mapping import options as mapping_options
from orbax_compat.mapping.schema import Capability
from orbax_compat.runtime import notices
from orbax_compat.tools import migration_table as table
from orbax_compat.tools import scan

CORPUS = pathlib.Path(__file__).resolve().parent / 'scan_corpus'
RUNNABLE = ('flax_train.py', 'trainer_class.py', 'aliases.py', 'managers.py',
            'already_shimmed.py', 'eval_loop.py')
FIXED_BY_SWAP = {'flax_train.py', 'trainer_class.py', 'aliases.py', 'managers.py',
                 'never_runs.py', 'eval_loop.py'}

# The table's forms, as the findings name them (their v0 patterns).
INIT = 'mngr = ocp.CheckpointManager(directory, options=options, metadata=metadata)'
INIT_ITEMS = ('mngr = ocp.CheckpointManager(directory, options=options, item_names=item_names, '
              'item_handlers=item_handlers)')
SAVE = 'mngr.save(step, args=ocp.args.StandardSave(tree))'
# `ckptr.delete` runs from orbax-checkpoint 0.12.8: --to-v1 rewrites delete there only.
DELETES = _v1.CAPABILITIES['v1_delete']
DELETE_MISSING = _v1.capability_missing('v1_delete') or (
    'ckptr.delete needs orbax-checkpoint 0.12.8; the installed ... has none')
SAVE_PYTREE = 'mngr.save(step, args=ocp.args.PyTreeSave(tree))'
SAVE_METRICS = 'mngr.save(step, args=ocp.args.StandardSave(tree), metrics=metrics)'
SAVE_MORE = ('mngr.save(step, args=ocp.args.StandardSave(tree), metrics=metrics, force=force, '
             'custom_metadata=custom_metadata)')
SAVE_COMPOSITE = ('mngr.save(step, args=ocp.args.Composite(**args), metrics=metrics, '
                  'force=force, custom_metadata=custom_metadata)')
RESTORE = 'mngr.restore(step, args=ocp.args.StandardRestore(abstract_tree))'
RESTORE_PYTREE = 'mngr.restore(step, args=ocp.args.PyTreeRestore(abstract_tree))'
RESTORE_COMPOSITE = 'mngr.restore(step, args=ocp.args.Composite(**args))'
RESTORE_ARGS = 'mngr.restore(step, args=args)'
NO_FORM = ''  # No form without a run-time condition matches the call.

# In file order: (file, line, col, label) and, for imports, whether --fix swaps
# them; for constructions and members, the form the call matches and whether
# --to-v1 rewrites it (the comments say why not, where the form is mechanical).
EXPECTED = [
    ('aliases.py', 10, 1, 'import', True),
    ('aliases.py', 11, 1, 'import', False),  # import orbax.checkpoint (no alias)
    ('aliases.py', 12, 1, 'import', True),
    ('aliases.py', 13, 1, 'import', False),  # from orbax.checkpoint.args import ...
    ('aliases.py', 17, 12, 'CheckpointManager', INIT, False),
    ('aliases.py', 17, 62, 'options.**'),
    ('aliases.py', 22, 9, 'save', SAVE, False),  # mngr: a parameter (only its annotation)
    ('aliases.py', 23, 5, 'wait_until_finished', 'mngr.wait_until_finished()', False),  # same
    ('aliases.py', 27, 35, 'latest_step', 'mngr.latest_step()', False),  # same
    ('aliases.py', 32, 12, 'restore', RESTORE, False),  # same
    ('aliases.py', 42, 8, 'reached_preemption', 'mngr.reached_preemption(step)', False),
    ('aliases.py', 43, 9, 'save', SAVE_MORE, False),
    ('aliases.py', 44, 9, 'wait_until_finished', 'mngr.wait_until_finished()', False),  # param
    ('aliases.py', 52, 15, 'all_steps', 'mngr.all_steps()', True),  # from make_manager()
    ('aliases.py', 54, 5, 'close', 'mngr.close()', True),
    ('aliases.py', 56, 10, 'CheckpointManager', INIT, False),
    # orbax.checkpoint.CheckpointManager with no alias (t5x): --fix rewrites the
    # reference to orbax_compat.CheckpointManager, so its calls go to v1 too.
    ('aliases.py', 56, 10, 'reference', True),
    ('aliases.py', 58, 59, 'options.save_interval_steps'),
    ('aliases.py', 61, 16, 'should_save', 'mngr.should_save(step)', True),
    ('aliases.py', 62, 17, 'save', SAVE, True),
    ('aliases.py', 63, 9, 'wait_until_finished', 'mngr.wait_until_finished()', True),
    ('aliases.py', 64, 19, 'all_steps', 'mngr.all_steps()', True),
    ('aliases.py', 65, 39, 'directory', 'mngr.directory', True),
    ('already_shimmed.py', 10, 12, 'CheckpointManager', INIT, False),
    ('already_shimmed.py', 10, 80, 'options.max_to_keep'),
    ('already_shimmed.py', 11, 5, 'save', SAVE, True),
    ('already_shimmed.py', 12, 5, 'save', SAVE, True),
    ('already_shimmed.py', 13, 5, 'wait_until_finished', 'mngr.wait_until_finished()', True),
    ('already_shimmed.py', 14, 16, 'restore', RESTORE_ARGS, False),
    ('already_shimmed.py', 14, 29, 'latest_step', 'mngr.latest_step()', True),
    ('already_shimmed.py', 15, 25, 'all_steps', 'mngr.all_steps()', True),
    ('already_shimmed.py', 16, 5, 'close', 'mngr.close()', True),
    ('already_shimmed.py', 21, 12, 'CheckpointManager', INIT, False),
    ('already_shimmed.py', 22, 14, 'latest_step', 'mngr.latest_step()', True),
    ('already_shimmed.py', 23, 16, 'restore', RESTORE, True),
    ('already_shimmed.py', 24, 5, 'close', 'mngr.close()', True),
    ('eval_loop.py', 13, 1, 'import', True),
    ('eval_loop.py', 30, 9, 'options.save_interval_steps'),
    ('eval_loop.py', 30, 32, 'options.best_fn'),
    ('eval_loop.py', 30, 61, 'options.best_mode'),
    ('eval_loop.py', 31, 12, 'CheckpointManager', INIT, False),
    ('eval_loop.py', 36, 10, 'CheckpointManager', INIT, False),
    ('eval_loop.py', 37, 9, 'save', SAVE_PYTREE, True),
    ('eval_loop.py', 38, 9, 'wait_until_finished', 'mngr.wait_until_finished()', True),
    ('eval_loop.py', 39, 25, 'restore', RESTORE_PYTREE, True),
    ('eval_loop.py', 43, 12, 'CheckpointManager', INIT, False),
    ('eval_loop.py', 44, 9, 'options.save_interval_steps'),
    ('eval_loop.py', 44, 32, 'options.best_fn'),
    ('eval_loop.py', 44, 61, 'options.best_mode'),
    ('eval_loop.py', 47, 26, 'should_save', 'mngr.should_save(step)', True),
    ('eval_loop.py', 49, 13, 'save', SAVE_METRICS, True),  # best_fn is set.
    ('eval_loop.py', 51, 5, 'wait_until_finished', 'mngr.wait_until_finished()', True),
    # Values used: the v1 code skips `params_at(...)` for a step v1 has.
    ('eval_loop.py', 52, 15, 'save', SAVE, False),
    ('eval_loop.py', 53, 13, 'save', SAVE, False),  # Multi-line, with a comment.
    ('eval_loop.py', 57, 5, 'wait_until_finished', 'mngr.wait_until_finished()', True),
    ('eval_loop.py', 58, 12, 'is_saving_in_progress', 'mngr.is_saving_in_progress()', True),
    ('eval_loop.py', 59, 5, 'delete', 'mngr.delete(step)', DELETES),
    ('eval_loop.py', 60, 5, 'reload', 'mngr.reload()', True),
    ('eval_loop.py', 61, 13, 'all_steps', 'mngr.all_steps()', True),
    ('eval_loop.py', 62, 24, 'metrics', 'mngr.metrics(step)', True),  # In a comprehension.
    ('eval_loop.py', 63, 12, 'best_step', 'mngr.best_step()', True),  # best_fn=loss_of.
    ('eval_loop.py', 64, 14, 'latest_step', 'mngr.latest_step()', True),
    ('eval_loop.py', 65, 16, 'restore', RESTORE, True),
    ('eval_loop.py', 66, 19, 'restore', RESTORE, True),
    ('eval_loop.py', 67, 39, 'directory', 'mngr.directory', True),
    ('eval_loop.py', 68, 5, 'close', 'mngr.close()', True),
    ('eval_loop.py', 80, 14, 'latest_step', 'mngr.latest_step()', True),  # from open_manager()
    ('eval_loop.py', 82, 25, 'all_steps', 'mngr.all_steps()', True),
    ('eval_loop.py', 84, 17, 'best_step', 'mngr.best_step()', True),
    ('eval_loop.py', 85, 21, 'metrics', 'mngr.metrics(step)', True),
    ('eval_loop.py', 85, 53, 'all_steps', 'mngr.all_steps()', True),
    ('eval_loop.py', 87, 13, 'restore', RESTORE, True),
    ('eval_loop.py', 89, 5, 'close', 'mngr.close()', True),
    ('flax_train.py', 14, 1, 'import', True),
    ('flax_train.py', 51, 44, 'options.max_to_keep'),
    ('flax_train.py', 51, 59, 'options.save_interval_steps'),
    ('flax_train.py', 52, 12, 'CheckpointManager', INIT, False),
    ('flax_train.py', 55, 9, 'save', SAVE, True),
    ('flax_train.py', 56, 5, 'wait_until_finished', 'mngr.wait_until_finished()', True),
    ('flax_train.py', 60, 14, 'latest_step', 'mngr.latest_step()', True),
    ('flax_train.py', 61, 16, 'restore', RESTORE, True),
    ('flax_train.py', 62, 13, 'all_steps', 'mngr.all_steps()', True),
    ('flax_train.py', 63, 5, 'close', 'mngr.close()', True),
    ('flax_train.py', 77, 12, 'CheckpointManager', INIT, False),
    ('flax_train.py', 78, 14, 'latest_step', 'mngr.latest_step()', True),
    ('flax_train.py', 79, 16, 'restore', RESTORE, True),
    ('flax_train.py', 80, 13, 'all_steps', 'mngr.all_steps()', True),
    ('flax_train.py', 81, 5, 'close', 'mngr.close()', True),
    ('managers.py', 8, 1, 'import', True),
    # super().save in a CheckpointManager subclass: *args, **kwargs match no form.
    ('managers.py', 19, 17, 'save', NO_FORM, False),
    ('managers.py', 30, 24, 'CheckpointManager', INIT, False),  # the subclass, constructed
    ('managers.py', 31, 61, 'options.save_interval_steps'),
    # Holder.manager: declared Optional[CheckpointManager], set to a subclass.
    ('managers.py', 39, 16, 'all_steps', 'mngr.all_steps()', False),  # through a property
    ('managers.py', 49, 9, 'save', SAVE, False),  # holder from a function returning Holder
    ('managers.py', 50, 5, 'wait_until_finished', 'mngr.wait_until_finished()', False),
    ('managers.py', 52, 16, 'restore', RESTORE, False),
    ('managers.py', 55, 5, 'close', 'mngr.close()', False),
    ('never_runs.py', 7, 1, 'import', True),
    ('never_runs.py', 10, 8, 'CheckpointManager', INIT, False),
    ('never_runs.py', 10, 89, 'options.create'),
    ('never_runs.py', 11, 1, 'delete', 'mngr.delete(step)', DELETES),
    ('trainer_class.py', 11, 1, 'import', True),
    ('trainer_class.py', 18, 21, 'CheckpointManager', INIT_ITEMS, False),
    ('trainer_class.py', 21, 17, 'options.max_to_keep'),
    ('trainer_class.py', 22, 17, 'options.best_fn'),
    ('trainer_class.py', 23, 17, 'options.best_mode'),
    ('trainer_class.py', 24, 17, 'options.keep_checkpoints_without_metrics'),
    ('trainer_class.py', 39, 9, 'save', SAVE_COMPOSITE, False),
    ('trainer_class.py', 49, 16, 'best_step', 'mngr.best_step()', True),
    ('trainer_class.py', 50, 20, 'restore', RESTORE_COMPOSITE, False),
    # In a method never called. item_metadata's forms are chosen at run time: the
    # construction's item_names say which (named items).
    ('trainer_class.py', 61, 15, 'item_metadata', 'mngr.item_metadata(step)', False),
    ('trainer_class.py', 61, 39, 'latest_step', 'mngr.latest_step()', True),
    # Its argument, a call, would run once per checkpoint inside the v1 code.
    ('trainer_class.py', 62, 15, 'metrics', 'mngr.metrics(step)', False),
    ('trainer_class.py', 62, 33, 'best_step', 'mngr.best_step()', True),
    ('trainer_class.py', 65, 9, 'wait_until_finished', 'mngr.wait_until_finished()', True),
    ('trainer_class.py', 66, 9, 'close', 'mngr.close()', True),
    # trainer = Trainer(...); trainer.mngr
    ('trainer_class.py', 74, 5, 'wait_until_finished', 'mngr.wait_until_finished()', True),
    ('trainer_class.py', 76, 13, 'all_steps', 'mngr.all_steps()', True),
    ('trainer_class.py', 77, 14, 'latest_step', 'mngr.latest_step()', True),
    ('trainer_class.py', 92, 32, 'all_steps', 'mngr.all_steps()', True),
    ('trainer_class.py', 92, 74, 'latest_step', 'mngr.latest_step()', True),
]
EXPECTED_ERRORS = [
    ('blob.py', None, None, 'binary file (NUL byte at offset 31), not Python source'),
    ('broken.py', 3, 12, 'syntax error: invalid syntax'),
]


def _rel(path, root):
  return os.path.relpath(path, root)


def _key(f, root):
  key = (_rel(f.path, root), f.line, f.col, f.label)
  if f.kind in ('import', 'reference'):
    return (*key, f.fixable)
  if f.kind in ('init', 'method', 'property'):
    return (*key, f.form, f.to_v1)
  return key


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
  assert result.files_scanned == 7 and result.exit_code == 1
  assert not (corpus / 'never_runs.ran').exists()  # Nothing was executed.


def test_findings_carry_the_tables_text(corpus):
  options = mapping_options.BY_FIELD
  for f in scan.run([str(corpus)]).findings:
    if f.kind in ('init', 'method', 'property'):
      row = forms.BY_NAME[f.member]
      # The matched form's code and note (the row's first form if none matches).
      form = next((x for x in row.forms if x.v0 == f.form and x.v1 == f.v1), row.forms[0])
      note = '; '.join(n for n in (form.note, row.note) if n)
      if not f.form and f.kind != 'init':  # No form matches: says so, and which form fits.
        note = ('no form of the table matches this call statically; the table\'s general '
                'form is shown')
        if any(x.when for x in row.forms):  # The corpus's managers of unknown kind.
          note = ('no form of the table matches this call statically; its form depends on '
                  'the manager\'s items (one unnamed item or named items), which this scan '
                  'cannot see: the one-item form is shown')
      assert (f.kind, f.v0, f.v1, f.note, f.status) == (row.kind, form.v0, form.v1, note,
                                                         row.status)
      assert f.mechanical == (form.mechanical if f.form else '')
      assert f.to_v1 == (not f.reason)
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


def _forms_of_snippet(tmp_path, code):
  path = tmp_path / 'snippet.py'
  path.write_text(textwrap.dedent(code))
  return [(f.line, f.label, f.form, f.to_v1, f.reason) for f in scan.run([str(path)]).findings
          if f.kind in ('method', 'property')]


NOT_MECHANICAL = 'the table has no mechanical rewrite for this form'
NO_MATCH = 'no form of the table matches this use statically'


def test_advice_for_args_held_in_a_variable(tmp_path):
  """t5x: `restore(step, args=args, directory=d)` on a manager whose items the
  scan cannot see matches no form; the advice shows the one-item form, whose
  `args=ocp.args.StandardRestore(...)` the call's `args` name does not fill."""
  path = tmp_path / 'checkpoints.py'
  path.write_text(textwrap.dedent("""\
      import orbax.checkpoint as ocp


      def restore(directory, item_handlers, step, args):
        mngr = ocp.CheckpointManager(directory, item_handlers=item_handlers)
        return mngr.restore(step, args=args, directory=directory)
      """))
  (restore,) = [f for f in scan.run([str(path)]).findings if f.label == 'restore']
  # No form matched (''); the advice is the one-item form's v1 code.
  assert (restore.line, restore.form, restore.v1, restore.to_v1) == (
      6, '', forms.BY_NAME['restore'].forms[0].v1, False)
  assert 'no form of the table matches this call statically' in restore.note


def test_forms_matched_statically(tmp_path):
  got = _forms_of_snippet(tmp_path, """\
      import orbax_compat as ocp
      from orbax.checkpoint.args import StandardSave as SS

      m = ocp.CheckpointManager('/d')
      m.save(1, args=SS(t))  # An alias of the args type.
      m.save(1, args=ocp.args.StandardSave(item=t))
      m.save(1, args=ocp.args.StandardSave(t, save_args=s))
      m.save(1, args=ocp.args.StandardSave(t), metrics=None)  # None: as if absent.
      m.save(1, args=a)
      m.save(1, t)  # Legacy items: its forms are chosen at run time.
      m.save(*a)
      m.all_steps(read=True)
      m.all_steps(read=False)  # The default: as if absent.
      m.all_steps(read=flag)  # Not a literal: matches neither.
      m.restore(1)
      m.restore(1, directory='/other')
      m.restore(1, args=ocp.args.StandardRestore())
      x = m.directory
      cb = m.wait_until_finished
      ok = m.wait_until_finished()
      m.metrics(c)
      m.metrics(step=n)


      class K:
        km = ocp.CheckpointManager('/k')
        first = km.metrics(0)
        n = 1
        second = km.metrics(n)
        latest = km.latest_step()
      m.directory = '/elsewhere'
      """)
  general_save = ('mngr.save(step, args=args, metrics=metrics, force=force, '
                  'custom_metadata=custom_metadata)')
  assert got == [
      (5, 'save', SAVE, True, ''),
      (6, 'save', SAVE, True, ''),
      (7, 'save', SAVE, False, 'the args call gives arguments the form leaves out'),
      (8, 'save', SAVE, True, ''),
      (9, 'save', general_save, False, NOT_MECHANICAL),
      (10, 'save', NO_FORM, False, NO_MATCH),
      (11, 'save', NO_FORM, False, NO_MATCH),
      (12, 'all_steps', 'mngr.all_steps(read=True)', False, NOT_MECHANICAL),
      (13, 'all_steps', 'mngr.all_steps()', True, ''),
      (14, 'all_steps', NO_FORM, False, NO_MATCH),
      (15, 'restore', RESTORE_ARGS, False, NOT_MECHANICAL),
      (16, 'restore', 'mngr.restore(step, directory=other_directory)', False, NOT_MECHANICAL),
      (17, 'restore', RESTORE, False,
       'the v1 code needs abstract_tree, which the call does not give'),
      (18, 'directory', 'mngr.directory', True, ''),
      (19, 'wait_until_finished', NO_FORM, False, NO_MATCH),  # Not called here.
      (20, 'wait_until_finished', 'mngr.wait_until_finished()', False,
       'the v1 code does the same only as a statement of its own; here the value is used'),
      (21, 'metrics', 'mngr.metrics(step)', False, '`c` would see a name the v1 code binds'),
      (22, 'metrics', 'mngr.metrics(step)', True, ''),
      (27, 'metrics', 'mngr.metrics(step)', True, ''),
      (29, 'metrics', 'mngr.metrics(step)', False,
       'the v1 code would evaluate an argument in its own scope inside a class body'),
      (30, 'latest_step', 'mngr.latest_step()', True, ''),
      (31, 'directory', 'mngr.directory', False,
       'the attribute is assigned or deleted here, not read'),
  ]


def helpers(*names):
  """The helpers --to-v1 writes after a module's imports (two-space indentation)."""
  return ''.join(f'\n\n{mapping_members.HELPERS[n]}' for n in names)


def v1_constructor(directory, indent='  ', max_line=79):
  """The v1 Checkpointer --to-v1 writes for a manager built with default options
  (v1_source's, in the file's indentation and line length, inside a block
  indented by `indent`)."""
  from orbax_compat.tools import v1_config  # pylint: disable=import-outside-toplevel
  from orbax_compat.tools.scan import finish  # pylint: disable=import-outside-toplevel
  from orbax_compat.tools.scan import layout  # pylint: disable=import-outside-toplevel
  code = v1_config.v1_source('unused', ocp_v0.CheckpointManagerOptions(),
                             directory_source=directory)
  code = layout.wrap_lines(finish.reindented(code, '', '  '), layout.Style(max_line, '  ', False),
                           max_line - len(indent))
  return code.replace('\n', '\n' + indent)


def init_todo(directory):
  return ('# TODO(orbax-v1): see MIGRATION_TABLE.md#init; in v1:\n'
          f'  #   ocp_v1.training.Checkpointer({directory})\n'
          '  #   exact arguments: orbax_compat.v1_source(mngr)')


TO_V1_SOURCE = """\
    \"\"\"Doc.\"\"\"
    from __future__ import annotations

    import orbax.checkpoint as ocp


    class Sub(ocp.CheckpointManager):
      pass


    def make():
      return ocp.CheckpointManager('/m')


    def train(t, s, m2: ocp.CheckpointManager):
      m = ocp.CheckpointManager('/d')
      m.save(
          s,  # the step
          args=ocp.args.StandardSave(t),  # the state
      )
      x = m.latest_step() + 1
      y = (m.latest_step())
      r = m.restore(m.latest_step(), args=ocp.args.StandardRestore(t))
      if m.should_save(s):
        pass
      elif m.reached_preemption(s):
        pass
      print(m.best_step(), m.best_step())
      done = m.wait_until_finished()
      make().latest_step()
      make().close()
      m2.close()
      Sub('/s').close()
      items = ocp.CheckpointManager('/i', item_names=('a',))
      items.restore(1, args=ocp.args.StandardRestore(t))
      items.close()
      return x, y, r, done


    def shadow(np):
      m = ocp.CheckpointManager('/n')
      return m.restore(1, args=ocp.args.StandardRestore(np))
    """
LATEST_V1 = 'm.v1_checkpointer.latest.step if m.v1_checkpointer.latest else None'


def to_v1_expected():
  return textwrap.dedent("""\
    \"\"\"Doc.\"\"\"
    from __future__ import annotations

    import jax
    import numpy as np
    import orbax_compat as ocp
    from orbax.checkpoint.experimental import v1 as ocp_v1
    """) + helpers('v0_standard_abstract', 'v0_standard_restore', 'v0_best_step') + (
        textwrap.dedent(f"""\


    class Sub(ocp.CheckpointManager):
      pass


    def make():
      __INIT_m__
      return ocp.CheckpointManager('/m')


    def train(t, s, m2: ocp.CheckpointManager):
      __INIT_d__
      m = ocp.CheckpointManager('/d')
      # the step
      # the state
      if s not in [c.step for c in m.v1_checkpointer.checkpoints]:
        m.v1_checkpointer.save_checkpointables_async(s, {{'default': t}})
      x = ({LATEST_V1}) + 1
      y = ({LATEST_V1})
      r = v0_standard_restore(
          m.v1_checkpointer,
          {LATEST_V1}, t)
      # TODO(orbax-v1): see MIGRATION_TABLE.md#reached-preemption; in v1:
      #   from orbax.checkpoint import utils
      #   utils.reached_preemption(s)
      if m.v1_checkpointer.should_save(s):
        pass
      elif m.reached_preemption(s):
        pass
      print(
          v0_best_step(m.v1_checkpointer, None, 'max'),
          v0_best_step(m.v1_checkpointer, None, 'max'))
      # TODO(orbax-v1): see MIGRATION_TABLE.md#wait-until-finished; in v1:
      #   m.v1_checkpointer.wait()
      done = m.wait_until_finished()
      # TODO(orbax-v1): see MIGRATION_TABLE.md#latest-step; in v1:
      #   (make().v1_checkpointer.latest.step if make().v1_checkpointer.latest
      #    else None)
      make().latest_step()
      make().v1_checkpointer.close()
      # TODO(orbax-v1): m2.v1_checkpointer.close(); see MIGRATION_TABLE.md#close
      m2.close()
      __INIT_s__
      # TODO(orbax-v1): see MIGRATION_TABLE.md#close; in v1:
      #   Sub('/s').v1_checkpointer.close()
      Sub('/s').close()
      __INIT_i__
      items = ocp.CheckpointManager('/i', item_names=('a',))
      # TODO(orbax-v1): see MIGRATION_TABLE.md#restore; in v1:
      #   v0_standard_restore(items.v1_checkpointer, 1, t)
      items.restore(1, args=ocp.args.StandardRestore(t))
      items.v1_checkpointer.close()
      return x, y, r, done


    def shadow(np):
      m = __CONSTRUCTOR__
      return v0_standard_restore(m, 1, np)
    """).replace('__CONSTRUCTOR__', v1_constructor("'/n'")).replace(
        '__INIT_m__', init_todo("'/m'")).replace('__INIT_d__', init_todo("'/d'")).replace(
        '__INIT_s__', init_todo("'/s'")).replace('__INIT_i__', init_todo("'/i'")))


def test_to_v1_rewrites_exactly(tmp_path, capsys):
  """Mechanical calls to v1 (args and comments kept, the simplest exact code,
  wrapped in the file's line length), helpers and imports where isort would
  put them, short TODOs with the call's arguments; the manager in shadow()
  finished (its `np` parameter does not reach the helpers)."""
  path = tmp_path / 'train.py'
  path.write_text(textwrap.dedent(TO_V1_SOURCE))
  assert scan.main(['--to-v1', '--diff', str(path)]) == 1  # Prints, writes nothing.
  out = capsys.readouterr().out
  assert path.read_text() == textwrap.dedent(TO_V1_SOURCE)
  assert f'would fix {path}: 1 import(s) swapped to orbax_compat, 12 use(s) rewritten to v1, ' \
         '10 # TODO(orbax-v1) comment(s)' in out
  assert f'{path}:30:3: latest_step: ckptr.latest.step if ckptr.latest else None  [kept: ' \
         '`make()` would be evaluated a different number of times]' in out
  assert f'finished {path}:41:7: CheckpointManager -> ocp_v1.training.Checkpointer' in out
  assert (f'not finished {path}:16:7: line 26: m.reached_preemption(s) kept: the table has no '
          'mechanical rewrite for this form; line 29: m.wait_until_finished() kept: the v1 code '
          'does the same only as a statement of its own; here the value is used') in out
  assert scan.main(['--to-v1', str(path)]) == 1  # TODOs remain.
  capsys.readouterr()
  assert path.read_text() == to_v1_expected()
  reasons = {(f.line, f.label): f.reason for f in scan.run([str(path)]).findings if f.mechanical}
  lines = to_v1_expected().splitlines()

  def line_of(code):
    return next(i for i, line in enumerate(lines, 1) if line.strip() == code)

  assert reasons == {
      (line_of('done = m.wait_until_finished()'), 'wait_until_finished'):
          'the v1 code does the same only as a statement of its own; here the value is used',
      (line_of('make().latest_step()'), 'latest_step'):
          '`make()` would be evaluated a different number of times',
      (line_of('m2.close()'), 'close'): 'the manager may be known only by an annotation (its '
                                        'class is not visible here)',
      (line_of("Sub('/s').close()"), 'close'):
          'the manager may be of a subclass defined here (it may override members)',
      (line_of('items.restore(1, args=ocp.args.StandardRestore(t))'), 'restore'):
          'the v1 code reads the single item "default"; this manager is built with items',
  }
  assert scan.run([str(path)], to_v1=True).changes == []  # Idempotent.
  assert path.read_text() == to_v1_expected()


def test_to_v1_keeps_what_a_name_shadows(tmp_path):
  """The v1 code's names (and the helpers') must mean what they mean in the table."""
  path = tmp_path / 'shadow.py'
  source = textwrap.dedent("""\
      import orbax.checkpoint as ocp
      np = None  # Not numpy: the helper v0_standard_abstract needs numpy here.


      def v0_best_step(ckptr):  # Not the helper.
        return 0


      def restore(t):
        m = ocp.CheckpointManager('/n')
        return m.restore(1, args=ocp.args.StandardRestore(t)), m.best_step()
      """)
  path.write_text(source)
  reasons = {f.label: f.reason for f in scan.run([str(path)]).findings if f.mechanical}
  assert reasons == {
      'restore': '`np` names something else in this module than in the v1 code',
      'best_step': '`v0_best_step` names something else here than the helper the v1 code calls',
  }


def test_to_v1_keeps_managers_orbax_builds(tmp_path):
  """Orbax's own manager has no v1_checkpointer: calls on one built where this
  run swaps nothing (a module not among the paths given) stay, with a TODO."""
  (tmp_path / 'pyproject.toml').write_text('')
  (tmp_path / 'factory.py').write_text('import orbax.checkpoint as ocp\n\n\n'
                                       'def make(d):\n  return ocp.CheckpointManager(d)\n')
  path = tmp_path / 'native.py'
  path.write_text('from factory import make\n\nm = make("/d")\nm.close()\n')
  result = scan.run([str(path)], to_v1=True)
  close = next(f for f in result.findings if f.label == 'close')
  assert (close.to_v1, close.fixed, close.reason) == (
      False, False, 'the manager may be built by Orbax\'s own CheckpointManager (no '
      'v1_checkpointer)')
  assert path.read_text().endswith(
      '# TODO(orbax-v1): m.v1_checkpointer.close(); see MIGRATION_TABLE.md#close\nm.close()\n')


def test_to_v1_never_writes_what_it_cannot_parse(corpus, monkeypatch):
  broken, blob = (corpus / 'broken.py').read_bytes(), (corpus / 'blob.py').read_bytes()
  path = corpus / 'flax_train.py'
  source = path.read_bytes()
  # A rewrite that would not parse is refused before anything is written.
  real_rewrite = scan.engine.rewrite
  monkeypatch.setattr(scan.engine, 'rewrite', lambda s, e: real_rewrite(s, e) + b'\ndef (:\n')
  result = scan.run([str(corpus)], to_v1=True)
  assert path.read_bytes() == source and result.changes == []
  assert any(e.path == str(path) and e.message.startswith(
      'not rewritten, the rewrite would not parse: syntax error') for e in result.errors)
  assert (corpus / 'broken.py').read_bytes() == broken
  assert (corpus / 'blob.py').read_bytes() == blob


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
    # Split: checkpoint from the shim, the other orbax modules as they were.
    ('from orbax import checkpoint, export\n',
     'import orbax_compat as checkpoint\nfrom orbax import export\n'),
    ('from orbax import export, checkpoint as ocp  # both\n',
     'import orbax_compat as ocp\nfrom orbax import export  # both\n'),
    # A submodule's CheckpointManager is Orbax's own class: from the shim (maxdiffusion).
    ('from orbax.checkpoint.checkpoint_manager import CheckpointManager, '
     'CheckpointManagerOptions\n',
     'from orbax_compat import CheckpointManager, CheckpointManagerOptions\n'),
    ('from orbax.checkpoint.checkpoint_manager import CheckpointManager as CM, METRIC_ITEM_NAME\n',
     'from orbax_compat import CheckpointManager as CM\n'
     'from orbax.checkpoint.checkpoint_manager import METRIC_ITEM_NAME\n'),
    ('import orbax_compat as ocp\n', None),
])
def test_fix_swaps_only_what_stays_correct(tmp_path, source, fixed):
  """Each import's swap, as a file that swaps all (`--swap-all`) makes it."""
  path = tmp_path / 'm.py'
  path.write_text(source)
  result = scan.run([str(path)], fix=True, swap_all=True)
  assert path.read_text() == (fixed or source)
  assert [c['path'] for c in result.changes] == ([str(path)] if fixed else [])
  assert all(f.fixed == f.fixable for f in result.findings)
  assert scan.run([str(path)], fix=True, swap_all=True).changes == []  # Idempotent.


def test_json_output(corpus, capsys):
  code = scan.main(['--format', 'json', str(corpus)])
  out = json.loads(capsys.readouterr().out)
  assert code == 1
  assert set(out) == {'schema', 'findings', 'summary', 'errors', 'changes', 'managers'}
  assert out['schema'] == 'orbax_compat.scan/3'
  assert [(_rel(f['path'], corpus), f['line'], f['col'], f['label']) for f in out['findings']] == [
      tuple(e[:4]) for e in EXPECTED]
  keys = {'path', 'line', 'col', 'end_line', 'end_col', 'kind', 'member', 'label', 'v0', 'v1',
          'note', 'status', 'code', 'receiver', 'form', 'mechanical', 'to_v1', 'reason',
          'fixable', 'fixed', 'needed', 'action'}
  assert all(set(f) == keys for f in out['findings'])
  save = next(f for f in out['findings'] if f['label'] == 'save')
  assert save == {
      'path': str(corpus / 'aliases.py'), 'line': 22, 'col': 9, 'end_line': 22, 'end_col': 57,
      'kind': 'method', 'member': 'save', 'label': 'save', 'v0': forms.BY_NAME['save'].v0,
      'v1': forms.BY_NAME['save'].v1,
      'note': f'{forms.BY_NAME["save"].forms[0].note}; {forms.BY_NAME["save"].note}',
      'status': 'adapted', 'code': 'mngr.save(step, args=oc.args.StandardSave(tree))',
      'receiver': 'mngr', 'form': SAVE, 'mechanical': 'expression', 'to_v1': False,
      'reason': 'the manager may be known only by an annotation (its class is not visible here)',
      'fixable': False, 'fixed': False, 'needed': True, 'action': '',
  }
  delete = next(f for f in out['findings'] if f['label'] == 'delete')
  assert (delete['form'], delete['v1'], delete['mechanical'], delete['to_v1'], delete['reason']) == (
      'mngr.delete(step)', 'ckptr.delete(step)', 'statement', DELETES,
      '' if DELETES else _v1.capability_missing('v1_delete'))
  summary = out['summary']
  assert summary['findings'] == summary['remaining'] == len(EXPECTED)
  assert (summary['files_scanned'], summary['files_with_findings'], summary['errors']) == (7, 7, 2)
  assert summary['by_member']['save'] == 13 and summary['by_member']['import'] == 9
  assert summary['by_member']['reference'] == 1
  assert (summary['imports_without_manager'], summary['actions']) == (0, 0)
  assert summary['by_file'][str(corpus / 'trainer_class.py')] == 20
  assert out['managers'] == []  # Only --to-v1 decides which managers it finishes.
  assert sum(summary['by_member'].values()) == sum(summary['by_file'].values()) == len(EXPECTED)
  assert [(_rel(e['path'], corpus), e['line'], e['col'], e['message']) for e in out['errors']] == (
      EXPECTED_ERRORS)
  assert out['changes'] == []


def test_text_output(corpus, capsys):
  assert scan.main([str(corpus / 'never_runs.py')]) == 1
  out, err = capsys.readouterr()
  path = corpus / 'never_runs.py'
  row = forms.BY_NAME['delete']
  create = mapping_options.BY_FIELD['create']
  note = f'{row.forms[0].note}; {row.note}' if row.note else row.forms[0].note
  mark = '[--to-v1]' if DELETES else f'[kept: {_v1.capability_missing("v1_delete")}]'
  assert f'{path}:11:1: delete: {row.v1}  ({note})  {mark}\n' in out
  assert f'{path}:10:89: options.create: {create.v1}  ({create.note})\n' in out
  assert '4 v0 uses in 1 files (1 scanned)' in out
  assert 'by member:' in out and 'by file:' in out and err == ''


def test_exit_codes_and_bad_input(tmp_path, capsys):
  clean = tmp_path / 'clean.py'
  clean.write_text('import numpy\nx = numpy.zeros(3)\nx.save = 1\n')
  assert scan.main([str(clean)]) == 0
  assert 'no v0 uses found (1 files scanned)' in capsys.readouterr().out
  v0 = tmp_path / 'v0.py'
  v0.write_text('import orbax.checkpoint as ocp\nm = ocp.CheckpointManager("/d")\n')
  imports_only = tmp_path / 'imports_only.py'
  imports_only.write_text('import orbax.checkpoint as ocp\nocp.utils.sync_global_processes("x")\n')
  assert scan.main([str(imports_only)]) == 0  # Nothing to migrate: counted apart.
  assert ('1 Orbax import(s) in 1 file(s) that build and use no v0 manager: nothing to migrate '
          'there (not counted; --fix leaves them)') in capsys.readouterr().out
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
  assert parallel.files_scanned == serial.files_scanned == 28


RUNNER = textwrap.dedent('''\
    import json, runpy, sys, warnings
    out = {}
    args = sys.argv[2:]
    for path, workdir, resume_dir in zip(args[0::3], args[1::3], args[2::3]):
        module = runpy.run_path(path, run_name='corpus_program')
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            result = module['main'](workdir)
            if 'resume' in module:  # Reads what a run of main() wrote in resume_dir.
                result['resume'] = module['resume'](resume_dir)
        result['shim notices'] = sum(
            w.category.__name__ == 'OrbaxCompatDeprecationWarning' for w in caught)
        out[path.rsplit('/', 1)[-1]] = result
    with open(sys.argv[1], 'w') as f:
        json.dump(out, f)
''')


def _run_programs(corpus, workdir, resume_root=None):
  """Runs each program's main(workdir/NAME), then its resume() on resume_root/NAME
  (default: what its main just wrote); {program: results}."""
  results = workdir / 'results.json'
  argv = [sys.executable, '-c', RUNNER, str(results)]
  for name in RUNNABLE:
    stem = name.removesuffix('.py')
    argv += [str(corpus / name), str(workdir / stem), str((resume_root or workdir) / stem)]
  proc = subprocess.run(argv, capture_output=True, text=True, timeout=600,
                        env=dict(os.environ, ORBAX_COMPAT_WARNINGS='once'))
  assert proc.returncode == 0, proc.stderr[-4000:]
  return json.loads(results.read_text())


def _without_notices(results):
  return {k: {kk: vv for kk, vv in v.items() if kk != 'shim notices'} for k, v in results.items()}


def test_fixed_programs_give_the_same_results(corpus, tmp_path):
  before = _run_programs(corpus, tmp_path / 'before')
  originals = {p.name: p.read_bytes() for p in corpus.iterdir()}

  result = scan.run([str(corpus)], fix=True)
  changed = {p.name for p in corpus.iterdir() if p.read_bytes() != originals[p.name]}
  assert changed == FIXED_BY_SWAP
  assert sorted(_rel(c['path'], corpus) for c in result.changes) == sorted(FIXED_BY_SWAP)
  assert [_key(f, corpus) for f in result.findings if f.fixed] == [
      e[:4] + (True,) for e in EXPECTED if e[3] in ('import', 'reference') and e[4]]
  assert result.exit_code == 2  # Every manager now runs on orbax_compat (2: the corpus has
  assert not result.actions  # two files that cannot be scanned); nothing to act on.
  fixed = {p.name: p.read_bytes() for p in corpus.iterdir()}
  assert scan.run([str(corpus)], fix=True).changes == []  # A second --fix changes nothing.
  assert {p.name: p.read_bytes() for p in corpus.iterdir()} == fixed

  after = _run_programs(corpus, tmp_path / 'after')
  assert _without_notices(after) == _without_notices(before)
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


# The mechanical forms of the table: each is rewritten at least once in the
# corpus, and runs there (never_runs.py's delete does not: eval_loop.py's does).
MECHANICAL = {
    'mngr.directory', 'mngr.all_steps()', 'mngr.latest_step()', 'mngr.reload()',
    'mngr.should_save(step)', 'mngr.delete(step)', SAVE, SAVE_PYTREE, RESTORE, RESTORE_PYTREE,
    SAVE_METRICS, 'mngr.best_step()',
    'mngr.metrics(step)', 'mngr.wait_until_finished()', 'mngr.is_saving_in_progress()',
    'mngr.close()',
}


def test_every_mechanical_form_is_rewritten_in_the_corpus():
  assert {f.v0 for row in forms.MEMBERS for f in row.forms if f.mechanical} == MECHANICAL
  runnable = [e for e in EXPECTED if len(e) == 6 and e[5] and e[0] in RUNNABLE]
  runs_here = {f.v0 for row in forms.MEMBERS for f in row.forms
               if f.mechanical and not _v1.capability_missing(f.needs)}
  assert {e[4] for e in runnable} == runs_here


def test_to_v1_programs_match_native_v0(corpus, tmp_path):
  """After --fix and --to-v1, each program gives what the original gives on
  native v0, and reads the checkpoints the original wrote."""
  native = tmp_path / 'native'
  shutil.copytree(corpus, native)
  shimmed = native / 'already_shimmed.py'  # Its original, before it was swapped by hand.
  shimmed.write_text(shimmed.read_text().replace('import orbax_compat as ocp',
                                                 'import orbax.checkpoint as ocp'))
  before = _run_programs(native, tmp_path / 'before')
  assert not any(v['shim notices'] for v in before.values())  # All native v0.

  scan.run([str(corpus)], fix=True)
  result = scan.run([str(corpus)], to_v1=True)
  # (Lines after --fix: aliases.py has an `import orbax_compat` more.)
  assert [(_rel(f.path, corpus), f.label, f.form) for f in result.findings
          if f.fixed and f.kind in ('method', 'property')] == [
      (e[0], e[3], e[4]) for e in EXPECTED if len(e) == 6 and e[5] and e[3] != 'CheckpointManager']
  # Managers whose every use went to v1 are finished: v1 Checkpointers.
  assert [(_rel(m['path'], corpus), m['line'], m['finished']) for m in result.managers] == [
      ('aliases.py', 57, True), ('aliases.py', 18, False), ('already_shimmed.py', 10, False),
      ('already_shimmed.py', 21, True), ('eval_loop.py', 36, True), ('eval_loop.py', 43, False),
      ('eval_loop.py', 31, True), ('flax_train.py', 52, True), ('flax_train.py', 77, True),
      ('never_runs.py', 10, False), ('trainer_class.py', 18, False), ('managers.py', 30, False)]
  left = {(_rel(m['path'], corpus), m['line']): m['left'] for m in result.managers}
  assert left[('managers.py', 30)] == [
      'built by a subclass of the manager (CountingManager): its overrides may differ from v1\'s '
      'calls; finish it by hand']
  assert left[('never_runs.py', 10)] == [
      'options without a v1 form: create (v1 always creates the root directory)'] + (
          [] if DELETES else [f'line 11: mngr.delete(0) kept: {DELETE_MISSING}'])
  assert left[('already_shimmed.py', 10)] == [
      'line 14: mngr.restore(mngr.latest_step()) kept: the table has no mechanical rewrite for '
      'this form']
  assert sorted(_rel(c['path'], corpus) for c in result.changes) == [
      'aliases.py', 'already_shimmed.py', 'eval_loop.py', 'flax_train.py', 'managers.py',
      'never_runs.py', 'trainer_class.py']
  rewritten = {p.name: p.read_bytes() for p in corpus.iterdir()}
  again = scan.run([str(corpus)], to_v1=True)  # A second --to-v1 changes nothing.
  assert again.changes == [] and not any(f.fixed or f.to_v1 for f in again.findings)
  assert {p.name: p.read_bytes() for p in corpus.iterdir()} == rewritten

  # The rewritten programs, on fresh directories; their resume() on copies of
  # what the originals wrote.
  copies = tmp_path / 'copies'
  for name in RUNNABLE:
    stem = name.removesuffix('.py')
    shutil.copytree(tmp_path / 'before' / stem, copies / stem)
  after = _run_programs(corpus, tmp_path / 'after', resume_root=copies)
  assert _without_notices(after) == _without_notices(before)
  # v0 calls remain where --to-v1 left a TODO; flax_train.py's managers are finished:
  # it runs on v1 alone.
  assert after['flax_train.py']['shim notices'] == 0
  assert 'orbax_compat' not in (corpus / 'flax_train.py').read_text()
  assert before['eval_loop.py'] == {
      'decisions': [True, False, True, False, True, False, True], 'skipped': False,
      'saved': True, 'busy': False, 'steps': [0, 4, 6, 8],
      'metrics': {'0': {'loss': 4.25}, '4': {'loss': 0.25}, '6': {'loss': 2.25}, '8': None},
      'best': 4, 'latest': 8, 'restored': {'b': [8], 'w': [0.0, 8.0, 16.0, 24.0]},
      'best_params': {'b': [4], 'w': [0.0, 4.0, 8.0, 12.0]}, 'dir': 'eval_loop',
      'exported': {'b': [8], 'w': [0.0, 8.0, 16.0, 24.0]},
      'resume': {'steps': [0, 4, 6, 8], 'latest': 8, 'best': 4,
                 'metrics': [{'loss': 4.25}, {'loss': 0.25}, {'loss': 2.25}, None],
                 'latest_params': {'b': [8], 'w': [0.0, 8.0, 16.0, 24.0]}},
      'shim notices': 0,
  }
  assert before['flax_train.py']['resume']['restored_params'] == (
      before['flax_train.py']['trained_params'])
  assert before['trainer_class.py']['resume']['best_step'] == 3
  assert not (corpus / 'never_runs.ran').exists()


def test_cli_entry_point_and_help():
  proc = subprocess.run([sys.executable, '-m', 'orbax_compat', 'scan', '--help'],
                        capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr
  for option in ('--fix', '--to-v1', '--diff', '--format {text,json}', '--include-skipped',
                 '--jobs'):
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


def test_to_v1_keeps_calls_whose_v1_code_depends_on_unseen_or_set_options(tmp_path, capsys):
  """`Form.unless`: should_save/delete differ under read_only, save also without async."""
  source = tmp_path / 'ro.py'
  source.write_text(textwrap.dedent('''\
      import orbax.checkpoint as ocp

      def read_only(d):
          mngr = ocp.CheckpointManager(d, options=ocp.CheckpointManagerOptions(read_only=True))
          mngr.should_save(3)
          mngr.latest_step()

      def plain(d):
          opts = ocp.CheckpointManagerOptions(max_to_keep=2, read_only=False)
          mngr = ocp.CheckpointManager(d, options=opts)
          mngr.should_save(3)
          mngr.delete(1)

      def unseen(d, opts):
          mngr = ocp.CheckpointManager(d, options=opts)
          mngr.save(1, args=ocp.args.StandardSave({}))
  '''))
  scan.main([str(source), '--format', 'json'])
  found = json.loads(capsys.readouterr().out)['findings']
  rewritten = {(f['line'], f['member']): f['to_v1'] for f in found if f['kind'] == 'method'}
  assert rewritten == {(5, 'should_save'): False, (6, 'latest_step'): True,
                       (11, 'should_save'): True, (12, 'delete'): DELETES, (16, 'save'): False}
  reasons = {f['line']: f['reason'] for f in found if f['kind'] == 'method'}
  assert 'may set read_only' in reasons[5]
  assert 'options this file does not show' in reasons[16]


@pytest.fixture
def delete_needs_a_later_release():
  """The delete form as on a release whose v1 cannot delete (before 0.12.8)."""
  monkeypatch = pytest.MonkeyPatch()
  monkeypatch.setitem(mapping_members.CAPABILITIES, 'v1_delete', Capability('ckptr.delete', '99.0'))
  monkeypatch.setitem(_v1.CAPABILITIES, 'v1_delete', False)
  try:
    yield _v1.capability_missing('v1_delete')
  finally:
    monkeypatch.undo()


def test_v1_code_the_installed_orbax_lacks_is_never_rewritten(
    delete_needs_a_later_release, tmp_path, capsys):
  """`Form.needs`: where v1 lacks the call, --to-v1 keeps it and says why, and
  the notice says to keep the v0 call; MIGRATION_TABLE.md names the release."""
  source = tmp_path / 'd.py'
  source.write_text('import orbax.checkpoint as ocp\nmngr = ocp.CheckpointManager("/d")\n'
                    'mngr.delete(1)\nmngr.latest_step()\n')
  scan.main([str(source), '--format', 'json'])
  found = {f['member']: f for f in json.loads(capsys.readouterr().out)['findings']}
  assert (found['delete']['to_v1'], found['latest_step']['to_v1']) == (False, True)
  assert found['delete']['reason'] == delete_needs_a_later_release
  assert 'ckptr.delete needs orbax-checkpoint 99.0; the installed' in found['delete']['reason']
  assert scan.main([str(source), '--to-v1']) == 1
  rewritten = source.read_text()
  assert '\nmngr.delete(1)\n' in rewritten and '\nmngr.v1_checkpointer.delete' not in rewritten
  assert 'mngr.v1_checkpointer.latest' in rewritten
  row = forms.BY_NAME['delete']
  assert notices.message(row, row.forms[0]).endswith(
      f'\n    ({delete_needs_a_later_release})')
  assert '(needs orbax-checkpoint 99.0)' in table.render_markdown()


def test_migration_table_names_the_release_v1_delete_needs():
  text = (pathlib.Path(__file__).parent.parent / 'MIGRATION_TABLE.md').read_text()
  assert ('| `mngr.delete(step)` | `ckptr.delete(step)` | statement | v1 has no read-only mode: '
          'v0 skips it when read_only (needs orbax-checkpoint 0.12.8) |') in text
  row = forms.BY_NAME['delete']
  assert (DELETE_MISSING in notices.message(row)) is not DELETES
