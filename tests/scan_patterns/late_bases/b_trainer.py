"""The Trainer; its base (found only once the CheckpointManager's factory is known) saves."""

import c_base


class Trainer(c_base.Base):
  pass
