"""Raw env throughput vs rlx training throughput (PPO, SAC, TD3), side by side, as a ratio.

For each batch size (number of vmapped envs) it measures, in one process on one machine:
  raw    vmapped ``env.step`` with uniformly random actions in a 100-step ``lax.scan`` (the physical limit);
  train  rlx training env steps/s of the preset's algorithm (collect + update), ``num_envs`` replaced.
Compile time is excluded from both rates and reported separately (seconds).

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
import time

import jax
import yaml

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from rlx import driver  # noqa: E402
from rlx.envs import Vmap, make, parse_env_spec  # noqa: E402


def random_actions(env, key, num_envs):
    space = env.action_space
    if space.kind == "discrete":
        return jax.random.randint(key, (num_envs,), 0, space.n)
    return jax.random.uniform(key, (num_envs, *space.shape), minval=-1.0, maxval=1.0)


def bench_raw(env_spec: str, num_envs: int, scan_length: int = 100, repeats: int = 5) -> dict:
    env = Vmap(make(env_spec), num_envs)

    def run(env_step, key):
        def body(carry, k):
            return env.step(carry, random_actions(env, k, num_envs)), None

        env_step, _ = jax.lax.scan(body, env_step, jax.random.split(key, scan_length))
        return env_step

    tic = time.perf_counter()
    reset = jax.jit(env.reset).lower(jax.random.PRNGKey(0)).compile()
    env_step = reset(jax.random.PRNGKey(0))
    step = jax.jit(run).lower(env_step, jax.random.PRNGKey(1)).compile()
    compile_s = time.perf_counter() - tic
    env_step = jax.block_until_ready(step(env_step, jax.random.PRNGKey(1)))  # warm-up
    tic = time.perf_counter()
    for i in range(repeats):
        env_step = step(env_step, jax.random.PRNGKey(2 + i))
    jax.block_until_ready(env_step)
    seconds = time.perf_counter() - tic
    return {"steps_per_second": num_envs * scan_length * repeats / seconds, "compile_seconds": compile_s}


def bench_train(config_data: dict, env_spec: str, num_envs: int, min_seconds: float = 3.0) -> dict:
    """Training env steps/s of the preset's algorithm with ``num_envs`` envs, after compilation.

    Off-policy algorithms are measured with ``learning_starts: 0`` so every iteration does its
    gradient steps (no warm-up iterations that only collect)."""
    data = json.loads(json.dumps(config_data))
    data["env"] = parse_env_spec(env_spec)
    data.setdefault("agent", {})["num_envs"] = num_envs
    if data.get("algo", "ppo") != "ppo":
        data["agent"]["learning_starts"] = 0
    probe = driver.Experiment(driver.build_config({**data, "total_env_steps": 1, "num_chunks": 1}))
    data["total_env_steps"] = probe.plan.env_steps_per_iteration * 4
    data["num_chunks"] = 4  # chunks of one iteration: the first compiles, the rest are timed
    experiment = driver.Experiment(driver.build_config(data))
    state = experiment.init()
    state, _ = experiment.run_chunk(state, 0)  # compiles
    jax.block_until_ready(state)
    steps, seconds, chunk = 0, 0.0, 1
    while seconds < min_seconds or chunk < 3:
        tic = time.perf_counter()
        state, _ = experiment.run_chunk(state, chunk % experiment.plan.num_chunks)
        jax.block_until_ready(state)
        seconds += time.perf_counter() - tic
        steps += experiment.plan.env_steps_per_iteration * experiment.plan.iterations_per_chunk
        chunk += 1
    return {"steps_per_second": steps / seconds, "compile_seconds": experiment.compile_seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="gymnax/CartPole-v1")
    parser.add_argument("--config", default=None, help="preset YAML (any algorithm) for the training measurement")
    parser.add_argument("--num-envs", type=int, nargs="+", default=[64, 256, 1024])
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    config_data = {}
    if args.config:
        with open(args.config) as f:
            config_data = yaml.safe_load(f)
    algo = config_data.get("algo", "ppo").upper()
    print(f"# {args.env} | jax {jax.__version__} on {jax.default_backend()} ({jax.devices()[0].device_kind}), "
          f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}")
    print(f"| num_envs | raw env steps/s | rlx {algo} env steps/s | {algo} / raw | raw compile s | {algo} compile s |")
    print("|---:|---:|---:|---:|---:|---:|")
    results = []
    for num_envs in args.num_envs:
        raw = bench_raw(args.env, num_envs)
        trained = bench_train(config_data, args.env, num_envs)
        ratio = trained["steps_per_second"] / raw["steps_per_second"]
        results.append({"env": args.env, "algo": algo, "num_envs": num_envs, "raw": raw, "train": trained, "ratio": ratio})
        print(f"| {num_envs} | {raw['steps_per_second']:,.0f} | {trained['steps_per_second']:,.0f} | {ratio:.2f} | "
              f"{raw['compile_seconds']:.1f} | {trained['compile_seconds']:.1f} |", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
