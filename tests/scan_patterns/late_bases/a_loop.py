"""The loop hands the CheckpointManager to a method its Trainer inherits."""

import b_trainer
import f_factory


def run(directory):
  trainer = b_trainer.Trainer()
  manager = f_factory.make_manager(directory)
  trainer.save_with(manager, 1)
