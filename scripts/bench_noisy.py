"""The cost of NoisyNet layers in DQN: one jitted gradient step and one acting step, with and without noise.

    python scripts/bench_noisy.py                       # rainbow_cartpole, noisy_std 0.5 against 0
    python scripts/bench_noisy.py --config c51_cartpole --envs 64

Each program is timed ``--repeats`` times over ``--calls`` calls after a warm-up call; the median per call in
microseconds is printed. The gradient step runs three noisy passes (online, target and, with double Q, the next
action's); acting draws noise per env.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp

from rlx import driver, presets
from rlx.algos import dqn, off_policy


def _time(fn, *args, calls: int, repeats: int) -> float:
    jax.block_until_ready(fn(*args))
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            out = fn(*args)
        jax.block_until_ready(out)
        samples.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="rainbow_cartpole")
    parser.add_argument("--noisy-std", type=float, default=0.5)
    parser.add_argument("--envs", type=int, default=10, help="observations per acting step")
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    for noisy_std in (0.0, args.noisy_std):
        data = presets.load(args.config)
        data.setdefault("agent", {}).setdefault("q", {})["noisy_std"] = noisy_std
        config = driver.build_config(data)
        agent, env = config.agent, driver.Experiment(config).env
        state = dqn.init(agent, env, jax.random.PRNGKey(0), 100)
        batch = off_policy.sample_batch(agent, state, jax.random.PRNGKey(1))
        step = jax.jit(lambda s, b, k, agent=agent, env=env: dqn.gradient_step(agent, env, s, b, k)[0].params)
        obs = jnp.zeros((args.envs, *env.observation_shape))
        act = jax.jit(lambda s, o, k, agent=agent, env=env: dqn.act(agent, env, s, o, k))
        key = jax.random.PRNGKey(2)
        step_us = _time(step, state, batch, key, calls=args.calls, repeats=args.repeats)
        act_us = _time(act, state, obs, key, calls=args.calls, repeats=args.repeats)
        print(
            f"{args.config} noisy_std {noisy_std:g}: gradient step {step_us:.0f} us, acting ({args.envs} envs) {act_us:.0f} us"
        )


if __name__ == "__main__":
    main()
