"""The training loop: saves through the CheckpointManager the state holds.

Stepped first, it learns last: the manager reaches it through three modules.
"""

import b_steps
import c_state


def main(directory):
  state = c_state.State(directory)
  _, manager = state.bundle()
  b_steps.save_every(manager, 10)
  return state.managers['main'].latest_step()  # expect: latest_step
