"""`orbax-compat scan PATH... [--fix] [--to-v1] [--diff] [--format json]`: find v0 usage.

A static tool on libcst's codemod framework; it never imports or runs the
code it reads, nor jax or Orbax. The parts:

- `cli`: the command line and the text output (`main`);
- `engine`: a run, from paths to a `Result` (`run`);
- `source`: files, the project root, reading and parsing (any Python grammar);
- `index`: the whole-repo index and analysis (which expressions are managers);
- `detect`: one module's findings; `templates`: the table's forms, matched
  on a call's syntax; `findings`: the data reported;
- `safety`: the rules deciding what `--to-v1` may rewrite, as named checks;
- `import_swap`, `to_v1`: the codemods of `--fix` and `--to-v1`;
- `notebooks`: `.ipynb` files, cell by cell.

docs/scanner.md is the reference; docs/scan-json-schema.md the JSON output.
"""

from __future__ import annotations

import os  # noqa: F401  (tests patch os.replace through here)

from orbax_compat.tools.scan.capabilities import capability_missing
from orbax_compat.tools.scan.cli import main
from orbax_compat.tools.scan.cli import render_text
from orbax_compat.tools.scan.engine import run
from orbax_compat.tools.scan.engine import scan_source
from orbax_compat.tools.scan.engine import scan_tree
from orbax_compat.tools.scan.engine import write_atomic
from orbax_compat.tools.scan.findings import SCHEMA
from orbax_compat.tools.scan.findings import FileScan
from orbax_compat.tools.scan.findings import Finding
from orbax_compat.tools.scan.findings import Result
from orbax_compat.tools.scan.findings import ScanError
from orbax_compat.tools.scan.source import iter_files
from orbax_compat.tools.scan.source import parse
from orbax_compat.tools.scan.source import read

__all__ = [
    'SCHEMA', 'FileScan', 'Finding', 'Result', 'ScanError', 'capability_missing', 'iter_files',
    'main', 'parse', 'read', 'render_text', 'run', 'scan_source', 'scan_tree', 'write_atomic',
]
