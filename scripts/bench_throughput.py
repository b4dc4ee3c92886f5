"""Raw env throughput vs rlx training throughput (PPO, SAC, TD3), side by side, as a ratio.

For each batch size (number of vmapped envs) it measures, in one process on one machine:
  raw    vmapped ``env.step`` with uniformly random actions in a 100-step ``lax.scan`` (the physical limit);
  train  rlx training env steps/s of the preset's algorithm (collect + update), ``num_envs`` replaced.
Compile time is excluded from both rates and reported separately (seconds). The measurements live in
``scripts/bench/rlx_side.py``; ``scripts/bench/run.py`` compares them with brax.training.

    python scripts/bench_throughput.py --env 'brax/inverted_pendulum?backend=positional' \
        --config configs/ppo_inverted_pendulum.yaml --num-envs 64 256 1024
    python scripts/bench_throughput.py --env 'brax/inverted_pendulum?backend=positional' \
        --config configs/sac_inverted_pendulum.yaml --num-envs 16 64
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys

import jax

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "bench"))

from rlx_side import bench_raw, bench_train, run_config

from rlx import presets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="gymnax/CartPole-v1")
    parser.add_argument("--config", default=None, help="preset YAML (any algorithm) for the training measurement")
    parser.add_argument("--num-envs", type=int, nargs="+", default=[64, 256, 1024])
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    config_data = {}
    if args.config:
        config_data = presets.load(args.config)
    algo = config_data.get("algo", "ppo").upper()
    print(
        f"# {args.env} | jax {jax.__version__} on {jax.default_backend()} ({jax.devices()[0].device_kind}), "
        f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}"
    )
    print(f"| num_envs | raw env steps/s | rlx {algo} env steps/s | {algo} / raw | raw compile s | {algo} compile s |")
    print("|---:|---:|---:|---:|---:|---:|")
    results = []
    for num_envs in args.num_envs:
        raw = bench_raw(args.env, num_envs)
        trained = bench_train(run_config(config_data, args.env, {"num_envs": num_envs}), min_seconds=3.0)
        ratio = trained["steps_per_second"] / raw["steps_per_second"]
        results.append(
            {"env": args.env, "algo": algo, "num_envs": num_envs, "raw": raw, "train": trained, "ratio": ratio}
        )
        print(
            f"| {num_envs} | {raw['steps_per_second']:,.0f} | {trained['steps_per_second']:,.0f} | {ratio:.2f} | "
            f"{raw['compile_seconds']:.1f} | {trained['compile_seconds']:.1f} |",
            flush=True,
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
