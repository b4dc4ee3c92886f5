"""Algorithm registry.

An algorithm is a module with: ``Config`` (validated dataclass), ``State`` (pytree with ``params``),
``init(config, env, key, total_iterations)``, ``train_step(config, env, state) -> (state, metrics)``,
``act(config, env, state, obs, key, deterministic)``, ``steps_per_iteration(config)`` and
``supports(env) -> reason | None``. ``train_step`` metrics are scalars; ``episode_return_sum``,
``episode_length_sum`` and ``episode_count`` are summed over a chunk, all others averaged.
"""

from __future__ import annotations

import types

from rlx.algos import dqn, ppo, sac, td3

ALGORITHMS: dict[str, types.ModuleType] = {"ppo": ppo, "sac": sac, "td3": td3, "dqn": dqn}


def get(name: str) -> types.ModuleType:
    from rlx.config import ConfigError

    if name not in ALGORITHMS:
        raise ConfigError(f"algo: unknown algorithm {name!r}; available: {', '.join(ALGORITHMS)}")
    return ALGORITHMS[name]
