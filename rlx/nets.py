"""Small network building blocks."""

from __future__ import annotations

import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

ACTIVATIONS = {"tanh": nn.tanh, "relu": nn.relu, "swish": nn.swish, "elu": nn.elu}


def orthogonal(scale: float) -> nn.initializers.Initializer:
    """``nn.initializers.orthogonal(scale)`` whose QR stays one matrix at a time under ``vmap``.

    A vmapped init (seeds in a sweep, ``QEnsemble``'s critics) would otherwise run batched QR
    decompositions; on XLA:CPU (jaxlib 0.10.2) each batched QR waits on the intra-op thread pool for
    its own batch items, and as many concurrent ones as the pool has threads deadlock the program
    (seen with 2 threads: a vmapped TD3 init hung every time). Looping over the batch gives the same
    matrices as unbatched calls and costs nothing measurable at init.
    """
    base = nn.initializers.orthogonal(scale)

    def init(key: jax.Array, shape: tuple[int, ...], dtype=jnp.float32) -> jax.Array:
        return jax.custom_batching.sequential_vmap(lambda k: base(k, shape, dtype))(key)

    return init


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
            x = act(nn.Dense(width, kernel_init=orthogonal(math.sqrt(2.0)))(x))
        return nn.Dense(self.out, kernel_init=orthogonal(self.output_scale))(x)


class QEnsemble(nn.Module):
    """``num_critics`` independent Q-networks ``Q_k(s, a)`` evaluated at once; output ``[num_critics, ...batch]``."""

    hidden: Sequence[int]
    num_critics: int = 2
    activation: str = "relu"
    obs_ndim: int = 1

    @nn.compact
    def __call__(self, obs: jax.Array, action: jax.Array) -> jax.Array:
        batch_shape = obs.shape[: obs.ndim - self.obs_ndim]
        x = jnp.concatenate([obs.reshape((*batch_shape, -1)), action], axis=-1)
        ensemble = nn.vmap(
            MLP,
            variable_axes={"params": 0},
            split_rngs={"params": True},
            in_axes=None,
            out_axes=0,
            axis_size=self.num_critics,
        )
        return ensemble(self.hidden, 1, self.activation, 1, 1.0)(x)[..., 0]
