"""Temporal-difference targets and related pure functions for off-policy actor-critic methods."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp


def soft_td_target(
    reward: jax.Array,
    terminated: jax.Array,
    next_q: jax.Array,
    next_log_prob: jax.Array,
    alpha: float | jax.Array,
    gamma: float | jax.Array,
) -> jax.Array:
    """SAC target ``r + gamma (1 - terminated) (min_k Q'_k(s', a') - alpha log pi(a'|s'))``.

    ``next_q`` is ``[num_critics, batch]`` from the target critics at ``a' ~ pi(s')``; the rest ``[batch]``.
    """
    soft_value = jnp.min(next_q, axis=0) - alpha * next_log_prob
    return reward + gamma * (1.0 - terminated.astype(reward.dtype)) * soft_value


def clipped_double_q_target(
    reward: jax.Array, terminated: jax.Array, next_q: jax.Array, gamma: float | jax.Array
) -> jax.Array:
    """TD3 target ``r + gamma (1 - terminated) min_k Q'_k(s', a')``; one critic gives DDPG's target."""
    return reward + gamma * (1.0 - terminated.astype(reward.dtype)) * jnp.min(next_q, axis=0)


def smoothed_target_action(
    action: jax.Array, key: jax.Array, noise_std: float | jax.Array, noise_clip: float | jax.Array
) -> jax.Array:
    """TD3 target-policy smoothing: ``clip(a + clip(eps, -c, c), -1, 1)`` with ``eps ~ N(0, noise_std^2)``."""
    noise = jnp.clip(noise_std * jax.random.normal(key, action.shape, action.dtype), -noise_clip, noise_clip)
    return jnp.clip(action + noise, -1.0, 1.0)


def temperature_loss(log_alpha: jax.Array, log_prob: jax.Array, target_entropy: float | jax.Array) -> jax.Array:
    """SAC's automatic-temperature loss ``-alpha * mean(log pi + target_entropy)`` (``log_prob`` is
    treated as a constant): alpha grows when the policy's entropy falls below the target."""
    return -jnp.exp(log_alpha) * jnp.mean(jax.lax.stop_gradient(log_prob) + target_entropy)


def critic_loss(q: jax.Array, target: jax.Array) -> jax.Array:
    """Sum over critics of ``0.5 * mean((Q_k - target)^2)``; ``q`` is ``[num_critics, batch]``."""
    return 0.5 * jnp.sum(jnp.mean(jnp.square(q - jax.lax.stop_gradient(target)[None]), axis=-1))


def polyak_update(target: Any, online: Any, tau: float | jax.Array) -> Any:
    """``target <- (1 - tau) target + tau online``, leaf by leaf."""
    return jax.tree.map(lambda t, o: (1.0 - tau) * t + tau * o, target, online)
