"""Small network building blocks."""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

ACTIVATIONS = {"tanh": nn.tanh, "relu": nn.relu, "swish": nn.swish, "elu": nn.elu}


class MLP(nn.Module):
    """Flattens the trailing ``obs_ndim`` axes, then ``hidden`` dense layers and a linear output.

    Orthogonal initialization (gain sqrt(2) on hidden layers, ``output_scale`` on the output).
    """

    hidden: Sequence[int]
    out: int
    activation: str = "tanh"
    obs_ndim: int = 1
    output_scale: float = 1.0

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        batch_shape = x.shape[: x.ndim - self.obs_ndim]
        x = x.reshape((*batch_shape, -1))
        act = ACTIVATIONS[self.activation]
        for width in self.hidden:
            x = act(nn.Dense(width, kernel_init=nn.initializers.orthogonal(jnp.sqrt(2.0)))(x))
        return nn.Dense(self.out, kernel_init=nn.initializers.orthogonal(self.output_scale))(x)
