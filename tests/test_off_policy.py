"""SAC, TD3 and the DDPG preset: learning with fixed seeds, policy delay, fixed temperature,
fail-fast errors, and bit-exact resume with the replay buffer."""

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import yaml
from helpers import CONFIGS, preset

from rlx import cli, driver
from rlx.algos import off_policy, sac, td3
from rlx.buffers import ReplayBuffer
from rlx.checkpoint import Checkpointer
from rlx.config import ConfigError
from rlx.envs import make


@pytest.mark.parametrize("name", ["sac_pendulum.yaml", "td3_pendulum.yaml", "ddpg_pendulum.yaml"])
def test_learns_pendulum(name):
    final = driver.train(preset(name), None, progress=False).rows[-1]
    assert final["eval/episode_return"] >= -250, final


@pytest.mark.parametrize(
    "argv",
    [
        "sac --env gymnax/Pendulum-v1 --config configs/sac_pendulum.yaml --set agent.critic.value=hl_gauss",
        "sac --env gymnax/Pendulum-v1 --config configs/sac_pendulum.yaml --set agent.critic.value=c51",
        "td3 --env gymnax/Pendulum-v1 --config configs/td3_pendulum.yaml --set agent.n_step=3",
    ],
)
def test_value_representations_and_n_step_are_a_config_line(argv):
    """The README's commands: SAC with an HL-Gauss or C51 critic, TD3 with 3-step returns."""
    args = cli._parser().parse_args(["train", *argv.replace("configs/", CONFIGS + "/").split()])
    final = driver.train(driver.build_config(cli.resolve_train_config(args)), None, progress=False).rows[-1]
    assert final["eval/episode_return"] >= -250, final


def test_sac_learns_brax_inverted_pendulum():
    final = driver.train(preset("sac_inverted_pendulum.yaml"), None, progress=False).rows[-1]
    assert final["eval/episode_return"] >= 900, final


def fake_batch(env, n=8, seed=0):
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(seed), 3)
    obs = jax.random.normal(k1, (n, *env.observation_shape))
    action = jax.random.uniform(k2, (n, *env.action_space.shape), minval=-1, maxval=1)
    return off_policy.Batch(obs, action, jax.random.normal(k3, (n,)), jnp.full((n,), 0.99), obs + 0.1, {})


def changed(a, b):
    return any(not np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_td3_delays_actor_and_target_updates():
    env = make("gymnax/Pendulum-v1")
    config = preset("td3_pendulum.yaml").agent
    state = td3.init(config, env, jax.random.PRNGKey(0), 1)
    step = jax.jit(lambda s, b, k: td3.gradient_step(config, env, s, b, k))
    first, _ = step(state, fake_batch(env, seed=1), jax.random.PRNGKey(1))
    assert changed(first.params.critic, state.params.critic)
    assert not changed(first.params.actor, state.params.actor)
    assert not changed(first.params.target_critic, state.params.target_critic)
    second, _ = step(first, fake_batch(env, seed=2), jax.random.PRNGKey(2))
    assert changed(second.params.actor, first.params.actor)
    assert changed(second.params.target_actor, first.params.target_actor)
    assert changed(second.params.target_critic, first.params.target_critic)


def test_sac_fixed_temperature_stays_fixed_and_autotuned_moves():
    env = make("gymnax/Pendulum-v1")
    for autotune in (False, True):
        config = preset(
            "sac_pendulum.yaml",
            agent={
                **yaml.safe_load(open(os.path.join(CONFIGS, "sac_pendulum.yaml")))["agent"],
                "autotune_alpha": autotune,
                "initial_alpha": 0.3,
            },
        ).agent
        state = sac.init(config, env, jax.random.PRNGKey(0), 1)
        new, metrics = jax.jit(lambda s, b, k, c=config: sac.gradient_step(c, env, s, b, k))(
            state, fake_batch(env), jax.random.PRNGKey(1)
        )
        np.testing.assert_allclose(metrics["alpha"], 0.3, rtol=1e-6)
        assert (float(new.params.log_alpha) != float(np.log(np.float32(0.3)))) == autotune


@pytest.mark.parametrize(
    "data,expected",
    [
        ({"algo": "sac"}, "algo sac cannot train on env gymnax/CartPole-v1: sac needs box actions, got discrete"),
        ({"algo": "td3"}, "td3 needs box actions, got discrete"),
        (
            {"algo": "sac", "env": {"name": "gymnax/Pendulum-v1"}, "agent": {"num_envs": 3, "utd_ratio": 0.5}},
            "agent.utd_ratio: num_envs*rollout_length*utd_ratio = 1.5 must be a whole number",
        ),
        (
            {"algo": "td3", "env": {"name": "gymnax/Pendulum-v1"}, "agent": {"num_envs": 8, "buffer_size": 4}},
            "agent.buffer_size: must hold at least one iteration's num_envs*rollout_length = 8 transitions; got 4",
        ),
        ({"algo": "sac", "agent": {"tau": 0}}, "agent.tau: must be > 0 and <= 1; got 0"),
    ],
)
def test_bad_off_policy_configs_fail_before_compiling(data, expected, monkeypatch):
    monkeypatch.setattr(driver.Experiment, "init", lambda *a, **k: pytest.fail("compiled"))
    with pytest.raises(ConfigError) as info:
        driver.train(driver.build_config(data), None, progress=False)
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_sac_resume_from_disk_in_new_process_is_bitwise_equal_buffer_included(tmp_path):
    config = preset(
        "sac_pendulum.yaml",
        total_env_steps=600,
        num_chunks=3,
        eval_episodes=2,
        agent={
            "num_envs": 4,
            "learning_starts": 200,
            "batch_size": 32,
            "buffer_size": 1000,
            "actor": {"hidden": [16]},
            "critic": {"hidden": [16]},
        },
    )
    full = driver.train(config, str(tmp_path / "full"), progress=False)
    assert driver.train(config, str(tmp_path / "split"), progress=False, stop_after_chunks=1).status == "stopped"
    resumed = subprocess.run(
        [sys.executable, "-m", "rlx.cli", "train", "--resume", str(tmp_path / "split"), "--quiet"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr
    experiment = driver.Experiment(config)
    checkpointer = Checkpointer(str(tmp_path / "split" / "checkpoints"))
    state, meta = checkpointer.restore(checkpointer.latest(), experiment.abstract_state())
    checkpointer.close()
    assert meta["chunks_done"] == 3
    assert int(ReplayBuffer.size(state.loop.buffer)) == 600  # every transition is in the restored buffer
    for a, b in zip(jax.tree.leaves(full.state), jax.tree.leaves(state), strict=True):
        np.testing.assert_array_equal(a, b)
