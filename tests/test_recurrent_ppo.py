"""Recurrent PPO (``agent.policy.recurrent`` / ``agent.value.recurrent``: gru, lstm): the update recomputes exactly
the log-probs and values the collection saw, carries reset where episodes start, sequences of different envs do not
mix, the value bootstrap continues the carry, minibatches hold whole env sequences, memory lives in the state and
resumes bitwise, evaluation threads it, config errors, and the partially observed CartPole (positions only) that a
GRU policy learns and a feed-forward one does not."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import assert_resumes_bitwise, final_row

from rlx import driver, presets
from rlx.algos import policy_gradient, ppo
from rlx.config import ConfigError, merge
from rlx.envs import make
from rlx.nets import Net
from rlx.nets.recurrent import RecurrentMLP, sequence, with_next, zero_carry

PO_CARTPOLE = "gymnax/CartPole-v1?observe=[0,2]"


def small(cell, **agent):
    data = {
        "algo": "ppo",
        "env": {"name": "gymnax/CartPole-v1", "observe": [0, 2], "episode_length": 20},
        "agent": {
            "num_envs": 4,
            "unroll_length": 32,
            "num_minibatches": 2,
            "num_epochs": 2,
            "policy": {"hidden": [8, 8], "recurrent": cell},
            "value": {"hidden": [8], "recurrent": cell},
            **agent,
        },
        "total_env_steps": 512,
        "num_chunks": 2,
        "eval_episodes": 2,
    }
    return driver.build_config(data)


def collected(cell):
    config = small(cell)
    env = make(config.env)
    state = ppo.init(config.agent, env, jax.random.PRNGKey(0), 4)
    state, _ = jax.jit(lambda s: ppo.train_step(config.agent, env, s))(state)  # trained params and a live memory
    state, rollout, _ = ppo.collect(config.agent, env, state)
    return config.agent, env, state, rollout


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_update_recomputes_the_collected_log_probs_and_values(cell):
    config, env, state, rollout = collected(cell)
    assert bool(rollout.start.any()) and bool((~rollout.start).any())  # 20-step episodes end inside the unroll
    batch = ppo.make_batch(config, env, state, rollout)
    assert isinstance(batch, ppo.SequenceBatch) and batch.obs.shape == (4, 32, 2)  # env-major sequences
    dist, values = ppo.batch_outputs(config, env, state.params, batch)
    np.testing.assert_allclose(dist.log_prob(batch.raw_action), batch.log_prob, atol=1e-5)
    # the value bootstrap: V(next_obs_t) continues step t's carry, so within an episode it is V(obs_{t+1})
    obs = policy_gradient._prepare_obs(config, state.obs_stats, rollout.obs)
    next_obs = policy_gradient._prepare_obs(config, state.obs_stats, rollout.next_obs)
    value_net = policy_gradient._networks(config, env)[1]
    v, next_v = with_next(value_net, state.params.value, rollout.initial_memory.value, obs, next_obs, rollout.start)
    v, next_v = v[..., 0], next_v[..., 0]
    np.testing.assert_allclose(values, v.T, atol=1e-5)
    same_episode = ~np.asarray(rollout.start[1:])
    np.testing.assert_allclose(np.asarray(next_v[:-1])[same_episode], np.asarray(v[1:])[same_episode], atol=1e-5)
    # a subset of envs gives the same outputs as in the full batch: sequences do not mix
    part = jax.tree.map(lambda x: x[1:3], batch)
    part_dist, part_values = ppo.batch_outputs(config, env, state.params, part)
    np.testing.assert_allclose(part_dist.log_prob(part.raw_action), batch.log_prob[1:3], atol=1e-5)
    np.testing.assert_allclose(part_values, values[1:3], atol=1e-6)


def test_carry_is_zeroed_where_an_episode_starts():
    net = Net(hidden=(8,), recurrent="gru")
    module = RecurrentMLP(net, (3,))
    params = module.init(jax.random.PRNGKey(0), zero_carry(net, 1), jnp.zeros((1, 2)), jnp.ones((1,), bool))["params"]
    obs = jax.random.normal(jax.random.PRNGKey(1), (5, 2, 2))  # [T, B, 2]
    starts = jnp.array([[True, True], [False, False], [False, True], [False, False], [True, False]])
    carry, out = sequence(module, params, 5.0 + zero_carry(net, 2), obs, starts)
    for b in range(2):  # a fresh zero-carry run from each start reproduces the outputs
        for t0 in np.flatnonzero(np.asarray(starts[:, b])):
            t1 = next((t for t in range(t0 + 1, 5) if starts[t, b]), 5)
            _, fresh = sequence(module, params, zero_carry(net, 1), obs[t0:t1, b : b + 1], starts[t0:t1, b : b + 1])
            np.testing.assert_allclose(fresh[:, 0], out[t0:t1, b], atol=1e-6)
    assert carry.shape == (2, 8)


def test_layer_norm_applies_to_every_layer_of_a_recurrent_network_and_residual_is_refused():
    """``norm: layer`` was silently ignored by a recurrent network of one hidden layer (its first layer had none) and
    ``residual: true`` by every recurrent network (a probe): the first layer is now normalized as an MLP layer is,
    and residual is refused before anything compiles; the refusal names recurrent's own needs first."""
    obs = jax.random.normal(jax.random.PRNGKey(1), (3, 2)) * 5.0 + 7.0

    def first_layer(norm):
        net = Net(hidden=(8,), recurrent="gru", norm=norm)
        module = RecurrentMLP(net, (3,))
        params = module.init(jax.random.PRNGKey(0), zero_carry(net, 3), obs, jnp.ones((3,), bool))["params"]
        return params, module.apply({"params": params}, zero_carry(net, 3), obs, jnp.ones((3,), bool))[1]

    plain, plain_out = first_layer("none")
    normed, normed_out = first_layer("layer")
    assert "LayerNorm_0" in normed and "LayerNorm_0" not in plain
    # the same weights, the first layer's pre-activations normalized to zero mean and unit variance per sample
    h = np.asarray(obs @ plain["Dense_0"]["kernel"] + plain["Dense_0"]["bias"])
    h = (h - h.mean(-1, keepdims=True)) / np.sqrt(h.var(-1, keepdims=True) + 1e-6)
    carry, x = nn.GRUCell(8).apply({"params": plain["GRUCell_0"]}, zero_carry(Net(hidden=(8,)), 3), np.maximum(h, 0))
    expected = x @ plain["Dense_1"]["kernel"] + plain["Dense_1"]["bias"]
    np.testing.assert_allclose(normed_out, expected, atol=1e-5)
    assert not np.allclose(normed_out, plain_out, atol=1e-3)
    with pytest.raises(ConfigError, match=r"^agent.policy.residual: not available with recurrent gru"):
        Net(hidden=(8, 8), recurrent="gru", residual=True).check("agent.policy.")
    with pytest.raises(ConfigError, match=r"^agent.policy.recurrent: needs architecture mlp"):  # not kernel_init
        Net(hidden=(8, 8), recurrent="gru", architecture="simbav2", kernel_init="pytorch").check("agent.policy.")


def test_minibatches_hold_whole_env_sequences_and_memory_resumes_bitwise(tmp_path, monkeypatch):
    config = small("gru")
    exp = driver.Experiment(config)
    state = exp.init()
    assert state.memory.policy.shape == (4, 8) and state.memory.value.shape == (4, 8)
    first, _ = exp.run_chunk(state, 0)
    assert float(jnp.abs(first.memory.policy).sum()) > 0
    assert_resumes_bitwise(exp, first, tmp_path)
    # minibatches are cut along the env axis: each gradient step sees num_envs / num_minibatches whole sequences
    seen = []
    original = ppo.common.minibatch_epochs

    def spy(gradient_step, params, opt_state, key, batch, num_epochs, num_minibatches):
        seen.append((jax.tree.leaves(batch)[0].shape, num_minibatches))
        return original(gradient_step, params, opt_state, key, batch, num_epochs, num_minibatches)

    monkeypatch.setattr(ppo.common, "minibatch_epochs", spy)
    jax.eval_shape(lambda s: ppo.train_step(exp.static_agent, exp.env, s), state)
    assert seen == [((4, 32, 2), 2)]
    evaluation = exp.evaluate(first, 0)  # threads the memory through a whole episode
    assert np.isfinite(evaluation["eval/episode_return"])


@pytest.mark.parametrize(
    ("algo", "agent", "message"),
    [
        ("ppo", {"num_minibatches": 4, "num_envs": 6, "policy": {"recurrent": "gru"}}, "must divide num_envs = 6"),
        (
            "mdpo",
            {"policy": {"recurrent": "gru"}},
            "agent.policy.recurrent: this algorithm takes feed-forward networks only (PPO's",
        ),
        (
            "sac",
            {"critic": {"recurrent": "lstm"}},
            "agent.critic.recurrent: this algorithm takes feed-forward networks only",
        ),
        ("ppo", {"value": {"recurrent": "rnn"}}, "agent.value.recurrent"),
    ],
)
def test_config_errors_name_the_field(algo, agent, message):
    env = "gymnax/Pendulum-v1" if algo == "sac" else "gymnax/CartPole-v1"
    with pytest.raises(ConfigError) as info:
        driver.build_config({"algo": algo, "env": {"name": env}, "agent": agent})
    assert message in str(info.value) and "\n" not in str(info.value)


def positions_cartpole(**agent):
    """ppo_gru_cartpole_positions.yaml at 131k steps (a quarter of it), with ``agent`` fields replaced."""
    data = merge(
        presets.load("ppo_gru_cartpole_positions"), {"total_env_steps": 131072, "num_chunks": 2, "agent": agent}
    )
    return driver.build_config(data)


def test_gru_policy_learns_cartpole_without_velocities_where_a_feedforward_one_cannot():
    # Seeds 0-4, final evaluation, default / AVX kernels: GRU 402 / 329 / 317 / 402 / 443 and 387 / 348 / 358 /
    # 409 / 365; the same settings feed-forward 47 / 42 / 45 / 47 / 42 and 47 / 44 / 43 / 46 / 44 (BENCHMARKS "Recurrent
    # PPO"). The vmapped inits of the measurements also check that the GRU's orthogonal init does not deadlock.
    gru = final_row(positions_cartpole())
    assert gru["eval/episode_return"] >= 250, gru
    feedforward = positions_cartpole(policy={"recurrent": "none"}, value={"recurrent": "none"})
    final = final_row(feedforward)
    assert final["eval/episode_return"] <= 100, final
