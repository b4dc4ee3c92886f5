"""Exact maths of the off-policy pieces: TD targets, temperature loss, Polyak, replay buffer."""

import jax
import jax.numpy as jnp
import numpy as np

from rlx.buffers import ReplayBuffer
from rlx.ops.td import (
    clipped_double_q_target,
    critic_loss,
    polyak_update,
    smoothed_target_action,
    soft_td_target,
    temperature_loss,
)


def test_soft_td_target_hand_computed():
    reward = jnp.array([1.0, 2.0])
    terminated = jnp.array([False, True])
    next_q = jnp.array([[5.0, 7.0], [4.0, 9.0]])  # [critics, batch]: min = [4, 7]
    next_log_prob = jnp.array([-1.0, 0.5])
    target = soft_td_target(reward, terminated, next_q, next_log_prob, alpha=0.2, gamma=0.9)
    # first: 1 + 0.9 * (4 - 0.2 * -1) = 4.78; second: terminated -> 2
    np.testing.assert_allclose(target, [1 + 0.9 * (4 + 0.2), 2.0], rtol=1e-6)


def test_clipped_double_q_target_with_smoothing_hand_computed():
    reward = jnp.array([0.5, 0.5, 1.0])
    terminated = jnp.array([False, False, True])
    next_q = jnp.array([[3.0, -1.0, 8.0], [2.0, 0.0, 9.0]])
    np.testing.assert_allclose(clipped_double_q_target(reward, terminated, next_q, 0.5), [1.5, 0.0, 1.0], rtol=1e-6)
    # one critic (DDPG): no minimum
    np.testing.assert_allclose(clipped_double_q_target(reward, terminated, next_q[:1], 0.5), [2.0, 0.0, 1.0])
    # smoothing: noise clipped to +-c, then the action to [-1, 1]
    action = jnp.array([[0.0, 0.95, -0.2]])
    key = jax.random.PRNGKey(0)
    eps = jax.random.normal(key, action.shape)
    expected = np.clip(action + np.clip(0.2 * eps, -0.1, 0.1), -1, 1)
    np.testing.assert_allclose(smoothed_target_action(action, key, 0.2, 0.1), expected, rtol=1e-6)
    np.testing.assert_array_equal(smoothed_target_action(action, key, 0.0, 0.5), action)


def test_temperature_loss_and_gradient():
    log_alpha = jnp.log(0.5)
    log_prob = jnp.array([-0.5, -1.5])  # mean -1, target entropy -2 -> mean(log pi + H) = -3
    np.testing.assert_allclose(temperature_loss(log_alpha, log_prob, -2.0), -0.5 * -3.0, rtol=1e-6)
    # d/dlog_alpha = -alpha * (-3) = 1.5 > 0: entropy (1) above target (-2) -> alpha decreases
    grad = jax.grad(temperature_loss)(log_alpha, log_prob, -2.0)
    np.testing.assert_allclose(grad, 1.5, rtol=1e-6)
    assert jax.grad(lambda lp: temperature_loss(log_alpha, lp, -2.0))(log_prob).sum() == 0.0


def test_critic_loss_and_polyak():
    q = jnp.array([[1.0, 2.0], [0.0, 4.0]])
    target = jnp.array([0.0, 2.0])
    np.testing.assert_allclose(critic_loss(q, target), 0.5 * (0.5 + 2.0), rtol=1e-6)
    out = polyak_update({"w": jnp.array([0.0, 10.0])}, {"w": jnp.array([1.0, 0.0])}, 0.1)
    np.testing.assert_allclose(out["w"], [0.1, 9.0], rtol=1e-6)


def test_replay_buffer_wraps_around_and_samples_uniformly():
    buffer = ReplayBuffer(capacity=10, sample_batch_size=8, num_envs=2)  # 5 per env
    state = buffer.init({"x": jnp.zeros((), jnp.int32), "done": jnp.zeros((), bool)})
    add = jax.jit(buffer.add)
    for start in range(0, 16, 2):  # items 0..15, two per step (one per env): 16 > 10 wraps around
        state = add(state, {"x": jnp.arange(start, start + 2), "done": jnp.arange(start, start + 2) % 3 == 0})
    assert int(ReplayBuffer.size(state)) == 10
    stored = sorted(np.asarray(state.experience["x"]).ravel().tolist())
    assert stored == list(range(6, 16))  # the 10 newest; 0..5 were overwritten
    keys = jax.random.split(jax.random.PRNGKey(0), 512)
    sample = jax.jit(jax.vmap(buffer.sample, in_axes=(None, 0)))(state, keys)  # 512 x 8 draws
    xs = np.asarray(sample["x"]).ravel()
    np.testing.assert_array_equal(np.asarray(sample["done"]).ravel(), xs % 3 == 0)  # fields stay aligned
    counts = np.bincount(xs - 6, minlength=10)
    assert counts.sum() == 4096 and set(np.unique(xs)) == set(range(6, 16))
    # uniform: chi-square against 409.6 per item, 9 dof; 27.9 is the 0.999 quantile
    chi2 = np.sum((counts - 409.6) ** 2 / 409.6)
    assert chi2 < 27.9, counts


def test_replay_buffer_partially_filled_samples_only_stored_items():
    buffer = ReplayBuffer(capacity=100, sample_batch_size=64, num_envs=1)
    state = buffer.init({"x": jnp.zeros((), jnp.int32)})
    for x in (1, 2, 3):
        state = buffer.add(state, {"x": jnp.array([x])})
    xs = np.asarray(buffer.sample(state, jax.random.PRNGKey(1))["x"])
    assert set(np.unique(xs)) == {1, 2, 3}


def test_replay_buffer_sequences_are_consecutive_steps_of_one_env_after_wrap_around():
    buffer = ReplayBuffer(capacity=12, sample_batch_size=256, num_envs=2, sequence_length=3)  # 6 per env
    state = buffer.init({"t": jnp.zeros((), jnp.int32), "env": jnp.zeros((), jnp.int32)})
    for t in range(9):  # wraps: each env keeps t = 3..8
        state = buffer.add(state, {"t": jnp.array([t, t]), "env": jnp.array([0, 1])})
    runs = buffer.sample(state, jax.random.PRNGKey(2))
    t, env = np.asarray(runs["t"]), np.asarray(runs["env"])
    assert t.shape == (256, 3)
    np.testing.assert_array_equal(t[:, 1:] - t[:, :-1], 1)  # consecutive, never across the write head
    assert (env == env[:, :1]).all()  # one env per run
    assert set(np.unique(t[:, 0])) == {3, 4, 5, 6}  # every valid start, none older than stored
