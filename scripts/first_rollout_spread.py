"""How far an env's first rollout strays from its reset observations, in the units PPO's first rollout sees.

With ``normalize_observations`` and the default ``obs_stats_from_reset: true``, PPO (MDPO, PQN) normalizes its first
rollout by statistics of the envs' reset observations alone. This steps ``--envs`` envs for ``--steps`` steps under
uniformly random actions (discrete: uniform over actions), normalizes every observation by the reset statistics
(unclipped, rlx's formula with ``obs_norm_var_eps`` 1e-8) and prints, per feature, the reset std, the rollout's std,
the largest ``|z|``, and over all features the share of ``|z| > 10`` (what ``obs_norm_clip: 10`` clips).

    python scripts/first_rollout_spread.py playground/CartpoleBalance --envs 64 --steps 480
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np

from rlx import envs
from rlx.algos.common import training_env
from rlx.algos.off_policy import random_actions
from rlx.ops.normalization import init_stats, normalize, update_stats


def spread(env_name: str, num_envs: int, steps: int, seed: int = 0) -> dict:
    """Per-feature reset std, rollout std, largest |z| and the share of |z| > 10, as NumPy arrays / a float."""
    env = envs.make(env_name)
    vector = training_env(env, num_envs)
    reset_key, action_key = jax.random.split(jax.random.PRNGKey(seed))
    start = vector.reset(reset_key)
    stats = update_stats(init_stats(env.observation_shape), start.obs)

    def step(env_step, key):
        env_step = vector.step(env_step, random_actions(env, key, num_envs))
        return env_step, env_step.obs

    @jax.jit
    def rollout(env_step, key):
        return jax.lax.scan(step, env_step, jax.random.split(key, steps))[1]

    obs = rollout(start, action_key).reshape(-1, *env.observation_shape)
    z = jnp.abs(normalize(stats, obs, clip=None)).reshape(obs.shape[0], -1)
    return {
        "reset_std": np.sqrt(np.asarray(stats.variance)).ravel(),
        "rollout_std": np.asarray(obs.reshape(obs.shape[0], -1).std(0)),
        "max_abs_z": np.asarray(z.max(0)),
        "share_over_10": float((z > 10).mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("env", help="env as suite/name, e.g. playground/CartpoleBalance")
    parser.add_argument("--envs", type=int, default=64)
    parser.add_argument("--steps", type=int, default=480)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    result = spread(args.env, args.envs, args.steps, args.seed)
    np.set_printoptions(precision=4, suppress=False, linewidth=120)
    print(f"{args.env}: {args.envs} envs x {args.steps} random-action steps")
    for name in ("reset_std", "rollout_std", "max_abs_z"):
        print(f"{name:>12}: {result[name]}")
    print(f"share of |z| > 10: {result['share_over_10']:.3f}")


if __name__ == "__main__":
    main()
