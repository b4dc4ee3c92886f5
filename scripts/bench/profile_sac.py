"""Where one rlx SAC iteration spends its time: replay add and sampling, gradient steps, collect, driver.

Each piece is jitted as a ``lax.scan`` over ``--iterations`` iterations and compiled ahead of time; then
``--repeats`` rounds call each piece once in turn (as ``profile_rlx.py`` does); seconds per iteration of each
piece's fastest call, after the buffer was filled with ``--fill`` iterations of the exploring policy:

  buffer add            ``ReplayBuffer.add_steps`` of one iteration's transitions into the full-size buffer
  buffer sample         ``updates_per_iteration`` uniform samples turned into TD batches (``td_batch``)
  gradient steps        ``updates_per_iteration`` calls of ``sac.gradient_step`` on one fixed batch (critic,
                        actor and temperature updates, target computation, Polyak update)
  collect               ``off_policy.collect``: the training env driven by the policy, statistics, buffer add
  train_step            ``sac.train_step`` (collect + sampled gradient steps) bare, in a lax.scan
  run_chunk             ``Experiment.run_chunk``, which donates the state (the buffer is updated in place)
  run_chunk, no donation the same chunk function jitted without donation: XLA copies the whole state, replay
                        buffer included, into fresh buffers on every call (rlx on CPU before 2026-12-01)

    python scripts/bench/profile_sac.py --env 'brax/ant?backend=mjx' --config configs/sac_ant.yaml \\
        --agent num_envs=64 --iterations 5
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

import jax
import jax.numpy as jnp
import rlx_side
from profile_rlx import checksum, compile_program, time_interleaved

from rlx import driver
from rlx.algos import off_policy, sac
from rlx.config import to_dict
from rlx.envs import Env


def gradient_steps(agent: sac.Config, env: Env, iterations: int) -> Callable[[sac.State, off_policy.Batch], sac.State]:
    """``program(state, batch)``: ``iterations`` x ``agent.updates_per_iteration`` calls of ``sac.gradient_step``
    (critic, actor and temperature updates, target computation, Polyak update) on the one ``batch``."""

    def program(state, batch):
        def one(state, _):
            key, step_key = jax.random.split(state.key)
            return sac.gradient_step(agent, env, state.replace(key=key), batch, step_key)[0], None

        def iteration(state, _):
            return jax.lax.scan(one, state, None, length=agent.updates_per_iteration)[0], None

        return jax.lax.scan(iteration, state, None, length=iterations)[0]

    return program


def profile(config: driver.RunConfig, iterations: int, repeats: int, fill: int) -> dict:
    """Seconds per iteration (and compile seconds) of each piece in the module docstring."""
    steps = rlx_side.env_steps_per_iteration(config) * iterations * (repeats + 2)
    data = {**to_dict(config), "num_chunks": repeats + 2, "total_env_steps": steps}
    data["agent"]["learning_starts"] = 0
    experiment = driver.Experiment(driver.build_config(data))
    agent, env = experiment.static_agent, experiment.env
    buffer = off_policy.replay_buffer(agent)
    updates = agent.updates_per_iteration

    fill_step = jax.jit(lambda s: off_policy.collect(agent, env, s, sac.explore(agent, env, s))[0])
    state = experiment.init()
    for _ in range(fill):
        state = fill_step(state)
    state = jax.block_until_ready(state)

    def scan(body, carry):
        return jax.lax.scan(lambda c, _: (body(c), None), carry, None, length=iterations)[0]

    transitions = jax.tree.map(lambda x: x[:, : agent.rollout_length], state.loop.buffer.experience)
    transitions = jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), transitions)  # [rollout_length, num_envs, ...]

    def add(state):
        return scan(
            lambda s: s.replace(loop=s.loop.replace(buffer=buffer.add_steps(s.loop.buffer, transitions))), state
        )

    def sample(state, total):
        def iteration(carry):
            key, total = carry
            keys = jax.random.split(key, updates + 1)
            batches = jax.vmap(lambda k: off_policy.td_batch(agent, state, buffer.sample(state.loop.buffer, k)))
            return keys[0], total + checksum(batches(keys[1:]))

        return scan(iteration, (state.key, total))

    batch = jax.jit(lambda s: off_policy.td_batch(agent, s, buffer.sample(s.loop.buffer, s.key)))(state)

    def collect(state):
        return scan(lambda s: off_policy.collect(agent, env, s, sac.explore(agent, env, s))[0], state)

    def train_step(state):
        return scan(lambda s: sac.train_step(agent, env, s)[0], state)

    copy = jax.jit(lambda s: jax.tree.map(jnp.copy, s))  # the donated programs get their own state
    zero = jnp.zeros((), jnp.float32)
    programs = {
        "buffer add": compile_program(add, (state,)),
        "buffer sample": compile_program(sample, (state, zero)),
        "gradient steps": compile_program(gradient_steps(agent, env, iterations), (state, batch)),
        "collect": compile_program(collect, (state,)),
        "train_step": compile_program(train_step, (state,)),
    }
    undonated = jax.jit(experiment.chunk_fn).lower(state, jnp.int32(iterations)).compile()
    carried = {"donated": experiment.run_chunk(copy(state), 0)[0], "copied": state}  # the first compiles

    def run_chunk() -> None:
        carried["donated"] = jax.block_until_ready(experiment.run_chunk(carried["donated"], 0)[0])

    def run_chunk_copied() -> None:
        carried["copied"] = jax.block_until_ready(undonated(carried["copied"], jnp.int32(iterations))[0])

    programs["run_chunk"] = (run_chunk, experiment.compile_seconds)
    programs["run_chunk, no donation"] = (run_chunk_copied, 0.0)
    seconds = time_interleaved({name: call for name, (call, _) in programs.items()}, repeats)
    return {
        name: {"seconds": seconds[name] / iterations, "compile_seconds": compile_s}
        for name, (_, compile_s) in programs.items()
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="brax/ant?backend=mjx")
    p.add_argument("--config", default="configs/sac_ant.yaml", help="a SAC preset: a name (sac_ant) or a YAML path")
    p.add_argument("--agent", action="append", default=[], metavar="KEY=VALUE", help="override an agent field")
    p.add_argument("--iterations", type=int, default=5, help="iterations per timed program call (a chunk)")
    p.add_argument("--repeats", type=int, default=5, help="timed calls per program")
    p.add_argument("--fill", type=int, default=20, help="iterations of collection before timing")
    args = p.parse_args()
    agent = rlx_side.agent_overrides(args.agent)
    config = rlx_side.preset_config(args.config, args.env, agent)
    if config.algo != "sac":
        sys.exit(f"profile_sac: {args.config} is a {config.algo} preset; this profiles SAC")
    pieces = profile(config, args.iterations, args.repeats, args.fill)
    a = config.agent
    print(
        f"# rlx SAC profile: `{args.env}`, {args.config}: {a.num_envs} envs x {a.rollout_length} steps, "
        f"{a.updates_per_iteration} gradient steps of {a.batch_size}, buffer {a.buffer_size}; {args.iterations} "
        f"iterations per call; jax {jax.__version__} on {jax.devices()[0].device_kind}; rlx {rlx_side.git_state()}\n"
    )
    print("| piece | ms / iteration | compile s |\n|---|---:|---:|")
    for name, piece in pieces.items():
        print(f"| {name} | {1e3 * piece['seconds']:.1f} | {piece['compile_seconds']:.1f} |")


if __name__ == "__main__":
    main()
