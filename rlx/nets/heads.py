"""Policy heads: how a policy network's outputs become an action distribution."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from rlx.envs.base import Space
from rlx.nets.spec import PolicyNet
from rlx.ops.distributions import Bernoulli, Categorical, Gaussian, GaussianMixture


def policy_outputs(space: Space, spec: PolicyNet | None = None) -> int:
    """Outputs a stochastic policy needs: one logit per discrete action, a mean and a std parameter per box
    dimension, one logit per box dimension for ``spec.distribution: bernoulli``, or for ``gaussian_mixture``
    one weight logit and a mean and std parameter per dimension for each of ``spec.num_components``."""
    if space.kind == "discrete":
        return space.n
    distribution = "gaussian" if spec is None else spec.distribution
    if distribution == "bernoulli":
        return space.shape[0]
    if distribution == "gaussian_mixture":
        return spec.num_components * (1 + 2 * space.shape[0])
    return 2 * space.shape[0]


def policy_distribution(
    spec: PolicyNet, space: Space, outputs: jax.Array
) -> Categorical | Gaussian | Bernoulli | GaussianMixture:
    """Categorical over discrete actions; for box actions per ``spec.distribution`` a diagonal Gaussian (std per
    ``spec.std``) squashed by ``spec.squash``, a Bernoulli per dimension on {-1, 1}, or a mixture of
    ``spec.num_components`` such Gaussians."""
    if space.kind == "discrete":
        return Categorical(outputs)
    if spec.distribution == "bernoulli":
        return Bernoulli(outputs)
    if spec.distribution == "gaussian_mixture":
        k = spec.num_components
        logits, params = outputs[..., :k], outputs[..., k:].reshape((*outputs.shape[:-1], k, -1))
        return GaussianMixture(logits, _gaussian(spec, params))
    return _gaussian(spec, outputs)


def _gaussian(spec: PolicyNet, outputs: jax.Array) -> Gaussian:
    mean, raw_std = jnp.split(outputs, 2, axis=-1)
    if spec.std == "softplus":
        std = jax.nn.softplus(raw_std) + spec.min_std
    elif spec.std == "log_clip":  # no gradient past the ends, as torch.clamp in the original SAC and REDQ code
        std = jnp.exp(jnp.clip(raw_std, spec.log_std_min, spec.log_std_max))
    else:
        low, high = spec.log_std_min, spec.log_std_max
        std = jnp.exp(low + 0.5 * (high - low) * (jnp.tanh(raw_std) + 1.0))
    return Gaussian(mean, std, squash=spec.squash)


def deterministic_action(outputs: jax.Array) -> jax.Array:
    """A deterministic policy's action in [-1, 1] (tanh of the outputs)."""
    return jnp.tanh(outputs)
