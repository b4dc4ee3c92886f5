"""The functional env protocol every rlx env (adapter or wrapper) follows.

An env is an object with two pure functions over one (unbatched) environment:

    reset(key) -> EnvStep
    step(env_step, action) -> EnvStep

``EnvStep`` carries the env's own state and the outputs of the last transition: ``obs``, ``reward``,
``terminated`` (the MDP ended: do not bootstrap), ``truncated`` (a time limit cut the episode:
bootstrap) and an ``info`` dict of arrays. Continuous actions are always in ``[-1, 1]``; adapters
rescale to the env's true bounds.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

import jax
import jax.numpy as jnp
from flax import struct


@dataclasses.dataclass(frozen=True)
class Discrete:
    """``n`` actions, given to ``step`` as an int32 scalar."""

    n: int
    kind: str = "discrete"


@dataclasses.dataclass(frozen=True)
class Box:
    """Continuous actions of ``shape``; rlx always passes them in [-1, 1]. ``low``/``high`` are the
    env's own bounds, used by the adapter for rescaling and shown to users."""

    shape: tuple[int, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]
    kind: str = "box"


Space = Discrete | Box


@struct.dataclass
class EnvStep:
    """State and last-transition outputs of one env (add leading axes when vmapped)."""

    state: Any
    obs: jax.Array
    reward: jax.Array  # float32 scalar
    terminated: jax.Array  # bool scalar
    truncated: jax.Array  # bool scalar
    info: dict[str, Any]

    @property
    def done(self) -> jax.Array:
        return jnp.logical_or(self.terminated, self.truncated)


class Env(Protocol):
    """Functional environment: see the module docstring."""

    name: str
    observation_shape: tuple[int, ...]
    action_space: Space
    max_episode_steps: int  # agent steps before truncation

    def reset(self, key: jax.Array) -> EnvStep: ...

    def step(self, env_step: EnvStep, action: jax.Array) -> EnvStep: ...


class Wrapper:
    """Forwards the env attributes; subclasses override ``reset``/``step``."""

    def __init__(self, env: Env):
        self.env = env

    def __getattr__(self, name: str) -> Any:
        if name == "env":  # not yet set during unpickling
            raise AttributeError(name)
        return getattr(self.env, name)

    @property
    def unwrapped(self) -> Env:
        return getattr(self.env, "unwrapped", self.env)


def first_step(state: Any, obs: jax.Array, info: dict | None = None) -> EnvStep:
    """The ``EnvStep`` a reset returns: zero reward, not done."""
    return EnvStep(
        state=state,
        obs=obs,
        reward=jnp.zeros((), jnp.float32),
        terminated=jnp.zeros((), bool),
        truncated=jnp.zeros((), bool),
        info={} if info is None else info,
    )
