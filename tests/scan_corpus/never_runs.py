"""Raises if it is ever imported or run: proof that the scanner only parses."""
import pathlib

pathlib.Path(__file__).with_suffix('.ran').write_text('this file was executed\n')
raise RuntimeError('never_runs.py must never be imported or run')

import orbax.checkpoint as ocp  # noqa: E402  (unreachable, but v0 usage all the same)
import module_that_does_not_exist  # noqa: E402,F401

mngr = ocp.CheckpointManager('/nonexistent/never', options=ocp.CheckpointManagerOptions(create=False))
mngr.delete(0)
