"""SimbaV2's hyperspherical network (Lee et al. 2025, "Hyperspherical Normalization for Scalable Deep RL").

Every hidden feature vector lives on the unit sphere and every weight vector (a bias-free kernel's column,
one per output unit) is projected back onto it after each optimizer step (:func:`project_to_sphere`), so
the scale of the network is carried only by learnable per-feature scalers. The torso is an embedder
(append a constant ``c_shift``, l2-normalize, dense, scale, l2-normalize) and LERP residual blocks
(``x <- normalize(x + alpha * (normalize(MLP(x)) - x))``, the MLP widening ``expansion`` times). The
output head is dense -> scaler -> dense + bias, one head per output branch (a Gaussian policy's mean and
log-std are separate branches, as in the authors' code). Scalers are parametrized as in the authors' code:
the stored parameter starts at ``scale`` and is multiplied by ``initial / scale``, which sets its effective
learning rate.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from rlx.nets.layers import orthogonal

EPS = 1e-8


def l2_normalize(x: jax.Array, axis: int = -1) -> jax.Array:
    """``x / max(||x||_2, 1e-8)`` along ``axis``."""
    return x / jnp.maximum(jnp.linalg.norm(x, axis=axis, keepdims=True), EPS)


class HyperDense(nn.Module):
    """A bias-free dense layer whose kernel columns :func:`project_to_sphere` keeps at unit norm."""

    features: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        init = orthogonal(1.0, column_axis=0)
        shape = (x.shape[-1], self.features)
        kernel = self.param("kernel", lambda key, shape: l2_normalize(init(key, shape), axis=0), shape)
        return x @ kernel


class Scaler(nn.Module):
    """A learnable per-feature scale, effective value ``initial`` at the start (stored as ``scale``)."""

    initial: float
    scale: float

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        scaler = self.param("scaler", nn.initializers.constant(self.scale), (x.shape[-1],))
        return scaler * (self.initial / self.scale) * x


def hyper_torso(x: jax.Array, width: int, blocks: int, expansion: int, c_shift: float) -> jax.Array:
    """The embedder and ``blocks`` LERP blocks of width ``width`` on ``x [..., features]``; the output has
    unit norm. Called inside the compact ``__call__`` of the owning module (layer names at its top level)."""
    scaler = math.sqrt(2.0 / width)
    x = jnp.concatenate([x, jnp.full((*x.shape[:-1], 1), c_shift, x.dtype)], axis=-1)
    x = l2_normalize(Scaler(scaler, scaler)(HyperDense(width)(l2_normalize(x))))
    inner = scaler / math.sqrt(expansion)
    for _ in range(blocks):
        h = nn.relu(Scaler(inner, inner)(HyperDense(width * expansion)(x))) + EPS  # eps: never a zero vector
        h = l2_normalize(HyperDense(width)(h))
        alpha = Scaler(1.0 / (blocks + 1), 1.0 / math.sqrt(width))
        x = l2_normalize(x + alpha(h - x))
    return x


class HyperHead(nn.Module):
    """``branches`` output heads (dense -> scaler -> dense + bias), each ``outputs // branches`` wide,
    concatenated along the last axis."""

    width: int
    outputs: int
    branches: int = 1

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        parts = []
        for i in range(self.branches):
            h = HyperDense(self.outputs // self.branches)(Scaler(1.0, 1.0)(HyperDense(self.width)(x)))
            parts.append(h + self.param(f"bias_{i}", nn.initializers.zeros, h.shape[-1:]))
        return jnp.concatenate(parts, axis=-1)


def project_to_sphere(params: dict) -> dict:
    """``params`` with every :class:`HyperDense` kernel's columns (axis -2: its inputs; a leading ensemble
    axis is kept) l2-normalized; all other parameters unchanged. Applied after every optimizer step."""

    def project(path, leaf):
        names = [getattr(k, "key", "") for k in path]
        if names and names[-1] == "kernel" and any(str(n).startswith("HyperDense") for n in names):
            return l2_normalize(leaf, axis=-2)
        return leaf

    return jax.tree_util.tree_map_with_path(project, params)
