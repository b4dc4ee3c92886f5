"""How far the test suite's learning assertions are from their thresholds, over seeds.

XLA:CPU picks different kernels on different CPUs (and under ``XLA_FLAGS=--xla_cpu_max_isa=...``), so the
same seed follows a different trajectory on another machine; a learning assertion must hold with a margin
over the distribution across seeds, not at the edge of one seed's result. This script trains each
learning test's config for several seeds as one vmapped sweep (``rlx.sweep``) and prints the metric each
test asserts on, per seed, with the threshold. Run it once per instruction-set setting:

    python scripts/learning_margins.py --seeds 5
    XLA_FLAGS=--xla_cpu_max_isa=AVX python scripts/learning_margins.py --seeds 5

``--only NAME`` runs one entry. Results go in README (Tested results) and the test comments.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from rlx import presets, stats, sweep
from rlx.config import merge

CONFIGS = os.path.join(os.path.dirname(__file__), "..", "configs")

# name: (preset, overrides, metric, threshold). Keep in step with the learning tests.
ENTRIES = {
    "ppo_cartpole": ("ppo_cartpole.yaml", {}, "eval/episode_return", 475.0),
    "ppo_cartpole_train": ("ppo_cartpole.yaml", {}, "train/episode_return", None),
    "ppo_inverted_pendulum": ("ppo_inverted_pendulum.yaml", {}, "eval/episode_return", 900.0),
    "sac_pendulum": ("sac_pendulum.yaml", {}, "eval/episode_return", -250.0),
    "td3_pendulum": ("td3_pendulum.yaml", {}, "eval/episode_return", -250.0),
    "ddpg_pendulum": ("ddpg_pendulum.yaml", {}, "eval/episode_return", -250.0),
    "sac_pendulum_hl_gauss": (
        "sac_pendulum.yaml",
        {"agent": {"critic": {"value": "hl_gauss"}}},
        "eval/episode_return",
        -250.0,
    ),
    "sac_pendulum_c51": ("sac_pendulum.yaml", {"agent": {"critic": {"value": "c51"}}}, "eval/episode_return", -250.0),
    "sac_pendulum_quantile": (
        "sac_pendulum.yaml",
        {"agent": {"critic": {"value": "quantile", "num_bins": 25}}},
        "eval/episode_return",
        -250.0,
    ),
    "td3_pendulum_quantile": (
        "td3_pendulum.yaml",
        {"agent": {"critic": {"value": "quantile", "num_bins": 25}}},
        "eval/episode_return",
        -250.0,
    ),
    "sac_pendulum_bang_bang": (
        "sac_pendulum.yaml",
        {"agent": {"actor": {"distribution": "bernoulli"}, "target_entropy_per_dim": 0.35}},
        "eval/episode_return",
        -250.0,
    ),
    "sac_inverted_pendulum_bang_bang": (
        "sac_inverted_pendulum.yaml",
        {"agent": {"actor": {"distribution": "bernoulli"}, "target_entropy_per_dim": 0.35}},
        "eval/episode_return",
        900.0,
    ),
    "sac_pendulum_bfloat16": (
        "sac_pendulum.yaml",
        {"agent": {"actor": {"compute_dtype": "bfloat16"}, "critic": {"compute_dtype": "bfloat16"}}},
        "eval/episode_return",
        -250.0,
    ),
    "td3_pendulum_n3": ("td3_pendulum.yaml", {"agent": {"n_step": 3}}, "eval/episode_return", -250.0),
    "crossq_pendulum": ("crossq_pendulum.yaml", {}, "eval/episode_return", -250.0),
    "droq_pendulum": ("droq_pendulum.yaml", {}, "eval/episode_return", -250.0),
    "simbav2_pendulum": ("simbav2_pendulum.yaml", {}, "eval/episode_return", -250.0),
    "fasttd3_pendulum": ("fasttd3_pendulum.yaml", {}, "eval/episode_return", -250.0),
    "droq_inverted_pendulum": ("droq_inverted_pendulum.yaml", {}, "eval/episode_return", 900.0),
    "simbav2_inverted_pendulum": ("simbav2_inverted_pendulum.yaml", {}, "eval/episode_return", 900.0),
    "simbav2_inverted_pendulum_32": (  # the CI test's: both networks 1 block x 32
        "simbav2_inverted_pendulum.yaml",
        {"agent": {"actor": {"hidden": [32]}, "critic": {"hidden": [32]}}},
        "eval/episode_return",
        900.0,
    ),
    "sac_inverted_pendulum": ("sac_inverted_pendulum.yaml", {}, "eval/episode_return", 900.0),
    "crossq_inverted_pendulum": ("crossq_inverted_pendulum.yaml", {}, "eval/episode_return", 900.0),
    "fasttd3_inverted_pendulum": ("fasttd3_inverted_pendulum.yaml", {}, "eval/episode_return", 900.0),
    "ppo_bernoulli_inverted_pendulum": (
        "ppo_inverted_pendulum.yaml",
        {"total_env_steps": 81920, "num_chunks": 2, "agent": {"policy": {"distribution": "bernoulli"}}},
        "eval/episode_return",
        900.0,
    ),
    "ppo_gru_cartpole_positions_131k": (
        "ppo_gru_cartpole_positions.yaml",
        {"total_env_steps": 131072, "num_chunks": 2},
        "eval/episode_return",
        300.0,
    ),
    "ppo_gru_privileged_critic_cartpole_positions_131k": (
        "ppo_gru_cartpole_positions.yaml",
        {
            "total_env_steps": 131072,
            "num_chunks": 2,
            "env": {"privileged": True},
            "agent": {"policy": {"obs_key": "state"}, "value": {"obs_key": "privileged_state", "recurrent": "none"}},
        },
        "eval/episode_return",
        250.0,
    ),
    "ppo_feedforward_cartpole_positions_131k": (
        "ppo_gru_cartpole_positions.yaml",
        {
            "total_env_steps": 131072,
            "num_chunks": 2,
            "agent": {"policy": {"recurrent": "none"}, "value": {"recurrent": "none"}},
        },
        "eval/episode_return",
        100.0,
    ),
    "mdpo_cartpole": ("mdpo_cartpole.yaml", {}, "eval/episode_return", 475.0),
    "mdpo_inverted_pendulum": ("mdpo_inverted_pendulum.yaml", {}, "eval/episode_return", 900.0),
    "mdpo_offpolicy_pendulum": ("mdpo_offpolicy_pendulum.yaml", {}, "eval/episode_return", -250.0),
    "consistency_ac_pendulum": ("consistency_ac_pendulum.yaml", {}, "eval/episode_return", -250.0),
    "mdpo_offpolicy_inverted_pendulum": ("mdpo_offpolicy_inverted_pendulum.yaml", {}, "eval/episode_return", 900.0),
    "consistency_ac_inverted_pendulum": ("consistency_ac_inverted_pendulum.yaml", {}, "eval/episode_return", 900.0),
    "cqn_pendulum": ("cqn_pendulum.yaml", {}, "eval/episode_return", -250.0),
    "ppo_knapsack": ("ppo_knapsack.yaml", {}, "eval/episode_return", 12.5),
    "dqn_cartpole": ("dqn_cartpole.yaml", {}, "eval/episode_return", 475.0),
    "iterated_dqn_cartpole": ("iterated_dqn_cartpole.yaml", {}, "eval/episode_return", 400.0),
    "pqn_cartpole": ("pqn_cartpole.yaml", {}, "eval/episode_return", 475.0),
    "pqn_breakout_minatar": (
        "pqn_minatar.yaml",
        {"total_env_steps": 262_144, "num_chunks": 2},
        "eval/episode_return",
        5.0,
    ),
    "iqn_cartpole": ("iqn_cartpole.yaml", {}, "eval/episode_return", 475.0),
    "c51_cartpole": ("c51_cartpole.yaml", {}, "eval/episode_return", 475.0),
    "qr_dqn_cartpole": ("qr_dqn_cartpole.yaml", {}, "eval/episode_return", 475.0),
    "dqn_hl_gauss_cartpole": ("dqn_hl_gauss_cartpole.yaml", {}, "eval/episode_return", 475.0),
}


def measure(name: str, seeds: list[int]) -> dict:
    preset, overrides, metric, threshold = ENTRIES[name]
    config = merge(presets.load_file(os.path.join(CONFIGS, preset)), overrides)
    tic = time.perf_counter()
    result = sweep.run(sweep.spec_from_dict({"config": config, "seeds": seeds}), None, progress=False)
    scores = np.array([run[metric] if run[metric] is not None else np.nan for run in result.runs])
    return {
        "name": name,
        "metric": metric,
        "threshold": threshold,
        "scores": scores,
        "seconds": time.perf_counter() - tic,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--only", action="append", choices=sorted(ENTRIES))
    args = parser.parse_args()
    print(f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}, seeds 0..{args.seeds - 1}")
    print("| test config | metric | threshold | per seed | min | IQM [95% CI] | seconds |")
    print("|---|---|---|---|---|---|---|")
    for name in args.only or ENTRIES:
        r = measure(name, list(range(args.seeds)))
        scores = " / ".join(f"{s:.1f}" for s in r["scores"])
        threshold = "-" if r["threshold"] is None else f"{r['threshold']:g}"
        iqm, low, high = stats.bootstrap_ci(r["scores"][np.isfinite(r["scores"])])
        print(
            f"| {name} | {r['metric']} | {threshold} | {scores} | {np.nanmin(r['scores']):.1f} | "
            f"{iqm:.1f} [{low:.1f}, {high:.1f}] | {r['seconds']:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
