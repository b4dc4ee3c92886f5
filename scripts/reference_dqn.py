"""A minimal DQN on gymnax CartPole-v1 written without rlx, to cross-check rlx DQN's dynamics.

CleanRL's settings as in ``dqn_cartpole`` (10 envs, one gradient step per 10 transitions, batch 128, a
10,000-transition buffer, learning from 10,000 steps, Adam 2.5e-4, 120-84 ReLU MLP, gamma 0.99, epsilon 1 -> 0.05
over ``--anneal-steps``), a NumPy replay buffer and a host loop. Prints, every 10,000 env steps, the last gradient
step's mean Q(s, a) and the mean training return of the last 50 episodes.

    python scripts/reference_dqn.py --loss huber --target-period 50
"""

from __future__ import annotations

import argparse

import flax.linen as nn
import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import optax

NUM_ENVS, BATCH, CAPACITY, LEARNING_STARTS, GAMMA = 10, 128, 10_000, 10_000, 0.99


class QNetwork(nn.Module):
    @nn.compact
    def __call__(self, obs):
        hidden = nn.relu(nn.Dense(84)(nn.relu(nn.Dense(120)(obs))))
        return nn.Dense(2)(hidden)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loss", choices=("mse", "huber"), default="huber")
    parser.add_argument("--target-period", type=int, default=50, help="gradient steps between hard target copies")
    parser.add_argument("--learning-rate", type=float, default=2.5e-4)
    parser.add_argument("--steps", type=int, default=60_000)
    parser.add_argument("--anneal-steps", type=int, default=250_000, help="env steps to anneal epsilon over")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    env, env_params = gymnax.make("CartPole-v1")
    network, optimizer = QNetwork(), optax.adam(args.learning_rate)
    key, init_key, reset_key = jax.random.split(jax.random.PRNGKey(args.seed), 3)
    params = network.init(init_key, jnp.zeros(4))
    target_params, opt_state = params, optimizer.init(params)
    reset = jax.jit(jax.vmap(env.reset, (0, None)))
    env_step = jax.jit(jax.vmap(env.step, (0, 0, 0, None)))
    obs, env_state = reset(jax.random.split(reset_key, NUM_ENVS), env_params)

    @jax.jit
    def act(params, obs, key, epsilon):
        random_key, coin_key = jax.random.split(key)
        greedy = jnp.argmax(network.apply(params, obs), -1)
        explore = jax.random.uniform(coin_key, (NUM_ENVS,)) < epsilon
        return jnp.where(explore, jax.random.randint(random_key, (NUM_ENVS,), 0, 2), greedy)

    @jax.jit
    def update(params, target_params, opt_state, batch):
        target = batch["reward"] + GAMMA * (1 - batch["terminal"]) * network.apply(
            target_params, batch["next_obs"]
        ).max(-1)

        def loss_fn(params):
            q = network.apply(params, batch["obs"])
            q_taken = jnp.take_along_axis(q, batch["action"].astype(jnp.int32)[:, None], -1)[:, 0]
            error = q_taken - target
            loss = optax.losses.huber_loss(error, delta=1.0) if args.loss == "huber" else 0.5 * jnp.square(error)
            return loss.mean(), q_taken.mean()

        (_, q_mean), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, q_mean

    shapes = {"obs": (4,), "action": (), "reward": (), "next_obs": (4,), "terminal": ()}
    buffer = {name: np.zeros((CAPACITY, *shape), np.float32) for name, shape in shapes.items()}
    rng = np.random.default_rng(args.seed)
    size = gradient_steps = 0
    q_mean, episode_returns, running = 0.0, [], np.zeros(NUM_ENVS)
    for iteration in range(args.steps // NUM_ENVS):
        env_steps = iteration * NUM_ENVS
        epsilon = max(0.05, 1.0 - 0.95 * env_steps / args.anneal_steps)
        key, act_key, step_key = jax.random.split(key, 3)
        action = act(params, obs, act_key, epsilon)
        next_obs, env_state, reward, *_, info = env_step(
            jax.random.split(step_key, NUM_ENVS), env_state, action, env_params
        )
        # gymnax resets inside step: the transition's next observation is the final one; truncations bootstrap.
        rows = (env_steps + np.arange(NUM_ENVS)) % CAPACITY
        new = {
            "obs": obs,
            "action": action,
            "reward": reward,
            "next_obs": info["final_observation"],
            "terminal": info["terminated"],
        }
        for name, value in new.items():
            buffer[name][rows] = np.asarray(value)
        size, obs = min(size + NUM_ENVS, CAPACITY), next_obs
        running += np.asarray(reward)
        ended = np.asarray(info["terminated"] | info["truncated"])
        episode_returns += list(running[ended])
        running[ended] = 0.0
        if env_steps + NUM_ENVS > LEARNING_STARTS:
            rows = rng.integers(0, size, BATCH)
            batch = {name: jnp.asarray(column[rows]) for name, column in buffer.items()}
            params, opt_state, q_mean = update(params, target_params, opt_state, batch)
            gradient_steps += 1
            if gradient_steps % args.target_period == 0:
                target_params = params
        if (env_steps + NUM_ENVS) % 10_000 == 0:
            print(
                f"{env_steps + NUM_ENVS} q_mean {float(q_mean):.2f} return {np.mean(episode_returns[-50:]):.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
