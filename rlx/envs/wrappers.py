"""Env wrappers: time limit, action repeat, episode statistics, auto-reset, vmap.

Each wrapper keeps its own fields in a small state pytree whose ``inner`` is the wrapped env's state,
and hands the wrapped env the same ``EnvStep`` with ``state`` swapped for ``inner``. Every wrapper's
``reset`` and ``step`` return the same ``info`` keys so that ``EnvStep`` can be a ``lax.scan`` carry.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from rlx.envs.base import Env, EnvStep, Wrapper


def _inner(env_step: EnvStep) -> EnvStep:
    return env_step.replace(state=env_step.state.inner)


def _select(pred: jax.Array, on_true: Any, on_false: Any) -> Any:
    return jax.tree.map(lambda a, b: jnp.where(pred, a, b), on_true, on_false)


@struct.dataclass
class TimeLimitState:
    inner: Any
    steps: jax.Array  # int32, env steps taken in this episode


class TimeLimit(Wrapper):
    """Truncates episodes after ``max_steps`` env steps (``truncated`` only if not terminated)."""

    def __init__(self, env: Env, max_steps: int):
        super().__init__(env)
        self.max_episode_steps = max_steps

    def reset(self, key: jax.Array) -> EnvStep:
        first = self.env.reset(key)
        return first.replace(state=TimeLimitState(first.state, jnp.zeros((), jnp.int32)))

    def step(self, env_step: EnvStep, action: jax.Array) -> EnvStep:
        nxt = self.env.step(_inner(env_step), action)
        steps = env_step.state.steps + 1
        out_of_time = steps >= self.max_episode_steps
        truncated = jnp.logical_or(nxt.truncated, out_of_time) & ~nxt.terminated
        return nxt.replace(state=TimeLimitState(nxt.state, steps), truncated=truncated)


class ActionRepeat(Wrapper):
    """Applies each action ``repeat`` times, summing rewards; stops early when the episode ends."""

    def __init__(self, env: Env, repeat: int):
        super().__init__(env)
        self.repeat = repeat
        self.max_episode_steps = -(-env.max_episode_steps // repeat)

    def reset(self, key: jax.Array) -> EnvStep:
        return self.env.reset(key)

    def step(self, env_step: EnvStep, action: jax.Array) -> EnvStep:
        # The first step outside the scan: ``env_step`` carries the outer wrappers' info keys, which the
        # wrapped env's steps do not return, so only the wrapped env's own steps can be the scan's carry.
        first = self.env.step(env_step, action)

        def one(carry, _):
            current, total = carry
            nxt = _select(current.done, current, self.env.step(current, action))
            return (nxt, total + jnp.where(current.done, 0.0, nxt.reward)), None

        (last, total), _ = jax.lax.scan(one, (first, first.reward), None, length=self.repeat - 1)
        return last.replace(reward=total)


class ObservationSubset(Wrapper):
    """Keeps only the observation entries ``indices`` (of a flat observation): a partially observed variant,
    e.g. CartPole's positions ``[0, 2]`` without its velocities. With ``privileged``, the observation becomes
    the dict ``{"state": those entries, "privileged_state": all of them}`` (MuJoCo Playground's convention), for
    an actor that sees ``state`` and a critic that sees ``privileged_state``."""

    def __init__(self, env: Env, indices: tuple[int, ...], privileged: bool = False):
        super().__init__(env)
        self.indices = tuple(indices)
        self.privileged = privileged
        subset = (len(self.indices),)
        self.observation_shape = {"state": subset, "privileged_state": env.observation_shape} if privileged else subset

    def _keep(self, env_step: EnvStep) -> EnvStep:
        kept = env_step.obs[jnp.asarray(self.indices)]
        return env_step.replace(obs={"state": kept, "privileged_state": env_step.obs} if self.privileged else kept)

    def reset(self, key: jax.Array) -> EnvStep:
        return self._keep(self.env.reset(key))

    def step(self, env_step: EnvStep, action: jax.Array) -> EnvStep:
        return self._keep(self.env.step(env_step, action))


@struct.dataclass
class EpisodeStatsState:
    inner: Any
    episode_return: jax.Array
    episode_length: jax.Array


class EpisodeStats(Wrapper):
    """Adds ``info['episode_return']``/``['episode_length']`` (agent steps): the running totals,
    which are the completed episode's when ``done``. Totals restart after ``done``."""

    def reset(self, key: jax.Array) -> EnvStep:
        first = self.env.reset(key)
        zero_f, zero_i = jnp.zeros((), jnp.float32), jnp.zeros((), jnp.int32)
        info = {**first.info, "episode_return": zero_f, "episode_length": zero_i}
        return first.replace(state=EpisodeStatsState(first.state, zero_f, zero_i), info=info)

    def step(self, env_step: EnvStep, action: jax.Array) -> EnvStep:
        nxt = self.env.step(_inner(env_step), action)
        ret = env_step.state.episode_return + nxt.reward
        length = env_step.state.episode_length + 1
        info = {**nxt.info, "episode_return": ret, "episode_length": length}
        keep = ~nxt.done
        state = EpisodeStatsState(nxt.state, ret * keep, length * keep)
        return nxt.replace(state=state, info=info)


@struct.dataclass
class AutoResetState:
    inner: Any
    key: jax.Array


class AutoReset(Wrapper):
    """Resets finished episodes in place. The returned ``obs`` is the new episode's first
    observation; ``info['final_obs']`` is the true observation the transition led to (equal to
    ``obs`` when not done), which value targets must bootstrap from on truncation."""

    def reset(self, key: jax.Array) -> EnvStep:
        key, reset_key = jax.random.split(key)
        first = self.env.reset(reset_key)
        info = {**first.info, "final_obs": first.obs}
        return first.replace(state=AutoResetState(first.state, key), info=info)

    def step(self, env_step: EnvStep, action: jax.Array) -> EnvStep:
        nxt = self.env.step(_inner(env_step), action)
        key, reset_key = jax.random.split(env_step.state.key)
        return _continue_or_restart(nxt, self.env.reset(reset_key), key)


def _continue_or_restart(nxt: EnvStep, fresh: EnvStep, key: jax.Array) -> EnvStep:
    """``nxt`` where the episode goes on, ``fresh`` (a new episode) where it ended; per env when batched."""
    done = nxt.done

    def pick(a: jax.Array, b: jax.Array) -> jax.Array:
        return jnp.where(done.reshape(done.shape + (1,) * (jnp.ndim(a) - done.ndim)), a, b)

    state = jax.tree.map(pick, fresh.state, nxt.state)
    obs = jax.tree.map(pick, fresh.obs, nxt.obs)
    info = {**nxt.info, "final_obs": nxt.obs}
    return nxt.replace(state=AutoResetState(state, key), obs=obs, info=info)


def check_actions(env: Env, action: jax.Array, num_envs: int) -> None:
    """A one-line ValueError unless ``action`` is a batch of ``num_envs`` actions of ``env``'s space (an int
    scalar per env for discrete actions): a wrong shape was broadcast or cut by some envs (gymnax Pendulum kept
    the first of two actions per env) or failed deep inside ``vmap``."""
    space = env.action_space
    want = (num_envs, *space.shape) if space.kind == "box" else (num_envs,)
    if tuple(jnp.shape(action)) != want:
        what = f"Box{list(space.shape)}" if space.kind == "box" else f"Discrete({space.n})"
        raise ValueError(
            f"action: expected shape {list(want)} ({num_envs} envs of {env.name}, {what}); got {list(jnp.shape(action))}"
        )


class Vmap(Wrapper):
    """Runs ``num_envs`` independent copies; every ``EnvStep`` field gains a leading axis."""

    def __init__(self, env: Env, num_envs: int):
        super().__init__(env)
        self.num_envs = num_envs

    def reset(self, key: jax.Array) -> EnvStep:
        return jax.vmap(self.env.reset)(jax.random.split(key, self.num_envs))

    def step(self, env_step: EnvStep, action: jax.Array) -> EnvStep:
        check_actions(self.env, action, self.num_envs)
        return jax.vmap(self.env.step)(env_step, action)


class VmapAutoReset(Wrapper):
    """``Vmap(AutoReset(env), num_envs)`` with the same results, bit for bit, but the vmapped ``reset`` runs
    only on steps where some episode ended (a ``lax.cond`` on the whole batch) instead of for every env at
    every step; for envs with an expensive reset (MJX ant) that was a fifth of the rollout time."""

    def __init__(self, env: Env, num_envs: int):
        super().__init__(env)
        self.num_envs = num_envs

    def reset(self, key: jax.Array) -> EnvStep:
        return jax.vmap(AutoReset(self.env).reset)(jax.random.split(key, self.num_envs))

    def step(self, env_step: EnvStep, action: jax.Array) -> EnvStep:
        check_actions(self.env, action, self.num_envs)
        nxt = jax.vmap(self.env.step)(_inner(env_step), action)
        keys = jax.vmap(jax.random.split)(env_step.state.key)  # [num_envs, 2, key]: as AutoReset splits
        key, reset_key = keys[:, 0], keys[:, 1]
        fresh = jax.lax.cond(jnp.any(nxt.done), lambda: jax.vmap(self.env.reset)(reset_key), lambda: nxt)
        return _continue_or_restart(nxt, fresh, key)


def training_env(env: Env, num_envs: int) -> VmapAutoReset:
    """The stack algorithms train on: episode statistics, auto-reset, ``num_envs`` vmapped copies."""
    return VmapAutoReset(EpisodeStats(env), num_envs)
