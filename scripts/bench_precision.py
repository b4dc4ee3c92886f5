"""Cost of one SAC training iteration (``num_envs`` env steps into the buffer plus ``utd`` gradient steps) with the
networks' matmuls in float32 and in bfloat16 (``compute_dtype``), at several widths: ``lax.scan`` over
``--iterations`` train steps, compile excluded, best of ``--repeats``. On a GPU this is what mixed precision is for;
on XLA:CPU bfloat16 matmuls have no fast kernels. ``--num-envs/--utd-ratio/--batch-size`` set the loop's shape (the
default is a small CPU loop: 16 envs, one gradient step of 256 per iteration); the gradient steps/s and env steps/s it
prints follow from ms/iteration.

    python scripts/bench_precision.py --width 256 --width 1024
    python scripts/bench_precision.py --env playground/CheetahRun --num-envs 128 --utd-ratio 0.0625 \
        --batch-size 512 --width 256 --dtype float32        # Playground's SAC loop
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


def config(width: int, depth: int, compute_dtype: str, loop: dict) -> sac.Config:
    hidden = (width,) * depth
    actor = PolicyNet(hidden=hidden, std="log_range", compute_dtype=compute_dtype)
    critic = CriticNet(hidden=hidden, norm="layer", compute_dtype=compute_dtype)
    return dataclasses.replace(sac.Config(**loop), actor=actor, critic=critic)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="gymnax/Pendulum-v1")
    parser.add_argument("--width", type=int, action="append")
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--dtype", action="append", choices=["float32", "bfloat16"], help="default: both")
    parser.add_argument("--num-envs", type=int, default=16)
    parser.add_argument("--utd-ratio", type=float, default=1 / 16, help="gradient steps per env transition")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    loop = {"num_envs": args.num_envs, "utd_ratio": args.utd_ratio, "batch_size": args.batch_size}
    loop |= {"buffer_size": 10 * args.iterations * args.num_envs, "learning_starts": args.batch_size}
    gradient_steps = sac.Config(**loop).updates_per_iteration
    dtypes = args.dtype or ["float32", "bfloat16"]
    env = make(args.env)
    print(
        f"{platform.machine()}, {jax.devices()[0].device_kind}, jax {jax.__version__}, SAC on {args.env}, "
        f"{args.depth} layers, {args.num_envs} envs, {gradient_steps} gradient steps of {args.batch_size} per iteration"
    )
    print(f"| width | {' | '.join(f'{d} ms/iteration' for d in dtypes)} | gradient steps/s | env steps/s | ratio |")
    print(f"|---:|{'---:|' * len(dtypes)}---:|---:|---:|")
    for width in args.width or [256, 1024]:
        seconds = [
            time_iterations(sac, config(width, args.depth, d, loop), env, args.iterations, args.repeats) for d in dtypes
        ]
        rates = " / ".join(f"{gradient_steps / s:,.0f}" for s in seconds)
        env_rates = " / ".join(f"{args.num_envs / s:,.0f}" for s in seconds)
        ratio = f"{seconds[-1] / seconds[0]:.2f}" if len(seconds) == 2 else "-"
        cells = " | ".join(f"{1e3 * s:.2f}" for s in seconds)
        print(f"| {width} | {cells} | {rates} | {env_rates} | {ratio} |", flush=True)


if __name__ == "__main__":
    main()
