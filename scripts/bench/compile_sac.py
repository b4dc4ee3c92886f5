"""Where rlx SAC's compile time goes: trace + lower and XLA compile seconds of its pieces on one env.

Compiles, ahead of time and one after another: the vmapped ``env.reset`` and ``env.step`` alone, SAC's collect
(``off_policy.collect``) with three training-env stacks, and ``sac.train_step``. The stacks (the last two are
swapped in for ``off_policy.training_env`` only while their collect is traced; results are not compared):

  VmapAutoReset        rlx's ``training_env``: a fresh vmapped reset under a ``lax.cond`` when some episode ended
  Vmap(AutoReset)      a fresh reset every step, selected per env
  no reset             finished episodes go on without a reset: a lower bound on the program, not a correct env

    python scripts/bench/compile_sac.py --env 'brax/ant?backend=mjx' --config configs/sac_ant.yaml --agent num_envs=64
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import rlx_side

from rlx import driver
from rlx.algos import off_policy, sac
from rlx.envs import Env, EnvStep, wrappers


class NoReset(wrappers.VmapAutoReset):
    """``VmapAutoReset`` without the reset: same state layout, the finished episode's state goes on."""

    def step(self, env_step: EnvStep, action: jax.Array) -> EnvStep:
        nxt = jax.vmap(self.env.step)(wrappers._inner(env_step), action)
        key = jax.vmap(jax.random.split)(env_step.state.key)[:, 0]
        return wrappers._continue_or_restart(nxt, nxt, key)


STACKS: dict[str, Callable[[Env, int], Env]] = {
    "VmapAutoReset (rlx)": wrappers.training_env,
    "Vmap(AutoReset)": lambda env, n: wrappers.Vmap(wrappers.AutoReset(wrappers.EpisodeStats(env)), n),
    "no reset (lower bound)": lambda env, n: NoReset(wrappers.EpisodeStats(env), n),
}


def compile_seconds(fn: Callable, *args) -> dict:
    """Seconds to trace and lower ``jax.jit(fn)`` for ``args``, seconds to compile it, and its HLO text size."""
    tic = time.perf_counter()
    lowered = jax.jit(fn).lower(*args)
    lowered_at = time.perf_counter()
    lowered.compile()
    return {
        "trace_lower": lowered_at - tic,
        "compile": time.perf_counter() - lowered_at,
        "hlo_chars": len(lowered.as_text()),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="brax/ant?backend=mjx")
    p.add_argument("--config", default="configs/sac_ant.yaml", help="a SAC preset: a name (sac_ant) or a YAML path")
    p.add_argument("--agent", action="append", default=[], metavar="KEY=VALUE", help="override an agent field")
    args = p.parse_args()
    config = rlx_side.preset_config(
        args.config, args.env, {**rlx_side.agent_overrides(args.agent), "learning_starts": 0}
    )
    experiment = driver.Experiment(config)
    agent, env = experiment.static_agent, experiment.env
    state = experiment.init()
    n = agent.num_envs
    keys = jax.random.split(jax.random.PRNGKey(0), n)
    first = jax.eval_shape(jax.vmap(env.reset), keys)  # lowering needs only its shapes
    rows = {
        "vmap(env.reset)": compile_seconds(jax.vmap(env.reset), keys),
        "vmap(env.step)": compile_seconds(jax.vmap(env.step), first, jnp.zeros((n, *env.action_space.shape))),
    }
    rlx_stack = off_policy.training_env
    try:
        for name, stack in STACKS.items():
            off_policy.training_env = stack
            collect = lambda s: off_policy.collect(agent, env, s, sac.explore(agent, env, s))[0]  # noqa: E731
            rows[f"collect, {name}"] = compile_seconds(collect, state)
    finally:
        off_policy.training_env = rlx_stack
    rows["sac.train_step"] = compile_seconds(lambda s: sac.train_step(agent, env, s)[0], state)
    print(
        f"# rlx SAC compile: `{args.env}`, {args.config}, {n} envs, {agent.updates_per_iteration} gradient steps per "
        f"iteration; jax {jax.__version__} on {jax.devices()[0].device_kind}; rlx {rlx_side.git_state()}\n"
    )
    print("| program | trace + lower s | XLA compile s | HLO text (chars) |\n|---|---:|---:|---:|")
    for name, row in rows.items():
        print(f"| {name} | {row['trace_lower']:.1f} | {row['compile']:.1f} | {row['hlo_chars']:,} |")


if __name__ == "__main__":
    main()
