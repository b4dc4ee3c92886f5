"""The one rollout every part of rlx that steps envs uses: on-policy collection (PPO), off-policy
collection into the replay buffer, evaluation and ``rlx eval``'s rendered episode.

A policy is a function ``policy(obs, starts, carry, key) -> PolicyStep`` over a batch of envs: ``obs``
``[N, ...]``, ``starts`` (bool ``[N]``: the observation begins an episode after an auto-reset), a ``carry``
it threads through time (recurrent state, per-env noise scales; ``()`` when it has none) and a fresh PRNG
key per step. It returns the actions the envs receive, per-step ``extras`` the algorithm keeps (raw
actions, log-probabilities, ...) and the next carry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from rlx.envs import Env, EnvStep


@struct.dataclass
class PolicyStep:
    action: jax.Array  # [N, ...] what the envs receive
    extras: dict  # [N, ...] leaves, kept with the transition
    carry: Any  # threaded to the next step


Policy = Callable[[jax.Array, jax.Array, Any, jax.Array], PolicyStep]


@struct.dataclass
class Transition:
    """Env transitions (time-major ``[T, N, ...]`` from :func:`unroll`; ``[batch, ...]`` in the replay buffer).
    ``next_obs`` is the true next observation: the final one when the episode ended, not the reset one."""

    obs: jax.Array
    action: jax.Array  # as the policy chose it ([-1, 1] for box, int for discrete; see unroll's env_action)
    reward: jax.Array
    terminated: jax.Array  # bool: the MDP ended, do not bootstrap
    truncated: jax.Array  # bool: a time limit ended the episode, bootstrap from next_obs
    next_obs: jax.Array
    extras: dict = struct.field(default_factory=dict)


@struct.dataclass
class EpisodeTotals:
    """Sums over the episodes that ended during a rollout (the driver sums these over a chunk)."""

    episode_return_sum: jax.Array
    episode_length_sum: jax.Array
    episode_count: jax.Array

    def metrics(self) -> dict[str, jax.Array]:
        return {
            "episode_return_sum": self.episode_return_sum,
            "episode_length_sum": self.episode_length_sum,
            "episode_count": self.episode_count,
        }


@struct.dataclass
class Unrolled:
    """What :func:`unroll` returns: the envs, carry and key after the last step, the transitions, the
    completed-episode totals and (with ``record_env_steps``) every ``EnvStep`` after a step."""

    env_step: EnvStep
    carry: Any
    key: jax.Array
    transitions: Transition
    totals: EpisodeTotals
    env_steps: EnvStep | None = None


def unroll(
    env: Env,
    policy: Policy,
    env_step: EnvStep,
    carry: Any,
    key: jax.Array,
    length: int,
    record_env_steps: bool = False,
    keys_per_step: int = 1,
    env_action: Callable[[jax.Array], jax.Array] | None = None,
) -> Unrolled:
    """Steps the batched ``env`` ``length`` times with ``policy``. Each step splits ``key`` into the next key
    and the policy's key (a tuple of ``keys_per_step`` keys when that is > 1). Completed-episode totals
    come from ``EpisodeStats``' info when the env has it (training envs), else they are zero. ``final_obs``
    (from ``AutoReset``) is the transitions' ``next_obs``. With ``env_action`` the envs receive
    ``env_action(action)`` and the transitions keep the policy's ``action`` (off-policy TD3 stores its
    exploration action unclipped this way)."""
    with_stats = "episode_return" in env_step.info

    def one_step(loop, _):
        env_step, carry, key, totals = loop
        key, *policy_keys = jax.random.split(key, 1 + keys_per_step)
        step = policy(env_step.obs, env_step.done, carry, policy_keys[0] if keys_per_step == 1 else tuple(policy_keys))
        nxt = env.step(env_step, step.action if env_action is None else env_action(step.action))
        next_obs = nxt.info.get("final_obs", nxt.obs)
        transition = Transition(
            env_step.obs, step.action, nxt.reward, nxt.terminated, nxt.truncated, next_obs, step.extras
        )
        if with_stats:
            done = nxt.done
            totals = EpisodeTotals(
                totals.episode_return_sum + jnp.sum(jnp.where(done, nxt.info["episode_return"], 0.0)),
                totals.episode_length_sum + jnp.sum(jnp.where(done, nxt.info["episode_length"], 0)).astype(jnp.float32),
                totals.episode_count + jnp.sum(done).astype(jnp.float32),
            )
        return (nxt, step.carry, key, totals), (transition, nxt if record_env_steps else None)

    zero = jnp.zeros((), jnp.float32)
    loop = (env_step, carry, key, EpisodeTotals(zero, zero, zero))
    (env_step, carry, key, totals), (transitions, env_steps) = jax.lax.scan(one_step, loop, None, length=length)
    return Unrolled(env_step, carry, key, transitions, totals, env_steps)


def first_episode_mask(transitions: Transition) -> jax.Array:
    """``[T, N]`` float mask, 1 while each env is still in its first episode (the step that ends it included)."""
    done = jnp.logical_or(transitions.terminated, transitions.truncated).astype(jnp.float32)
    before = jnp.concatenate([jnp.zeros_like(done[:1]), done[:-1]], axis=0)
    return jnp.cumprod(1.0 - before, axis=0)
