"""Cost of one action: the consistency policy (1 and 5 sampling steps, with and without the 50 candidates the
authors score by Q) next to SAC's Gaussian actor, with the authors' network sizes (3x256 consistency network and
critics; SAC 2x256), on a batch of observations. Jitted ``act`` calls, compile excluded; median of repeats.

    python scripts/bench_policy_cost.py --env gymnax/Pendulum-v1 --batch 1 --batch 256
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from rlx.algos import consistency_ac, sac
from rlx.envs import make

VARIANTS = {
    "SAC (tanh-Gaussian, 2x256)": (sac, {}),
    "consistency, 1 step, 1 candidate": (consistency_ac, {"num_steps": 1, "num_candidates": 1}),
    "consistency, 5 steps, 1 candidate": (consistency_ac, {"num_steps": 5, "num_candidates": 1}),
    "consistency, 1 step, 50 candidates": (consistency_ac, {"num_steps": 1, "num_candidates": 50}),
    "consistency, 5 steps, 50 candidates (the authors')": (consistency_ac, {"num_steps": 5, "num_candidates": 50}),
}


def time_act(module, overrides: dict, env, batch: int, repeats: int) -> float:
    """Median seconds of one jitted ``act`` on ``batch`` observations (deterministic=False)."""
    config = module.Config(**overrides)
    state = module.init(config, env, jax.random.PRNGKey(0), 1)
    obs = jnp.zeros((batch, *env.observation_shape))
    act = jax.jit(lambda s, o, k: module.act(config, env, s, o, k))
    act(state, obs, jax.random.PRNGKey(0)).block_until_ready()  # compile
    times = []
    for i in range(repeats):
        key = jax.random.PRNGKey(i)
        tic = time.perf_counter()
        act(state, obs, key).block_until_ready()
        times.append(time.perf_counter() - tic)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="gymnax/Pendulum-v1")
    parser.add_argument("--batch", type=int, action="append", help="observations per call (repeatable)")
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    batches = args.batch or [1, 256]
    env = make(args.env)
    print(
        f"{platform.processor() or platform.machine()}, jax {jax.__version__}, {jax.devices()[0].platform}, {args.env}"
    )
    print("| policy | " + " | ".join(f"batch {b}: us/call" for b in batches) + " | vs SAC |")
    print("|---|" + "---:|" * len(batches) + "---|")
    base = None
    for name, (module, overrides) in VARIANTS.items():
        cost = [time_act(module, overrides, env, b, args.repeats) for b in batches]
        base = base or cost
        ratios = ", ".join(f"{c / b:.1f}x" for c, b in zip(cost, base, strict=True))
        print(f"| {name} | " + " | ".join(f"{c * 1e6:.0f}" for c in cost) + f" | {ratios} |", flush=True)


if __name__ == "__main__":
    main()
