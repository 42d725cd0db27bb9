"""Moved to tests/differential/recorder.py (the harness's `Rec` builds on it).

This alias keeps `import recorder` working for test files and workers written
before tests/differential/ (e.g. a worker's own `Rec`); import
`differential.recorder` instead. Importing it imports Orbax (the harness
package does), never orbax_compat.
"""

from differential.recorder import Recorder  # noqa: F401
from differential.recorder import has  # noqa: F401
from differential.recorder import tname  # noqa: F401
