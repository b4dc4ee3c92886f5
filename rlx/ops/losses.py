"""Policy-gradient and value losses as pure functions of already-computed quantities."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def clipped_surrogate_loss(
    log_prob: jax.Array, old_log_prob: jax.Array, advantages: jax.Array, clip_epsilon: float | jax.Array
) -> tuple[jax.Array, jax.Array]:
    """PPO's clipped objective, negated for minimisation: ``-mean(min(r A, clip(r, 1-e, 1+e) A))``.

    Returns ``(loss, ratio)`` with ``ratio = exp(log_prob - old_log_prob)``.
    """
    ratio = jnp.exp(log_prob - old_log_prob)
    clipped = jnp.clip(ratio, 1.0 - clip_epsilon, 1.0 + clip_epsilon)
    return -jnp.mean(jnp.minimum(ratio * advantages, clipped * advantages)), ratio


def approx_kl(log_ratio: jax.Array) -> jax.Array:
    """Schulman's ``k3`` estimate of ``KL(old || new)`` from ``log_ratio = log_prob - old_log_prob``:
    ``mean(r - 1 - log r)``, written as ``expm1(log_ratio) - log_ratio`` so that a sample whose ratio underflows
    to 0 (a log-ratio below about -88 in float32, seen on a GPU when the policy's std shrinks) stays finite
    rather than reading as a divergence."""
    return jnp.mean(jnp.expm1(log_ratio) - log_ratio)


def squared_value_loss(values: jax.Array, targets: jax.Array) -> jax.Array:
    """``0.5 * mean((V - target)^2)``."""
    return 0.5 * jnp.mean(jnp.square(values - targets))


def clipped_value_loss(
    values: jax.Array, old_values: jax.Array, targets: jax.Array, clip_epsilon: float | jax.Array
) -> jax.Array:
    """PPO's clipped value loss (PureJaxRL's, CleanRL's ``clip_vloss``, brax's ``clipping_epsilon_value``):
    ``0.5 * mean(max((V - G)^2, (V_old + clip(V - V_old, -e, e) - G)^2))`` with ``V_old`` the collecting network's."""
    clipped = old_values + jnp.clip(values - old_values, -clip_epsilon, clip_epsilon)
    return 0.5 * jnp.mean(jnp.maximum(jnp.square(values - targets), jnp.square(clipped - targets)))


def normalize_advantages(advantages: jax.Array, eps: float = 1e-8) -> jax.Array:
    """Zero mean, unit standard deviation over all elements."""
    return (advantages - advantages.mean()) / (advantages.std() + eps)


def mirror_descent_policy_loss(
    log_prob: jax.Array, old_log_prob: jax.Array, advantages: jax.Array, kl: jax.Array, step_size: float | jax.Array
) -> tuple[jax.Array, jax.Array]:
    """On-policy MDPO's objective (Tomar et al.), negated for minimisation:
    ``-mean(r A) + mean(KL(pi || pi_old)) / step_size``, with ``kl`` per sample.

    Returns ``(loss, ratio)`` with ``ratio = exp(log_prob - old_log_prob)``.
    """
    ratio = jnp.exp(log_prob - old_log_prob)
    return -jnp.mean(ratio * advantages) + jnp.mean(kl) / step_size, ratio


def mirror_descent_step_size(
    step_size: float | jax.Array, progress: jax.Array, schedule: str = "linear"
) -> jax.Array | float:
    """MDPO's step size ``t_k``: ``step_size * (1 - k/K)`` at the fraction ``progress = k/K`` of the run
    (``linear``, the paper's annealing), or ``step_size`` throughout (``constant``)."""
    return step_size * (1.0 - progress) if schedule == "linear" else step_size
