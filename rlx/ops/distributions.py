"""Action distributions used by policies.

``sample``/``mode`` return a *raw* action (pre-squash for Gaussians, 0/1 per dimension for Bernoulli), which
is what ``log_prob`` takes; ``env_action`` maps a raw action to what the env receives (int index, or a
vector in [-1, 1]). ``kl(other)`` is the analytic ``KL(self || other)`` per sample where it exists in closed
form (categorical, Bernoulli, unsquashed Gaussian; not for a Gaussian mixture).
"""

from __future__ import annotations

import math
from collections.abc import Callable

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

    def kl(self, other: Categorical) -> jax.Array:
        log_p, log_q = jax.nn.log_softmax(self.logits), jax.nn.log_softmax(other.logits)
        return jnp.sum(jnp.exp(log_p) * (log_p - log_q), axis=-1)


@struct.dataclass
class Bernoulli:
    """Independent Bernoulli per box dimension over the extremes ``{-1, +1}`` (bang-bang control, Seyde et al.
    2021): raw actions are 0/1 floats, ``logits [..., d]`` the log-odds of +1."""

    logits: jax.Array  # [..., d]

    def sample(self, key: jax.Array) -> jax.Array:
        return jax.random.bernoulli(key, jax.nn.sigmoid(self.logits)).astype(self.logits.dtype)

    def mode(self) -> jax.Array:
        return (self.logits > 0).astype(self.logits.dtype)

    def straight_through_sample(self, key: jax.Array) -> jax.Array:
        """A 0/1 sample (the same draw as ``sample(key)``) whose gradient is the probability's: the
        straight-through estimator (Bengio et al. 2013), for losses that backpropagate through the action."""
        p = jax.nn.sigmoid(self.logits)
        hard = jax.random.bernoulli(key, p).astype(self.logits.dtype)
        return hard + (p - jax.lax.stop_gradient(p))  # forward value exactly ``hard``

    def log_prob(self, raw_action: jax.Array) -> jax.Array:
        # log sigmoid(x) for a 1, log sigmoid(-x) for a 0
        return jnp.sum(jax.nn.log_sigmoid(jnp.where(raw_action > 0.5, self.logits, -self.logits)), axis=-1)

    def entropy(self, key: jax.Array | None = None) -> jax.Array:
        p = jax.nn.sigmoid(self.logits)
        return -jnp.sum(p * jax.nn.log_sigmoid(self.logits) + (1 - p) * jax.nn.log_sigmoid(-self.logits), axis=-1)

    def env_action(self, raw_action: jax.Array) -> jax.Array:
        return 2.0 * raw_action - 1.0

    def expectation(self, value_of: Callable[[jax.Array], jax.Array]) -> jax.Array:
        """``E_{a ~ self}[value_of(a)]``, shape ``[batch]``, summed exactly over the ``2^d`` joint actions in
        ``{-1, 1}^d``: ``value_of`` maps env actions ``[batch, d]`` to ``[batch]`` and runs once per joint action
        (vmapped); the gradient reaches ``logits`` through the joint probabilities."""
        num_dims = self.logits.shape[-1]
        bits = (jnp.arange(2**num_dims)[:, None] >> jnp.arange(num_dims)) & 1  # [2^d, d]: joint action j's bits
        raw = bits[:, None, :].astype(self.logits.dtype)  # [2^d, 1, d]
        log_prob = self.log_prob(raw)  # [2^d, batch]
        actions = jnp.broadcast_to(self.env_action(raw), (*log_prob.shape, num_dims))
        return jnp.sum(jnp.exp(log_prob) * jax.vmap(value_of)(actions), axis=0)

    def kl(self, other: Bernoulli) -> jax.Array:
        p = jax.nn.sigmoid(self.logits)
        log_ratio_one = jax.nn.log_sigmoid(self.logits) - jax.nn.log_sigmoid(other.logits)
        log_ratio_zero = jax.nn.log_sigmoid(-self.logits) - jax.nn.log_sigmoid(-other.logits)
        return jnp.sum(p * log_ratio_one + (1 - p) * log_ratio_zero, axis=-1)


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

    def kl(self, other: Gaussian) -> jax.Array:
        """KL between the unsquashed Gaussians; a tanh squash is the same bijection for both, so it leaves the
        KL unchanged (clip is not a bijection: there this is the KL of the pre-clip samples)."""
        var_ratio = jnp.square(self.std / other.std)
        mean_term = jnp.square((self.mean - other.mean) / other.std)
        return jnp.sum(0.5 * (var_ratio + mean_term - 1.0 - jnp.log(var_ratio)), axis=-1)


@struct.dataclass
class GaussianMixture:
    """A mixture of ``K`` diagonal Gaussians over raw actions, all squashed the same way: ``logits [..., K]``
    weigh the ``components`` (a :class:`Gaussian` with ``mean``/``std [..., K, d]``). The component is not part
    of the raw action: ``log_prob`` marginalizes it, ``sample`` draws one then its Gaussian, ``mode`` is the
    mean of the heaviest component, ``entropy`` a Monte-Carlo estimate (no closed form)."""

    logits: jax.Array
    components: Gaussian

    def sample(self, key: jax.Array) -> jax.Array:
        pick_key, gaussian_key = jax.random.split(key)
        pick = jax.random.categorical(pick_key, self.logits)
        return _component(self.components.sample(gaussian_key), pick)

    def mode(self) -> jax.Array:
        return _component(self.components.mean, jnp.argmax(self.logits, axis=-1))

    def log_prob(self, raw_action: jax.Array) -> jax.Array:
        per_component = self.components.log_prob(raw_action[..., None, :])  # [..., K], squash correction included
        return jax.nn.logsumexp(jax.nn.log_softmax(self.logits) + per_component, axis=-1)

    def entropy(self, key: jax.Array | None = None) -> jax.Array:
        """``-sum_k w_k log p(a_k)`` with one reparameterized draw ``a_k`` per component: unbiased in value and
        in its gradient. ``-log p(a)`` of one mixture sample is unbiased in value too, but its component draw
        is discrete, so its gradient leaves the weights alone (zero in expectation)."""
        draws = self.components.sample(key)  # [..., K, d]
        log_p = jax.vmap(self.log_prob, in_axes=-2, out_axes=-1)(draws)  # [..., K]: log p of each draw
        return -jnp.sum(jax.nn.softmax(self.logits) * log_p, axis=-1)

    def env_action(self, raw_action: jax.Array) -> jax.Array:
        return self.components.env_action(raw_action)


def _component(per_component: jax.Array, index: jax.Array) -> jax.Array:
    """``per_component [..., K, d]`` at component ``index [...]`` -> ``[..., d]``."""
    return jnp.take_along_axis(per_component, index[..., None, None], axis=-2)[..., 0, :]
