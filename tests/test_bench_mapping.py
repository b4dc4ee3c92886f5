"""scripts/bench/mapping.py: rlx presets translate into brax.training jobs that take the same env steps and the
same number and size of gradient steps per iteration (the benchmark itself runs outside the test suite)."""

import math
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


@pytest.mark.parametrize("name", ["ppo_ant.yaml", "ppo_playground_dmc.yaml"])
def test_braxs_ppo_presets_take_its_advantage_init_adam_eps_and_observation_normalization(name):
    """The two presets that claim brax.training's PPO settings map those details as matched, none as unmatched."""
    config = preset(name, env={"name": "brax/inverted_pendulum", "backend": "positional"})
    a = config.agent
    brax = mapping.ppo_job(config, 2 * a.num_envs * a.unroll_length, epochs=1, num_eval_envs=8, run_evals=False)
    details = (
        "Adam eps",
        "the policy's advantage",
        "initialization",
        "normalized observations",
        "observation statistics'",
    )
    for detail in details:
        assert any(m.startswith(detail) for m in brax.matched), (detail, brax.unmatched)
        assert not any(m.startswith(detail) for m in brax.unmatched), detail
    rlx_defaults = preset("ppo_inverted_pendulum.yaml")  # orthogonal, eps 1e-5, GAE, clipped observations
    a = rlx_defaults.agent
    notes = mapping.ppo_job(rlx_defaults, 2 * a.num_envs * a.unroll_length, 1, 8, False).unmatched
    for detail in details:
        assert any(m.startswith(detail) for m in notes), detail


def test_playground_ppo_preset_trains_braxs_rounded_up_budget():
    """Playground's num_timesteps 60M with num_evals 10 and num_resets_per_eval 10: brax's loop runs
    (num_evals - 1) * num_resets_per_eval * ceil(60M / (9 * steps per iteration * 10)) iterations; the preset the same."""
    config = preset("ppo_playground_dmc.yaml")
    a = config.agent
    per_iteration = a.num_envs * a.unroll_length  # brax: batch_size * unroll_length * num_minibatches = 1024*30*32
    assert per_iteration == 1024 * 30 * 32
    brax_iterations = 9 * 10 * math.ceil(60_000_000 / (9 * per_iteration * 10))
    assert config.total_env_steps == brax_iterations * per_iteration == 88_473_600
    assert brax_iterations % config.num_chunks == 0  # an evaluation where brax has one


def test_bench_scripts_take_preset_names_and_refuse_bad_configs_in_one_line(monkeypatch):
    """``--config sac_ant`` (a name, as rlx train takes it) failed with a traceback; so did a bad field (a probe)."""
    import rlx_side

    monkeypatch.setattr(sys, "argv", ["profile_sac.py"])
    by_name = rlx_side.load_preset("sac_ant")
    assert by_name == rlx_side.load_preset("configs/sac_ant.yaml") and by_name["algo"] == "sac"
    with pytest.raises(SystemExit, match=r"^profile_sac.py: --config sac_nope: no such file or packaged preset"):
        rlx_side.load_preset("sac_nope")
    with pytest.raises(SystemExit, match=r"^profile_sac.py: agent.foo: unknown field; allowed: "):
        rlx_side.preset_config("sac_ant", "brax/ant", {"foo": 1})
