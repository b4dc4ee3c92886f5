"""Exact maths of the shared ops against NumPy references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlx.config import ConfigError
from rlx.envs.base import Box
from rlx.nets.heads import policy_distribution
from rlx.nets.spec import PolicyNet
from rlx.ops.distributions import Bernoulli, Categorical, Gaussian, GaussianMixture, tanh_log_det_jacobian
from rlx.ops.losses import (
    approx_kl,
    clipped_surrogate_loss,
    clipped_value_loss,
    normalize_advantages,
    squared_value_loss,
)
from rlx.ops.normalization import init_stats, normalize, update_stats
from rlx.ops.returns import gae


def gae_reference(rewards, values, next_values, terminated, truncated, gamma, lam):
    """Loop-by-loop GAE: bootstrap from V(s') unless terminated; the trace restarts at any episode end."""
    T = rewards.shape[0]
    adv = np.zeros_like(rewards)
    running = np.zeros_like(rewards[0])
    for t in reversed(range(T)):
        bootstrap = np.where(terminated[t], 0.0, next_values[t])
        delta = rewards[t] + gamma * bootstrap - values[t]
        ended = np.logical_or(terminated[t], truncated[t])
        running = delta + gamma * lam * np.where(ended, 0.0, running)
        adv[t] = running
    return adv, adv + values


@pytest.mark.parametrize("gamma,lam", [(0.99, 0.95), (0.9, 1.0), (0.97, 0.0)])
def test_gae_matches_numpy_reference_with_terminations_and_truncations(gamma, lam):
    rng = np.random.default_rng(0)
    T, N = 37, 5
    rewards = rng.normal(size=(T, N)).astype(np.float32)
    values = rng.normal(size=(T, N)).astype(np.float32)
    next_values = rng.normal(size=(T, N)).astype(np.float32)
    terminated = rng.random((T, N)) < 0.1
    truncated = (rng.random((T, N)) < 0.1) & ~terminated
    assert terminated.any() and truncated.any()
    adv, targets = gae(
        jnp.asarray(rewards),
        jnp.asarray(values),
        jnp.asarray(next_values),
        jnp.asarray(terminated),
        jnp.asarray(truncated),
        gamma,
        lam,
    )
    ref_adv, ref_targets = gae_reference(rewards, values, next_values, terminated, truncated, gamma, lam)
    np.testing.assert_allclose(adv, ref_adv, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(targets, ref_targets, rtol=1e-5, atol=1e-5)


def test_gae_hand_computed_three_steps():
    # t0: continue, t1: truncated (bootstrap 10 from the final obs), t2: terminated (no bootstrap).
    r = jnp.array([1.0, 2.0, 3.0])
    v = jnp.array([0.5, 1.0, 2.0])
    nv = jnp.array([1.0, 10.0, 99.0])
    term = jnp.array([False, False, True])
    trunc = jnp.array([False, True, False])
    adv, _ = gae(r, v, nv, term, trunc, 0.5, 1.0)
    a2 = 3.0 - 2.0
    a1 = 2.0 + 0.5 * 10.0 - 1.0  # trace cut after truncation
    a0 = (1.0 + 0.5 * 1.0 - 0.5) + 0.5 * a1
    np.testing.assert_allclose(adv, [a0, a1, a2], rtol=1e-6)


def test_running_stats_match_numpy_over_several_batches():
    rng = np.random.default_rng(1)
    batches = [rng.normal(3.0, 2.0, size=(n, 4)).astype(np.float32) for n in (7, 1, 50, 13)]
    stats = init_stats((4,))
    for b in batches:
        stats = update_stats(stats, jnp.asarray(b))
    allx = np.concatenate(batches)
    np.testing.assert_allclose(stats.count, len(allx))
    np.testing.assert_allclose(stats.mean, allx.mean(0), rtol=1e-5)
    np.testing.assert_allclose(stats.variance, allx.var(0), rtol=1e-4)
    z = normalize(stats, jnp.asarray(allx))
    np.testing.assert_allclose(z.mean(0), 0.0, atol=1e-4)
    np.testing.assert_allclose(z.std(0), 1.0, rtol=1e-3)


def test_normalize_is_identity_before_data():
    x = jnp.array([[1.0, -2.0]])
    np.testing.assert_array_equal(normalize(init_stats((2,)), x), x)


def test_normalize_epsilons_and_clip_match_numpy():
    rng = np.random.default_rng(0)
    data = rng.normal([3.0, 0.0, -1.0], [2.0, 1e-3, 0.5], size=(64, 3)).astype(np.float32)
    data[:, 1] = 7.0  # a constant feature: variance 0
    stats = update_stats(init_stats((3,)), jnp.asarray(data))
    x = np.array([[40.0, 7.5, -1.0]], np.float32)
    mean, var = data.astype(np.float64).mean(0), data.astype(np.float64).var(0)
    default = np.clip((x - mean) / np.sqrt(var + 1e-8), -10, 10)  # gymnasium / SB3
    np.testing.assert_allclose(normalize(stats, jnp.asarray(x)), default, rtol=1e-4)
    assert np.asarray(normalize(stats, jnp.asarray(x)))[0, 0] == 10.0 and default[0, 1] == 10.0
    rsl = (x - mean) / (np.sqrt(var) + 0.01)  # rsl_rl / FastTD3: std + 0.01, not clipped
    got = normalize(stats, jnp.asarray(x), clip=None, eps=0.0, std_eps=0.01)
    np.testing.assert_allclose(got, rsl, rtol=1e-4)
    assert abs(float(got[0, 1]) - 50.0) < 1e-3 and float(got[0, 0]) > 10.0


def test_tanh_gaussian_log_prob_by_change_of_variables():
    mean, std = jnp.array([0.3, -0.5]), jnp.array([0.7, 1.3])
    dist = Gaussian(mean, std, squash="tanh")
    u = jnp.array([0.2, -1.1])
    a = np.tanh(np.asarray(u, np.float64))
    # density of a = tanh(u): p_u(u) / |da/du| with u = atanh(a)
    base = np.sum(-0.5 * ((np.arctanh(a) - mean) / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi))
    ref = base - np.sum(np.log(1 - a**2))
    np.testing.assert_allclose(dist.log_prob(u), ref, rtol=1e-5)
    # stable form of log(1 - tanh^2) even where tanh saturates
    assert np.isfinite(tanh_log_det_jacobian(jnp.array([30.0, -30.0])))


def test_policy_std_parametrizations():
    """A Gaussian policy's std from its raw outputs: ``softplus(x) + min_std``; ``log_range``: exp of x squashed by
    tanh into [log_std_min, log_std_max]; ``log_clip``: exp of x clipped to it, with no gradient past the ends (the
    original SAC's and REDQ's ``torch.clamp``)."""
    raw = jnp.array([-30.0, -3.0, 0.0, 1.5, 4.0])
    space = Box(shape=(5,), low=(-1.0,) * 5, high=(1.0,) * 5)

    def std(spec, x):
        return policy_distribution(spec, space, jnp.concatenate([jnp.zeros(5), x])).std

    softplus = std(PolicyNet(std="softplus", min_std=0.01), raw)
    np.testing.assert_allclose(softplus, np.log1p(np.exp(np.asarray(raw, np.float64))) + 0.01, rtol=1e-6)
    squashed = std(PolicyNet(std="log_range", log_std_min=-5.0, log_std_max=2.0), raw)
    np.testing.assert_allclose(squashed, np.exp(-5.0 + 3.5 * (np.tanh(np.asarray(raw, np.float64)) + 1)), rtol=1e-6)
    clipped = PolicyNet(std="log_clip", log_std_min=-20.0, log_std_max=2.0)
    np.testing.assert_allclose(std(clipped, raw), np.exp([-20.0, -3.0, 0.0, 1.5, 2.0]), rtol=1e-6)
    slope = jax.grad(lambda x: jnp.sum(jnp.log(std(clipped, x))))(raw)
    np.testing.assert_array_equal(slope, [0.0, 1.0, 1.0, 1.0, 0.0])
    with pytest.raises(ConfigError, match="log_std_max: must be > log_std_min = 2; got 2"):
        PolicyNet(std="log_clip", log_std_min=2.0, log_std_max=2.0).check("agent.actor.")


def test_clip_gaussian_and_categorical():
    g = Gaussian(jnp.zeros(1), jnp.ones(1), squash="clip")
    np.testing.assert_allclose(g.log_prob(jnp.array([1.0])), -0.5 - 0.5 * np.log(2 * np.pi), rtol=1e-6)
    np.testing.assert_allclose(g.env_action(jnp.array([3.0])), [1.0])
    np.testing.assert_allclose(g.entropy(), 0.5 + 0.5 * np.log(2 * np.pi), rtol=1e-6)
    logits = jnp.log(jnp.array([0.2, 0.5, 0.3]))
    c = Categorical(logits)
    np.testing.assert_allclose(c.log_prob(jnp.array(1)), np.log(0.5), rtol=1e-6)
    np.testing.assert_allclose(c.entropy(), -np.sum([p * np.log(p) for p in (0.2, 0.5, 0.3)]), rtol=1e-6)
    samples = jax.vmap(c.sample)(jax.random.split(jax.random.PRNGKey(0), 20000))
    np.testing.assert_allclose(np.bincount(samples, minlength=3) / 20000, [0.2, 0.5, 0.3], atol=0.015)


def test_bernoulli_bang_bang_log_prob_entropy_sampling_and_actions():
    p = np.array([0.2, 0.9, 0.5])
    dist = Bernoulli(jnp.log(p / (1 - p)))
    raw = jnp.array([1.0, 0.0, 1.0])
    np.testing.assert_allclose(dist.log_prob(raw), np.log(0.2) + np.log(0.1) + np.log(0.5), rtol=1e-5)
    np.testing.assert_allclose(dist.entropy(), -np.sum(p * np.log(p) + (1 - p) * np.log(1 - p)), rtol=1e-5)
    np.testing.assert_allclose(dist.env_action(raw), [1.0, -1.0, 1.0])
    np.testing.assert_allclose(dist.env_action(dist.mode()), [-1.0, 1.0, -1.0])  # logit 0 picks -1
    samples = jax.vmap(dist.sample)(jax.random.split(jax.random.PRNGKey(0), 20000))
    assert set(np.unique(samples)) <= {0.0, 1.0}
    np.testing.assert_allclose(samples.mean(0), p, atol=0.015)
    # saturated logits stay finite
    assert np.isfinite(Bernoulli(jnp.array([80.0, -80.0])).log_prob(jnp.array([0.0, 1.0])))


def test_bernoulli_straight_through_sample_is_the_sample_with_the_probabilitys_gradient():
    logits = jnp.array([[0.3, -1.2, 2.0], [-0.5, 0.0, 4.0]])
    weights = jnp.array([1.0, -2.0, 0.5])
    key = jax.random.PRNGKey(7)
    sample = Bernoulli(logits).straight_through_sample(key)
    np.testing.assert_array_equal(sample, Bernoulli(logits).sample(key))  # exactly 0/1, the same draw
    grad = jax.grad(lambda x: jnp.sum(Bernoulli(x).straight_through_sample(key) * weights))(logits)
    p = 1.0 / (1.0 + np.exp(-np.asarray(logits)))
    np.testing.assert_allclose(grad, p * (1 - p) * np.asarray(weights), rtol=1e-6)


def test_gaussian_mixture_log_prob_sampling_mode_and_entropy():
    weights = np.array([0.2, 0.5, 0.3])
    mean = np.array([[-2.0, 0.5], [0.0, -1.0], [3.0, 1.5]])  # [K, d], well separated in dimension 0
    std = np.array([[0.3, 0.5], [0.4, 0.2], [0.5, 0.6]])
    gaussian = lambda squash: Gaussian(jnp.asarray(mean), jnp.asarray(std), squash)  # noqa: E731
    logits = jnp.log(jnp.asarray(weights)) + 1.0  # a shift of the logits changes nothing
    for squash in ("clip", "tanh"):
        dist = GaussianMixture(logits, gaussian(squash))
        raw = np.array([0.4, -0.7])
        density = sum(
            w * np.prod(np.exp(-0.5 * ((raw - m) / s) ** 2) / (s * np.sqrt(2 * np.pi)))
            for w, m, s in zip(weights, mean, std)
        )
        want = np.log(density) - (np.sum(np.log(1 - np.tanh(raw) ** 2)) if squash == "tanh" else 0.0)
        np.testing.assert_allclose(dist.log_prob(jnp.asarray(raw)), want, rtol=1e-5)
    dist = GaussianMixture(logits, gaussian("clip"))
    samples = np.asarray(jax.vmap(dist.sample)(jax.random.split(jax.random.PRNGKey(0), 20000)))
    component = np.digitize(samples[:, 0], [-1.0, 1.5])  # which component each sample came from
    np.testing.assert_allclose(np.bincount(component, minlength=3) / 20000, weights, atol=0.015)
    np.testing.assert_allclose(samples[component == 2].mean(0), mean[2], atol=0.03)
    np.testing.assert_allclose(dist.mode(), mean[1])  # the heaviest component's mean
    entropy = jax.vmap(dist.entropy)(jax.random.split(jax.random.PRNGKey(1), 20000))  # one-sample estimates
    log_p = jax.vmap(dist.log_prob)(jnp.asarray(samples))
    np.testing.assert_allclose(entropy.mean(), -log_p.mean(), atol=0.03)  # both estimate E[-log p]
    # batched: logits [B, K], components [B, K, d]
    batched = GaussianMixture(
        jnp.stack([logits, logits[::-1]]), Gaussian(jnp.stack([mean, mean]), jnp.stack([std, std]))
    )
    assert batched.sample(jax.random.PRNGKey(2)).shape == (2, 2) and batched.log_prob(jnp.zeros((2, 2))).shape == (2,)
    np.testing.assert_allclose(batched.mode(), [mean[1], mean[1]])


def test_gaussian_mixture_entropy_estimate_and_its_gradient_match_quadrature():
    """The entropy bonus must move the mixture weights: -log p(a) of one mixture sample has a zero expected
    gradient in the logits (its component draw is discrete); the estimate must match the true gradient."""
    grid = np.linspace(-12.0, 12.0, 120001)

    def quadrature(logits, mean, log_std, squash):  # 1-D mixture, float64
        weights, std = np.exp(logits) / np.exp(logits).sum(), np.exp(log_std)
        density = sum(
            w * np.exp(-0.5 * ((grid - m) / s) ** 2) / (s * np.sqrt(2 * np.pi)) for w, m, s in zip(weights, mean, std)
        )
        log_density = np.log(np.maximum(density, 1e-300))
        if squash == "tanh":  # the entropy of tanh(u): E[-log p(u) + log(1 - tanh(u)^2)]
            log_density = log_density - np.log(np.maximum(1 - np.tanh(grid) ** 2, 1e-300))
        return -np.sum(density * log_density) * (grid[1] - grid[0])

    params = [np.array([0.3, -0.2]), np.array([-1.0, 1.5]), np.log(np.array([0.5, 0.8]))]
    keys = jax.random.split(jax.random.PRNGKey(0), 50000)
    for squash in ("clip", "tanh"):

        def entropy(p, key, squash=squash):
            return GaussianMixture(p[0], Gaussian(p[1][:, None], jnp.exp(p[2])[:, None], squash)).entropy(key)

        p32 = [jnp.asarray(x, jnp.float32) for x in params]
        estimates = jax.vmap(entropy, (None, 0))(p32, keys)
        gradients = jax.vmap(jax.grad(entropy), (None, 0))(p32, keys)
        np.testing.assert_allclose(estimates.mean(), quadrature(*params, squash), atol=0.01)
        for i, x in enumerate(params):
            want = np.zeros_like(x)
            for j in range(len(x)):  # central differences of the quadrature entropy
                up, down = [q.copy() for q in params], [q.copy() for q in params]
                up[i][j] += 1e-4
                down[i][j] -= 1e-4
                want[j] = (quadrature(*up, squash) - quadrature(*down, squash)) / 2e-4
            np.testing.assert_allclose(np.asarray(gradients[i]).mean(0), want, atol=0.01, err_msg=f"{squash} {i}")
            if i == 0 and squash == "clip":  # unsquashed, the weights' gradient is far from zero here (about 0.2)
                assert np.all(np.abs(want) > 0.1), want


def test_analytic_kls_match_numpy():
    rng = np.random.default_rng(0)
    p, q = rng.dirichlet(np.ones(4)), rng.dirichlet(np.ones(4))
    kl = Categorical(jnp.log(jnp.asarray(p))).kl(Categorical(jnp.log(jnp.asarray(q)) + 3.0))  # logits' shift is free
    np.testing.assert_allclose(kl, np.sum(p * np.log(p / q)), rtol=1e-5)
    a, b = np.array([0.3, 0.8]), np.array([0.6, 0.1])
    kl = Bernoulli(jnp.log(a / (1 - a))).kl(Bernoulli(jnp.log(b / (1 - b))))
    np.testing.assert_allclose(kl, np.sum(a * np.log(a / b) + (1 - a) * np.log((1 - a) / (1 - b))), rtol=1e-5)
    m1, s1, m2, s2 = np.array([0.1, -1.0]), np.array([0.5, 2.0]), np.array([0.4, 0.0]), np.array([1.0, 1.5])
    ref = np.sum(np.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5)
    for squash in ("tanh", "clip"):
        kl = Gaussian(jnp.asarray(m1), jnp.asarray(s1), squash).kl(Gaussian(jnp.asarray(m2), jnp.asarray(s2), squash))
        np.testing.assert_allclose(kl, ref, rtol=1e-5)
    # a tanh-squashed KL is the unsquashed one: Monte Carlo over squashed log-densities agrees
    new, old = Gaussian(jnp.asarray(m1), jnp.asarray(s1)), Gaussian(jnp.asarray(m2), jnp.asarray(s2))
    u = jax.vmap(new.sample)(jax.random.split(jax.random.PRNGKey(1), 200_000))
    np.testing.assert_allclose(jnp.mean(new.log_prob(u) - old.log_prob(u)), ref, rtol=0.02)


def test_clipped_surrogate_and_value_loss():
    logp, old = jnp.log(jnp.array([1.5, 0.5, 1.0])), jnp.zeros(3)
    adv = jnp.array([1.0, -1.0, 2.0])
    loss, ratio = clipped_surrogate_loss(logp, old, adv, 0.2)
    # ratios 1.5 (A>0: clipped to 1.2), 0.5 (A<0: min(-0.5, -0.8) = -0.8), 1.0
    np.testing.assert_allclose(loss, -np.mean([1.2, -0.8, 2.0]), rtol=1e-6)
    np.testing.assert_allclose(ratio, [1.5, 0.5, 1.0], rtol=1e-6)
    np.testing.assert_allclose(squared_value_loss(jnp.array([1.0, 3.0]), jnp.array([0.0, 1.0])), 1.25)
    # V moved away from the target past the clip: the unclipped error is the larger one and is taken
    loss = clipped_value_loss(jnp.array([1.0, 3.0]), jnp.zeros(2), jnp.array([0.0, 1.0]), 0.2)
    np.testing.assert_allclose(loss, 0.5 * np.mean([max(1.0, 0.2**2), max(4.0, 0.8**2)]), rtol=1e-6)
    loss = clipped_value_loss(jnp.array([1.0]), jnp.zeros(1), jnp.array([2.0]), 0.2)  # toward the target: clip binds
    np.testing.assert_allclose(loss, 0.5 * (2.0 - 0.2) ** 2, rtol=1e-6)
    z = normalize_advantages(jnp.array([1.0, 2.0, 3.0]))
    np.testing.assert_allclose([z.mean(), z.std()], [0.0, 1.0], atol=1e-6)


def test_approx_kl_is_k3_and_stays_finite_when_a_ratio_underflows():
    log_ratio = np.array([np.log(1.5), np.log(0.5), 0.0])
    r = np.exp(log_ratio)
    np.testing.assert_allclose(approx_kl(jnp.asarray(log_ratio)), np.mean(r - 1 - np.log(r)), rtol=1e-6)
    # exp(-200) underflows to 0 in float32, where the ratio form reads log(0) = -inf: here (e^-200 - 1 + 200) / 2
    extreme = approx_kl(jnp.array([-200.0, 0.0], jnp.float32))
    assert np.isfinite(extreme)
    np.testing.assert_allclose(extreme, 199.0 / 2, rtol=1e-6)
