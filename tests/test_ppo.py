"""PPO/A2C: learning with fixed seeds, the A2C preset's gradient step, determinism."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import final_row, final_rows, median, preset, tree_equal

from rlx import driver
from rlx.algos import ppo
from rlx.envs import make


def test_ppo_learns_cartpole():
    # Seeds 0-4, one vmapped sweep (scripts/learning_margins.py): eval 476/500/500/483/444 and training return
    # 416/465/495/415/329 on this machine's default kernels; 500/500/500/490/500 and 484/453/498/474/486 with
    # XLA_FLAGS=--xla_cpu_max_isa=AVX. One seed sits at the edge of 475, so the median of three is asserted.
    # The vmapped batch size changes the kernels too: the 3-seed sweep below gave a training-return median of 368
    # under AVX (eval median 500), so the training return (stochastic policy; a random one scores ~22) is held
    # to 300, below every seed and median measured.
    runs = final_rows(preset("ppo_cartpole.yaml"))
    assert median(runs) >= 475, runs  # deterministic policy, 16 episodes
    assert median(runs, "train/episode_return") >= 300, runs  # stochastic policy while training


def test_ppo_learns_brax_inverted_pendulum():
    # Seeds 0-4 reach 1000 on the default kernels and with XLA_FLAGS=--xla_cpu_max_isa=AVX: one seed suffices.
    result = driver.train(preset("ppo_inverted_pendulum.yaml"), None, progress=False)
    final = result.rows[-1]
    assert final["eval/episode_return"] >= 900, final


def test_bang_bang_ppo_learns_brax_inverted_pendulum():
    # Bernoulli policy on {-1, 1} per dimension (agent.policy.distribution: bernoulli). Seeds 0-4 of the PPO preset
    # reach 1000 by 82k steps (4 of 5 already at 41k; the Gaussian policy: 0 of 5 at 41k): BENCHMARKS "Bang-bang".
    config = preset("ppo_inverted_pendulum.yaml", total_env_steps=81920, num_chunks=2)
    policy = dataclasses.replace(config.agent.policy, distribution="bernoulli")
    config = dataclasses.replace(config, agent=dataclasses.replace(config.agent, policy=policy))
    final = final_row(config)
    assert final["eval/episode_return"] >= 900, final


@pytest.fixture(scope="module")
def small_cartpole():
    """A short CartPole run config: 4 chunks of 2 iterations of 4 envs x 32 steps."""
    agent = dict(
        num_envs=4, unroll_length=32, num_minibatches=2, num_epochs=2, policy={"hidden": [16]}, value={"hidden": [16]}
    )
    return driver.build_config({"total_env_steps": 4 * 32 * 8, "num_chunks": 4, "agent": agent})


def run_all_chunks(experiment, state):
    for chunk in range(experiment.plan.num_chunks):
        state, _ = experiment.run_chunk(state, chunk)
    return state


def test_same_seed_twice_is_bitwise_identical_and_other_seed_differs(small_cartpole):
    first = driver.train(small_cartpole, None, progress=False).state
    again = driver.train(small_cartpole, None, progress=False)  # compiled again from scratch
    assert tree_equal(first, again.state)
    other = run_all_chunks(again.experiment, again.experiment.init(seed=1))
    assert not tree_equal(first.params, other.params)


def _as_dict(config):
    from rlx.config import to_dict

    return to_dict(config)


def test_chunking_does_not_change_the_result(small_cartpole):
    """4 chunks of 2 iterations, 1 chunk of 8, and 3 uneven chunks (3+3+2) give the same state."""
    results = []
    for num_chunks in (4, 1, 3):
        config = driver.build_config({**_as_dict(small_cartpole), "num_chunks": num_chunks})
        experiment = driver.Experiment(config)
        results.append(run_all_chunks(experiment, experiment.init()))
    assert (
        driver.Experiment(driver.build_config({**_as_dict(small_cartpole), "num_chunks": 3})).plan.iterations_per_chunk
        == 3
    )
    assert tree_equal(results[0], results[1])
    assert tree_equal(results[0], results[2])


def test_a2c_preset_update_equals_plain_a2c_gradient_step():
    config = preset("a2c_cartpole.yaml").agent
    env = make("gymnax/CartPole-v1")
    state = jax.jit(lambda key: ppo.init(config, env, key, total_iterations=10))(jax.random.PRNGKey(3))
    state, rollout, _ = jax.jit(lambda s: ppo.collect(config, env, s))(state)
    batch = jax.jit(lambda s, r: ppo.make_batch(config, env, s, r))(state, rollout)
    updated, _ = jax.jit(lambda s, b: ppo.update(config, env, s, b))(state, batch)

    hp = state.hparams

    def a2c_loss(params):
        obs = batch.obs
        dist = ppo.policy_distribution(config, env, params, obs)
        policy_loss = -jnp.mean(batch.advantages * dist.log_prob(batch.raw_action))
        values = ppo.value_estimate(config, env, params, obs)
        value_loss = 0.5 * jnp.mean(jnp.square(values - batch.targets))
        return policy_loss + hp.value_coef * value_loss - hp.entropy_coef * jnp.mean(dist.entropy())

    grads = jax.grad(a2c_loss)(state.params)
    tx = optax.chain(
        optax.clip_by_global_norm(config.max_grad_norm), optax.adam(config.learning_rate, eps=config.adam_eps)
    )
    updates, _ = tx.update(grads, tx.init(state.params), state.params)
    expected = optax.apply_updates(state.params, updates)
    for got, want in zip(jax.tree.leaves(updated.params), jax.tree.leaves(expected), strict=True):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-7)
    assert not tree_equal(updated.params, state.params)


@pytest.mark.parametrize(
    "env_name,agent",
    [
        ("gymnax/Pendulum-v1", {"policy": {"squash": "clip"}}),  # clipped Gaussian on a Box env
        ("gymnax/Breakout-MinAtar", {}),  # 10x10x4 image observations, flattened by the MLP
    ],
)
def test_tiny_runs_on_other_action_and_observation_spaces(env_name, agent):
    config = driver.build_config(
        {
            "env": {"name": env_name},
            "total_env_steps": 2 * 8 * 16,
            "num_chunks": 1,
            "eval_episodes": 2,
            "agent": {
                "num_envs": 8,
                "unroll_length": 16,
                "value": {"hidden": [16]},
                "policy": {"hidden": [16], **agent.get("policy", {})},
                **{k: v for k, v in agent.items() if k != "policy"},
            },
        }
    )
    result = driver.train(config, None, progress=False)
    assert np.isfinite(result.rows[-1]["train/loss"]) and result.rows[-1]["eval/episode_length"] > 0
    assert result.state.obs_stats.mean.shape == result.experiment.env.observation_shape
