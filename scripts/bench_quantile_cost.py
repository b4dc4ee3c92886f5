"""Cost of one DQN-family training iteration (``num_envs`` env steps into the buffer plus one gradient step on a
batch of 128) for DQN, QR-DQN and IQN with N = N' = K fractions, on the same 64x64 network: ``lax.scan`` over
``--iterations`` train steps, compile excluded, best of ``--repeats``. IQN runs its last hidden layer and output
on batch x N rows (three times per gradient step: online, target, chooser), so its cost grows with N.

    python scripts/bench_quantile_cost.py --fractions 8 --fractions 64
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys
import time

import jax

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from rlx import algos, driver, presets
from rlx.algos import dqn, iqn
from rlx.envs import make
from rlx.nets import QNet

LOOP = {"num_envs": 10, "utd_ratio": 0.1, "batch_size": 128, "buffer_size": 10_000, "learning_starts": 100}


def variants(fractions: list[int]) -> dict:
    out = {
        "DQN (MSE)": (dqn, dqn.Config(q=QNet(hidden=(64, 64), value="mse"), **LOOP)),
        "QR-DQN (8 quantiles)": (dqn, dqn.Config(q=QNet(hidden=(64, 64), value="quantile", num_bins=8), **LOOP)),
    }
    for n in fractions:
        config = iqn.Config(
            q=QNet(hidden=(64, 64), value="quantile"),
            num_tau_samples=n,
            num_tau_prime_samples=n,
            num_quantile_samples=n,
            **LOOP,
        )
        out[f"IQN (N = N' = K = {n})"] = (iqn, config)
    return out


def time_iterations(module, config, env, iterations: int, repeats: int) -> float:
    """Best seconds per train iteration over ``repeats`` scans of ``iterations`` steps."""
    state = module.init(config, env, jax.random.PRNGKey(0), 10 * iterations)

    def scan(s):
        return jax.lax.scan(lambda s, _: (module.train_step(config, env, s)[0], None), s, None, iterations)[0]

    run = jax.jit(scan)
    state = jax.block_until_ready(run(state))  # compile, and fill the buffer past learning_starts
    best = float("inf")
    for _ in range(repeats):
        tic = time.perf_counter()
        state = jax.block_until_ready(run(state))
        best = min(best, (time.perf_counter() - tic) / iterations)
    return best


def preset_iterations_row(preset: str, implementations: dict, iterations: int, repeats: int, digits: int = 1) -> str:
    """A Markdown row: seconds per training iteration of ``preset`` (``learning_starts`` set to one batch, so every
    scan updates) with each of ``implementations`` (name -> a function that installs that implementation before the
    networks and losses are traced), each relative to the first."""
    config = driver.build_config(presets.load(preset))
    module, env = algos.get(config.algo), make(config.env)
    agent = dataclasses.replace(config.agent, learning_starts=config.agent.batch_size)
    seconds = []
    for install in implementations.values():
        install()
        seconds.append(time_iterations(module, agent, env, iterations, repeats))
    cells = " | ".join(f"{1e3 * s:.{digits}f} ms ({seconds[0] / s:.2f}x)" for s in seconds)
    return f"| {preset} iteration | {cells} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="gymnax/CartPole-v1")
    parser.add_argument("--fractions", type=int, action="append", help="IQN's N = N' = K (repeatable; default 8)")
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    env = make(args.env)
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, jax {jax.__version__}, {args.env}")
    base = None
    for name, (module, config) in variants(args.fractions or [8]).items():
        seconds = time_iterations(module, config, env, args.iterations, args.repeats)
        base = base or seconds
        print(f"| {name} | {seconds * 1e3:.3f} ms | {seconds / base:.1f}x |")


if __name__ == "__main__":
    main()
