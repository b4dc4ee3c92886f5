"""scripts/bench/mapping.py: rlx presets translate into brax.training jobs that take the same env steps and the
same number and size of gradient steps per iteration (the benchmark itself runs outside the test suite)."""

import os
import sys

import pytest
from helpers import preset

from rlx.config import ConfigError

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "scripts", "bench"))
import mapping


def test_ppo_job_matches_env_steps_and_gradient_steps_per_iteration():
    config = preset("ppo_ant.yaml")
    a = config.agent
    train = mapping.ppo_job(
        config, num_timesteps=10 * a.num_envs * a.unroll_length, epochs=2, num_eval_envs=8, run_evals=False
    ).job["train"]
    # brax collects batch_size * num_minibatches unrolls per training step: one per env, as rlx does
    assert train["batch_size"] * train["num_minibatches"] == a.num_envs == train["num_envs"]
    assert train["unroll_length"] == a.unroll_length and train["num_updates_per_batch"] == a.num_epochs
    assert train["batch_size"] * a.unroll_length == a.num_envs * a.unroll_length // a.num_minibatches  # minibatch size
    assert (
        train["learning_rate"],
        train["entropy_cost"],
        train["discounting"],
        train["clipping_epsilon"],
        train["reward_scaling"],
    ) == (a.learning_rate, a.entropy_coef, a.gamma, a.clip_epsilon, a.reward_scaling)
    with pytest.raises(ConfigError, match="multiple of num_minibatches"):
        mapping.ppo_job(preset("ppo_ant.yaml", agent={**config.agent.__dict__, "num_envs": 4080}), 1, 1, 1, False)


def test_sac_job_matches_gradient_steps_per_env_step_and_rejects_non_brax_envs():
    config = preset("sac_inverted_pendulum.yaml")
    a = config.agent
    job = mapping.sac_job(config, num_timesteps=6400, epochs=2, num_eval_envs=8)
    assert job.job["train"]["grad_updates_per_step"] == a.num_envs * a.utd_ratio == a.updates_per_iteration
    assert job.job["env"] == {
        "name": "inverted_pendulum",
        "backend": "positional",
        "episode_length": 1000,
        "action_repeat": 1,
    }
    assert any("target entropy" in note for note in job.unmatched)
    with pytest.raises(ConfigError, match="only be compared on brax"):
        mapping.sac_job(preset("sac_pendulum.yaml"), 1, 1, 1)
