"""Wall time of N seeds trained as one vmapped sweep vs the same N seeds trained one after another.

Both sides use the same preset and budget, in one process, on the same devices:
  vmapped     ``rlx.sweep.run`` with N seeds: one compile, one program for all runs;
  sequential  one ``driver.Experiment`` (compiled once, then reused) trained for seed 0..N-1 in turn, i.e.
              the best case for separate runs (N separate ``rlx train`` processes also compile N times).
Compile time is reported separately from training time; nothing is written to disk.

    python scripts/bench_sweep.py --config configs/ppo_cartpole.yaml --seeds 32 --steps 65536
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import jax

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from rlx import driver, presets, sweep


def sequential(config_data: dict, seeds: int) -> dict:
    experiment = driver.Experiment(driver.build_config(config_data))
    compile_start = time.perf_counter()
    state = experiment.init(0)
    experiment.run_chunk(state, 0)  # compiles the chunk (its result is discarded)
    compile_seconds = time.perf_counter() - compile_start
    tic = time.perf_counter()
    for seed in range(seeds):
        state = experiment.init(seed)
        for chunk in range(experiment.plan.num_chunks):
            state, _ = experiment.run_chunk(state, chunk)
    jax.block_until_ready(state)
    return {
        "compile_seconds": compile_seconds,
        "train_seconds": time.perf_counter() - tic,
        "env_steps": seeds * experiment.plan.total_env_steps,
    }


def vmapped(config_data: dict, seeds: int) -> dict:
    spec = sweep.spec_from_dict({"config": config_data, "seeds": seeds})
    tic = time.perf_counter()
    result = sweep.run(spec, None, progress=False)
    wall = time.perf_counter() - tic
    compile_seconds = result.runs[0]["compile_seconds"]
    return {
        "compile_seconds": compile_seconds,
        "train_seconds": wall - compile_seconds,
        "env_steps": sum(r["env_steps"] for r in result.runs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/ppo_cartpole.yaml", help="preset YAML")
    parser.add_argument("--seeds", type=int, default=32)
    parser.add_argument("--steps", type=int, default=65536, help="env steps per seed")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    # One chunk and no evaluation between chunks: the comparison is about training, as in a plain run.
    data = {
        **presets.load(args.config),
        "total_env_steps": args.steps,
        "num_chunks": 1,
        "eval_every": 0,
        "eval_episodes": 1,
        "tensorboard": False,
    }
    print(
        f"# {args.config}, {args.seeds} seeds x {args.steps} env steps | jax {jax.__version__} on "
        f"{jax.default_backend()} ({jax.devices()[0].device_kind}, {len(jax.devices())} device(s)), "
        f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}"
    )
    results = {"vmapped": vmapped(data, args.seeds), "sequential": sequential(data, args.seeds)}
    print("| mode | compile s | train s | total s | env steps/s (train) |")
    print("|---|---:|---:|---:|---:|")
    for mode, r in results.items():
        print(
            f"| {mode} | {r['compile_seconds']:.1f} | {r['train_seconds']:.1f} | "
            f"{r['compile_seconds'] + r['train_seconds']:.1f} | {r['env_steps'] / r['train_seconds']:,.0f} |"
        )
    v, s = results["vmapped"], results["sequential"]
    print(
        f"vmapped speed-up: {s['train_seconds'] / v['train_seconds']:.1f}x training time, "
        f"{(s['train_seconds'] + s['compile_seconds']) / (v['train_seconds'] + v['compile_seconds']):.1f}x total; "
        f"vs {args.seeds} separate processes (each compiling): "
        f"{(s['train_seconds'] + args.seeds * s['compile_seconds']) / (v['train_seconds'] + v['compile_seconds']):.1f}x "
        f"(estimated from the measured compile time)"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
