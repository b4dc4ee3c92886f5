"""The network every algorithm uses: :class:`MLP` (inputs -> torso -> linear output, optionally dueling),
:class:`Ensemble` (N independent copies along one leading axis), and :class:`Model`, the functional
wrapper that keeps trainable ``params`` apart from mutable collections (``batch_stats``) so both can
live in the train state."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from rlx.nets.hyper import HyperHead, hyper_torso
from rlx.nets.layers import (
    ACTIVATIONS,
    BatchRenorm,
    Conv,
    Dropout,
    NoisyDense,
    hidden_bias_init,
    hidden_init,
    mixed_dense,
    output_bias_init,
    output_init,
    signed_sqrt_normal,
)
from rlx.nets.spec import Net, network_input


def observation_features(net: Net, obs: jax.Array, obs_ndim: int) -> jax.Array:
    """``obs [*batch, *obs_shape]`` -> ``[*batch, features]``: flattened, after ``net.conv``'s layers if any
    (then ``obs_shape`` is ``[height, width, channels]``). Called inside the compact ``__call__`` of the module
    that owns the layers (``Conv_0``, ...)."""
    batch_shape = obs.shape[: obs.ndim - obs_ndim]
    if net.conv:
        act = ACTIVATIONS[net.activation]
        obs = obs.reshape((-1, *obs.shape[obs.ndim - obs_ndim :]))
        for channels in net.conv:
            bias_init = hidden_bias_init(net.kernel_init, net.conv_kernel**2 * obs.shape[-1])
            conv = Conv(
                channels, net.conv_kernel, net.conv_stride, hidden_init(net.kernel_init), net.compute_dtype, bias_init
            )
            obs = conv(obs)
            obs = act(nn.LayerNorm()(obs) if net.norm == "layer" else obs)
    return obs.reshape((*batch_shape, -1))


class _NoiseTape:
    """A noisy network's noise for one forward pass, ``[*batch, size]`` or ``[size]`` (or ``None``: no noise), handed
    out to its layers in order: each takes ``fan_in + features`` entries."""

    def __init__(self, noise: jax.Array | None):
        self.noise, self.used = noise, 0

    def take(self, size: int) -> jax.Array | None:
        if self.noise is None:
            return None
        part = self.noise[..., self.used : self.used + size]
        self.used += size
        return part

    def check_used(self) -> None:
        if self.noise is not None and self.used != self.noise.shape[-1]:
            raise AssertionError(f"noisy layers took {self.used} noise entries of {self.noise.shape[-1]} drawn")


def _noise_size(net: Net, in_features: int, out_widths: tuple[int, ...]) -> int:
    """``fan_in + features`` summed over the dense layers of :func:`_torso` on ``in_features`` and the output layers
    of ``out_widths``: the noise one forward pass of a noisy network takes."""
    size, width_in = 0, in_features
    for i, width in enumerate(net.hidden):
        size += (width_in + width) * (2 if net.residual and i > 0 else 1)
        width_in = width
    return size + sum(width_in + width for width in out_widths)


def _torso(net: Net, x: jax.Array, train: bool, noise: _NoiseTape | None = None) -> jax.Array:
    """The hidden layers of ``net`` on ``x [..., features]`` (noisy layers take their noise from ``noise``). Called
    inside the compact ``__call__`` of the module that owns the layers, so their names (``Dense_0``, ...) sit at
    that module's top level."""
    act = ACTIVATIONS[net.activation]
    noise = noise if noise is not None else _NoiseTape(None)

    def renorm(h: jax.Array) -> jax.Array:
        return BatchRenorm(net.renorm_momentum, warmup_steps=net.renorm_warmup, correction=net.renorm_correction)(
            h, train
        )

    def dense(h: jax.Array, width: int) -> jax.Array:
        bias_init = hidden_bias_init(net.kernel_init, h.shape[-1])
        if net.noisy_std > 0:
            layer_noise = noise.take(h.shape[-1] + width)
            h = NoisyDense(width, net.noisy_std, hidden_init(net.kernel_init), bias_init)(h, layer_noise)
        else:
            h = mixed_dense(h, width, hidden_init(net.kernel_init), net.compute_dtype, bias_init)
        return Dropout(net.dropout)(h, deterministic=not train) if net.dropout > 0 else h

    def layer(h: jax.Array, width: int) -> jax.Array:
        h = dense(h, width)
        if net.norm == "batch_renorm":
            return renorm(act(h))
        return act(nn.LayerNorm()(h) if net.norm == "layer" else h)

    if net.norm == "batch_renorm":
        x = renorm(x)
    for i, width in enumerate(net.hidden):
        if net.residual and i > 0:
            h = dense(layer(x, width), width)
            x = x + (nn.LayerNorm()(h) if net.norm == "layer" else h)
        else:
            x = layer(x, width)
    return x


class MLP(nn.Module):
    """Inputs (the first has ``obs_ndim`` trailing sample axes and may go through conv layers; all are flattened
    past the batch axes and concatenated) -> torso of ``net`` -> linear output of shape ``out_shape``. With ``dueling`` (Q-values,
    ``out_shape = (num_actions, k)``) the output is ``V + A - mean_a A`` from separate linear streams.
    ``train`` turns dropout on and makes batch renorm use and update batch statistics (an attribute, not
    a call argument, because ``nn.vmap`` drops keyword arguments). Noisy layers (``noisy_std``) draw their noise
    from the rng stream ``noise``, one draw per call for the whole network, or with ``per_sample_noise`` one per
    sample; without that stream they are their means. With ``architecture: simbav2`` the
    torso and head are SimbaV2's and the output splits into ``branches`` separately computed parts."""

    net: Net
    out_shape: tuple[int, ...]
    obs_ndim: int = 1
    dueling: bool = False
    train: bool = False
    branches: int = 1
    per_sample_noise: bool = False

    @nn.compact
    def __call__(self, *inputs: jax.Array) -> jax.Array:
        obs = network_input(self.net, inputs[0])
        batch_shape = obs.shape[: obs.ndim - self.obs_ndim]
        features = observation_features(self.net, obs, self.obs_ndim)
        x = jnp.concatenate([features, *(x.reshape((*batch_shape, -1)) for x in inputs[1:])], axis=-1)
        if self.net.architecture == "simbav2":
            width = self.net.hidden[0]
            x = hyper_torso(x, width, len(self.net.hidden), self.net.expansion, self.net.c_shift)
            out = HyperHead(width, math.prod(self.out_shape), self.branches)(x)
            return out.reshape((*batch_shape, *self.out_shape))
        out_widths = (math.prod(self.out_shape), *((self.out_shape[-1],) if self.dueling else ()))
        noise = _NoiseTape(None)
        if self.net.noisy_std > 0 and self.has_rng("noise"):
            size = _noise_size(self.net, x.shape[-1], out_widths)
            shape = (*batch_shape, size) if self.per_sample_noise else (size,)
            noise = _NoiseTape(signed_sqrt_normal(self.make_rng("noise"), shape))
        x = _torso(self.net, x, self.train, noise)
        kernel_init = output_init(self.net.kernel_init, self.net.output_scale)
        bias_init = output_bias_init(self.net.kernel_init, self.net.output_scale, x.shape[-1])

        def output(width: int) -> jax.Array:
            if self.net.noisy_std > 0:
                layer = NoisyDense(width, self.net.noisy_std, kernel_init, bias_init)
                return layer(x, noise.take(x.shape[-1] + width))
            return nn.Dense(width, kernel_init=kernel_init, bias_init=bias_init)(x)

        out, *value = (output(width) for width in out_widths)
        noise.check_used()
        out = out.reshape((*batch_shape, *self.out_shape))
        if not self.dueling:
            return out
        return value[0][..., None, :] + out - out.mean(axis=-2, keepdims=True)


class Ensemble(nn.Module):
    """``size`` independent :class:`MLP` members (own init, own dropout masks); params and outputs gain a
    leading ``[size]`` axis."""

    net: Net
    out_shape: tuple[int, ...]
    size: int
    obs_ndim: int = 1
    train: bool = False

    @nn.compact
    def __call__(self, *inputs: jax.Array) -> jax.Array:
        members = nn.vmap(
            MLP,
            variable_axes={"params": 0, "batch_stats": 0},
            split_rngs={"params": True, "dropout": True},
            in_axes=None,
            out_axes=0,
            axis_size=self.size,
        )
        return members(self.net, self.out_shape, self.obs_ndim, train=self.train)(*inputs)


@dataclasses.dataclass(frozen=True)
class Model:
    """A flax module used functionally, its variables split in two: ``params`` (what the optimizer
    updates) and ``collections`` (mutable state such as batch-renorm statistics; ``{}`` for most nets).

    ``apply`` runs evaluation mode (no dropout, running statistics, a noisy network's mean); ``apply_train`` runs
    training mode (dropout masks and a noisy network's one noise draw from ``key``, batch statistics used and
    updated) and also returns the new collections; ``apply_noisy`` is evaluation mode with a noise draw per sample.
    """

    module: nn.Module

    def init(self, key: jax.Array, *inputs: jax.Array) -> tuple[Any, dict]:
        variables = dict(self.module.init(key, *inputs))
        params = variables.pop("params")
        return params, variables

    def apply(self, params: Any, *inputs: jax.Array, collections: dict | None = None) -> jax.Array:
        return self.module.apply({"params": params, **(collections or {})}, *inputs)

    def apply_train(
        self, params: Any, key: jax.Array, *inputs: jax.Array, collections: dict | None = None
    ) -> tuple[jax.Array, dict]:
        collections = collections or {}
        # the noise stream is read by noisy layers only (a stream nothing reads changes nothing)
        rngs = {"dropout": key, "noise": jax.random.fold_in(key, 1)}
        out, updated = self.module.clone(train=True).apply(
            {"params": params, **collections}, *inputs, rngs=rngs, mutable=list(collections)
        )
        return out, {**collections, **updated}

    def apply_noisy(self, params: Any, key: jax.Array, *inputs: jax.Array) -> jax.Array:
        """Evaluation mode where each sample draws its own noise of a noisy network from ``key``: each env an actor
        with its own noisy weights."""
        return self.module.clone(per_sample_noise=True).apply({"params": params}, *inputs, rngs={"noise": key})
