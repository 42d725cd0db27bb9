"""Python 3.12 syntax (PEP 695, PEP 701): the scanner reads it under 3.11 too."""
import orbax.checkpoint as ocp

type Steps = list[int]


def newest[T](items: list[T]) -> T | None:
  return items[-1] if items else None


class Holder[M: ocp.CheckpointManager]:

  def __init__(self, mngr: M):
    self.mngr = mngr


def report(directory):
  mngr = ocp.CheckpointManager(directory)
  steps: Steps = mngr.all_steps()
  print(f"steps: {', '.join(str(s) for s in steps)} in {f"{mngr.directory}"}")
  return newest(steps)
