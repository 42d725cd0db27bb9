"""Builds the CheckpointManager."""

import orbax.checkpoint as ocp


def make(directory):
  return ocp.CheckpointManager(directory)  # expect: CheckpointManager
