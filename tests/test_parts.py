"""The shared parts algorithms are assembled from: network torso options and ensembles, batch renorm
against a NumPy reference, value representations against NumPy references, the clipped ensemble
target, the one rollout, n-step TD batches of the off-policy loop, traced hyperparameters."""

import dataclasses
import itertools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import tree_equal

from rlx.algos import common, off_policy
from rlx.buffers import ReplayBuffer
from rlx.envs import Vmap, make, training_env
from rlx.nets import MLP, BatchRenorm, CriticNet, Ensemble, Model, Net, layers
from rlx.ops import values
from rlx.ops.distributional import quantile_huber_loss, quantile_midpoints
from rlx.ops.distributions import Bernoulli
from rlx.ops.returns import n_step_return
from rlx.rollout import PolicyStep, Transition, first_episode_mask, unroll

X = jax.random.normal(jax.random.PRNGKey(0), (32, 5))


# ---------------------------------------------------------------- networks


def test_torso_options_build_the_layers_they_name():
    def layer_names(net):
        return sorted(MLP(net, (3,)).init(jax.random.PRNGKey(0), X)["params"])

    assert layer_names(Net(hidden=(8, 8))) == ["Dense_0", "Dense_1", "Dense_2"]
    assert layer_names(Net(hidden=(8, 8), norm="layer")) == [
        "Dense_0",
        "Dense_1",
        "Dense_2",
        "LayerNorm_0",
        "LayerNorm_1",
    ]
    # residual: input layer, then one block of two dense layers (each normalized) added to its input
    assert layer_names(Net(hidden=(8, 8), norm="layer", residual=True)) == [
        "Dense_0",
        "Dense_1",
        "Dense_2",
        "Dense_3",
        "LayerNorm_0",
        "LayerNorm_1",
        "LayerNorm_2",
    ]
    variables = MLP(Net(hidden=(8,), norm="batch_renorm"), (3,)).init(jax.random.PRNGKey(0), X)
    assert sorted(variables["batch_stats"]) == ["BatchRenorm_0", "BatchRenorm_1"]  # input and hidden layer


def test_layer_norm_torso_matches_a_hand_written_forward_pass():
    net = MLP(Net(hidden=(8,), norm="layer", activation="relu"), (2,))
    p = net.init(jax.random.PRNGKey(1), X)["params"]
    h = X @ p["Dense_0"]["kernel"] + p["Dense_0"]["bias"]
    h = (h - h.mean(-1, keepdims=True)) / jnp.sqrt(h.var(-1, keepdims=True) + 1e-6)
    h = jax.nn.relu(h * p["LayerNorm_0"]["scale"] + p["LayerNorm_0"]["bias"])
    np.testing.assert_allclose(
        net.apply({"params": p}, X), h @ p["Dense_1"]["kernel"] + p["Dense_1"]["bias"], rtol=1e-5, atol=1e-6
    )


def test_kernel_inits_and_output_scale():
    ortho = MLP(Net(hidden=(16,), output_scale=0.01), (4,)).init(jax.random.PRNGKey(0), X)["params"]
    kernel = np.asarray(ortho["Dense_0"]["kernel"])  # 5 x 16, gain sqrt 2: orthonormal rows scaled
    np.testing.assert_allclose(kernel @ kernel.T, 2.0 * np.eye(5), atol=1e-5)
    out = np.asarray(ortho["Dense_1"]["kernel"])  # 16 x 4, gain 0.01
    np.testing.assert_allclose(out.T @ out, 1e-4 * np.eye(4), atol=1e-9)
    lecun = MLP(Net(hidden=(256,), kernel_init="lecun_normal"), (1,)).init(jax.random.PRNGKey(0), X)["params"]
    assert abs(float(jnp.std(lecun["Dense_0"]["kernel"])) - (1 / 5) ** 0.5) < 0.05


def test_mish_and_its_slope_match_float64_references_and_stay_finite():
    """rlx's one-exponential mish against ``x tanh(log1p(exp(x)))`` and its derivative in float64, over the range
    where float32 is not subnormal, and jax.nn.mish; the slope is written out, so it is checked on its own."""
    x = np.concatenate([np.linspace(-80.0, 80.0, 20_001), np.geomspace(1e-20, 1e4, 200), -np.geomspace(1e-20, 80, 200)])
    x = x.astype(np.float32)
    x64 = x.astype(np.float64)
    tanh_softplus = np.tanh(np.logaddexp(0.0, x64))
    want = x64 * tanh_softplus
    want_slope = tanh_softplus + x64 * (1.0 - tanh_softplus**2) * 0.5 * (1.0 + np.tanh(0.5 * x64))
    got = np.asarray(jax.jit(layers.mish)(x), np.float64)
    ulp = np.spacing(np.abs(want).astype(np.float32)).astype(np.float64)
    assert np.max(np.abs(got - want) / ulp) <= 4.0
    np.testing.assert_allclose(got, jax.nn.mish(x), rtol=5e-7, atol=1e-37)
    slope = np.asarray(jax.jit(jax.vmap(jax.grad(layers.mish)))(x), np.float64)
    np.testing.assert_allclose(slope, want_slope, rtol=1e-6, atol=5e-7)
    extremes = jnp.array([-1e30, -1e4, 1e4, 1e30, np.inf], jnp.float32)
    np.testing.assert_array_equal(layers.mish(extremes), jnp.array([-0.0, -0.0, 1e4, 1e30, np.inf], jnp.float32))
    np.testing.assert_array_equal(jax.vmap(jax.grad(layers.mish))(extremes), [0.0, 0.0, 1.0, 1.0, 1.0])
    assert np.isnan(layers.mish(jnp.float32(np.nan))) and layers.ACTIVATIONS["mish"] is layers.mish


def test_dropout_masks_differ_per_key_and_are_reproducible():
    model = Model(MLP(Net(hidden=(64,), dropout=0.5), (4,)))
    params, collections = model.init(jax.random.PRNGKey(0), X)
    assert collections == {}
    a, _ = model.apply_train(params, jax.random.PRNGKey(1), X)
    b, _ = model.apply_train(params, jax.random.PRNGKey(1), X)
    c, _ = model.apply_train(params, jax.random.PRNGKey(2), X)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    np.testing.assert_array_equal(model.apply(params, X), model.apply(params, X))  # evaluation: no dropout
    assert not np.allclose(model.apply(params, X), a)


@pytest.mark.parametrize("shape", [(1,), (7,), (256, 64), (3, 5, 11)])
def test_dropout_masks_are_jax_bernoulli_bit_for_bit(shape):
    """rlx's unrolled threefry gives jax.random.bernoulli's masks: raw, typed, folded and vmapped keys; keys
    of another PRNG fall back to jax's own."""
    for p in (0.99, 0.5, 0.1):
        for key in (jax.random.fold_in(jax.random.PRNGKey(3), 17), jax.random.key(5)):
            np.testing.assert_array_equal(
                jax.jit(lambda k, p=p: layers.bernoulli(k, p, shape))(key), jax.random.bernoulli(key, p, shape)
            )
    keys = jax.random.split(jax.random.PRNGKey(4), 3)
    np.testing.assert_array_equal(
        jax.vmap(lambda k: layers.bernoulli(k, 0.9, shape))(keys),
        jax.vmap(lambda k: jax.random.bernoulli(k, 0.9, shape))(keys),
    )
    rbg = jax.random.key(1, impl="rbg")
    np.testing.assert_array_equal(layers.bernoulli(rbg, 0.9, shape), jax.random.bernoulli(rbg, 0.9, shape))


def test_dropout_equals_flax_dropout_alone_and_in_an_ensemble():
    class Net2(nn.Module):
        flax_dropout: bool

        @nn.compact
        def __call__(self, x):
            h = nn.Dense(16)(x)
            h = nn.Dropout(0.2, deterministic=False)(h) if self.flax_dropout else layers.Dropout(0.2)(h, False)
            return nn.Dense(3)(h)

    def ensemble(flax_dropout):
        members = nn.vmap(
            Net2, variable_axes={"params": 0}, split_rngs={"params": True, "dropout": True}, in_axes=None, axis_size=4
        )
        return members(flax_dropout)

    for make_net in (Net2, ensemble):
        params = make_net(False).init({"params": jax.random.PRNGKey(0), "dropout": jax.random.PRNGKey(1)}, X)
        ours, theirs = (make_net(f).apply(params, X, rngs={"dropout": jax.random.PRNGKey(6)}) for f in (False, True))
        np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(layers.Dropout(0.2).apply({}, X, True), X)  # evaluation: the identity


def test_ensemble_members_are_independent_and_stacked():
    model = Model(Ensemble(CriticNet(hidden=(8,), dropout=0.2), (1,), size=3))
    params, _ = model.init(jax.random.PRNGKey(0), X, X[:, :2])
    assert params["VmapMLP_0"]["Dense_0"]["kernel"].shape == (3, 7, 8)
    out = model.apply(params, X, X[:, :2])
    assert out.shape == (3, 32, 1) and not np.allclose(out[0], out[1])
    train_out, _ = model.apply_train(params, jax.random.PRNGKey(3), X, X[:, :2])
    masks = np.asarray(train_out != 0)
    assert not (masks[0] == masks[1]).all()  # each member draws its own dropout mask


def batch_renorm_reference(
    x, mean, var, steps, scale, bias, momentum, eps, warmup, correction="ioffe", r_max=3.0, d_max=5.0
):
    """NumPy batch renormalization in training mode: output and new running statistics. ``ioffe``: Ioffe
    (2017); ``folded``: CrossQ's code (adityab/CrossQ, sbx/sac/policies.py), r and d folded into the batch
    statistics of flax's batch norm."""
    mu, sigma2 = x.mean(0), x.var(0)
    std, running_std = np.sqrt(sigma2 + eps), np.sqrt(var + eps)
    r = np.clip(std / running_std, 1 / r_max, r_max) if steps >= warmup else 1.0
    d = np.clip((mu - mean) / running_std, -d_max, d_max) if steps >= warmup else 0.0
    if correction == "ioffe":
        y = scale * ((x - mu) / std * r + d) + bias
    else:
        custom_var, custom_mean = sigma2 / r**2, mu - d * np.sqrt(sigma2) / r
        y = scale * (x - custom_mean) / np.sqrt(custom_var + eps) + bias
    return y, momentum * mean + (1 - momentum) * mu, momentum * var + (1 - momentum) * sigma2


@pytest.mark.parametrize("warmup,correction", [(0, "ioffe"), (2, "ioffe"), (0, "folded"), (2, "folded")])
def test_batch_renorm_matches_numpy_in_train_and_eval_mode(warmup, correction):
    layer = BatchRenorm(momentum=0.9, warmup_steps=warmup, correction=correction)
    x = np.asarray(jax.random.normal(jax.random.PRNGKey(4), (64, 3))) * [1.0, 5.0, 0.1] + [0.0, 3.0, -2.0]
    variables = layer.init(jax.random.PRNGKey(0), x, False)
    params = {"scale": np.array([1.0, 2.0, 0.5], np.float32), "bias": np.array([0.0, -1.0, 1.0], np.float32)}
    stats = variables["batch_stats"]
    mean, var = np.zeros(3), np.ones(3)
    for step in range(4):
        batch = x + step  # the distribution drifts, so r and d matter once warm
        out, updated = layer.apply({"params": params, "batch_stats": stats}, batch, True, mutable=["batch_stats"])
        want, mean, var = batch_renorm_reference(
            batch, mean, var, step, params["scale"], params["bias"], 0.9, 1e-3, warmup, correction
        )
        np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-4)
        stats = updated["batch_stats"]
        np.testing.assert_allclose(stats["mean"], mean, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(stats["var"], var, rtol=1e-5)
        assert int(stats["steps"]) == step + 1
    evaluated = layer.apply({"params": params, "batch_stats": stats}, x, False)
    np.testing.assert_allclose(
        evaluated, params["scale"] * (x - mean) / np.sqrt(var + 1e-3) + params["bias"], rtol=1e-4, atol=1e-4
    )


def test_folded_batch_renorm_parts_from_ioffe_only_near_eps_and_keeps_gradients_finite():
    x = np.asarray(jax.random.normal(jax.random.PRNGKey(5), (64, 3))) * [2.0, 0.02, 0.0] + [1.0, 0.5, 0.0]
    variables = {"params": {"scale": jnp.ones(3), "bias": jnp.zeros(3)}}
    stats = {"mean": jnp.zeros(3), "var": jnp.full(3, 0.5), "steps": jnp.zeros((), jnp.int32)}
    outs = {}
    for correction in ("ioffe", "folded"):
        layer = BatchRenorm(momentum=0.9, warmup_steps=0, correction=correction)

        def apply(x, layer=layer):
            return layer.apply({**variables, "batch_stats": stats}, x, True, mutable=["batch_stats"])

        outs[correction] = np.asarray(apply(x)[0])
        grad = jax.grad(lambda x, apply=apply: jnp.sum(jnp.square(apply(x)[0])))(jnp.asarray(x))
        assert np.all(np.isfinite(np.asarray(grad)))  # the third feature is constant: zero batch variance
    np.testing.assert_allclose(outs["folded"][:, 0], outs["ioffe"][:, 0], rtol=5e-3)  # std 2 >> sqrt(eps)
    assert np.max(np.abs(outs["folded"][:, 1] - outs["ioffe"][:, 1])) > 0.1  # std 0.02 ~ sqrt(eps) = 0.03


def test_model_keeps_batch_statistics_apart_from_params():
    model = Model(MLP(Net(hidden=(8,), norm="batch_renorm"), (1,)))
    params, collections = model.init(jax.random.PRNGKey(0), X)
    assert "batch_stats" in collections and "batch_stats" not in params
    _, updated = model.apply_train(params, jax.random.PRNGKey(1), X, collections=collections)
    assert int(updated["batch_stats"]["BatchRenorm_0"]["steps"]) == 1
    assert not tree_equal(updated, collections)
    grads = jax.grad(lambda p: jnp.sum(model.apply_train(p, jax.random.PRNGKey(1), X, collections=collections)[0]))(
        params
    )
    assert jax.tree.structure(grads) == jax.tree.structure(params)


# ---------------------------------------------------------------- value representations


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@pytest.mark.parametrize("kind,delta", [("mse", 1.0), ("huber", 1.0), ("huber", 2.5), ("huber", 0.3)])
def test_scalar_representation(kind, delta):
    rep = values.make(kind, huber_delta=delta)
    out, nxt = np.array([[4.0], [-0.5], [0.1]]), np.array([[1.0], [2.0], [0.0]])
    returns, discount = jnp.array([1.0, 0.0, 0.0]), jnp.array([0.5, 0.0, 0.0])
    target = rep.target(jnp.asarray(nxt), returns, discount, shift=jnp.array([-1.0, 3.0, 0.0]))
    np.testing.assert_allclose(target, [1.0 + 0.5 * (1.0 - 1.0), 0.0, 0.0])
    error = out[:, 0] - np.asarray(target)  # 3, -0.5, 0.1: on both sides of every delta
    linear = delta * (np.abs(error) - 0.5 * delta)
    want = 0.5 * error**2 if kind == "mse" else np.where(np.abs(error) <= delta, 0.5 * error**2, linear)
    np.testing.assert_allclose(rep.loss(jnp.asarray(out), target), want, rtol=1e-6)


def test_hl_gauss_and_c51_decode_as_expectations():
    logits = np.asarray(jax.random.normal(jax.random.PRNGKey(0), (4, 11)))
    hl = values.make("hl_gauss", 11, -1.0, 1.0)
    centres = -1.0 + (2.0 / 11) * (np.arange(11) + 0.5)
    np.testing.assert_allclose(hl.decode(jnp.asarray(logits)), softmax(logits) @ centres, rtol=1e-5)
    c51 = values.make("c51", 11, -1.0, 1.0)
    np.testing.assert_allclose(c51.decode(jnp.asarray(logits)), softmax(logits) @ np.linspace(-1, 1, 11), rtol=1e-5)


def test_c51_target_with_a_shift_moves_the_distribution():
    rep = values.make("c51", 5, 0.0, 4.0)
    nxt = jnp.log(jnp.array([[1e-9, 1.0, 1e-9, 1e-9, 1e-9]]))  # all mass on atom 1
    # 0.5 + 1.0 * (1 + 1.5) = 3: all mass to atom 3
    np.testing.assert_allclose(
        rep.target(nxt, jnp.array([0.5]), jnp.array([1.0]), jnp.array([1.5])), [[0, 0, 0, 1, 0]], atol=1e-6
    )


def quantile_huber_reference(theta, targets, kappa=1.0):
    n = theta.shape[-1]
    tau = (np.arange(n) + 0.5) / n
    total = np.zeros(theta.shape[0])
    for b in range(theta.shape[0]):
        for i in range(n):
            for t in targets[b]:
                u = t - theta[b, i]
                huber = 0.5 * u * u if abs(u) <= kappa else kappa * (abs(u) - 0.5 * kappa)
                total[b] += abs(tau[i] - (u < 0)) * huber / kappa / targets.shape[-1]
    return total


@pytest.mark.parametrize("kappa", [1.0, 0.3])
def test_quantile_huber_loss_matches_numpy(kappa):
    rng = np.random.default_rng(0)
    theta, targets = rng.normal(size=(6, 8)).astype(np.float32), (2 * rng.normal(size=(6, 5))).astype(np.float32)
    got = quantile_huber_loss(jnp.asarray(theta), jnp.asarray(targets), quantile_midpoints(8), kappa)
    np.testing.assert_allclose(got, quantile_huber_reference(theta, targets, kappa), rtol=1e-5)
    np.testing.assert_allclose(quantile_midpoints(4), [0.125, 0.375, 0.625, 0.875])


def autodiff_quantile_huber(quantiles, targets, fractions, kappa):
    """The loss as plain jnp, differentiated by autodiff (the hand-written gradient's reference)."""
    u = jax.lax.stop_gradient(targets)[..., None, :] - quantiles[..., :, None]
    huber = jnp.where(jnp.abs(u) <= kappa, 0.5 * u**2, kappa * (jnp.abs(u) - 0.5 * kappa))
    return jnp.sum(jnp.mean(jnp.abs(fractions[..., :, None] - (u < 0)) * huber / kappa, axis=-1), axis=-1)


@pytest.mark.parametrize("kappa", [1.0, 0.3])
@pytest.mark.parametrize("shared_fractions", [True, False])
def test_quantile_huber_gradient_matches_autodiff(kappa, shared_fractions):
    keys = jax.random.split(jax.random.PRNGKey(3), 3)
    quantiles, targets = jax.random.normal(keys[0], (6, 8)), 2 * jax.random.normal(keys[1], (6, 5))
    fractions = quantile_midpoints(8) if shared_fractions else jax.random.uniform(keys[2], (6, 8))
    weights = jnp.arange(1.0, 7.0)  # a non-uniform cotangent

    def total(loss):
        return lambda q, t, f: jnp.sum(weights * loss(q, t, f, kappa))

    got = jax.grad(total(quantile_huber_loss), argnums=(0, 1, 2))(quantiles, targets, fractions)
    want = jax.grad(total(autodiff_quantile_huber), argnums=(0, 1, 2))(quantiles, targets, fractions)
    for g, w in zip(got, want):
        assert g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
    assert not np.any(got[1])  # targets are constants
    assert np.any(got[0]) and np.any(got[2])


def test_quantile_representation_target_and_value():
    rep = values.make("quantile", 4)
    nxt = jnp.array([[1.0, 2.0, 3.0, 4.0]])
    target = rep.target(nxt, jnp.array([1.0]), jnp.array([0.5]), jnp.array([2.0]))
    np.testing.assert_allclose(target, [[2.5, 3.0, 3.5, 4.0]])
    np.testing.assert_allclose(rep.target_value(target), [3.25])
    np.testing.assert_allclose(rep.decode(nxt), [2.5])


def test_clipped_target_is_min_for_scalars_and_the_lower_member_for_distributions():
    nxt = jnp.array([[[1.0], [5.0]], [[2.0], [4.0]]])  # [members, batch, 1]
    returns, discount = jnp.array([0.0, 1.0]), jnp.array([0.5, 1.0])
    np.testing.assert_allclose(values.clipped_target(values.make("mse"), nxt, returns, discount), [0.5, 5.0])
    rep = values.make("c51", 3, 0.0, 2.0)
    low, high = jnp.log(jnp.array([0.8, 0.1, 0.1])), jnp.log(jnp.array([0.1, 0.1, 0.8]))
    nxt = jnp.stack([jnp.stack([high, low]), jnp.stack([low, high])])  # member 1 is lower for sample 0, member 0 for 1
    target = values.clipped_target(rep, nxt, jnp.zeros(2), jnp.ones(2))
    np.testing.assert_allclose(target, [[0.8, 0.1, 0.1], [0.8, 0.1, 0.1]], atol=1e-6)


def test_soft_target_through_the_scalar_representation_equals_the_sac_formula():
    q = jax.random.normal(jax.random.PRNGKey(0), (2, 16, 1))
    r, term, logp = jax.random.normal(jax.random.PRNGKey(1), (16,)), jnp.arange(16) % 3 == 0, jnp.linspace(-2, 1, 16)
    alpha, gamma = 0.2, 0.99
    discount = gamma * (1.0 - term.astype(jnp.float32))
    got = values.clipped_target(values.make("mse"), q, r, discount, shift=-alpha * logp)
    want = r + gamma * (1 - term) * (jnp.min(q[..., 0], axis=0) - alpha * logp)
    np.testing.assert_allclose(got, want, rtol=1e-6)


# ---------------------------------------------------------------- rollout and the off-policy loop


def test_unroll_records_true_next_observations_and_episode_totals():
    env = make("gymnax/CartPole-v1", episode_length=5)
    vec = training_env(env, 3)

    def policy(obs, starts, carry, key):
        return PolicyStep(jnp.zeros(obs.shape[0], jnp.int32), {"starts": starts}, carry + 1)

    out = unroll(vec, policy, vec.reset(jax.random.PRNGKey(0)), jnp.zeros(()), jax.random.PRNGKey(1), 12)
    t = out.transitions
    assert t.obs.shape == (12, 3, 4) and int(out.carry) == 12
    done = np.asarray(t.terminated | t.truncated)
    assert done.sum() == float(out.totals.episode_count) and done.sum() >= 6  # episodes of at most 5 steps
    # after an episode end the next observation is the reset one, but next_obs is the true final one
    step, env_index = np.argwhere(done)[0]
    assert not np.array_equal(t.next_obs[step, env_index], t.obs[step + 1, env_index])
    going_on = ~done[:-1]
    np.testing.assert_array_equal(t.next_obs[:-1][going_on], t.obs[1:][going_on])
    np.testing.assert_array_equal(t.extras["starts"][1:], done[:-1])  # starts: the obs begins a new episode


def test_first_episode_mask():
    t = Transition(
        *(jnp.zeros((4, 2)),) * 3,
        jnp.array([[0, 0], [1, 0], [0, 1], [1, 0]], bool),
        jnp.zeros((4, 2), bool),
        jnp.zeros((4, 2)),
    )
    np.testing.assert_array_equal(first_episode_mask(t), [[1, 1], [1, 1], [0, 1], [0, 0]])


def test_unroll_splits_keys_per_step_as_asked():
    env = Vmap(make("gymnax/CartPole-v1"), 1)

    def policy(obs, starts, carry, keys):
        return PolicyStep(jnp.zeros((1,), jnp.int32), {"keys": jnp.stack(keys)}, carry)

    key = jax.random.PRNGKey(7)
    out = unroll(env, policy, env.reset(key), (), key, 2, keys_per_step=2)
    first, second = jax.random.split(key, 3), jax.random.split(jax.random.split(key, 3)[0], 3)
    np.testing.assert_array_equal(out.transitions.extras["keys"][0], first[1:])  # key, k1, k2 = split(key, 3)
    np.testing.assert_array_equal(out.transitions.extras["keys"][1], second[1:])
    np.testing.assert_array_equal(out.key, second[0])


def test_adding_steps_at_once_equals_adding_them_one_by_one():
    buffer = ReplayBuffer(capacity=12, sample_batch_size=4, num_envs=2)
    example = Transition(
        jnp.zeros(3), jnp.zeros((), jnp.int32), jnp.zeros(()), jnp.zeros((), bool), jnp.zeros((), bool), jnp.zeros(3)
    )
    steps = jax.tree.map(
        lambda x: jnp.arange(9 * 2 * max(x.size, 1), dtype=jnp.float32).reshape((9, 2, *x.shape)).astype(x.dtype),
        example,
    )
    one_by_one = buffer.init(example)
    for t in range(9):
        one_by_one = buffer.add(one_by_one, jax.tree.map(lambda x, t=t: x[t], steps))
    at_once = buffer.init(example)
    for chunk in (slice(0, 4), slice(4, 9)):  # the second add of 5 wraps around the 6 slots per env
        at_once = buffer.add_steps(at_once, jax.tree.map(lambda x, c=chunk: x[c], steps))
    assert tree_equal(at_once, one_by_one)


def test_td_batch_n_step_returns_and_bootstrap_observation():
    config = off_policy.OffPolicyConfig(n_step=3, gamma=0.5)
    loop = type("L", (), {"obs_stats": None})()  # unread: normalize_observations is off
    state = type("S", (), {"hparams": common.Hyperparams.from_config(config), "loop": loop})()
    obs = jnp.arange(2 * 3, dtype=jnp.float32).reshape(2, 3, 1)
    sample = Transition(
        obs,
        jnp.zeros((2, 3), jnp.int32),
        jnp.array([[1.0, 2.0, 4.0], [1.0, 2.0, 4.0]]),
        jnp.array([[0, 0, 0], [0, 1, 0]], bool),
        jnp.zeros((2, 3), bool),
        obs + 100,
        {"x": obs[..., 0]},
    )
    batch = off_policy.td_batch(config, state, sample)
    np.testing.assert_allclose(batch.returns, [3.0, 2.0])  # 1 + .5*2 + .25*4; stops at the termination
    np.testing.assert_allclose(batch.discount, [0.125, 0.0])
    np.testing.assert_array_equal(batch.next_obs[:, 0], [102.0, 104.0])  # next_obs of the last transition used
    np.testing.assert_array_equal(batch.obs[:, 0], [0.0, 3.0])
    np.testing.assert_array_equal(batch.extras["x"], [0.0, 3.0])
    expected = n_step_return(sample.reward, sample.terminated, sample.truncated, 0.5)
    np.testing.assert_allclose(batch.returns, expected[0])


# ---------------------------------------------------------------- traced hyperparameters


@dataclasses.dataclass(frozen=True)
class _Toy:
    from rlx.config import field

    size: int = field(3)
    rate: float = field(0.1, traced=True)
    clip: float | None = field(None, traced=True)


def test_hyperparams_come_from_traced_fields_and_vmap():
    hp = common.Hyperparams.from_config(_Toy())
    assert hp.as_dict().keys() == {"rate"} and hp.get("clip") is None  # None: off, left out of the state
    assert common.Hyperparams.from_config(_Toy(clip=1.0)).get("clip") == 1.0
    with pytest.raises(AttributeError, match="no traced hyperparameter 'size'"):
        _ = hp.size
    stacked = jax.tree.map(lambda *x: jnp.stack(x), hp, hp.replace(rate=jnp.float32(0.5)))
    np.testing.assert_allclose(jax.vmap(lambda h: h.rate * 2)(stacked), [0.2, 1.0])
    paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(hp)[0]]
    assert paths == [".rate"]


def test_bernoulli_actor_sample_gives_the_exact_gradient_for_a_linear_critic():
    """``off_policy.actor_sample`` of a Bernoulli (bang-bang SAC): the log-prob term is minus the analytic entropy,
    and for a critic linear in the action the straight-through loss's gradient is the exact gradient of
    ``E_a[alpha log pi(a) - w . a] = -alpha H(p) - w . (2p - 1)`` (NumPy, by hand)."""
    logits = jnp.array([[0.4, -1.5], [2.0, 0.1], [-0.3, 0.8]])
    w, alpha = jnp.array([1.5, -0.7]), 0.3

    def loss(x):
        dist = Bernoulli(x)
        raw, log_prob = off_policy.actor_sample(dist, jax.random.PRNGKey(11))
        return jnp.sum(alpha * log_prob - dist.env_action(raw) @ w), log_prob

    (_, log_prob), grad = jax.value_and_grad(loss, has_aux=True)(logits)
    x = np.asarray(logits, np.float64)
    p = 1.0 / (1.0 + np.exp(-x))
    entropy = -np.sum(p * np.log(p) + (1 - p) * np.log(1 - p), axis=-1)
    np.testing.assert_allclose(log_prob, -entropy, rtol=1e-5)
    # d/dx of -alpha H - w (2p - 1), with dp/dx = p (1 - p) and dH/dp = log((1 - p) / p)
    expected = p * (1 - p) * (-alpha * np.log((1 - p) / p) - 2.0 * np.asarray(w))
    np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-7)


def test_bernoulli_expectation_sums_every_extreme_action_exactly():
    """``Bernoulli.expectation`` (bang-bang SAC's ``bang_bang_gradient: exact``) against a NumPy sum over
    the 2^3 joint actions in {-1, 1}^3 of a non-linear value, and its gradient against central differences."""
    logits = jnp.array([[0.4, -1.5, 0.2], [2.0, 0.1, -0.7]])
    w = np.array([1.5, -0.7, 0.3])

    def value_of(action):  # [batch, 3] -> [batch]
        return jnp.sin(action @ w) + action[..., 0] * action[..., 1]

    def reference(x):
        p = 1.0 / (1.0 + np.exp(-x))
        total = np.zeros(len(x))
        for bits in itertools.product((0, 1), repeat=3):
            action = 2.0 * np.array(bits) - 1.0
            prob = np.prod(np.where(np.array(bits) == 1, p, 1 - p), axis=-1)
            total += prob * (np.sin(action @ w) + action[0] * action[1])
        return total

    x = np.asarray(logits, np.float64)
    np.testing.assert_allclose(Bernoulli(logits).expectation(value_of), reference(x), rtol=1e-5)
    grad = jax.grad(lambda y: jnp.sum(Bernoulli(y).expectation(value_of)))(logits)
    eps, numeric = 1e-6, np.zeros_like(x)
    for index in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[index] = eps
        numeric[index] = (reference(x + step).sum() - reference(x - step).sum()) / (2 * eps)
    np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-6)


def test_exact_bang_bang_gradient_refuses_more_than_ten_action_dimensions():
    from types import SimpleNamespace

    from rlx.algos import sac
    from rlx.config import ConfigError
    from rlx.envs.base import Box

    config = sac.Config(
        actor=dataclasses.replace(sac.Config().actor, distribution="bernoulli"),
        target_entropy_per_dim=0.3,
        bang_bang_gradient="exact",
    )
    env = SimpleNamespace(action_space=Box((11,), (-1.0,) * 11, (1.0,) * 11))
    with pytest.raises(ConfigError, match=r"agent.bang_bang_gradient: exact sums over 2\^\|A\| actions, so needs"):
        sac.init(config, env, jax.random.PRNGKey(0), 1)
