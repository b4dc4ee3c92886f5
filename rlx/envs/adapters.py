"""Adapters from brax, gymnax, Jumanji and MuJoCo Playground envs to the rlx protocol (one env, no batch)."""

from __future__ import annotations

import difflib
import importlib.util
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from rlx.config import ConfigError
from rlx.envs.base import Box, Discrete, EnvStep, first_step


class EnvError(ConfigError):
    """An env cannot be made as asked; the message is one line."""


def unknown_env(name: str, what: str, names: list[str] | tuple[str, ...]) -> EnvError:
    """The one-line error for an env ``name`` (``suite/name``) that is not among ``names`` (``what``: "brax env"),
    with the closest name when one is close."""
    close = difflib.get_close_matches(name.split("/", 1)[-1], list(names), n=1)
    hint = f" (did you mean {name.split('/', 1)[0]}/{close[0]}?)" if close else ""
    return EnvError(f"env {name}: unknown {what}{hint}; available: {', '.join(names)}")


def _box(size: int, low: Any = -1.0, high: Any = 1.0) -> Box:
    low = np.broadcast_to(np.asarray(low, np.float32), (size,))
    high = np.broadcast_to(np.asarray(high, np.float32), (size,))
    return Box((size,), tuple(float(x) for x in low), tuple(float(x) for x in high))


def _float_obs(obs: Any) -> Any:
    """A flat observation or a dict of them (Playground's ``state`` / ``privileged_state``), as float32."""
    return jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), obs)


def observation_shape_of(size: Any) -> tuple[int, ...] | dict[str, tuple[int, ...]]:
    """Playground's ``observation_size`` (an int, a shape, or a dict of them) as rlx's ``observation_shape``."""
    if isinstance(size, dict):
        return {key: observation_shape_of(s) for key, s in size.items()}
    return tuple(int(n) for n in np.atleast_1d(size))


class _DoneFlagEnv:
    """Shared by brax and Playground: ``self._env`` has ``reset(key)``/``step(state, action)`` returning a
    state with ``obs``, ``reward`` and ``done``; without a time limit, ``done`` means termination."""

    _env: Any

    def reset(self, key: jax.Array) -> EnvStep:
        s = self._env.reset(key)
        return first_step(s, _float_obs(s.obs))

    def step(self, env_step: EnvStep, action: jax.Array) -> EnvStep:
        s = self._env.step(env_step.state, action)
        return EnvStep(
            state=s,
            obs=_float_obs(s.obs),
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
            raise unknown_env(f"brax/{name}", "brax env", names)
        backends = ("generalized", "mjx", "positional", "spring")
        if backend is not None and backend not in backends:
            raise EnvError(f"env brax/{name}: backend must be one of {', '.join(backends)}; got {backend!r}")
        kwargs = {} if backend is None else {"backend": backend}
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Brax System")
            self._env = brax_envs.get_environment(name, **kwargs)
        self.name = f"brax/{name}"
        # brax's ``observation_size`` runs ``reset`` op by op, compiling each of its ~1000 primitives (ant on mjx:
        # ~35 s on CPU before anything else could start); the shape needs only an abstract trace.
        first = jax.eval_shape(self._env.reset, jax.random.PRNGKey(0))
        self.observation_shape = first.obs.shape[-1:]
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
            raise unknown_env(f"gymnax/{name}", "gymnax env", gymnax.registered_envs)
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
            raise unknown_env(f"playground/{name}", "Playground env", names)
        impls = ("jax", "warp")
        if backend is not None and backend not in impls:
            raise EnvError(f"env playground/{name}: backend must be one of {', '.join(impls)}; got {backend!r}")
        if backend == "warp" and jax.default_backend() == "cpu":  # found by probing; untested on a GPU
            raise EnvError(
                f"env playground/{name}: backend warp fails on CPU (its state does not batch in rlx's auto-reset: "
                "a traceback once training starts); use jax, the default on CPU"
            )
        if backend is None:  # MJX's JAX implementation: far faster than Warp on CPU; Warp needs warp-lang.
            use_jax = jax.default_backend() == "cpu" or importlib.util.find_spec("warp") is None
            backend = "jax" if use_jax else None
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
        self.observation_shape = observation_shape_of(self._env.observation_size)
        self.action_space = _box(self._env.action_size)
        self.max_episode_steps = int(config.episode_length)


# Jumanji: a multi-discrete action space becomes one Discrete over the product of its sizes; above this many
# joint actions a flat categorical head is the wrong tool and the adapter refuses.
MAX_JOINT_ACTIONS = 4096


def flatten_observation(observation: Any) -> jax.Array:
    """Every leaf of a structured observation (a NamedTuple of arrays, possibly nested), ravelled and cast
    to float32, concatenated in pytree order: ``[sum of leaf sizes]``."""
    return jnp.concatenate([jnp.ravel(jnp.asarray(x)).astype(jnp.float32) for x in jax.tree.leaves(observation)])


class JumanjiEnv:
    """A Jumanji env (``jumanji.make(name)``). Observations are flattened (:func:`flatten_observation`),
    the ``action_mask`` entry included as features; a ``MultiDiscreteArray`` action spec of sizes
    ``(n_1, ..., n_k)`` becomes ``Discrete(n_1 * ... * n_k)``, decoded row-major (the last dimension varies
    fastest). A last step with discount 0 terminates; one with a nonzero discount (Jumanji's own time
    limit) truncates. Multi-agent envs that give one reward per agent are treated as one cooperative agent:
    the team reward is the sum, and the episode terminates when every agent's discount is 0."""

    def __init__(self, name: str):
        try:
            import jumanji
        except ImportError as e:
            raise EnvError(
                f"env jumanji/{name}: the 'jumanji' package is not installed (pip install 'rlx[jumanji]'): {e}"
            ) from None
        names = sorted(jumanji.registered_environments())
        if name not in names:
            raise unknown_env(f"jumanji/{name}", "Jumanji env", names)
        try:
            self._env = jumanji.make(name)
        except Exception as e:
            first = (str(e).splitlines() or [""])[0][:200]
            raise EnvError(f"env jumanji/{name}: could not be made ({type(e).__name__}: {first})") from None
        self.name = f"jumanji/{name}"
        spec = self._env.action_spec
        kind = type(spec).__name__
        if kind == "DiscreteArray":
            self._sizes: tuple[int, ...] = (int(spec.num_values),)
        elif kind == "MultiDiscreteArray" and np.ndim(spec.num_values) == 1:
            self._sizes = tuple(int(n) for n in np.asarray(spec.num_values))
        else:
            raise EnvError(f"env jumanji/{name}: action spec {kind} is not supported (discrete or multi-discrete)")
        joint = int(np.prod(self._sizes))
        if joint > MAX_JOINT_ACTIONS:
            raise EnvError(
                f"env jumanji/{name}: {joint} joint actions {self._sizes} exceed the flat categorical limit "
                f"{MAX_JOINT_ACTIONS}"
            )
        self.action_space = Discrete(joint)
        _, first = jax.eval_shape(self._env.reset, jax.random.key(0))
        self.observation_shape = (sum(int(np.prod(x.shape)) for x in jax.tree.leaves(first.observation)),)
        limit = getattr(self._env, "time_limit", None)
        self.max_episode_steps = int(limit) if limit else 0  # 0: no limit of its own (make() adds one)

    def decode_action(self, action: jax.Array) -> jax.Array:
        """Flat action index -> the env's action: an int32 scalar, or ``[k]`` indices for multi-discrete."""
        if len(self._sizes) == 1:
            return action.astype(jnp.int32)
        indices, rest = [], action.astype(jnp.int32)
        for size in reversed(self._sizes):
            indices.append(rest % size)
            rest = rest // size
        return jnp.stack(indices[::-1])

    def reset(self, key: jax.Array) -> EnvStep:
        state, timestep = self._env.reset(key)
        return first_step(state, flatten_observation(timestep.observation))

    def step(self, env_step: EnvStep, action: jax.Array) -> EnvStep:
        state, timestep = self._env.step(env_step.state, self.decode_action(action))
        last = timestep.last()
        ended_mdp = jnp.all(jnp.asarray(timestep.discount) == 0)
        return EnvStep(
            state=state,
            obs=flatten_observation(timestep.observation),
            reward=jnp.sum(jnp.asarray(timestep.reward, jnp.float32)),
            terminated=last & ended_mdp,
            truncated=last & ~ended_mdp,
            info={},
        )
