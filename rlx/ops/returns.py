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

    _, advantages = jax.lax.scan(backward, jnp.zeros_like(values[0]), (deltas, episode_continues), reverse=True)
    return advantages, advantages + values


def vtrace_advantages(
    advantages: jax.Array, terminated: jax.Array, truncated: jax.Array, gamma: float | jax.Array, lam: float | jax.Array
) -> jax.Array:
    """IMPALA's policy-gradient advantage with importance weights 1, as brax.training's PPO computes it:
    ``r_t + gamma v_{t+1} - V(s_t)``, where ``v_{t+1}`` is the next step's lambda-return target. From :func:`gae`'s
    time-major ``[T, ...]`` advantages that is ``A_t + gamma (1 - lam) A_{t+1}`` while the trace goes on, and ``A_t``
    where it ends (``terminated`` or ``truncated``, which includes GAE segment ends) or at the last step."""
    continues = 1.0 - jnp.logical_or(terminated, truncated).astype(advantages.dtype)
    following = jnp.concatenate([advantages[1:], jnp.zeros_like(advantages[:1])], axis=0)
    return advantages + gamma * (1.0 - lam) * continues * following


def n_step_return(
    rewards: jax.Array, terminated: jax.Array, truncated: jax.Array, gamma: float | jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """n-step returns from runs of ``n`` consecutive transitions of one env, ``[batch, n]`` inputs.

    The run is cut at its first episode end (terminated or truncated), inclusive: with ``m`` the index
    of the last transition used, returns ``(G, discount, m)`` where ``G = sum_{k<=m} gamma^k r_k`` and the
    target is ``G + discount * V(next_obs[m])`` with ``discount = gamma^(m+1)`` unless transition ``m``
    terminated (then 0). A truncated run bootstraps from its own final observation.
    """
    done = jnp.logical_or(terminated, truncated).astype(rewards.dtype)
    n = rewards.shape[-1]
    # included[k] = 1 while no earlier transition of the run ended an episode
    included = jnp.cumprod(jnp.concatenate([jnp.ones_like(done[..., :1]), 1.0 - done[..., :-1]], axis=-1), axis=-1)
    powers = gamma ** jnp.arange(n, dtype=rewards.dtype)
    returns = jnp.sum(powers * included * rewards, axis=-1)
    count = jnp.sum(included, axis=-1)
    last = count.astype(jnp.int32) - 1
    last_terminated = jnp.take_along_axis(terminated, last[..., None], axis=-1)[..., 0]
    discount = gamma**count * (1.0 - last_terminated.astype(rewards.dtype))
    return returns, discount, last


def q_lambda_returns(
    rewards: jax.Array,
    next_values: jax.Array,
    terminated: jax.Array,
    truncated: jax.Array,
    gamma: float | jax.Array,
    lam: float | jax.Array,
) -> jax.Array:
    """Peng's Q(lambda) targets of PQN (Gallici et al. 2025), backward over a time-major ``[T, ...]`` rollout:

    ``G_t = r_t + gamma (1 - terminated_t) ((1 - lambda_t) V'_t + lambda_t G_{t+1})``

    where ``V'_t = max_a Q(s'_t, a)`` of the true next state (``next_values``) and ``lambda_t = lambda``
    while the episode continues into step ``t + 1``, else 0: a terminated step stops at its reward, a
    truncated one bootstraps fully from ``V'_t`` (its final observation) and starts a new trace. The last
    step of the rollout bootstraps fully from ``V'_{T-1}``.
    """
    not_terminated = 1.0 - terminated.astype(next_values.dtype)
    continues = 1.0 - jnp.logical_or(terminated, truncated).astype(next_values.dtype)

    def backward(following, step):
        reward, next_value, alive, cont = step
        mixed = (1.0 - lam * cont) * next_value + lam * cont * following
        target = reward + gamma * alive * mixed
        return target, target

    _, targets = jax.lax.scan(
        backward, next_values[-1], (rewards, next_values, not_terminated, continues), reverse=True
    )
    return targets
