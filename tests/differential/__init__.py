"""The differential harness: scenarios run on native v0 and on the shim.

To add a differential test, write one scenario in any tests/test_*.py:

    from differential import Rec, args, make_tree, scenario

    @scenario
    def save_then_restore(cls, root):
      rec = Rec(root)
      m = rec.manager('init', cls)
      rec.call('save(0)', m.save, 0, args=args.StandardSave(make_tree()))
      rec.call('restore(0)', m.restore, 0)
      rec.call('close', m.close)
      return rec.obs

It runs as `test_scenario[save_then_restore]` of that module: native v0
twice (equal observations: the scenario is deterministic), then the shim
(equal to native). `@scenario(...)` takes what a scenario needs: `skip=` (a
reason, e.g. an Orbax capability this release lacks), `fixtures=`, `view=`
(what is compared), `check=` (what native must have seen), `params=`,
`child=` / `setup=` (a child process, a filesystem fixture): see registry.py.

Modules: recorder.py (the Recorder base, no Orbax), observe.py (`norm`,
layouts, `Rec`), data.py (trees, `NATIVE`), registry.py (`@scenario`),
harness.py (running and comparing), child.py (the child process),
plugin.py (the pytest side, loaded by tests/conftest.py). Importing this
package never imports orbax_compat.
"""

from differential.data import NATIVE
from differential.data import Options
from differential.data import abstract
from differential.data import args
from differential.data import json_doc
from differential.data import make_tree
from differential.harness import SIDES
from differential.harness import assert_matches_native
from differential.harness import assert_runs_agree
from differential.harness import describe_differences
from differential.harness import run_native_and_shim
from differential.harness import run_scenario
from differential.observe import Raised
from differential.observe import Rec
from differential.observe import by_label
from differential.observe import disk_layout
from differential.observe import mask_base
from differential.observe import norm
from differential.observe import root_metadata_obs
from differential.observe import step_metadata_obs
from differential.recorder import has
from differential.recorder import tname
from differential.registry import Scenario
from differential.registry import scenario

__all__ = [
    'NATIVE', 'SIDES', 'Options', 'Raised', 'Rec', 'Scenario', 'abstract', 'args',
    'assert_matches_native', 'assert_runs_agree', 'by_label', 'describe_differences', 'disk_layout',
    'has', 'json_doc', 'make_tree', 'mask_base', 'norm', 'root_metadata_obs',
    'run_native_and_shim', 'run_scenario', 'scenario', 'step_metadata_obs', 'tname',
]
