"""Managers kept in a dict and a list."""
import orbax.checkpoint as ocp


def build(root):
  managers = {
      'params': ocp.CheckpointManager(root + '/params'),  # expect: CheckpointManager
      'opt': ocp.CheckpointManager(root + '/opt'),  # expect: CheckpointManager
  }
  managers['params'].save(0, args=None)  # expect: save
  for name, mngr in managers.items():
    mngr.wait_until_finished()  # expect: wait_until_finished
  pool = []
  pool.append(ocp.CheckpointManager(root + '/extra'))  # expect: CheckpointManager
  for mngr in pool:
    mngr.close()  # expect: close
  return managers.get('opt').all_steps()  # expect: all_steps
