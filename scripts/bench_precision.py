"""Cost of one SAC training iteration (``num_envs`` env steps into the buffer plus ``utd`` gradient steps) with the
networks' matmuls in float32 and in bfloat16 (``compute_dtype``), at several widths: ``lax.scan`` over
``--iterations`` train steps, compile excluded, best of ``--repeats``. On a GPU this is what mixed precision is for;
on XLA:CPU bfloat16 matmuls have no fast kernels.

    python scripts/bench_precision.py --width 256 --width 1024
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys

import jax

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from bench_quantile_cost import time_iterations

from rlx.algos import sac
from rlx.envs import make
from rlx.nets import CriticNet, PolicyNet

LOOP = {"num_envs": 16, "utd_ratio": 1 / 16, "batch_size": 256, "buffer_size": 10_000, "learning_starts": 256}


def config(width: int, depth: int, compute_dtype: str) -> sac.Config:
    hidden = (width,) * depth
    actor = PolicyNet(hidden=hidden, std="log_range", compute_dtype=compute_dtype)
    critic = CriticNet(hidden=hidden, norm="layer", compute_dtype=compute_dtype)
    return dataclasses.replace(sac.Config(**LOOP), actor=actor, critic=critic)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, action="append")
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    env = make("gymnax/Pendulum-v1")
    print(f"{platform.machine()}, {jax.devices()[0].device_kind}, jax {jax.__version__}, SAC, {args.depth} layers")
    print("| width | float32 ms/iteration | bfloat16 ms/iteration | bfloat16 / float32 |")
    print("|---:|---:|---:|---:|")
    for width in args.width or [256, 1024]:
        full, mixed = (
            time_iterations(sac, config(width, args.depth, dtype), env, args.iterations, args.repeats)
            for dtype in ("float32", "bfloat16")
        )
        print(f"| {width} | {1e3 * full:.2f} | {1e3 * mixed:.2f} | {mixed / full:.2f} |", flush=True)


if __name__ == "__main__":
    main()
