"""Munchausen-DQN (Vieillard, Pietquin and Geist 2020), DQN's ``agent.munchausen_alpha``: the target against NumPy,
its limit (DQN's max target as tau -> 0 with alpha 0), the gradient step's wiring (the target network at both states,
the hyperparameters from the state), resume, config errors, and ``mdqn_cartpole`` learning CartPole. M-IQN (IQN with
the same fields): its sampled target against NumPy and against M-DQN's for a degenerate distribution, the gradient
step's wiring, a run and its resume, config errors, and ``miqn_cartpole`` learning CartPole. ``munchausen_acting:
softmax`` (both): epsilon-softmax's draws and the collected actions against the policies' probabilities. Sample
efficiency: BENCHMARKS.md ("Munchausen-DQN", "M-IQN")."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import (
    assert_resumes_bitwise,
    final_row,
    final_rows,
    log_softmax_numpy,
    median,
    preset,
    quantile_huber_numpy,
    small_dqn,
)

from rlx import driver
from rlx.algos import common, dqn, iqn, off_policy
from rlx.config import ConfigError
from rlx.envs import make
from rlx.ops import munchausen

CARTPOLE = make("gymnax/CartPole-v1")
RNG = np.random.default_rng(0)


def _numpy_bonus(q_now, action, alpha, tau, clip_min):
    return alpha * np.clip(tau * log_softmax_numpy(q_now / tau)[np.arange(len(action)), action], clip_min, 0.0)


def _numpy_target(q_now, q_next, action, returns, discount, alpha, tau, clip_min):
    """The paper's eq. (3), written out: softmax policies of the target Q, their log-probabilities scaled by tau."""
    log_pi_next = log_softmax_numpy(q_next / tau)
    soft = np.sum(np.exp(log_pi_next) * (q_next - tau * log_pi_next), axis=-1)
    return returns + _numpy_bonus(q_now, action, alpha, tau, clip_min) + discount * soft


def _numpy_quantile_target(q_now, q_next, z_next, action, returns, discount, alpha, tau, clip_min):
    """M-IQN's target samples ``[batch, N']``: each ``Z'_j(s', .)`` in place of ``Q'(s', .)`` under ``pi(.|s')``."""
    log_pi_next = log_softmax_numpy(q_next / tau)[:, None]
    soft = np.sum(np.exp(log_pi_next) * (z_next - tau * log_pi_next), axis=-1)
    return (returns + _numpy_bonus(q_now, action, alpha, tau, clip_min))[:, None] + discount[:, None] * soft


def _target(q_now, q_next, action, returns, discount, alpha, tau, clip_min):
    args = [jnp.float32(x) for x in (q_now, q_next)] + [jnp.int32(action)]
    args += [jnp.float32(x) for x in (returns, discount, alpha, tau, clip_min)]
    return np.asarray(munchausen.target(*args))


def test_the_target_is_the_papers_soft_bellman_target_with_the_clipped_log_policy_bonus():
    batch, num_actions = 64, 4
    q_now, q_next = RNG.normal(0.0, 2.0, (batch, num_actions)), RNG.normal(0.0, 2.0, (batch, num_actions))
    action = RNG.integers(0, num_actions, batch)
    returns = RNG.normal(size=batch)
    discount = np.where(RNG.random(batch) < 0.2, 0.0, 0.99)  # episode ends keep the bonus, drop the soft value
    for alpha, tau, clip_min in ((0.9, 0.03, -1.0), (0.5, 1.0, -0.2), (0.0, 0.1, -1.0)):
        expected = _numpy_target(q_now, q_next, action, returns, discount, alpha, tau, clip_min)
        got = _target(q_now, q_next, action, returns, discount, alpha, tau, clip_min)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    # with tau 0.03 most taken actions' tau log pi lie below -1: the clip is what bounds the bonus
    bonus = _target(q_now, q_next, action, np.zeros(batch), np.zeros(batch), 0.9, 0.03, -1.0)
    assert np.all(bonus <= 0) and np.all(bonus >= -0.9) and np.mean(bonus == np.float32(-0.9)) > 0.5


def test_without_the_bonus_and_as_tau_shrinks_the_target_is_dqns_max_target():
    q_now, q_next = RNG.normal(size=(32, 3)), RNG.normal(size=(32, 3))
    action, returns, discount = RNG.integers(0, 3, 32), RNG.normal(size=32), np.full(32, 0.99)
    dqn_target = returns + discount * q_next.max(-1)
    for tau in (1e-2, 1e-3):  # tau logsumexp(q / tau) lies in [max q, max q + tau log 3]
        got = _target(q_now, q_next, action, returns, discount, 0.0, tau, -1.0)
        assert np.all(got >= dqn_target - 1e-5) and np.all(got <= dqn_target + 0.99 * tau * np.log(3) + 1e-5)


def dqn_config(**agent):
    munchausen = {"double_q": False, "munchausen_alpha": 0.9, "munchausen_tau": 0.5, "munchausen_clip": -0.3}
    return small_dqn(**{**munchausen, "q": {"hidden": [16], "value": "mse"}, **agent})


def _state_and_batch(algo, config):
    """A fresh state of ``algo`` whose online network differs from its target, and a random CartPole batch with
    some episode ends."""
    state = algo.init(config, CARTPOLE, jax.random.PRNGKey(0), 10)
    online = jax.tree.map(lambda x: x + 0.1 * jnp.float32(RNG.normal(size=x.shape)), state.params.online)
    state = state.replace(params=state.params.replace(online=online))
    batch = off_policy.sample_batch(config, state, jax.random.PRNGKey(1))
    return state, batch.replace(
        obs=jnp.float32(RNG.normal(size=batch.obs.shape)),
        next_obs=jnp.float32(RNG.normal(size=batch.next_obs.shape)),
        action=jnp.int32(RNG.integers(0, 2, batch.action.shape)),
        returns=jnp.float32(RNG.normal(size=batch.returns.shape)),
        discount=jnp.float32(np.where(RNG.random(batch.discount.shape) < 0.3, 0.0, 0.99)),
    )


def test_a_gradient_step_regresses_the_online_q_on_the_target_networks_munchausen_target():
    config = dqn_config(max_grad_norm=None).agent
    state, batch = _state_and_batch(dqn, config)
    _, metrics = dqn.gradient_step(driver.compiled_agent(config), CARTPOLE, state, batch, jax.random.PRNGKey(2))
    net, _ = dqn._network(config, CARTPOLE)
    q = {
        name: np.asarray(net.apply(params, x))[..., 0]
        for name, params, x in (
            ("online", state.params.online, batch.obs),
            ("target_now", state.params.target, batch.obs),
            ("target_next", state.params.target, batch.next_obs),
        )
    }
    action = np.asarray(batch.action)
    target = _numpy_target(
        q["target_now"], q["target_next"], action, np.asarray(batch.returns), np.asarray(batch.discount), 0.9, 0.5, -0.3
    )
    expected = np.mean(0.5 * (q["online"][np.arange(len(action)), action] - target) ** 2)
    np.testing.assert_allclose(metrics["loss"], expected, rtol=1e-5)


def test_munchausen_dqn_resumes_bitwise_and_its_hyperparameters_are_traced(tmp_path):
    config = dqn_config(replay="prioritized")
    exp = driver.Experiment(config)
    state = exp.init()
    assert {"munchausen_alpha", "munchausen_tau", "munchausen_clip"} <= set(state.hparams._values)
    plain = dqn.init(
        dqn_config(munchausen_alpha=None, munchausen_tau=None, munchausen_clip=None).agent,
        CARTPOLE,
        jax.random.PRNGKey(0),
        10,
    )
    assert not any(name.startswith("munchausen") for name in plain.hparams._values)  # DQN's state is unchanged
    state, metrics = exp.run_chunk(state, 0)
    assert all(np.isfinite(v) for v in metrics.values()), metrics
    without = dqn_config(replay="prioritized", munchausen_alpha=None, munchausen_tau=None, munchausen_clip=None)
    plain_exp = driver.Experiment(without)
    _, plain_metrics = plain_exp.run_chunk(plain_exp.init(), 0)
    assert metrics["loss"] != plain_metrics["loss"]  # the run's compiled target is Munchausen's
    assert_resumes_bitwise(exp, state, tmp_path)


@pytest.mark.parametrize(
    "agent,expected",
    [
        ({"double_q": True}, "agent.double_q: Munchausen's soft value has no argmax to choose; use false; got true"),
        ({"n_step": 3}, "agent.n_step: Munchausen adds each step's log-policy bonus; use 1; got 3"),
        (
            {"q": {"value": "c51"}},
            "agent.q.value: Munchausen's target is a scalar here (M-IQN is algo iqn); use mse, huber or hl_gauss; got c51",
        ),
        ({"munchausen_alpha": None}, "agent.munchausen_tau: read only with munchausen_alpha set"),
        ({"munchausen_alpha": 1.5}, "agent.munchausen_alpha"),
        ({"munchausen_clip": 0.5}, "agent.munchausen_clip"),
        (
            {"munchausen_alpha": None, "munchausen_tau": None, "munchausen_clip": None, "munchausen_acting": "softmax"},
            "agent.munchausen_acting: read only with munchausen_alpha set (the paper's 0.9); use greedy; got softmax",
        ),
        ({"munchausen_acting": "boltzmann"}, "agent.munchausen_acting"),
    ],
)
def test_configs_munchausen_cannot_use_fail_before_compiling(agent, expected, monkeypatch):
    monkeypatch.setattr(driver.Experiment, "init", lambda *a, **k: pytest.fail("compiled"))
    with pytest.raises(ConfigError) as info:
        driver.train(dqn_config(**agent), None, progress=False)
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_the_m_iqn_target_replaces_q_by_each_target_quantile_sample_under_the_soft_policy():
    batch, n_prime, num_actions = 16, 5, 3
    q_now, q_next = RNG.normal(0.0, 0.2, (batch, num_actions)), RNG.normal(0.0, 0.2, (batch, num_actions))
    z_next = q_next[:, None] + RNG.normal(0.0, 0.5, (batch, n_prime, num_actions))
    action, returns = RNG.integers(0, num_actions, batch), RNG.normal(size=batch)
    discount = np.where(RNG.random(batch) < 0.25, 0.0, 0.99)
    f32 = jnp.float32
    for alpha, tau, clip_min in ((0.9, 0.03, -1.0), (0.5, 0.3, -0.2)):
        args = (action, returns, discount, alpha, tau, clip_min)
        got = munchausen.quantile_target(f32(q_now), f32(q_next), f32(z_next), jnp.int32(action), *map(f32, args[1:]))
        assert got.shape == (batch, n_prime)
        np.testing.assert_allclose(got, _numpy_quantile_target(q_now, q_next, z_next, *args), rtol=1e-5, atol=1e-5)
        # a distribution with every sample at its mean gives M-DQN's target in each sample
        flat = munchausen.quantile_target(
            f32(q_now), f32(q_next), f32(np.repeat(q_next[:, None], n_prime, 1)), jnp.int32(action), *map(f32, args[1:])
        )
        np.testing.assert_allclose(flat, np.repeat(_target(q_now, q_next, *args)[:, None], n_prime, 1), atol=1e-5)


def miqn_config(**agent):
    munchausen = {"munchausen_alpha": 0.9, "munchausen_tau": 0.5, "munchausen_clip": -0.3}
    fractions = {"num_tau_samples": 4, "num_tau_prime_samples": 5, "num_quantile_samples": 3, "embedding_dim": 8}
    return small_dqn(algo="iqn", **{**munchausen, **fractions, "q": {"hidden": [16, 16], "value": "quantile"}, **agent})


def test_an_iqn_gradient_step_regresses_its_quantiles_on_the_m_iqn_target_of_the_target_network():
    config = miqn_config(max_grad_norm=None).agent
    state, batch = _state_and_batch(iqn, config)
    key = jax.random.PRNGKey(2)
    _, metrics = iqn.gradient_step(driver.compiled_agent(config), CARTPOLE, state, batch, key)
    # the fractions the step draws: N online, N' target, K at s' and K at s (gradient_step's key derivation)
    size, keys = batch.action.shape[0], jax.random.split(jax.random.fold_in(key, 1), 6)
    online_tau, target_tau, next_tau = (iqn._fractions(keys[i], size, n) for i, n in enumerate((4, 5, 3)))
    now_tau = iqn._fractions(jax.random.fold_in(key, 2), size, 3)
    net = iqn._network(config, CARTPOLE)
    z = lambda params, obs, tau: np.asarray(net.apply(params, obs, tau))  # noqa: E731
    target = _numpy_quantile_target(
        z(state.params.target, batch.obs, now_tau).mean(1),
        z(state.params.target, batch.next_obs, next_tau).mean(1),
        z(state.params.target, batch.next_obs, target_tau),
        np.asarray(batch.action),
        np.asarray(batch.returns),
        np.asarray(batch.discount),
        0.9,
        0.5,
        -0.3,
    )
    online_z, fractions = z(state.params.online, batch.obs, online_tau), np.asarray(online_tau)
    losses = [quantile_huber_numpy(online_z[b, :, a], target[b], fractions[b], 1.0) for b, a in enumerate(batch.action)]
    np.testing.assert_allclose(metrics["loss"], np.mean(losses), rtol=1e-5)


def test_an_m_iqn_run_trains_differs_from_iqn_and_resumes_bitwise(tmp_path):
    exp = driver.Experiment(miqn_config())
    state, metrics = exp.run_chunk(exp.init(), 0)
    assert all(np.isfinite(v) for v in metrics.values()), metrics
    plain = driver.Experiment(miqn_config(munchausen_alpha=None, munchausen_tau=None, munchausen_clip=None))
    _, plain_metrics = plain.run_chunk(plain.init(), 0)
    assert metrics["loss"] != plain_metrics["loss"]
    assert_resumes_bitwise(exp, state, tmp_path)


@pytest.mark.parametrize(
    "agent,expected",
    [
        ({"double_q": True}, "agent.double_q: Munchausen's soft value has no argmax to choose; use false; got true"),
        ({"n_step": 3}, "agent.n_step: Munchausen adds each step's log-policy bonus; use 1; got 3"),
        ({"q": {"value": "c51"}}, "agent.q.value: IQN learns sampled quantiles, so must be quantile; got c51"),
    ],
)
def test_m_iqn_refuses_what_m_dqn_refuses(agent, expected):
    with pytest.raises(ConfigError) as info:
        miqn_config(**agent)
    assert str(info.value) == expected


def test_epsilon_softmax_draws_softmax_q_over_the_temperature_and_epsilon_uniform_actions():
    q = jnp.asarray([1.0, 1.5, 0.0])
    keys = jax.random.split(jax.random.PRNGKey(0), 40_000)
    pi = np.exp(np.asarray(q) / 0.5) / np.sum(np.exp(np.asarray(q) / 0.5))
    for eps in (0.0, 0.3):
        actions = jax.vmap(lambda k, e=eps: common.epsilon_greedy(q, e, k, jnp.float32(0.5)))(keys)
        share = np.bincount(np.asarray(actions), minlength=3) / len(keys)
        np.testing.assert_allclose(share, (1 - eps) * pi + eps / 3, atol=0.01)
    greedy = jax.vmap(lambda k: common.epsilon_greedy(q, 0.0, k))(keys[:100])
    assert np.all(np.asarray(greedy) == 1)


def _q_draws(algo, config, state, obs):
    """The online network's Q-values ``[D, B, A]`` that acting can see: DQN's one, IQN's means of K freshly drawn
    fractions (64 draws)."""
    if algo == "dqn":
        return np.asarray(dqn._network(config, CARTPOLE)[0].apply(state.params.online, obs))[None, ..., 0]
    keys = jax.random.split(jax.random.PRNGKey(7), 64)
    draw = lambda k: iqn.mean_quantiles(config, CARTPOLE, state.params.online, obs, iqn._fractions(k, len(obs), 3))  # noqa: E731
    return np.asarray(jax.vmap(draw)(keys))


@pytest.mark.parametrize("algo", ["dqn", "iqn"])
def test_softmax_acting_collects_softmax_q_over_munchausen_tau_and_evaluates_greedily(algo):
    """With epsilon 0 and no gradient step, the collected actions follow the online network: greedily by default,
    drawn from ``softmax(Q / munchausen_tau)`` (tau read from the state) with ``munchausen_acting: softmax``; the
    stored actions' share of the best one matches its probability under each policy. Evaluation is greedy."""
    module, make_config = {"dqn": (dqn, dqn_config), "iqn": (iqn, miqn_config)}[algo]
    no_learning = {"epsilon_start": 0.0, "epsilon_end": 0.0, "learning_starts": 10_000, "random_warmup": False}
    tau = 0.02  # about the fresh network's action gaps, so the softmax is far from greedy and from uniform
    expected_share = {}
    for acting in ("greedy", "softmax"):
        config = make_config(**no_learning, munchausen_acting=acting, munchausen_tau=tau, buffer_size=800).agent
        state = module.init(config, CARTPOLE, jax.random.PRNGKey(0), 10)
        compiled = driver.compiled_agent(config)  # the traced fields blanked: tau is read from the state
        step = jax.jit(lambda s, c=compiled: module.train_step(c, CARTPOLE, s))
        for _ in range(60):
            state, _ = step(state)
        stored = jax.tree.map(lambda x: np.asarray(x[:, :60]).reshape(-1, *x.shape[2:]), state.loop.buffer.experience)
        obs = off_policy.prepare_obs(config, state, jnp.asarray(stored.obs))
        q = _q_draws(algo, config, state, obs)
        best = np.argmax(q.mean(0), axis=-1)
        if acting == "greedy":
            probability = np.mean(np.argmax(q, axis=-1) == best, axis=0)
        else:
            pi = np.exp(log_softmax_numpy(q / tau))
            probability = np.mean(np.take_along_axis(pi, best[None, :, None], axis=-1)[..., 0], axis=0)
        expected_share[acting] = np.mean(probability)
        np.testing.assert_allclose(np.mean(stored.action == best), expected_share[acting], atol=0.05)
        evaluated = module.act(config, CARTPOLE, state, jnp.asarray(stored.obs), jax.random.PRNGKey(1), True)
        greedy = module._epsilon_greedy(config, CARTPOLE, state.params.online, obs, 0.0, jax.random.PRNGKey(1))
        np.testing.assert_array_equal(evaluated, greedy)  # evaluation is greedy either way
    assert expected_share["greedy"] - expected_share["softmax"] > 0.15, expected_share  # the test tells them apart
    if algo == "dqn":
        assert expected_share["greedy"] == 1.0


def test_munchausen_dqn_learns_cartpole():
    # mdqn_cartpole (dqn_cartpole's CleanRL settings with the paper's alpha 0.9, tau 0.03, l0 -1). Seeds 0-9 in one
    # sweep (2026-12-07, AMD EPYC AVX2): IQM 490 at 300,000 steps, 500 at the end (BENCHMARKS "Munchausen-DQN").
    # Seed 0 alone evaluates 496 / 500 at 200,000 / 300,000 on AVX2 and 440 / 500 under --xla_cpu_max_isa=AVX (seed 1:
    # 500 at 200,000 on AVX2, below 475 under AVX), so the test stops after the third chunk.
    final = final_row(preset("mdqn_cartpole.yaml", seed=0), chunks=3)
    assert final["eval/episode_return"] >= 475, final


def test_m_iqn_learns_cartpole():
    # miqn_cartpole (iqn_cartpole's settings with alpha 0.9, tau 0.03, l0 -1). Seeds 0-9 in one sweep (2026-12-07, AMD
    # EPYC AVX2): IQM 484 at the end, but evaluations swing as IQN's do (BENCHMARKS "M-IQN on CartPole"). No seed alone
    # holds on every kernel set: seed 0 evaluates 278 / 298 / 500 / 500 / 500 alone on AMD AVX2, 331 / 215 / 500 under
    # --xla_cpu_max_isa=AVX, but 212 at 300,000 on an AVX-512 Intel Xeon capped at AVX2. Seeds 0-2 as one vmapped sweep
    # (2026-12-08, Intel Xeon): 364 / 262 / 500 / 500 / 500, 227 / 223 / 302 / 500 / 490, 208 / 419 / 500 / 296 / 305
    # with its default kernels and capped at AVX2 alike (the logged losses differ in the 7th digit), 409 / 177 / 500 /
    # 500 / 500, 189 / 220 / 137 / 277 / 500, 329 / 322 / 500 / 500 / 259 under AVX: their median is 500 at 300,000 on
    # both kernel sets.
    runs = final_rows(preset("miqn_cartpole.yaml"), chunks=3)
    assert median(runs) >= 475, [row["eval/episode_return"] for row in runs]
