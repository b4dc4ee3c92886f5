"""Action distributions used by policies.

``sample``/``mode`` return a *raw* action (pre-squash for Gaussians), which is what ``log_prob``
takes; ``env_action`` maps a raw action to what the env receives (int index, or a vector in [-1, 1]).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import struct

_LOG_2PI = math.log(2.0 * math.pi)  # a Python float: importing rlx must not start a JAX backend


@struct.dataclass
class Categorical:
    logits: jax.Array  # [..., n]

    def sample(self, key: jax.Array) -> jax.Array:
        return jax.random.categorical(key, self.logits)

    def mode(self) -> jax.Array:
        return jnp.argmax(self.logits, axis=-1)

    def log_prob(self, raw_action: jax.Array) -> jax.Array:
        log_p = jax.nn.log_softmax(self.logits)
        return jnp.take_along_axis(log_p, raw_action[..., None].astype(jnp.int32), axis=-1)[..., 0]

    def entropy(self, key: jax.Array | None = None) -> jax.Array:
        log_p = jax.nn.log_softmax(self.logits)
        return -jnp.sum(jnp.exp(log_p) * log_p, axis=-1)

    def env_action(self, raw_action: jax.Array) -> jax.Array:
        return raw_action.astype(jnp.int32)


def tanh_log_det_jacobian(raw_action: jax.Array) -> jax.Array:
    """``sum log(1 - tanh(u)^2)`` over the last axis, computed stably as ``2(log 2 - u - softplus(-2u))``."""
    return jnp.sum(2.0 * (jnp.log(2.0) - raw_action - jax.nn.softplus(-2.0 * raw_action)), axis=-1)


@struct.dataclass
class Gaussian:
    """Diagonal Gaussian over raw actions; ``squash`` ('tanh' or 'clip') maps them into [-1, 1]."""

    mean: jax.Array  # [..., d]
    std: jax.Array  # [..., d]
    squash: str = struct.field(pytree_node=False, default="tanh")

    def sample(self, key: jax.Array) -> jax.Array:
        return self.mean + self.std * jax.random.normal(key, self.mean.shape, self.mean.dtype)

    def mode(self) -> jax.Array:
        return self.mean

    def _base_log_prob(self, raw_action: jax.Array) -> jax.Array:
        z = (raw_action - self.mean) / self.std
        return jnp.sum(-0.5 * jnp.square(z) - jnp.log(self.std) - 0.5 * _LOG_2PI, axis=-1)

    def log_prob(self, raw_action: jax.Array) -> jax.Array:
        """Log-density of the action the env receives: with the change of variables for 'tanh';
        for 'clip' the density of the unclipped sample (the usual PPO convention)."""
        log_p = self._base_log_prob(raw_action)
        if self.squash == "tanh":
            log_p = log_p - tanh_log_det_jacobian(raw_action)
        return log_p

    def entropy(self, key: jax.Array | None = None) -> jax.Array:
        """Gaussian entropy; for 'tanh' plus the log-det-Jacobian at one sample (an unbiased estimate
        of the squashed distribution's entropy), so ``key`` is required then."""
        ent = jnp.sum(0.5 + 0.5 * _LOG_2PI + jnp.log(self.std), axis=-1)
        if self.squash == "tanh":
            ent = ent + tanh_log_det_jacobian(self.sample(key))
        return ent

    def env_action(self, raw_action: jax.Array) -> jax.Array:
        if self.squash == "tanh":
            return jnp.tanh(raw_action)
        return jnp.clip(raw_action, -1.0, 1.0)
