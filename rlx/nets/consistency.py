"""Consistency-model policies (Ding & Jin 2024, "Consistency Models as a Rich and Efficient Policy Class for
RL"): a network ``F(s, a_t, t)`` and the consistency function ``f(s, a_t, t) = c_skip(t) a_t + c_out(t) F``,
which maps an action noised to level ``t`` back to a clean action in one evaluation; sampling chains a few of
them from pure noise. The parametrization (Song et al. 2023) is the authors': ``sigma_data = 0.5``, the
smallest level ``epsilon = 0.002`` where ``f`` is the identity, raw ``t`` into a sinusoidal embedding."""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from rlx.nets.layers import mish
from rlx.nets.mlp import MLP
from rlx.nets.spec import Net


def time_embedding(t: jax.Array, dim: int) -> jax.Array:
    """Sinusoidal embedding ``[..., dim]`` of noise levels ``t [...]`` (Diffusion-QL's ``SinusoidalPosEmb``):
    ``sin`` then ``cos`` of ``t * 10000^(-i / (dim/2 - 1))``, i < dim/2."""
    half = dim // 2
    frequencies = jnp.exp(-math.log(10000.0) / (half - 1) * jnp.arange(half))
    angles = t[..., None] * frequencies
    return jnp.concatenate([jnp.sin(angles), jnp.cos(angles)], axis=-1)


class ConsistencyNet(nn.Module):
    """``F(obs, a_t, t)``: the time embedding through ``Dense(2 dim) -> mish -> Dense(dim)``, concatenated with the
    observation and the noisy action, into an MLP (``net``) with ``action_dim`` outputs."""

    net: Net
    action_dim: int
    embedding_dim: int = 16
    obs_ndim: int = 1

    @nn.compact
    def __call__(self, obs: jax.Array, noisy_action: jax.Array, t: jax.Array) -> jax.Array:
        emb = nn.Dense(2 * self.embedding_dim)(time_embedding(t, self.embedding_dim))
        emb = nn.Dense(self.embedding_dim)(mish(emb))
        return MLP(self.net, (self.action_dim,), self.obs_ndim)(obs, noisy_action, emb)


def boundary_coefficients(t: jax.Array, sigma_data: float = 0.5, epsilon: float = 0.002) -> tuple[jax.Array, jax.Array]:
    """``(c_skip, c_out)`` at level ``t``: ``sigma_data^2 / ((t - eps)^2 + sigma_data^2)`` and
    ``sigma_data (t - eps) / sqrt(t^2 + sigma_data^2)``; at ``t = eps`` they are 1 and 0 (``f`` is the identity)."""
    c_skip = sigma_data**2 / ((t - epsilon) ** 2 + sigma_data**2)
    c_out = sigma_data * (t - epsilon) / jnp.sqrt(t**2 + sigma_data**2)
    return c_skip, c_out


def consistency_function(
    network_output: jax.Array, noisy_action: jax.Array, t: jax.Array, sigma_data: float = 0.5, epsilon: float = 0.002
) -> jax.Array:
    """``c_skip(t) a_t + c_out(t) F``, with ``t`` broadcast over the action dimensions."""
    c_skip, c_out = boundary_coefficients(t[..., None], sigma_data, epsilon)
    return c_skip * noisy_action + c_out * network_output


def sampling_levels(num_steps: int, sigma_max: float = 80.0, sigma_last: float = 2.0) -> tuple[float, ...]:
    """The noise levels of ``num_steps``-step sampling, largest first: ``sigma_max`` alone for one step, else
    ``num_steps`` equally spaced from ``sigma_max`` down to ``sigma_last`` (the authors' ``linspace(2, 80, T)``)."""
    if num_steps == 1:
        return (float(sigma_max),)
    return tuple(float(t) for t in np.linspace(sigma_max, sigma_last, num_steps))


def sample_actions(
    apply_network,
    obs: jax.Array,
    key: jax.Array,
    action_dim: int,
    levels: tuple[float, ...],
    sigma_data: float = 0.5,
    epsilon: float = 0.002,
    obs_ndim: int = 1,
    bound: str = "clip",
) -> jax.Array:
    """Multistep consistency sampling (Song et al. 2023, Algorithm 1): ``a = f(levels[0] z, levels[0])``, then at
    every lower level ``t``: ``a = f(a + sqrt(t^2 - eps^2) z', t)``; the result is brought into [-1, 1] by ``bound``:
    ``clip`` (the authors'; no gradient beyond the bounds) or ``tanh``.
    ``apply_network(obs, a_t, t) -> F``; ``obs`` (``obs_ndim`` sample axes) gives the batch shape. Differentiable."""
    batch_shape = obs.shape[: obs.ndim - obs_ndim]
    keys = jax.random.split(key, len(levels))
    action = jnp.zeros((*batch_shape, action_dim))
    for i, (level, step_key) in enumerate(zip(levels, keys, strict=True)):
        noise = jax.random.normal(step_key, (*batch_shape, action_dim))
        scale = level if i == 0 else math.sqrt(level**2 - epsilon**2)
        noisy = action + scale * noise
        t = jnp.full(batch_shape, level)
        action = consistency_function(apply_network(obs, noisy, t), noisy, t, sigma_data, epsilon)
    return jnp.tanh(action) if bound == "tanh" else jnp.clip(action, -1.0, 1.0)
