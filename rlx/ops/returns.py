"""Return and advantage estimators over time-major rollouts."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def gae(
    rewards: jax.Array,
    values: jax.Array,
    next_values: jax.Array,
    terminated: jax.Array,
    truncated: jax.Array,
    gamma: float | jax.Array,
    lam: float | jax.Array,
) -> tuple[jax.Array, jax.Array]:
    """Generalized advantage estimation, GAE(lambda), that bootstraps on truncation only.

    All inputs are time-major ``[T, ...]``. ``values[t] = V(s_t)``; ``next_values[t] = V(s'_t)`` where
    ``s'_t`` is the true state the transition led to (the final observation when the episode ended,
    not the auto-reset one). A terminated step has no bootstrap (``V(s') = 0``); a truncated step
    bootstraps from ``V(s')`` but starts a new trace, since the next rollout step is another episode.

    Returns ``(advantages, value_targets)``, both ``[T, ...]``, with ``value_targets = advantages + values``.
    """
    not_terminated = 1.0 - terminated.astype(values.dtype)
    episode_continues = 1.0 - jnp.logical_or(terminated, truncated).astype(values.dtype)
    deltas = rewards + gamma * not_terminated * next_values - values

    def backward(next_advantage, step):
        delta, continues = step
        advantage = delta + gamma * lam * continues * next_advantage
        return advantage, advantage

    _, advantages = jax.lax.scan(
        backward, jnp.zeros_like(values[0]), (deltas, episode_continues), reverse=True
    )
    return advantages, advantages + values
