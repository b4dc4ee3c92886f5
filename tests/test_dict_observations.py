"""Dict observations and the asymmetric actor-critic: the privileged observation option, per-key
normalization, networks that see only their entry, one-line errors, and an asymmetric PPO that learns."""

import os
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import final_row

from rlx import driver, presets
from rlx.algos import ppo
from rlx.config import ConfigError, merge
from rlx.envs import adapters, make, training_env
from rlx.ops.normalization import init_stats, normalize, update_stats

SPEC = "gymnax/CartPole-v1?observe=[0,2]&privileged=true"


def test_privileged_option_gives_playgrounds_state_and_privileged_state():
    env = make(SPEC)
    assert env.observation_shape == {"state": (2,), "privileged_state": (4,)}
    first = env.reset(jax.random.PRNGKey(0))
    np.testing.assert_array_equal(first.obs["state"], first.obs["privileged_state"][jnp.array([0, 2])])
    # the training stack (auto-reset picks the new episode's observation per key)
    envs = training_env(env, 4)
    env_step = envs.reset(jax.random.PRNGKey(1))
    step = jax.jit(envs.step)
    for _ in range(40):
        env_step = step(env_step, jnp.zeros((4,), jnp.int32))  # always push left: episodes end and restart
        np.testing.assert_array_equal(env_step.obs["state"], env_step.obs["privileged_state"][:, jnp.array([0, 2])])
        final = env_step.info["final_obs"]
        np.testing.assert_array_equal(final["state"], final["privileged_state"][:, jnp.array([0, 2])])


def test_playground_style_dict_observations_pass_through_as_float32():
    """Playground's locomotion envs (offline here) return ``{"state": ..., "privileged_state": ...}``; the
    shared brax/Playground adapter keeps the dict, and ``observation_size`` dicts become shape dicts."""

    class Stub:
        def reset(self, key):
            return types.SimpleNamespace(obs={"state": jnp.ones(3, jnp.float64), "privileged_state": jnp.arange(5)})

        def step(self, state, action):
            return types.SimpleNamespace(obs=state.obs, reward=1.0, done=0.0)

    env = adapters._DoneFlagEnv()
    env._env = Stub()
    first = env.step(env.reset(jax.random.PRNGKey(0)), jnp.zeros(1))
    assert {k: (v.shape, v.dtype) for k, v in first.obs.items()} == {
        "state": ((3,), jnp.float32),
        "privileged_state": ((5,), jnp.float32),
    }
    assert adapters.observation_shape_of({"state": (3,), "privileged_state": 5}) == {
        "state": (3,),
        "privileged_state": (5,),
    }
    assert adapters.observation_shape_of(7) == (7,)


def test_normalization_statistics_are_kept_per_key():
    rng = np.random.default_rng(0)
    batches = [
        {"state": rng.normal(2.0, 3.0, (8, 2)), "privileged_state": rng.normal(-1.0, 0.5, (8, 4))} for _ in range(3)
    ]
    stats = init_stats({"state": (2,), "privileged_state": (4,)})
    for batch in batches:
        stats = update_stats(stats, jax.tree.map(jnp.asarray, batch))
    x = {"state": jnp.ones((1, 2)), "privileged_state": jnp.ones((1, 4))}
    out = normalize(stats, x)
    for key in x:
        data = np.concatenate([b[key] for b in batches])
        np.testing.assert_allclose(stats[key].mean, data.mean(0), rtol=1e-5)
        np.testing.assert_allclose(out[key][0], (1.0 - data.mean(0)) / np.sqrt(data.var(0) + 1e-8), rtol=1e-4)


def asymmetric(**overrides):
    data = {
        "algo": "ppo",
        "env": {"name": "gymnax/CartPole-v1", "observe": [0, 2], "privileged": True},
        "total_env_steps": 1024,
        "num_chunks": 1,
        "agent": {
            "num_envs": 4,
            "unroll_length": 32,
            "policy": {"hidden": [16], "obs_key": "state"},
            "value": {"hidden": [16], "obs_key": "privileged_state"},
            "normalize_observations": True,
        },
    }
    return driver.build_config(merge(data, overrides))


def test_each_network_sees_only_its_entry():
    exp = driver.Experiment(asymmetric())
    state = exp.init()
    assert state.params.policy["Dense_0"]["kernel"].shape == (2, 16)
    assert state.params.value["Dense_0"]["kernel"].shape == (4, 16)
    assert set(state.obs_stats) == {"state", "privileged_state"}
    state, _ = exp.run_chunk(state, 0)  # trains end to end
    obs = {"state": jnp.array([[0.1, -0.2]]), "privileged_state": jnp.array([[0.1, 0.5, -0.2, 0.3]])}
    moved = {"state": obs["state"], "privileged_state": obs["privileged_state"].at[:, 1].set(-2.0)}
    config, env = exp.static_agent, exp.env
    act = jax.jit(lambda o: ppo.act(config, env, state, o, jax.random.PRNGKey(0), deterministic=True))
    value = jax.jit(lambda o: ppo.value(config, env, state, o))
    np.testing.assert_array_equal(act(obs), act(moved))  # the actor cannot see the velocities
    assert abs(float(value(obs)[0] - value(moved)[0])) > 1e-6  # the critic does
    assert np.isfinite(exp.evaluate(state, 0)["eval/episode_return"])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"agent": {"policy": {"obs_key": None}}}, "agent.policy.obs_key: one of state, privileged_state"),
        ({"agent": {"value": {"obs_key": "privileged"}}}, "agent.value.obs_key: one of state, privileged_state"),
        (
            {"env": {"observe": None, "privileged": False}},
            "agent.policy.obs_key: gymnax/CartPole-v1 has flat observations; got 'state'",
        ),
        ({"env": {"observe": None}}, "env.privileged: needs env.observe"),
    ],
)
def test_bad_observation_keys_get_one_line_before_anything_compiles(overrides, message):
    with pytest.raises(ConfigError) as info:
        driver.Experiment(asymmetric(**overrides))
    assert message in str(info.value) and "\n" not in str(info.value), str(info.value)
    dqn = driver.build_config(
        {"algo": "dqn", "env": {"name": SPEC.split("?")[0], "observe": [0, 2], "privileged": True}}
    )
    with pytest.raises(
        ConfigError, match="dqn takes flat observations only; dict observations work with ppo, sac, td3, mdpo"
    ):
        driver.Experiment(dqn)


def test_asymmetric_ppo_learns_cartpole_positions_with_a_privileged_critic():
    # GRU actor on `state` (positions only), feed-forward critic on `privileged_state` (all four entries).
    # Seeds 0-4 at 131k steps, default / AVX kernels: 319 / 347 / 368 / 375 / 428 and
    # 390 / 377 / 350 / 423 / 373 (BENCHMARKS "Dict observations").
    data = merge(
        presets.load("ppo_gru_cartpole_positions"),
        {
            "total_env_steps": 131072,
            "num_chunks": 2,
            "env": {"privileged": True},
            "agent": {
                "policy": {"obs_key": "state"},
                "value": {"obs_key": "privileged_state", "recurrent": "none"},
            },
        },
    )
    final = final_row(driver.build_config(data))
    assert final["eval/episode_return"] >= 250, final


def test_mdpo_trains_on_dict_observations_too():
    exp = driver.Experiment(asymmetric(algo="mdpo"))
    state, metrics = exp.run_chunk(exp.init(), 0)
    assert state.params.policy["Dense_0"]["kernel"].shape == (2, 16) and all(np.isfinite(v) for v in metrics.values())


@pytest.mark.parametrize("algo,n_step", [("sac", 1), ("td3", 3)])  # n-step runs: FastTD3 with a privileged critic
def test_off_policy_actor_and_critic_see_their_own_entries(algo, n_step):
    config = driver.build_config(
        {
            "algo": algo,
            "env": {"name": "gymnax/Pendulum-v1", "observe": [0, 1], "privileged": True},
            "total_env_steps": 512,
            "num_chunks": 1,
            "agent": {
                "num_envs": 4,
                "learning_starts": 128,
                "batch_size": 32,
                "normalize_observations": True,
                "n_step": n_step,
                "actor": {"hidden": [16], "obs_key": "state"},
                "critic": {"hidden": [16], "obs_key": "privileged_state"},
            },
        }
    )
    exp = driver.Experiment(config)
    state, metrics = exp.run_chunk(exp.init(), 0)
    assert all(np.isfinite(v) for v in metrics.values())
    first_layer = lambda params: jax.tree.leaves(params)[1].shape  # noqa: E731 - Dense_0's kernel
    assert first_layer(state.params.actor)[-2:] == (2, 16)
    assert first_layer(state.params.critic)[-2:] == (3 + 1, 16)  # privileged_state and the action
    assert set(state.loop.obs_stats) == {"state", "privileged_state"}
    module = exp.algo
    obs = {"state": jnp.array([[0.6, 0.8]]), "privileged_state": jnp.array([[0.6, 0.8, 0.5]])}
    moved = {"state": obs["state"], "privileged_state": obs["privileged_state"].at[:, 2].set(-3.0)}
    act = jax.jit(lambda o: module.act(exp.static_agent, exp.env, state, o, jax.random.PRNGKey(0), True))
    value = jax.jit(lambda o: module.value(exp.static_agent, exp.env, state, o))
    np.testing.assert_array_equal(act(obs), act(moved))  # the actor cannot see the angular velocity
    assert abs(float(value(obs)[0] - value(moved)[0])) > 1e-6  # the critic does


def test_a_rollout_of_a_dict_observation_run_renders(tmp_path):
    from rlx import evaluate

    exp = driver.Experiment(asymmetric())
    state = exp.init()
    trajectory = evaluate.rollout(exp, state)
    path = evaluate.render_html(exp, trajectory, str(tmp_path / "rollout.html"))
    assert os.path.getsize(path) > 1000
