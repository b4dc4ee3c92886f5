"""Recurrent networks (``recurrent: gru | lstm`` of a network section): ``Dense(hidden[0]) -> [LayerNorm] ->
activation -> cell (width hidden[0]) -> the torso over hidden[1:] -> linear output``, stepped one observation at a
time with a carry that is zeroed where an episode starts (``norm: layer`` normalizes as in an MLP; ``residual`` is
refused).

:func:`sequence` runs the same step over a time axis (``lax.scan``), so an update recomputes exactly the
outputs the collection saw, from the carry the rollout began with.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from rlx.nets.layers import ACTIVATIONS, hidden_init, orthogonal, output_init
from rlx.nets.mlp import Model, _torso, observation_features
from rlx.nets.spec import Net, network_input


def zero_carry(net: Net, batch: int) -> Any:
    """The carry at an episode's start for ``batch`` envs: ``[batch, W]`` (GRU) or ``(c, h)`` of that (LSTM)."""
    width = net.hidden[0]
    zeros = jnp.zeros((batch, width), jnp.float32)
    return (zeros, zeros) if net.recurrent == "lstm" else zeros


class RecurrentMLP(nn.Module):
    """One step: ``(carry, obs [B, *obs_shape], starts [B] bool) -> (carry, outputs [B, *out_shape])``; the carry
    is reset to zeros where ``starts`` before the cell sees the observation."""

    net: Net
    out_shape: tuple[int, ...]
    obs_ndim: int = 1

    @nn.compact
    def __call__(self, carry: Any, obs: jax.Array, starts: jax.Array) -> tuple[Any, jax.Array]:
        obs = network_input(self.net, obs)
        batch_shape = obs.shape[: obs.ndim - self.obs_ndim]
        width = self.net.hidden[0]
        x = observation_features(self.net, obs, self.obs_ndim)
        x = nn.Dense(width, kernel_init=hidden_init(self.net.kernel_init))(x)
        x = ACTIVATIONS[self.net.activation](nn.LayerNorm()(x) if self.net.norm == "layer" else x)  # as an MLP layer
        carry = jax.tree.map(lambda c: jnp.where(starts[..., None], 0.0, c), carry)
        # flax's default recurrent init is an orthogonal matrix by batched QR when vmapped, which deadlocks XLA:CPU
        # (rlx.nets.layers.orthogonal); the same init, one matrix at a time
        recurrent_init = orthogonal(1.0)
        if self.net.recurrent == "gru":
            cell = nn.GRUCell(width, recurrent_kernel_init=recurrent_init)
        else:
            cell = nn.OptimizedLSTMCell(width, recurrent_kernel_init=recurrent_init)
        carry, x = cell(carry, x)
        x = _torso(dataclasses.replace(self.net, hidden=self.net.hidden[1:]), x, False)
        out = nn.Dense(math.prod(self.out_shape), kernel_init=output_init(self.net.kernel_init, self.net.output_scale))(
            x
        )
        return carry, out.reshape((*batch_shape, *self.out_shape))


def sequence(module: RecurrentMLP, params: Any, carry: Any, obs: jax.Array, starts: jax.Array) -> tuple[Any, jax.Array]:
    """The step over time-major ``obs [T, B, ...]`` and ``starts [T, B]`` from ``carry``: ``(the last carry,
    outputs [T, B, *out_shape])``."""

    def step(carry, inputs):
        return module.apply({"params": params}, carry, *inputs)

    return jax.lax.scan(step, carry, (obs, starts))


def init_network(net: Model | RecurrentMLP, key: jax.Array, obs: jax.Array) -> Any:
    """The params of a :class:`Model` or a :class:`RecurrentMLP` for example observations ``obs [1, ...]``."""
    if isinstance(net, RecurrentMLP):
        return net.init(key, zero_carry(net.net, 1), obs, jnp.ones((1,), bool))["params"]
    return net.init(key, obs)[0]


def unrolled(
    net: Model | RecurrentMLP, params: Any, carry: Any, obs: jax.Array, starts: jax.Array
) -> tuple[Any, jax.Array]:
    """``(carry, outputs [T, B, ...])`` of a network over time-major ``obs [T, B, ...]``: a recurrent one from
    ``carry`` with resets at ``starts [T, B]`` (:func:`sequence`), a :class:`Model` on each observation alone
    (``carry`` passes through)."""
    if isinstance(net, RecurrentMLP):
        return sequence(net, params, carry, obs, starts)
    return carry, net.apply(params, obs)


def with_next(
    module: RecurrentMLP, params: Any, carry: Any, obs: jax.Array, next_obs: jax.Array, starts: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Outputs at time-major ``obs [T, B, ...]`` and at ``next_obs``: step t's carry (reset at ``starts``) sees
    ``obs_t``; the output at ``next_obs_t`` continues that carry without a reset, which is step t+1's output
    within an episode, and the bootstrap value of an episode cut by a time limit."""

    def step(carry, inputs):
        o, next_o, start = inputs
        carry, out = module.apply({"params": params}, carry, o, start)
        _, next_out = module.apply({"params": params}, carry, next_o, jnp.zeros_like(start))
        return carry, (out, next_out)

    return jax.lax.scan(step, carry, (obs, next_obs, starts))[1]
