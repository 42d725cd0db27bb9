"""Makes `multiprocess_test.py` (beside this file) importable as Orbax's
`orbax.checkpoint._src.testing.multiprocess_test`, which Orbax's wheels lack.

Only on the PYTHONPATH of the Orbax suite's runs (tests/test_orbax_suite.py).
"""

import importlib.abc
import importlib.util
import os
import sys

_NAME = 'orbax.checkpoint._src.testing.multiprocess_test'
_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'multiprocess_test.py')


class _Finder(importlib.abc.MetaPathFinder):

  def find_spec(self, fullname, path=None, target=None):
    if fullname == _NAME:
      return importlib.util.spec_from_file_location(fullname, _FILE)
    return None


sys.meta_path.insert(0, _Finder())
