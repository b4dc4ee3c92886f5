"""Consistency actor-critic: the consistency function's boundary condition and coefficients, the time
embedding, the sampling levels and chain against NumPy, the normalized Q-loss by hand, the EMA actor's
schedule, the cost of one action, and learning (the conformance tests cover resume, vmap and the probes)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
from helpers import final_row, preset, tree_equal

from rlx.algos import consistency_ac, off_policy
from rlx.envs import make
from rlx.nets import CriticNet, Net
from rlx.nets.consistency import (
    boundary_coefficients,
    consistency_function,
    sample_actions,
    sampling_levels,
    time_embedding,
)


def test_consistency_function_is_the_identity_at_the_smallest_level_and_matches_the_formulas():
    noisy, output = jnp.array([[0.3, -2.0]]), jnp.array([[5.0, 7.0]])
    np.testing.assert_array_equal(consistency_function(output, noisy, jnp.array([0.002])), noisy)
    for t in (0.5, 2.0, 80.0):
        c_skip, c_out = boundary_coefficients(jnp.float32(t))
        np.testing.assert_allclose(c_skip, 0.25 / ((t - 0.002) ** 2 + 0.25), rtol=1e-6)
        np.testing.assert_allclose(c_out, 0.5 * (t - 0.002) / math.sqrt(t**2 + 0.25), rtol=1e-6)
        np.testing.assert_allclose(
            consistency_function(output, noisy, jnp.array([t])), c_skip * noisy + c_out * output, rtol=1e-6
        )


def test_time_embedding_and_sampling_levels():
    t = np.array([2.0, 80.0])
    freqs = np.exp(-np.log(10000.0) / 7 * np.arange(8))
    ref = np.concatenate([np.sin(t[:, None] * freqs), np.cos(t[:, None] * freqs)], axis=-1)
    np.testing.assert_allclose(time_embedding(jnp.asarray(t), 16), ref, rtol=1e-5, atol=1e-6)
    assert sampling_levels(1) == (80.0,)
    np.testing.assert_allclose(sampling_levels(5), [80.0, 60.5, 41.0, 21.5, 2.0])


def test_sampling_chain_matches_numpy():
    """With ``F(s, a, t) = s - a / t`` the chain is a known recursion of the draws."""
    obs = jnp.array([[0.2, -0.1], [0.7, 0.4]])
    key = jax.random.PRNGKey(3)
    levels = sampling_levels(3)
    got = sample_actions(lambda o, a, t: o - a / t[:, None], obs, key, 2, levels)
    noises = [np.asarray(jax.random.normal(k, (2, 2))) for k in jax.random.split(key, 3)]
    action, o = np.zeros((2, 2)), np.asarray(obs, np.float64)
    for i, (t, z) in enumerate(zip(levels, noises, strict=True)):
        noisy = action + (t if i == 0 else np.sqrt(t**2 - 0.002**2)) * z
        c_skip = 0.25 / ((t - 0.002) ** 2 + 0.25)
        c_out = 0.5 * (t - 0.002) / np.sqrt(t**2 + 0.25)
        action = c_skip * noisy + c_out * (o - noisy / t)
    np.testing.assert_allclose(got, np.clip(action, -1, 1), rtol=1e-4, atol=1e-5)
    tanh = sample_actions(lambda o, a, t: o - a / t[:, None], obs, key, 2, levels, bound="tanh")
    np.testing.assert_allclose(tanh, np.tanh(action), rtol=1e-4, atol=1e-5)


def test_clip_bound_has_no_gradient_past_the_bounds_and_tanh_has():
    """An actor whose every sample lands past +1 gets no Q-gradient under ``clip`` (the authors'; how a run can
    get stuck on one action); under ``tanh`` an actor past the bounds still gets one."""
    obs, key, levels = jnp.ones((4, 1)), jax.random.PRNGKey(0), sampling_levels(5)

    def mean_action(shift, bound):
        return jnp.mean(sample_actions(lambda o, a, t: o * shift, obs, key, 1, levels, bound=bound))

    assert float(mean_action(50.0, "clip")) == 1.0
    assert float(jax.grad(mean_action)(50.0, "clip")) == 0.0
    assert float(jax.grad(mean_action)(3.0, "tanh")) > 0.0  # pre-squash mean about 1.45: still a gradient


def test_normalized_q_loss_by_hand_and_its_scale_has_no_gradient():
    q = jnp.array([[1.0, 2.0], [-3.0, -1.0]])
    np.testing.assert_allclose(consistency_ac.normalized_q_loss(q, 0, 1), -1.5 / 2.0, rtol=1e-6)
    grad = jax.grad(lambda q: consistency_ac.normalized_q_loss(q, 0, 1))(q)
    np.testing.assert_allclose(grad, [[-0.25, -0.25], [0.0, 0.0]], rtol=1e-6)


def test_ema_actor_keeps_its_initial_weights_then_moves_every_ema_every_steps():
    env = make("gymnax/Pendulum-v1")
    config = consistency_ac.Config(
        actor=Net(hidden=(8,), activation="mish"),
        critic=CriticNet(hidden=(8,)),
        num_steps=2,
        num_candidates=3,
        ema_start=2,
        ema_every=2,
        ema_decay=0.5,
        actor_learning_rate=1e-2,
    )
    state = consistency_ac.init(config, env, jax.random.PRNGKey(0), 1)
    k1, k2 = jax.random.split(jax.random.PRNGKey(1))
    obs = jax.random.normal(k1, (32, *env.observation_shape))
    action = jax.random.uniform(k2, (32, 1), minval=-1, maxval=1)
    batch = off_policy.Batch(obs, action, jnp.ones(32), jnp.full((32,), 0.99), obs + 0.1, {})
    step = jax.jit(consistency_ac.gradient_step, static_argnums=(0, 1))
    expected = state.params.ema_actor
    for n in range(6):  # num_updates before the step
        state, metrics = step(config, env, state, batch, jax.random.PRNGKey(10 + n))
        if n >= 2 and n % 2 == 0:
            expected = jax.tree.map(lambda e, a: 0.5 * e + 0.5 * a, expected, state.params.actor)
        for got, want in zip(jax.tree.leaves(state.params.ema_actor), jax.tree.leaves(expected), strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    assert not tree_equal(state.params.ema_actor, state.params.actor)
    assert np.isfinite(metrics["actor_loss"]) and np.isfinite(metrics["critic_loss"])


def test_consistency_ac_learns_pendulum():
    # Seeds 0-4 (one vmapped sweep): BENCHMARKS "Consistency actor-critic"; seed 0 asserted. Alone it evaluates
    # -1430 / -512 / -138 / -164 at the four chunks on AVX-512 and under AVX (within 0.1), so the test stops after the
    # third (9,000 of 12,000 steps; the whole run's numbers up to there).
    final = final_row(preset("consistency_ac_pendulum.yaml"), chunks=3)
    assert final["eval/episode_return"] >= -250, final


def test_consistency_ac_learns_brax_inverted_pendulum():
    # Seeds 0-4 (rlx sweep), AMD EPYC: 1000 for every seed at 64k on AVX2, 819 / 1000 / 1000 / 1000 / 1000 under
    # AVX; with the actor's learning rate 3e-4 3 of 5 (BENCHMARKS "Consistency actor-critic"). Seed 3 trained alone
    # evaluates 85 / 82 / 1000 / 1000 / 1000 (AVX2) and 85 / 84 / 1000 / 1000 / 1000 (AVX) at the five chunks, so
    # seed 3 is asserted, on the whole run (epsilon-greedy exploration follows its length). With rlx's mish
    # (2026-12-04, BENCHMARKS "Mish from one exponential") seed 3 evaluates 85 / 83 / 1000 / 1000 / 1000 on AVX-512
    # and 85 / 84 / 1000 / 1000 / 1000 under AVX, and 85 / 88 / 279 / 1000 / 1000 under --xla_cpu_max_isa=AVX2 on that
    # host. So the test stops after the fourth chunk (51,200 of 64,000 steps), where every one of these is at 1000 and
    # stays there (the whole run's numbers up to there, epsilon included).
    final = final_row(preset("consistency_ac_inverted_pendulum.yaml", seed=3), chunks=4)
    assert final["eval/episode_return"] >= 900, final
