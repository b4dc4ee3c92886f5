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
    # brax's own 50M-step ant config: 4096 envs, batch 2048 of 5-step unrolls, 32 minibatches, 4 updates per batch
    assert (train["num_envs"], train["batch_size"], train["unroll_length"]) == (4096, 2048, 5)
    assert (train["num_minibatches"], train["num_updates_per_batch"]) == (a.num_minibatches, a.num_epochs) == (32, 4)
    # the same env steps per iteration and the same minibatch size in transitions
    assert train["batch_size"] * train["num_minibatches"] * train["unroll_length"] == a.num_envs * a.unroll_length
    assert train["batch_size"] * train["unroll_length"] == a.num_envs * a.unroll_length // a.num_minibatches
    assert (
        train["learning_rate"],
        train["entropy_cost"],
        train["discounting"],
        train["clipping_epsilon"],
        train["reward_scaling"],
    ) == (a.learning_rate, a.entropy_coef, a.gamma, a.clip_epsilon, a.reward_scaling)
    with pytest.raises(ConfigError, match="multiple of num_minibatches"):
        whole_unrolls = {"advantages": "rollout", "gae_segment_length": 0, "num_envs": 4080}  # 4080 unrolls for 32
        mapping.ppo_job(preset("ppo_ant.yaml", agent={**config.agent.__dict__, **whole_unrolls}), 1, 1, 1, False)


def test_ppo_job_with_segments_and_minibatch_advantages_is_brax_shaped():
    """``gae_segment_length`` L: brax unrolls of L steps, unroll_length / L of them per env; ``advantages:
    minibatch`` puts the advantage computation among the matched notes, ``rollout`` among the unmatched."""
    env = {"name": "brax/inverted_pendulum", "backend": "positional"}  # brax.training runs brax envs only
    brax_shaped = preset("ppo_playground_dmc.yaml", env=env)
    a = brax_shaped.agent
    assert (a.advantages, a.gae_segment_length) == ("minibatch", 30)
    brax = mapping.ppo_job(brax_shaped, 2 * a.num_envs * a.unroll_length, epochs=1, num_eval_envs=8, run_evals=False)
    train = brax.job["train"]
    # Playground's own dm_control_suite_params: unroll 30, batch 1024, 32 minibatches, 2048 envs
    assert (train["unroll_length"], train["batch_size"], train["num_minibatches"]) == (30, 1024, 32)
    assert train["batch_size"] * train["num_minibatches"] * train["unroll_length"] == a.num_envs * a.unroll_length
    assert any(m.startswith("advantages:") for m in brax.matched)
    assert not any(m.startswith("advantages:") for m in brax.unmatched)
    rollout = preset("ppo_playground_dmc.yaml", env=env, agent={**a.__dict__, "advantages": "rollout"})
    notes = mapping.ppo_job(rollout, 2 * a.num_envs * a.unroll_length, 1, 8, False).unmatched
    assert any(m.startswith("advantages: rlx (advantages: rollout)") for m in notes)


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
