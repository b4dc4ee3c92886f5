"""brax.training SAC's gradient step alone, timed, for comparison with ``profile_sac.py``'s "gradient steps".

Runs in the brax venv (``.bench/brax-venv/bin/python scripts/bench/brax_sgd_step.py``): brax's own networks,
losses and ``gradient_update_fn`` (alpha, critic and actor updates from the same parameters, Polyak target),
``--updates`` steps on fixed random transitions per iteration, a ``lax.scan`` over ``--iterations`` iterations
per call; ms per iteration of the fastest of ``--repeats`` calls. Default shapes: brax ant (27 observations,
8 actions), batch 256, 2 x 256 networks, 32 steps per iteration (``configs/sac_ant.yaml`` at 64 envs).
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import optax
from brax.training import gradients, types
from brax.training.acme import running_statistics, specs
from brax.training.agents.sac import losses as sac_losses
from brax.training.agents.sac import networks as sac_networks


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--obs", type=int, default=27)
    p.add_argument("--actions", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--hidden", type=int, nargs="+", default=[256, 256])
    p.add_argument("--updates", type=int, default=32, help="gradient steps per iteration")
    p.add_argument("--iterations", type=int, default=5)
    p.add_argument("--repeats", type=int, default=5)
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
    compile_seconds = time.perf_counter() - tic
    jax.block_until_ready(compiled(state, key))
    seconds = []
    for _ in range(args.repeats):
        tic = time.perf_counter()
        jax.block_until_ready(compiled(state, key))
        seconds.append(time.perf_counter() - tic)
    per_iteration = min(seconds) / args.iterations
    print(
        f"brax SAC gradient steps: {1e3 * per_iteration:.1f} ms / iteration of {args.updates} "
        f"({1e3 * per_iteration / args.updates:.2f} ms / step); compile {compile_seconds:.1f} s; jax {jax.__version__}"
    )


if __name__ == "__main__":
    main()
