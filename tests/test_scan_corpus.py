"""The scanner benchmark's hand-labelled corpus (`bench/scan_corpus/*.json`) is well-formed.

Checks the schema everywhere; where the repository's mirror is present
(`/work/.mirror/<owner>+<name>/repo`, or `$ORBAX_COMPAT_MIRROR`), also that each
labelled line exists at the recorded commit and contains the member's name.
The benchmark itself (`python bench/scan_recall.py`) is not a pass/fail test.
"""

import collections
import json
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import scan_recall  # noqa: E402

ENTRIES = scan_recall.load_corpus()
KEYS = {'name', 'repo', 'commit', 'role', 'paths', 'exclude', 'categories', 'notes', 'labels',
        'ambiguous'}
LABEL_KEYS = {'path', 'line', 'member', 'category', 'pattern'}
OPTIONAL_LABEL_KEYS = {'cell', 'note', 'end_line'}
PATTERN = re.compile(r'^[a-z0-9]+(-[a-z0-9]+)*$')


def _ids(entries):
  return [e['name'] for e in entries]


def test_corpus_size():
  roles = collections.Counter(e['role'] for e in ENTRIES)
  assert roles['v0'] >= 6 and roles['control'] >= 3, roles
  names = [e['name'] for e in ENTRIES]
  assert len(names) == len(set(names))
  for e in ENTRIES:
    assert pathlib.Path(e['_file']).stem == e['name']


@pytest.mark.parametrize('entry', ENTRIES, ids=_ids(ENTRIES))
def test_entry_schema(entry):
  assert set(entry) - {'_file'} <= KEYS
  assert KEYS - {'ambiguous', 'exclude'} <= set(entry)
  assert re.fullmatch(r'[0-9a-f]{40}', entry['commit'])
  assert re.fullmatch(r'[\w.-]+/[\w.-]+', entry['repo'])
  assert entry['role'] in ('v0', 'control')
  assert entry['paths'] and all(not p.startswith('/') for p in entry['paths'])
  assert set(entry['categories']) <= set(scan_recall.CATEGORIES)
  calls = [lab for lab in entry['labels'] if lab['member'] != scan_recall.OPTIONS]
  if entry['role'] == 'control':
    assert not calls, 'a control has no manager-call labels'
  else:
    assert calls
  seen = set()
  for lab in entry['labels'] + entry.get('ambiguous', []):
    assert LABEL_KEYS <= set(lab) <= LABEL_KEYS | OPTIONAL_LABEL_KEYS, lab
    assert isinstance(lab['line'], int) and lab['line'] >= 1
    assert lab['category'] in scan_recall.CATEGORIES
    assert lab['category'] == scan_recall.category_of(entry, lab['path']), lab
    assert PATTERN.match(lab['pattern']), lab
    assert lab['path'].endswith(('.py', '.ipynb')), lab
    assert ('cell' in lab) == lab['path'].endswith('.ipynb'), lab
    assert any(p == '.' or lab['path'].startswith(p.rstrip('/') + '/') for p in entry['paths'])
    if lab['member'] == scan_recall.OPTIONS:
      assert lab['end_line'] >= lab['line']
    else:
      assert 'end_line' not in lab
    key = (lab['path'], lab.get('cell'), lab['line'], lab['member'])
    assert key not in seen, f'duplicate label {key}'
    seen.add(key)


def _source(gdir, commit, path):
  out = subprocess.run(['git', '--git-dir', str(gdir), 'show', f'{commit}:{path}'],
                       capture_output=True, check=False)
  assert out.returncode == 0, f'{path} not at {commit}: {out.stderr.decode()[:200]}'
  return out.stdout.decode('utf-8', 'replace')


@pytest.mark.parametrize('entry', ENTRIES, ids=_ids(ENTRIES))
def test_labelled_lines_in_mirror(entry):
  gdir = scan_recall.git_dir(entry)
  if not gdir.is_dir():
    pytest.skip(f'no mirror of {entry["repo"]} at {gdir} (fetch it to check the labelled lines)')
  files = {}
  for lab in entry['labels'] + entry.get('ambiguous', []):
    if lab['path'] not in files:
      files[lab['path']] = _source(gdir, entry['commit'], lab['path'])
    text = files[lab['path']]
    if 'cell' in lab:
      source = json.loads(text)['cells'][lab['cell']]['source']
      text = ''.join(source) if isinstance(source, list) else source
    lines = text.split('\n')
    assert lab['line'] <= len(lines), lab
    line = lines[lab['line'] - 1]
    want = 'CheckpointManager' if lab['member'] == '__init__' else lab['member']
    if lab['member'] == '__init__':
      assert '(' in line, (lab, line)  # the construction's call starts on this line
    else:
      assert re.search(rf'\b{re.escape(want)}\b', line), (lab, line)
