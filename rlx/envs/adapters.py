"""Adapters from brax, gymnax and MuJoCo Playground envs to the rlx protocol (one env, no batch)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from rlx.config import ConfigError
from rlx.envs.base import Box, Discrete, EnvStep, first_step


class EnvError(ConfigError):
    """An env cannot be made as asked; the message is one line."""


def _box(size: int, low: Any = -1.0, high: Any = 1.0) -> Box:
    low = np.broadcast_to(np.asarray(low, np.float32), (size,))
    high = np.broadcast_to(np.asarray(high, np.float32), (size,))
    return Box((size,), tuple(float(x) for x in low), tuple(float(x) for x in high))


class _DoneFlagEnv:
    """Shared by brax and Playground: ``self._env`` has ``reset(key)``/``step(state, action)`` returning a
    state with ``obs``, ``reward`` and ``done``; without a time limit, ``done`` means termination."""

    _env: Any

    def reset(self, key: jax.Array) -> EnvStep:
        s = self._env.reset(key)
        return first_step(s, s.obs.astype(jnp.float32))

    def step(self, env_step: EnvStep, action: jax.Array) -> EnvStep:
        s = self._env.step(env_step.state, action)
        return EnvStep(
            state=s,
            obs=s.obs.astype(jnp.float32),
            reward=jnp.asarray(s.reward, jnp.float32),
            terminated=jnp.asarray(s.done) > 0.5,
            truncated=jnp.zeros((), bool),
            info={},
        )


class BraxEnv(_DoneFlagEnv):
    """A ``brax.envs`` env. Brax reports only termination; rlx's ``TimeLimit`` adds truncation."""

    def __init__(self, name: str, backend: str | None):
        import warnings

        from brax import envs as brax_envs

        names = sorted(brax_envs._envs)
        if name not in names:
            raise EnvError(f"env brax/{name}: unknown brax env; available: {', '.join(names)}")
        backends = ("generalized", "mjx", "positional", "spring")
        if backend is not None and backend not in backends:
            raise EnvError(f"env brax/{name}: backend must be one of {', '.join(backends)}; got {backend!r}")
        kwargs = {} if backend is None else {"backend": backend}
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Brax System")
            self._env = brax_envs.get_environment(name, **kwargs)
        self.name = f"brax/{name}"
        self.observation_shape = (self._env.observation_size,)
        self.action_space = _box(self._env.action_size)
        self.max_episode_steps = 1000


@struct.dataclass
class GymnaxState:
    inner: Any
    key: jax.Array


class GymnaxEnv:
    """A ``gymnax`` (>= 1.0) env; uses its own time limit (``max_steps_in_episode``)."""

    def __init__(self, name: str, episode_length: int | None):
        import gymnax

        if name not in gymnax.registered_envs:
            raise EnvError(f"env gymnax/{name}: unknown gymnax env; available: {', '.join(gymnax.registered_envs)}")
        self._env, params = gymnax.make(name)
        if episode_length is not None:
            params = params.replace(max_steps_in_episode=episode_length)
        self._params = params
        self.name = f"gymnax/{name}"
        self.observation_shape = tuple(self._env.observation_space(params).shape)
        space = self._env.action_space(params)
        if hasattr(space, "n"):
            self.action_space = Discrete(int(space.n))
            self._low = self._high = None
        elif hasattr(space, "low") and len(tuple(space.shape)) <= 1:
            size = int(np.prod(space.shape)) if space.shape else 1
            self.action_space = _box(size, space.low, space.high)
            self._scalar_action = tuple(space.shape) == ()
            self._low = jnp.asarray(self.action_space.low)
            self._high = jnp.asarray(self.action_space.high)
        else:
            raise EnvError(f"env gymnax/{name}: action space {type(space).__name__} is not supported")
        self.max_episode_steps = int(params.max_steps_in_episode)

    def reset(self, key: jax.Array) -> EnvStep:
        key, reset_key = jax.random.split(key)
        obs, state = self._env.reset_env(reset_key, self._params)
        return first_step(GymnaxState(state, key), jnp.asarray(obs, jnp.float32))

    def step(self, env_step: EnvStep, action: jax.Array) -> EnvStep:
        key, step_key = jax.random.split(env_step.state.key)
        if self._low is not None:  # [-1, 1] -> the env's bounds
            action = self._low + (action + 1.0) * 0.5 * (self._high - self._low)
            if self._scalar_action:
                action = action[0]
        obs, state, reward, terminated, _ = self._env.step_env(step_key, env_step.state.inner, action, self._params)
        terminated = jnp.asarray(terminated, bool)
        truncated = jnp.asarray(self._env.is_truncated(state, self._params), bool) & ~terminated
        return EnvStep(
            state=GymnaxState(state, key),
            obs=jnp.asarray(obs, jnp.float32),
            reward=jnp.asarray(reward, jnp.float32),
            terminated=terminated,
            truncated=truncated,
            info={},
        )


class PlaygroundEnv(_DoneFlagEnv):
    """A MuJoCo Playground env (``mujoco_playground.registry``); rlx's ``TimeLimit`` truncates."""

    def __init__(self, name: str, backend: str | None):
        try:
            from mujoco_playground import registry
        except ImportError as e:
            raise EnvError(
                f"env playground/{name}: the 'playground' package is not installed (pip install 'rlx[playground]'): {e}"
            ) from None
        names = tuple(registry.ALL_ENVS)
        if name not in names:
            raise EnvError(f"env playground/{name}: unknown Playground env; available: {', '.join(names)}")
        impls = ("jax", "warp")
        if backend is not None and backend not in impls:
            raise EnvError(f"env playground/{name}: backend must be one of {', '.join(impls)}; got {backend!r}")
        if backend is None:  # MJX's JAX implementation is far faster than Warp on CPU.
            backend = "jax" if jax.default_backend() == "cpu" else None
        overrides = {} if backend is None else {"impl": backend}
        try:
            config = registry.get_default_config(name)
            self._env = registry.load(name, config_overrides=overrides)
        except Exception as e:
            first = (str(e).splitlines() or [""])[0][:200]
            raise EnvError(
                f"env playground/{name}: could not be loaded ({type(e).__name__}: {first}); "
                "Playground's locomotion and manipulation envs download mujoco_menagerie on first use, "
                "which needs network access"
            ) from None
        self.name = f"playground/{name}"
        obs_size = self._env.observation_size
        if isinstance(obs_size, dict):
            raise EnvError(f"env playground/{name}: dict observations are not supported yet")
        self.observation_shape = tuple(np.atleast_1d(obs_size).tolist())
        self.action_space = _box(self._env.action_size)
        self.max_episode_steps = int(config.episode_length)
