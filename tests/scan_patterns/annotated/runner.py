"""Managers known only by their annotations (kauldron and tunix shapes)."""

import orbax.checkpoint as ocp

import registry


class Runner:
  manager: ocp.CheckpointManager

  def run(self, step):
    self.manager.save(step, args=None)  # expect: save


def loop(step):
  mngr: ocp.CheckpointManager = registry.lookup('main')
  mngr.wait_until_finished()  # expect: wait_until_finished
  return mngr
