"""The state keeps its CheckpointManager in a dict; `bundle` returns it in a tuple."""

import d_make


class State:

  def __init__(self, directory):
    self.managers = {'main': d_make.make(directory)}

  def bundle(self):
    return 'main', self.managers['main']
