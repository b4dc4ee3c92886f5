"""i-DQN: the per-head targets against NumPy, the sync and rolling steps, their schedule in the gradient step,
the heads' independence, and CartPole learning (the conformance tests cover resume, vmap and the probes)."""

import jax
import jax.numpy as jnp
import numpy as np
from helpers import preset, tree_equal

from rlx import driver
from rlx.algos import iterated_dqn, off_policy
from rlx.envs import make
from rlx.nets import QNet
from rlx.ops import values


def test_each_head_regresses_onto_the_previous_frozen_copy():
    rng = np.random.default_rng(0)
    heads, batch, actions = 3, 5, 2
    online = rng.normal(size=(heads, batch, actions, 1))
    target_next = rng.normal(size=(heads, batch, actions, 1))
    action = rng.integers(0, actions, size=batch)
    returns, discount = rng.normal(size=batch), np.where(rng.random(batch) < 0.3, 0.0, 0.99)
    args = [jnp.asarray(x, jnp.float32) for x in (online, target_next)] + [jnp.asarray(action)]
    args += [jnp.asarray(x, jnp.float32) for x in (returns, discount)]
    got, error = iterated_dqn.iterated_td_losses(values.make("mse"), *args)
    assert got.shape == (heads, batch)
    errors = []
    for k in range(heads):  # head k against r + gamma max_a' Qbar_k(s', a') (no double Q)
        y = returns + discount * target_next[k, :, :, 0].max(axis=-1)
        q = online[k, np.arange(batch), action, 0]
        np.testing.assert_allclose(got[k], 0.5 * (q - y) ** 2, rtol=1e-5, atol=1e-7)
        errors.append(np.abs(y - q))
    np.testing.assert_allclose(error, np.mean(errors, axis=0), rtol=1e-5)  # the heads' mean |y - Q| per sample


def test_sync_and_roll_move_the_heads_as_the_paper_says():
    online = {"w": jnp.array([1.0, 2.0, 3.0])}  # Q_1, Q_2, Q_3
    target = {"w": jnp.array([10.0, 20.0, 30.0])}  # Qbar_0, Qbar_1, Qbar_2
    params = iterated_dqn.Params(online, target)
    synced = iterated_dqn.sync(params)  # Qbar_k <- Q_k for k = 1, 2; Qbar_0 stays
    np.testing.assert_array_equal(synced.target["w"], [10.0, 1.0, 2.0])
    np.testing.assert_array_equal(synced.online["w"], [1.0, 2.0, 3.0])
    rolled = iterated_dqn.roll(params)  # Qbar_{k-1} <- Q_k, then Q_k <- Q_{k+1}, the last kept
    np.testing.assert_array_equal(rolled.target["w"], [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(rolled.online["w"], [2.0, 3.0, 3.0])


def test_gradient_steps_sync_every_d_and_roll_every_t_and_heads_learn_apart():
    env = make("gymnax/CartPole-v1")
    config = iterated_dqn.Config(q=QNet(hidden=(8,), value="mse"), iterations=3, target_sync_period=2, rolling_period=5)
    state = iterated_dqn.init(config, env, jax.random.PRNGKey(0), 1)
    k1, k2 = jax.random.split(jax.random.PRNGKey(1))
    obs = jax.random.normal(k1, (16, *env.observation_shape))
    action = jax.random.randint(k2, (16,), 0, 2)
    batch = off_policy.Batch(obs, action, jnp.ones(16), jnp.full((16,), 0.99), obs + 0.1, {})
    step = jax.jit(iterated_dqn.gradient_step, static_argnums=(0, 1))
    head = lambda tree, i: jax.tree.map(lambda x: x[i], tree)  # noqa: E731
    first_target = state.params.target
    for n in range(1, 6):
        before = state.params
        state, metrics = step(config, env, state, batch, jax.random.PRNGKey(n))
        if n == 5:  # rolling step: the targets are the heads just trained, the heads moved down one place
            assert tree_equal(head(state.params.online, 0), head(state.params.target, 1))
            assert tree_equal(head(state.params.online, 2), head(state.params.online, 1))
            assert tree_equal(head(state.params.online, 2), head(state.params.target, 2))
        elif n % 2 == 0:  # sync: copies 1, 2 take heads 0, 1; copy 0 is the frozen start
            assert tree_equal(head(state.params.target, 0), head(first_target, 0))
            for i in (1, 2):
                assert tree_equal(head(state.params.target, i), head(state.params.online, i - 1))
        else:
            assert tree_equal(state.params.target, before.target)
    assert np.isfinite(metrics["loss"])
    # the heads were initialized and trained independently
    assert not tree_equal(head(state.params.online, 0), head(state.params.online, 1))


def test_iterated_dqn_learns_cartpole():
    # Seeds 0-4 (one vmapped sweep), evaluations every 100k steps: every seed reaches 500 by 400k and ends at
    # 500 / 453 / 500 / 468 / 500 (BENCHMARKS "i-DQN"); two seeds end below 475, so seed 0 is held to reaching
    # 475 at some evaluation and to ending at >= 400, which every seed does.
    rows = driver.train(preset("iterated_dqn_cartpole.yaml"), None, progress=False).rows
    assert max(row["eval/episode_return"] for row in rows) >= 475, rows
    assert rows[-1]["eval/episode_return"] >= 400, rows[-1]
