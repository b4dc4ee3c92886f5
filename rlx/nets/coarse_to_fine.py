"""CQN's coarse-to-fine critic (Seo et al. 2024): one network shared by all levels, told the level (one-hot) and
the centre of the interval it refines in every action dimension, outputting per dimension and bin a value
representation's outputs (C51 logits in the paper).

Each stream (value and advantage, fully separate as in the official code) is an observation trunk
``Dense(feature_dim) -> LayerNorm -> tanh``, then ``agent.q``'s torso over ``[trunk, centres, level one-hot]``
and a zero-initialized linear head; dueling combines the streams' outputs (logits for C51) as
``V + A - mean_bins A``. The zero heads make every bin's value equal at the start, so early greedy choices
fall to the random tie-break.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from rlx.nets.layers import hidden_init
from rlx.nets.mlp import _torso, observation_features
from rlx.nets.spec import QNet


class _Stream(nn.Module):
    net: QNet
    feature_dim: int
    out_shape: tuple[int, ...]
    train: bool = False

    @nn.compact
    def __call__(self, obs: jax.Array, conditioning: jax.Array) -> jax.Array:
        kernel_init = hidden_init(self.net.kernel_init)
        features = jnp.tanh(nn.LayerNorm()(nn.Dense(self.feature_dim, use_bias=False, kernel_init=kernel_init)(obs)))
        h = _torso(self.net, jnp.concatenate([features, conditioning], axis=-1), self.train)
        zeros = nn.initializers.zeros
        out = nn.Dense(math.prod(self.out_shape), kernel_init=zeros, bias_init=zeros)(h)
        return out.reshape((*h.shape[:-1], *self.out_shape))


class CoarseToFineQ(nn.Module):
    """``(obs [*batch, *obs_shape], centres [*batch, D], level [*batch] int) -> [*batch, D, bins, num_outputs]``."""

    net: QNet
    levels: int
    bins: int
    num_outputs: int
    feature_dim: int = 64
    obs_ndim: int = 1
    train: bool = False

    @nn.compact
    def __call__(self, obs: jax.Array, centres: jax.Array, level: jax.Array) -> jax.Array:
        obs = observation_features(self.net, obs, self.obs_ndim)
        dims = centres.shape[-1]
        conditioning = jnp.concatenate([centres, jax.nn.one_hot(level, self.levels, dtype=centres.dtype)], axis=-1)
        stream = (self.net, self.feature_dim)
        advantage = _Stream(*stream, (dims, self.bins, self.num_outputs), self.train, name="advantage")(
            obs, conditioning
        )
        if not self.net.dueling:
            return advantage
        value = _Stream(*stream, (dims, 1, self.num_outputs), self.train, name="value")(obs, conditioning)
        return value + advantage - advantage.mean(axis=-2, keepdims=True)
