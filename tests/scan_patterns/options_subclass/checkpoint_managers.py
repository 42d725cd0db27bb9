"""paxml shape: the project's own options dataclass extends Orbax's."""

import dataclasses

import orbax.checkpoint as ocp


@dataclasses.dataclass
class CheckpointManagerOptions(ocp.CheckpointManagerOptions):
  asset_subdir: str | None = None


def make(directory, options=None):
  options = options or CheckpointManagerOptions()
  return ocp.CheckpointManager(directory, options=options)  # expect: CheckpointManager
