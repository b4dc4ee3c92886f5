"""DQN, C51 and HL-Gauss: exact maths against hand-computed and NumPy references, learning on CartPole,
and fail-fast errors."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import final_row, preset, small_dqn

from rlx import driver
from rlx.config import ConfigError
from rlx.nets import MLP, QNet
from rlx.ops.distributional import bin_centres, categorical_projection, hl_gauss_histogram, support
from rlx.ops.returns import n_step_return


def n_step_reference(rewards, terminated, truncated, gamma):
    G, discount, last = [], [], []
    for r, te, tr in zip(rewards, terminated, truncated):
        total, k = 0.0, 0
        while True:
            total += gamma**k * r[k]
            if te[k] or tr[k] or k == len(r) - 1:
                break
            k += 1
        G.append(total)
        last.append(k)
        discount.append(0.0 if te[k] else gamma ** (k + 1))
    return np.array(G), np.array(discount), np.array(last)


@pytest.mark.parametrize("n", [1, 3, 5])
def test_n_step_return_matches_numpy_with_terminations_and_truncations(n):
    rng = np.random.default_rng(n)
    B = 200
    rewards = rng.normal(size=(B, n)).astype(np.float32)
    terminated = rng.random((B, n)) < 0.15
    truncated = (rng.random((B, n)) < 0.15) & ~terminated
    G, discount, last = n_step_return(jnp.asarray(rewards), jnp.asarray(terminated), jnp.asarray(truncated), 0.9)
    ref_G, ref_discount, ref_last = n_step_reference(rewards, terminated, truncated, 0.9)
    np.testing.assert_allclose(G, ref_G, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(discount, ref_discount, rtol=1e-6)
    np.testing.assert_array_equal(last, ref_last)


def test_n_step_hand_computed():
    r = jnp.array([[1.0, 2.0, 4.0], [1.0, 2.0, 4.0], [1.0, 2.0, 4.0]])
    te = jnp.array([[False, False, False], [False, True, False], [False, False, False]])
    tr = jnp.array([[False, False, False], [False, False, False], [True, False, False]])
    G, discount, last = n_step_return(r, te, tr, 0.5)
    np.testing.assert_allclose(G, [1 + 1 + 1, 1 + 1, 1])  # 1 + .5*2 + .25*4; stop at termination; at truncation
    np.testing.assert_allclose(discount, [0.125, 0.0, 0.5])  # bootstrap gamma^3; none; gamma^1 from final obs
    np.testing.assert_array_equal(last, [2, 1, 0])


def test_c51_projection_hand_computed():
    atoms = support(0.0, 4.0, 5)  # [0, 1, 2, 3, 4]
    p = jnp.array([[0.0, 0.5, 0.5, 0.0, 0.0]] * 4)
    returns = jnp.array([1.0, 3.0, 2.5, -3.0])
    discount = jnp.array([0.5, 1.0, 0.0, 0.5])
    out = categorical_projection(p, atoms, returns, discount)
    # row 0: atoms 1 -> 1.5 (split .25/.25 onto atoms 1 and 2), 2 -> 2 (all onto atom 2)
    # row 1: 1 -> 4, 2 -> 5 (beyond v_max: clipped to the last atom)
    # row 2: terminal (discount 0): all mass at 2.5, split between atoms 2 and 3
    # row 3: 1 -> -2.5, 2 -> -2 (below v_min: first atom)
    expected = [[0, 0.25, 0.75, 0, 0], [0, 0, 0, 0, 1], [0, 0, 0.5, 0.5, 0], [1, 0, 0, 0, 0]]
    np.testing.assert_allclose(out, expected, atol=1e-6)
    np.testing.assert_allclose(out.sum(-1), 1.0, rtol=1e-6)


def c51_projection_reference(probs, v_min, v_max, returns, discount):
    """C51's projection as a loop in float64: each target atom's mass split between its two neighbouring atoms."""
    batch, num_atoms = probs.shape
    atoms = np.linspace(v_min, v_max, num_atoms)
    delta = (v_max - v_min) / (num_atoms - 1)
    out = np.zeros((batch, num_atoms))
    for b in range(batch):
        for j in range(num_atoms):
            position = (np.clip(returns[b] + discount[b] * atoms[j], v_min, v_max) - v_min) / delta
            lower = min(int(np.floor(position)), num_atoms - 1)
            out[b, lower] += probs[b, j] * (1 - (position - lower))
            if lower + 1 < num_atoms:
                out[b, lower + 1] += probs[b, j] * (position - lower)
    return out


# [-1500, 0] with 101 atoms is fasttd3_pendulum's support: in float32 its top atom's index is 100.0000076
@pytest.mark.parametrize("v_min, v_max, num_atoms", [(-1500.0, 0.0, 101), (-10.0, 10.0, 51), (0.0, 4.0, 5)])
def test_c51_projection_matches_a_numpy_loop_and_keeps_all_mass(v_min, v_max, num_atoms):
    rng = np.random.default_rng(num_atoms)
    batch = 64
    probs = rng.dirichlet(np.full(num_atoms, 0.3), batch).astype(np.float32)
    width = v_max - v_min
    returns = rng.uniform(-0.6 * width, 0.6 * width, batch).astype(np.float32)  # some past either edge
    returns[:4] = [0.0, v_max, v_min, width / (num_atoms - 1)]  # on atoms exactly
    discount = rng.choice(np.float32([0.0, 0.5, 0.99, 1.0]), batch)
    got = categorical_projection(
        jnp.asarray(probs), support(v_min, v_max, num_atoms), jnp.asarray(returns), jnp.asarray(discount)
    )
    want = c51_projection_reference(probs.astype(np.float64), v_min, v_max, returns, discount)
    # float32 targets near -1500 are 1.2e-4 apart, ~1e-5 of an atom: the reference's float64 positions differ that much
    np.testing.assert_allclose(got, want, atol=3e-5)
    np.testing.assert_allclose(got.sum(-1), 1.0, atol=1e-6)
    assert float(got.min()) >= 0.0


@pytest.mark.parametrize("target", [-10.0, -7.3, 0.0, 0.04, 3.3, 9.99, 10.0, 13.0, 1e4])
def test_hl_gauss_histogram_sums_to_one_and_recovers_target(target):
    v_min, v_max, bins = -10.0, 10.0, 51
    width = (v_max - v_min) / bins
    h = hl_gauss_histogram(jnp.array([target]), v_min, v_max, bins, 0.75 * width)[0]
    assert h.shape == (bins,) and bool(jnp.all(h >= 0))
    np.testing.assert_allclose(h.sum(), 1.0, rtol=1e-5)
    decoded = float(jnp.sum(h * bin_centres(v_min, v_max, bins)))
    assert abs(decoded - np.clip(target, v_min, v_max)) <= width, decoded  # within one bin (edges included)
    if v_min + 3 * width < target < v_max - 3 * width:
        assert abs(decoded - target) < 1e-3  # exact in the interior


def test_dueling_head_centres_advantages():
    env_obs = jnp.ones((3, 4))
    net = MLP(QNet(hidden=(8,), activation="relu", kernel_init="lecun_normal"), (3, 1), dueling=True)
    params = net.init(jax.random.PRNGKey(0), env_obs)
    out = net.apply(params, env_obs)[..., 0]
    value = params["params"]["Dense_2"]  # the state-value stream
    hidden = jax.nn.relu(env_obs @ params["params"]["Dense_0"]["kernel"] + params["params"]["Dense_0"]["bias"])
    np.testing.assert_allclose(out.mean(-1), (hidden @ value["kernel"] + value["bias"])[:, 0], rtol=1e-5)


# Seeds 0-4, one vmapped sweep each (scripts/learning_margins.py); default kernels / --xla_cpu_max_isa=AVX:
# dqn 500/500/500/500/234 and 491/500/500/500/261; c51 473/500/500/500/500 and 500 for every seed;
# hl_gauss 500 for every seed on both; qr_dqn (with the hand-written quantile gradient, 2026-12-02)
# 500/191/500/500/500 and 500/174/467/500/500 (BENCHMARKS). Each test trains one seed that ends at 500 on both
# kernel sets, alone (AMD EPYC AVX2 / AVX): dqn seed 1 500 / 500, c51 seed 1 500 / 500, qr_dqn seed 0 500 / 500
# (70 / 75 s), hl_gauss seed 0 500 / 500. The 3-seed medians took 120 / 277 / 559 s.
# At the five chunks, alone, AMD EPYC with AVX-512 / under AVX (2026-12-04): c51 seed 1 168 / 500 / 495 / 500 / 500
# and 123 / 449 / 500 / 500 / 500, qr_dqn seed 0 310 / 400 / 500 / 500 / 500 and 311 / 479 / 500 / 500 / 500,
# hl_gauss seed 0 336 / 427 / 500 / 500 / 500 and 347 / 385 / 500 / 500 / 500, dqn seed 1 248 / 399 / 499 / 500 /
# 500 and 268 / 441 / 500 / 500 / 500: at or above 475 from the third chunk on, so each test stops after it (300k
# steps; the whole run's numbers up to there, epsilon schedule included).
@pytest.mark.parametrize(
    "name,seed,chunks",
    [
        ("dqn_cartpole.yaml", 1, 3),
        ("c51_cartpole.yaml", 1, 3),
        ("qr_dqn_cartpole.yaml", 0, 3),
        ("dqn_hl_gauss_cartpole.yaml", 0, 3),
    ],
)
def test_learns_cartpole(name, seed, chunks):
    final = final_row(preset(name, seed=seed), chunks=chunks)
    assert final["eval/episode_return"] >= 475, final


def test_prioritized_replay_learns_cartpole():
    # dqn_cartpole with replay: prioritized (alpha 0.6, beta 0.4 -> 1). Seeds 0-9 in one sweep (2026-12-06, Intel
    # Xeon, AVX-512): every seed at 500 from 200k steps on (BENCHMARKS "Prioritized replay"). Seed 7 alone evaluates
    # 422 / 500 / 500 / 500 / 500 at the five chunks with the default kernels and 284 / 500 / 500 / 500 / 500 under
    # --xla_cpu_max_isa=AVX (seed 3: 387 / 500 / ... and 314 / 271 / 500 / ...), so the test stops after the second
    # chunk (200k steps).
    config = preset("dqn_cartpole.yaml", seed=7)
    config = dataclasses.replace(config, agent=dataclasses.replace(config.agent, replay="prioritized"))
    final = final_row(config, chunks=2)
    assert final["eval/episode_return"] >= 475, final


@pytest.mark.parametrize(
    "agent",
    [
        {"q": {"dueling": True, "hidden": [16]}, "n_step": 3, "target_update": "polyak"},
        {"q": {"value": "c51", "v_min": 0.0, "v_max": 50.0, "hidden": [16]}, "n_step": 3, "double_q": False},
        {"q": {"value": "hl_gauss", "dueling": True, "v_min": 0.0, "v_max": 50.0, "hidden": [16]}},
        # Rainbow's parts but noisy nets: C51, dueling, 3-step returns, double Q, prioritized replay
        {
            "q": {"value": "c51", "dueling": True, "v_min": 0.0, "v_max": 50.0, "hidden": [16]},
            "n_step": 3,
            "replay": "prioritized",
            "priority_exponent": 0.5,
        },
    ],
)
def test_option_combinations_run(agent):
    result = driver.train(small_dqn(num_chunks=1, **agent), None, progress=False)
    assert np.isfinite(result.rows[-1]["train/loss"]) and result.rows[-1]["train/loss"] > 0


@pytest.mark.parametrize(
    "data,expected",
    [
        (
            {"algo": "dqn", "env": {"name": "gymnax/Pendulum-v1"}},
            "algo dqn cannot train on env gymnax/Pendulum-v1: dqn needs discrete actions, got box",
        ),
        (
            {"algo": "dqn", "agent": {"q": {"value": "expectile"}}},
            "agent.q.value: must be one of mse, huber, hl_gauss, c51, quantile",
        ),
        (
            {"algo": "dqn", "agent": {"q": {"value": "c51", "v_min": 5.0, "v_max": 5.0}}},
            "agent.q.v_max: must be > v_min = 5",
        ),
        (
            {"algo": "dqn", "agent": {"num_envs": 4, "buffer_size": 8, "n_step": 3}},
            "agent.buffer_size: must hold 3 transitions per env (4 envs); got 8",
        ),
    ],
)
def test_bad_dqn_configs_fail_before_compiling(data, expected, monkeypatch):
    monkeypatch.setattr(driver.Experiment, "init", lambda *a, **k: pytest.fail("compiled"))
    with pytest.raises(ConfigError) as info:
        driver.train(driver.build_config(data), None, progress=False)
    assert expected in str(info.value) and "\n" not in str(info.value)
