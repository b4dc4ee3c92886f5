"""Population-based training vs the same population trained without it: final evaluation returns.

Each repetition r draws a population of ``--runs`` learning rates log-uniformly from ``--lr-range`` (``random_seed``
r, run seed r) for the ``--preset`` (default ``ppo_cartpole``) at ``--steps`` env steps, and trains it twice in one
process: once as a plain random search and once with ``pbt: {fields: [agent.learning_rate]}`` (exploit/explore
after every chunk, bottom 25% replaced; ``--resample P``: a copy's learning rate is drawn afresh from the range with
probability P). Reported per repetition: the population's mean and best final evaluation
return; over repetitions: IQM with 95% bootstrap CI of each, for each side and of the paired difference. The
mean is what PBT optimizes (its bottom runs become copies of its top ones); the best run is what a random
search would select. Nothing is written to disk.

    python scripts/bench_pbt.py --repetitions 5 --runs 8 --steps 262144 [--preset ppo_gru_cartpole_positions]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import jax
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from rlx import presets, stats, sweep


def population(base: dict, args: argparse.Namespace, repetition: int, with_pbt: bool) -> dict:
    low, high = args.lr_range
    data = {
        "config": {**base, "total_env_steps": args.steps, "num_chunks": args.chunks},
        "seeds": [repetition],
        "random": {"agent.learning_rate": {"low": low, "high": high, "log": True}},
        "num_random": args.runs,
        "random_seed": repetition,
    }
    if with_pbt:
        data["pbt"] = {"fields": ["agent.learning_rate"], "seed": repetition, "resample": args.resample}
    tic = time.perf_counter()
    result = sweep.run(sweep.spec_from_dict(data), None, progress=False)
    returns = np.array([r["eval/episode_return"] for r in result.runs])
    return {"mean": float(returns.mean()), "best": float(returns.max()), "seconds": time.perf_counter() - tic}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--steps", type=int, default=262_144)
    parser.add_argument("--chunks", type=int, default=8)
    parser.add_argument("--lr-range", type=float, nargs=2, default=(1e-5, 1e-2))
    parser.add_argument("--preset", default="ppo_cartpole", help="a preset with a traced agent.learning_rate")
    parser.add_argument("--resample", type=float, default=0.0)
    args = parser.parse_args()
    base = presets.load(args.preset)
    rows = []
    for repetition in range(args.repetitions):
        for with_pbt in (False, True):  # alternated, so drift in the machine's speed hits both sides
            row = {"repetition": repetition, "pbt": with_pbt, **population(base, args, repetition, with_pbt)}
            print(json.dumps(row), flush=True)
            rows.append(row)
    summary = {}
    for value in ("mean", "best"):
        for name, pick in (("random search", False), ("pbt", True)):
            scores = np.array([r[value] for r in rows if r["pbt"] == pick])
            summary[f"{name}: population {value}"] = dict(zip(("iqm", "ci_low", "ci_high"), stats.bootstrap_ci(scores)))
        paired = np.array([b[value] - a[value] for a, b in zip(rows[::2], rows[1::2])])
        summary[f"pbt - random search: population {value}"] = dict(
            zip(("iqm", "ci_low", "ci_high"), stats.bootstrap_ci(paired))
        )
    summary["setup"] = {
        "args": vars(args),
        "machine": platform.processor() or platform.machine(),
        "jax": jax.__version__,
        "devices": [str(d) for d in jax.devices()],
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
