"""brax.training SAC's gradient step alone, timed, for comparison with ``profile_sac.py``'s "gradient steps".

Runs in the brax venv (``.bench/brax-venv/bin/python scripts/bench/brax_sgd_step.py``): brax's own networks,
losses and ``gradient_update_fn`` (alpha, critic and actor updates from the same parameters, Polyak target),
``--updates`` steps on fixed random transitions per iteration, a ``lax.scan`` over ``--iterations`` iterations
per call; ms per iteration of the fastest of ``--repeats`` calls. Default shapes: brax ant (27 observations,
8 actions), batch 256, 2 x 256 networks, 32 steps per iteration (``configs/sac_ant.yaml`` at 64 envs).

With ``--rlx-config`` it also builds rlx's SAC gradient step (``sac.gradient_step``, as ``profile_sac.py``'s
"gradient steps" piece: one fixed batch, random values) from that preset on ``--rlx-env`` in the same process, so
both run on the same jax, and times the two programs interleaved (a drift of the machine's speed hits both alike)::

    .bench/brax-venv/bin/python scripts/bench/brax_sgd_step.py --rlx-config configs/sac_ant.yaml --repeats 9
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from brax.training import gradients, types
from brax.training.acme import running_statistics, specs
from brax.training.agents.sac import losses as sac_losses
from brax.training.agents.sac import networks as sac_networks

sys.path.insert(0, os.path.dirname(__file__))
from profile_rlx import time_interleaved  # via rlx_side, also puts the rlx checkout on the path


def rlx_program(config_path: str, env_spec: str, args: argparse.Namespace) -> tuple[Callable[[], Any], float]:
    """rlx's ``args.iterations`` x ``args.updates`` SAC gradient steps on one fixed random batch, compiled, as a
    no-argument call; and its compile seconds. The preset's batch size and network widths must match brax's."""
    import profile_sac
    import rlx_side

    from rlx import driver
    from rlx.algos import off_policy

    config = rlx_side.preset_config(
        config_path, env_spec, {**rlx_side.agent_overrides(args.rlx_agent), "learning_starts": 0}
    )
    experiment = driver.Experiment(config)
    agent, env = experiment.static_agent, experiment.env
    if (agent.updates_per_iteration, agent.batch_size) != (args.updates, args.batch_size):
        sys.exit(
            f"brax_sgd_step: {config_path} gives {agent.updates_per_iteration} gradient steps of "
            f"{agent.batch_size} per iteration; match them with --updates/--batch-size or --rlx-agent"
        )
    state = experiment.init()
    shapes = jax.eval_shape(
        lambda s: off_policy.td_batch(agent, s, off_policy.replay_buffer(agent).sample(s.loop.buffer, s.key)), state
    )
    leaves, treedef = jax.tree.flatten(shapes)
    keys = jax.random.split(jax.random.PRNGKey(1), len(leaves))
    batch = treedef.unflatten(
        [
            jnp.tanh(jax.random.normal(k, x.shape, x.dtype))
            if jnp.issubdtype(x.dtype, jnp.floating)
            else jnp.zeros(x.shape, x.dtype)
            for k, x in zip(keys, leaves)
        ]
    )
    state = jax.block_until_ready(state)
    tic = time.perf_counter()
    compiled = jax.jit(profile_sac.gradient_steps(agent, env, args.iterations)).lower(state, batch).compile()
    return (lambda: jax.block_until_ready(compiled(state, batch))), time.perf_counter() - tic


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--obs", type=int, default=27)
    p.add_argument("--actions", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--hidden", type=int, nargs="+", default=[256, 256])
    p.add_argument("--updates", type=int, default=32, help="gradient steps per iteration")
    p.add_argument("--iterations", type=int, default=5)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--rlx-config", help="also time rlx's gradient step from this SAC preset, interleaved")
    p.add_argument("--rlx-env", default="brax/ant?backend=mjx")
    p.add_argument("--rlx-agent", action="append", default=["num_envs=64"], metavar="KEY=VALUE")
    args = p.parse_args()
    net = sac_networks.make_sac_networks(
        args.obs, args.actions, running_statistics.normalize, hidden_layer_sizes=tuple(args.hidden)
    )
    alpha_loss, critic_loss, actor_loss = sac_losses.make_losses(net, 1.0, 0.99, args.actions)
    tx = optax.adam(3e-4)
    alpha_update, critic_update, actor_update = (
        gradients.gradient_update_fn(loss, tx, pmap_axis_name=None) for loss in (alpha_loss, critic_loss, actor_loss)
    )
    key = jax.random.PRNGKey(0)
    normalizer = running_statistics.init_state(specs.Array((args.obs,), jnp.dtype("float32")))
    shape = (args.updates, args.batch_size)
    transitions = types.Transition(
        observation=jax.random.normal(key, (*shape, args.obs)),
        action=jnp.tanh(jax.random.normal(key, (*shape, args.actions))),
        reward=jnp.ones(shape),
        discount=jnp.ones(shape),
        next_observation=jax.random.normal(jax.random.fold_in(key, 1), (*shape, args.obs)),
        extras={"state_extras": {"truncation": jnp.zeros(shape)}, "policy_extras": {}},
    )
    policy, q, log_alpha = net.policy_network.init(key), net.q_network.init(key), jnp.zeros(())
    state = (policy, q, q, log_alpha, tx.init(policy), tx.init(q), tx.init(log_alpha))

    def sgd_step(carry, t):  # brax sac.train's sgd_step, minus pmean and metrics
        (policy, q, target_q, log_alpha, policy_opt, q_opt, alpha_opt), key = carry
        key, alpha_key, critic_key, actor_key = jax.random.split(key, 4)
        _, new_log_alpha, alpha_opt = alpha_update(
            log_alpha, policy, normalizer, t, alpha_key, optimizer_state=alpha_opt
        )
        alpha = jnp.exp(log_alpha)
        _, new_q, q_opt = critic_update(q, policy, normalizer, target_q, alpha, t, critic_key, optimizer_state=q_opt)
        _, new_policy, policy_opt = actor_update(policy, normalizer, q, alpha, t, actor_key, optimizer_state=policy_opt)
        target_q = jax.tree.map(lambda x, y: x * 0.995 + y * 0.005, target_q, new_q)
        return ((new_policy, new_q, target_q, new_log_alpha, policy_opt, q_opt, alpha_opt), key), None

    def program(state, key):
        return jax.lax.scan(
            lambda c, _: (jax.lax.scan(sgd_step, c, transitions)[0], None), (state, key), None, length=args.iterations
        )[0]

    tic = time.perf_counter()
    compiled = jax.jit(program).lower(state, key).compile()
    calls = {"brax": (lambda: jax.block_until_ready(compiled(state, key)), time.perf_counter() - tic)}
    if args.rlx_config:
        calls["rlx"] = rlx_program(args.rlx_config, args.rlx_env, args)
    seconds = time_interleaved({name: call for name, (call, _) in calls.items()}, args.repeats)
    for name, (_, compile_seconds) in calls.items():
        per_iteration = seconds[name] / args.iterations
        print(
            f"{name} SAC gradient steps: {1e3 * per_iteration:.1f} ms / iteration of {args.updates} "
            f"({1e3 * per_iteration / args.updates:.2f} ms / step); compile {compile_seconds:.1f} s; jax {jax.__version__}"
        )


if __name__ == "__main__":
    main()
