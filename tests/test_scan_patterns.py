"""The whole-repo index finds managers the way real training code passes them.

Each directory of tests/scan_patterns/ is a small project shaped like the
code a pattern was seen in (issue 18: factories in another module, base-class
attributes, helper parameters, tuple returns, containers, `a if c else None`,
class aliases, imported and nested subclasses, options aliases). A line
marked `# expect: LABEL, ...` must give exactly those findings and every
other line none; scanning one file alone gives the same findings for it,
since the scanner indexes the project around it.
"""

import pathlib
import re

import pytest

from orbax_compat.tools import scan

PATTERNS = pathlib.Path(__file__).resolve().parent / 'scan_patterns'
_EXPECT = re.compile(r'#\s*expect:\s*(.+)$')
NAMES = sorted(p.name for p in PATTERNS.iterdir() if p.is_dir() and not p.name.startswith('.'))


def _expected(root: pathlib.Path) -> set[tuple[str, int, str]]:
  out = set()
  for path in sorted(root.rglob('*.py')):
    for i, line in enumerate(path.read_text().splitlines(), 1):
      match = _EXPECT.search(line)
      if match:
        for label in match.group(1).split(','):
          out.add((str(path.relative_to(root)), i, label.strip()))
  return out


def _found(result, root: pathlib.Path) -> set[tuple[str, int, str]]:
  return {(str(pathlib.Path(f.path).resolve().relative_to(root)), f.line, f.label)
          for f in result.findings if f.kind != 'import'}


@pytest.mark.parametrize('pattern', NAMES)
def test_pattern_found_across_modules(pattern):
  root = PATTERNS / pattern
  result = scan.run([str(root)])
  assert not result.errors
  assert _found(result, root) == _expected(root)


@pytest.mark.parametrize('pattern', ['factory_cross_module', 'base_class_attr', 'param_callsite',
                                     'tuple_return', 'subclass_imported'])
def test_one_file_scanned_alone_still_uses_the_project(pattern):
  """As ruff and pyright do: the project root is found above the file, and indexed."""
  root = PATTERNS / pattern
  expected = _expected(root)
  for path in sorted(root.rglob('*.py')):
    rel = str(path.relative_to(root))
    result = scan.run([str(path)])
    assert _found(result, root) == {e for e in expected if e[0] == rel}, rel
    assert result.files_scanned == 1


def test_without_the_project_only_the_file_speaks():
  """`--no-project`: the file alone (the factory's module is not read)."""
  root = PATTERNS / 'factory_cross_module'
  result = scan.run([str(root / 'scripts' / 'train.py')], project=False)
  assert _found(result, root) == set()


def test_managers_from_call_sites_are_not_rewritten(tmp_path):
  """A parameter known only from call sites may get other managers from callers
  outside the paths scanned: --to-v1 keeps its calls, with a TODO."""
  root = PATTERNS / 'param_callsite'
  result = scan.run([str(root)], to_v1=True, diff=True)
  helper = [f for f in result.findings if f.path.endswith('checkpointing.py')]
  assert helper and not any(f.to_v1 for f in helper)
  assert {f.reason for f in helper if f.mechanical} == {
      'the manager may be a parameter (callers outside the paths scanned may pass another '
      'manager)'}


@pytest.mark.parametrize('pattern', NAMES)
def test_the_index_reaches_a_fixpoint(pattern):
  """The solve re-steps a module only when a fact it read has grown: when it
  stops, one more step of every module (in every order) learns nothing.
  (`late_facts` is ordered so that the first module stepped learns last.)"""
  from orbax_compat.tools.scan import engine  # pylint: disable=import-outside-toplevel
  state = engine.Scan([str(PATTERNS / pattern)], include_skipped=False)
  analysis = state.analysis
  modules = [m for m in analysis.modules if not m.light]
  assert modules
  for order in (modules, modules[::-1]):
    for mod in order:
      assert not analysis._step(mod, True), mod.path  # pylint: disable=protected-access
