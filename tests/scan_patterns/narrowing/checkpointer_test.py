"""Tests reach the manager through the type a cast or an isinstance test gives."""

from typing import cast

import checkpointer


def reload_if_orbax(ckpt: checkpointer.BaseCheckpointer):
  if isinstance(ckpt, checkpointer.OrbaxCheckpointer):
    ckpt._manager.reload()  # expect: reload
  if isinstance(ckpt, checkpointer.OtherCheckpointer):
    ckpt._manager.reload()  # Another class: no manager there.
  ckpt._manager.reload()  # Not narrowed: a BaseCheckpointer holds no manager.


def directory_of(ckpt: checkpointer.BaseCheckpointer):
  return cast(checkpointer.OrbaxCheckpointer, ckpt)._manager.directory  # expect: directory
