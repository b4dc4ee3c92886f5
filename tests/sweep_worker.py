"""Run by test_sweep.py in a subprocess with 4 simulated CPU devices:
``python tests/sweep_worker.py SPEC.yaml OUT.npz``. Trains the sweep sharded over all devices and on one
device, and a 6-run sweep (padded to 8) on all devices; saves final params and layouts."""

import sys

import jax
import numpy as np

from rlx import sweep
from rlx.config import load_yaml


def flat(state):
    return {f"p{i}": np.asarray(x) for i, x in enumerate(jax.tree.leaves(state.params))}


def main(spec_path, out_path):
    spec = sweep.spec_from_dict(load_yaml(spec_path))
    sharded = sweep.run(spec, None, progress=False)
    single = sweep.run(spec, None, progress=False, num_devices=1)
    padded = sweep.run(sweep.spec_from_dict({**load_yaml(spec_path), "seeds": 3}), None, progress=False)
    arrays = {f"sharded_{k}": v for k, v in flat(sharded.states[0]).items()}
    arrays.update({f"single_{k}": v for k, v in flat(single.states[0]).items()})
    arrays.update({f"padded_{k}": v for k, v in flat(padded.states[0]).items()})
    np.savez(
        out_path,
        devices=len(jax.devices()),
        sharded_layout=np.array(sharded.layouts[0]),
        single_layout=np.array(single.layouts[0]),
        padded_layout=np.array(padded.layouts[0]),
        **arrays,
    )


if __name__ == "__main__":
    main(*sys.argv[1:])
