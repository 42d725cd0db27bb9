"""Code already swapped to the shim: its v0 calls are still v0 calls."""
import json
import sys

import numpy as np
import orbax_compat as ocp


def main(workdir):
    mngr = ocp.CheckpointManager(workdir, options=ocp.CheckpointManagerOptions(max_to_keep=1))
    mngr.save(0, args=ocp.args.StandardSave({'a': np.arange(3)}))
    mngr.save(1, args=ocp.args.StandardSave({'a': np.arange(3) * 2}))
    mngr.wait_until_finished()
    restored = mngr.restore(mngr.latest_step())
    out = {'all_steps': mngr.all_steps(), 'restored': restored['a'].tolist()}
    mngr.close()
    return out


def resume(workdir):
    mngr = ocp.CheckpointManager(workdir)
    latest = mngr.latest_step()
    restored = mngr.restore(latest, args=ocp.args.StandardRestore({'a': np.zeros(3, int)}))
    mngr.close()
    return {'latest': latest, 'restored': restored['a'].tolist()}

if __name__ == '__main__':
    print(json.dumps(main(sys.argv[1])))
