"""Where one rlx PPO iteration spends its time: env stepping, rollout, update, host driver.

Each piece is jitted as a ``lax.scan`` over ``--iterations`` iterations (so dispatch is amortized as in
a chunk) and compiled ahead of time; then ``--repeats`` rounds call each piece once in turn (so a drift
of a shared machine's speed hits all alike); seconds per iteration of each piece's fastest call:

  env.step raw          ``Vmap(make(env)).step`` x unroll_length, random actions (no auto-reset)
  training env          ``training_env`` (episode statistics, auto-reset, vmap) x unroll_length, random actions
  env.reset             ``Vmap(make(env)).reset`` x unroll_length: the upper bound of the auto-reset's own work
                        (a fresh vmapped reset at every step, selected where an episode ended)
  collect               ``ppo.collect``: the training env driven by the policy (normalization, sampling,
                        log-probs, episode bookkeeping, stacking the rollout)
  update                ``ppo.make_batch`` (values, GAE) + ``ppo.update`` (num_epochs x num_minibatches SGD)
                        on a fixed rollout
  train_step            ``ppo.train_step`` (collect, update, observation statistics) bare, in a lax.scan
  run_chunk             ``Experiment.run_chunk`` (``chunk_fn``: metric reductions, finiteness checks, no
                        per-iteration branch as every chunk here is full; host: dispatch, ``device_get``)

The table reports the differences between nested pieces; a negative "rest" means XLA fused across them.

    python scripts/bench/profile_rlx.py --env 'brax/inverted_pendulum?backend=positional' \\
        --config configs/ppo_inverted_pendulum.yaml --iterations 20
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import rlx_side

from rlx import driver
from rlx.algos import ppo
from rlx.algos.off_policy import random_actions
from rlx.config import to_dict
from rlx.envs import Env, Vmap, training_env


def compile_program(fn: Callable, args: tuple) -> tuple[Callable[[], Any], float]:
    """``jax.jit(fn)`` compiled for ``args``: a no-argument call that runs it to completion, and the
    compile seconds."""
    args = jax.block_until_ready(args)  # compile seconds: compiling only
    tic = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    return (lambda: jax.block_until_ready(compiled(*args))), time.perf_counter() - tic


def time_interleaved(calls: dict[str, Callable[[], Any]], repeats: int) -> dict[str, float]:
    """Runs each call once (warm-up), then ``repeats`` rounds of one call of each in turn, so a drift of
    the machine's speed hits all alike; the fastest seconds per call."""
    for call in calls.values():
        call()
    seconds: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            tic = time.perf_counter()
            call()
            seconds[name].append(time.perf_counter() - tic)
    return {name: min(values) for name, values in seconds.items()}


def checksum(tree: Any) -> jax.Array:
    """A scalar that depends on every leaf, so XLA cannot drop work whose result the timing ignores."""
    return sum(jnp.sum(leaf.astype(jnp.float32)) for leaf in jax.tree.leaves(tree))


def profile(config: driver.RunConfig, iterations: int, repeats: int) -> dict:
    """Seconds per iteration (and compile seconds) of each piece in the module docstring."""
    steps = rlx_side.env_steps_per_iteration(config) * iterations * (repeats + 1)
    experiment = driver.Experiment(
        driver.build_config({**to_dict(config), "num_chunks": repeats + 1, "total_env_steps": steps})
    )
    agent, env = experiment.static_agent, experiment.env
    num_envs, unroll = config.agent.num_envs, config.agent.unroll_length
    state = experiment.init()
    raw_env, train_env = Vmap(env, num_envs), training_env(env, num_envs)

    def scan(body: Callable, carry: Any) -> Any:
        return jax.lax.scan(lambda c, _: (body(c), None), carry, None, length=iterations)[0]

    def stepping(vec_env: Env) -> Callable:
        def run(env_step, key):
            def one(carry, k):
                return vec_env.step(carry, random_actions(env, k, num_envs)), None

            def iteration(carry):
                env_step, key = carry
                key, step_key = jax.random.split(key)
                return jax.lax.scan(one, env_step, jax.random.split(step_key, unroll))[0], key

            return scan(iteration, (env_step, key))

        return run

    def resetting(key):
        def iteration(carry):
            total, key = carry
            key, reset_key = jax.random.split(key)
            keys = jax.random.split(reset_key, unroll)
            return total + checksum(jax.lax.map(raw_env.reset, keys)), key

        return scan(iteration, (jnp.zeros(()), key))

    def collect(state, total):
        def iteration(carry):
            state, total = carry
            state, rollout, stats = ppo.collect(agent, env, state)
            return state, total + checksum((rollout, stats))

        return scan(iteration, (state, total))

    _, rollout, _ = jax.jit(lambda s: ppo.collect(agent, env, s))(state)

    def update(state, rollout):
        def iteration(state):
            return ppo.update(agent, env, state, ppo.make_batch(agent, env, state, rollout))[0]

        return scan(iteration, state)

    def train_step(state):
        return scan(lambda s: ppo.train_step(agent, env, s)[0], state)

    key = jax.random.PRNGKey(1)
    zero = jnp.zeros((), jnp.float32)
    programs = {
        "env.step raw": compile_program(stepping(raw_env), (jax.jit(raw_env.reset)(key), key)),
        "training env": compile_program(stepping(train_env), (jax.jit(train_env.reset)(key), key)),
        "env.reset": compile_program(resetting, (key,)),
        "collect": compile_program(collect, (state, zero)),
        "update": compile_program(update, (state, rollout)),
        "train_step": compile_program(train_step, (state,)),
    }
    chunk_state = jax.tree.map(jnp.copy, state)  # run_chunk donates its input; the programs above still take state

    def run_chunk() -> None:
        nonlocal chunk_state
        chunk_state = jax.block_until_ready(experiment.run_chunk(chunk_state, 0)[0])

    run_chunk()  # compiles
    programs["run_chunk"] = (run_chunk, experiment.compile_seconds)
    seconds = time_interleaved({name: call for name, (call, _) in programs.items()}, repeats)
    return {
        name: {"seconds": seconds[name] / iterations, "compile_seconds": compile_s}
        for name, (_, compile_s) in programs.items()
    }


def table(pieces: dict) -> list[str]:
    """Markdown: each piece's own share, as differences of nested pieces, and % of ``run_chunk``."""
    s = {name: p["seconds"] for name, p in pieces.items()}
    rows = [
        ("env.step, raw (vmapped, random actions)", s["env.step raw"], "env.step raw"),
        ("+ training wrappers (episode statistics, auto-reset)", s["training env"] - s["env.step raw"], "training env"),
        ("  (for scale: a vmapped env.reset at every step, timed alone)", s["env.reset"], "env.reset"),
        (
            "+ policy, sampling, rollout bookkeeping (collect - training env)",
            s["collect"] - s["training env"],
            "collect",
        ),
        ("update: values + GAE + epochs of minibatch SGD", s["update"], "update"),
        ("rest of train_step (obs statistics; fusion)", s["train_step"] - s["collect"] - s["update"], "train_step"),
        ("driver: run_chunk - bare scan of train_step", s["run_chunk"] - s["train_step"], "run_chunk"),
    ]
    total = s["run_chunk"]
    lines = ["| piece | s / iteration | % of run_chunk | compile s of the program |", "|---|---:|---:|---:|"]
    for label, seconds, program in rows:
        lines.append(
            f"| {label} | {seconds:.4f} | {100 * seconds / total:.1f} | "
            f"{pieces[program]['compile_seconds']:.1f} ({program}) |"
        )
    lines.append(f"| **total: Experiment.run_chunk** | **{total:.4f}** | 100.0 | |")
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="brax/inverted_pendulum?backend=positional")
    p.add_argument(
        "--config", default="configs/ppo_inverted_pendulum.yaml", help="a PPO preset: a name (ppo_ant) or a YAML path"
    )
    p.add_argument("--num-envs", type=int)
    p.add_argument("--agent", action="append", default=[], metavar="KEY=VALUE", help="override an agent field")
    p.add_argument("--iterations", type=int, default=10, help="iterations per timed program call")
    p.add_argument("--repeats", type=int, default=5, help="timed calls per program")
    p.add_argument("--json", help="also write the numbers here")
    args = p.parse_args()
    agent = rlx_side.agent_overrides(args.agent)
    if args.num_envs:
        agent["num_envs"] = args.num_envs
    config = rlx_side.preset_config(args.config, args.env, agent)
    if config.algo != "ppo":
        sys.exit(f"profile_rlx: {args.config} is a {config.algo} preset; this profiles PPO")
    pieces = profile(config, args.iterations, args.repeats)
    a = config.agent
    print(
        f"# rlx PPO profile: `{args.env}`, {args.config}: {a.num_envs} envs x {a.unroll_length} steps, "
        f"{a.num_epochs} epochs x {a.num_minibatches} minibatches; {args.iterations} iterations per call; "
        f"jax {jax.__version__} on {jax.devices()[0].device_kind}; rlx checkout {rlx_side.git_state()}\n"
    )
    print("\n".join(table(pieces)))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"env": args.env, "config": args.config, "pieces": pieces}, f, indent=2)


if __name__ == "__main__":
    main()
