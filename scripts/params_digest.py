"""SHA-256 of the trained parameters of short preset runs, to show that a refactor changes no numbers.

Run it at two commits on the same machine and compare the lines: equal digests mean bitwise-equal
parameters after the same training (each case trains a preset for a short budget, one seed, on CPU).

    python scripts/params_digest.py                  # every case
    python scripts/params_digest.py sac_pendulum     # some
"""

from __future__ import annotations

import hashlib
import os
import sys

import jax
import numpy as np

from rlx import driver, presets
from rlx.config import merge

CONFIGS = os.path.join(os.path.dirname(__file__), "..", "configs")

CASES = {  # name: (preset, overrides)
    "ppo_cartpole": ("ppo_cartpole.yaml", {"total_env_steps": 16384, "num_chunks": 2}),
    "ppo_pendulum_clip": (
        "ppo_cartpole.yaml",
        {
            "total_env_steps": 8192,
            "num_chunks": 1,
            "env": {"name": "gymnax/Pendulum-v1"},
            "agent": {"policy": {"squash": "clip"}},
        },
    ),
    "ppo_gru_cartpole": ("ppo_gru_cartpole_positions.yaml", {"total_env_steps": 8192, "num_chunks": 2}),
    "mdpo_cartpole": ("mdpo_cartpole.yaml", {"total_env_steps": 8192, "num_chunks": 2}),
    "sac_pendulum": ("sac_pendulum.yaml", {"total_env_steps": 1600, "num_chunks": 2}),
    "td3_pendulum": ("td3_pendulum.yaml", {"total_env_steps": 1600, "num_chunks": 2}),
    "ddpg_pendulum": ("ddpg_pendulum.yaml", {"total_env_steps": 1600, "num_chunks": 2}),
    "crossq_pendulum": (
        "crossq_pendulum.yaml",
        {"total_env_steps": 1600, "num_chunks": 2, "agent": {"learning_starts": 800}},
    ),
    "droq_pendulum": (
        "droq_pendulum.yaml",
        {"total_env_steps": 600, "num_chunks": 2, "agent": {"learning_starts": 400}},
    ),
    "droq_inverted_pendulum": ("droq_inverted_pendulum.yaml", {"total_env_steps": 1600, "num_chunks": 2}),
    "simbav2_pendulum": (
        "simbav2_pendulum.yaml",
        {"total_env_steps": 1600, "num_chunks": 2, "agent": {"learning_starts": 800}},
    ),
    "td3_lap_pendulum": ("td3_lap_pendulum.yaml", {"total_env_steps": 1600, "num_chunks": 2}),
    "sac_prioritized_pendulum": (
        "sac_pendulum.yaml",
        {"total_env_steps": 1600, "num_chunks": 2, "agent": {"replay": "prioritized"}},
    ),
    "pqn_cartpole": ("pqn_cartpole.yaml", {"total_env_steps": 16384, "num_chunks": 2}),
    "dqn_cartpole": ("dqn_cartpole.yaml", {"total_env_steps": 14000, "num_chunks": 2}),
    "c51_cartpole": ("c51_cartpole.yaml", {"total_env_steps": 14000, "num_chunks": 2}),
    "hl_gauss_cartpole": ("dqn_hl_gauss_cartpole.yaml", {"total_env_steps": 14000, "num_chunks": 2}),
    "dqn_prioritized_cartpole": (
        "dqn_cartpole.yaml",
        {"total_env_steps": 14000, "num_chunks": 2, "agent": {"replay": "prioritized"}},
    ),
    "rainbow_cartpole": ("rainbow_cartpole.yaml", {"total_env_steps": 14000, "num_chunks": 2}),
    "mdqn_cartpole": ("mdqn_cartpole.yaml", {"total_env_steps": 14000, "num_chunks": 2}),
    "iqn_cartpole": ("iqn_cartpole.yaml", {"total_env_steps": 14000, "num_chunks": 2}),
    "miqn_cartpole": ("miqn_cartpole.yaml", {"total_env_steps": 14000, "num_chunks": 2}),
    "iterated_dqn_cartpole": ("iterated_dqn_cartpole.yaml", {"total_env_steps": 14000, "num_chunks": 2}),
    "iterated_dqn_prioritized_cartpole": (
        "iterated_dqn_cartpole.yaml",
        {"total_env_steps": 14000, "num_chunks": 2, "agent": {"replay": "prioritized"}},
    ),
    "cqn_prioritized_pendulum": (
        "cqn_pendulum.yaml",
        {"total_env_steps": 2800, "num_chunks": 2, "agent": {"replay": "prioritized"}},
    ),
    "dqn_breakout_3step": (
        "dqn_minatar.yaml",
        {"total_env_steps": 3008, "num_chunks": 1, "agent": {"learning_starts": 1000, "buffer_size": 5000}},
    ),
}


def digest(name: str) -> str:
    preset, overrides = CASES[name]
    config = driver.build_config(merge(presets.load_file(os.path.join(CONFIGS, preset)), overrides))
    result = driver.train(config, None, progress=False)
    leaves = jax.tree.leaves(jax.device_get(result.state.params))
    sha = hashlib.sha256(b"".join(np.ascontiguousarray(x).tobytes() for x in leaves)).hexdigest()[:16]
    return f"{name}: params {sha} ({len(leaves)} arrays), eval return {result.rows[-1]['eval/episode_return']:.4f}"


if __name__ == "__main__":
    for case in sys.argv[1:] or CASES:
        print(digest(case), flush=True)
