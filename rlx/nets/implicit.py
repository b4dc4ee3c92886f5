"""IQN's implicit quantile network (Dabney et al. 2018, "Implicit Quantile Networks for Distributional RL"):
``Z_tau(s, a) = f(psi(s) * phi(tau))_a`` for any fraction ``tau`` in ``[0, 1]``.

``psi`` is the MLP torso over all but the last of ``hidden``; ``phi(tau) = act(sum_{i<n} cos(pi i tau) w_i + b)``
embeds a fraction by ``n`` cosine features into ``psi``'s width; ``f`` is one more hidden layer of width
``hidden[-1]`` and a linear output per action. With one entry in ``hidden``, ``psi`` is the flattened
observation itself (or its conv features: on Atari, ``psi`` is the conv torso and ``f`` the 512-unit layer).
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp

from rlx.nets.layers import ACTIVATIONS, hidden_bias_init, hidden_init, output_bias_init, output_init
from rlx.nets.mlp import _torso, observation_features
from rlx.nets.spec import Net


def cosine_features(fractions: jax.Array, num_features: int) -> jax.Array:
    """``cos(pi i tau)`` for ``i = 0 .. num_features - 1``: ``fractions [...]`` -> ``[..., num_features]``."""
    return jnp.cos(jnp.pi * jnp.arange(num_features, dtype=fractions.dtype) * fractions[..., None])


class ImplicitQuantileMLP(nn.Module):
    """``(obs [*batch, *obs_shape], fractions [*batch, N]) -> quantiles [*batch, N, num_actions]``."""

    net: Net
    num_actions: int
    embedding_dim: int = 64
    obs_ndim: int = 1
    train: bool = False

    @nn.compact
    def __call__(self, obs: jax.Array, fractions: jax.Array) -> jax.Array:
        x = observation_features(self.net, obs, self.obs_ndim)
        state = _torso(dataclasses.replace(self.net, hidden=self.net.hidden[:-1]), x, self.train)  # psi
        kind = self.net.kernel_init
        embed = nn.Dense(
            state.shape[-1], kernel_init=hidden_init(kind), bias_init=hidden_bias_init(kind, self.embedding_dim)
        )
        embedding = embed(cosine_features(fractions, self.embedding_dim))
        h = state[..., None, :] * ACTIVATIONS[self.net.activation](embedding)  # [*batch, N, width]
        h = _torso(dataclasses.replace(self.net, hidden=self.net.hidden[-1:], residual=False), h, self.train)
        kernel_init = output_init(kind, self.net.output_scale)
        bias_init = output_bias_init(kind, self.net.output_scale, h.shape[-1])
        return nn.Dense(self.num_actions, kernel_init=kernel_init, bias_init=bias_init)(h)
