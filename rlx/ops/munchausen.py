"""Munchausen RL's targets (Vieillard, Pietquin and Geist 2020): the scaled, clipped log-policy of the taken action
added to the reward, and the soft value of the softmax policy ``pi = softmax(Q' / tau)`` of the target network in place
of the max. DQN's ``munchausen_alpha`` (M-DQN) and IQN's (M-IQN) build on them."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from rlx.ops.distributions import Categorical


def target(
    target_out: jax.Array,
    target_next_out: jax.Array,
    action: jax.Array,
    returns: jax.Array,
    discount: jax.Array,
    alpha: jax.Array,
    tau: jax.Array,
    clip_min: jax.Array,
) -> jax.Array:
    """Munchausen-DQN's target ``[batch]`` (Vieillard et al. 2020, eq. 3) from the target network's Q-values
    ``[batch, num_actions]`` at ``s_0`` and at the bootstrap state: ``returns + alpha * clip(tau log pi(a|s_0),
    clip_min, 0) + discount * sum_a' pi(a'|s') (Q'(s', a') - tau log pi(a'|s'))`` with ``pi = softmax(Q' / tau)``;
    that soft value is ``tau logsumexp(Q'(s') / tau)``. The bonus is kept at episode ends (``discount`` 0)."""
    soft_value = tau * jax.nn.logsumexp(target_next_out / tau, axis=-1)
    return returns + bonus(target_out, action, alpha, tau, clip_min) + discount * soft_value


def bonus(target_out: jax.Array, action: jax.Array, alpha: jax.Array, tau: jax.Array, clip_min: jax.Array) -> jax.Array:
    """``alpha * clip(tau log pi(a|s_0), clip_min, 0)`` ``[batch]``, ``pi = softmax(Q'(s_0) / tau)`` of the target
    network's Q-values ``[batch, num_actions]``: Munchausen's bonus for the taken action."""
    tau_log_pi = tau * Categorical(target_out / tau).log_prob(action)
    return alpha * jnp.clip(tau_log_pi, clip_min, 0.0)


def quantile_target(
    target_q: jax.Array,
    target_next_q: jax.Array,
    target_next_quantiles: jax.Array,
    action: jax.Array,
    returns: jax.Array,
    discount: jax.Array,
    alpha: jax.Array,
    tau: jax.Array,
    clip_min: jax.Array,
) -> jax.Array:
    """M-IQN's target samples ``[batch, N']``: ``returns + alpha clip(tau log pi(a|s_0), clip_min, 0) + discount *
    sum_a' pi(a'|s') (Z'_j(s', a') - tau log pi(a'|s'))``, ``pi = softmax(Q' / tau)``; ``target_q`` and
    ``target_next_q`` ``[batch, A]`` are the target network's mean quantiles at ``s_0`` and at the bootstrap state,
    ``target_next_quantiles [batch, N', A]`` its samples ``Z'_j`` there. The bonus is kept at episode ends."""
    tau_log_pi = tau * jax.nn.log_softmax(target_next_q / tau)  # [batch, A]
    soft = jnp.sum(jnp.exp(tau_log_pi / tau)[:, None] * (target_next_quantiles - tau_log_pi[:, None]), axis=-1)
    return (returns + bonus(target_q, action, alpha, tau, clip_min))[:, None] + discount[:, None] * soft
