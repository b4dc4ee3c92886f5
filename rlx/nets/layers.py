"""Layers and initializers the torso is built from: activations, a vmap-safe orthogonal initializer,
batch renormalization (Ioffe 2017) whose running statistics live in the ``batch_stats`` collection,
dropout whose masks cost a quarter of flax's on XLA:CPU, and NoisyNet's noisy linear layer."""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

KERNEL_INITS = ("orthogonal", "lecun_normal", "lecun_uniform", "pytorch", "xavier_uniform")


def _mish_parts(x: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(e, n, n / (n + 2))`` of :func:`mish`, ``e`` capped at ``exp(20)`` so nothing overflows."""
    e = jnp.exp(jnp.minimum(x, 20.0))
    n = e * (e + 2.0)
    return e, n, n / (n + 2.0)


@jax.custom_jvp
def mish(x: jax.Array) -> jax.Array:
    """Mish (Misra 2019), ``x tanh(softplus(x))``, from one exponential: with ``e = exp(x)`` and ``n = e (e + 2)``,
    ``tanh(log(1 + e)) = n / (n + 2)``, and the derivative ``tanh(softplus(x)) + x 4 e (e + 1) / (n + 2)^2``
    written out (autodiff of the quotient would cancel two terms near 2 for large ``x``). The same function as
    ``jax.nn.mish`` to float32 round-off, 4x faster forward and 3x with its gradient on XLA:CPU, whose ``log1p``
    inside ``softplus`` is slow. Above 20 it is ``x`` with slope 1, where ``n / (n + 2)`` is 1 in float32."""
    return jnp.where(x > 20.0, x, x * _mish_parts(x)[2])


@mish.defjvp
def _mish_jvp(primals: tuple[jax.Array], tangents: tuple[jax.Array]) -> tuple[jax.Array, jax.Array]:
    (x,), (dx,) = primals, tangents
    e, n, tanh_softplus = _mish_parts(x)
    slope = tanh_softplus + x * (4.0 * e * (e + 1.0)) / ((n + 2.0) * (n + 2.0))
    return jnp.where(x > 20.0, x, x * tanh_softplus), jnp.where(x > 20.0, 1.0, slope) * dx


ACTIVATIONS = {"tanh": nn.tanh, "relu": nn.relu, "swish": nn.swish, "elu": nn.elu, "gelu": nn.gelu, "mish": mish}


def orthogonal(scale: float, column_axis: int = -1) -> nn.initializers.Initializer:
    """``nn.initializers.orthogonal(scale, column_axis)`` whose QR stays one matrix at a time under ``vmap``.

    A vmapped init (seeds in a sweep, an ensemble's members) would otherwise run batched QR
    decompositions; on XLA:CPU (jaxlib 0.10.2) each batched QR waits on the intra-op thread pool for
    its own batch items, and as many concurrent ones as the pool has threads deadlock the program
    (seen with 2 threads: a vmapped TD3 init hung every time). Looping over the batch gives the same
    matrices as unbatched calls and costs nothing measurable at init.
    """
    base = nn.initializers.orthogonal(scale, column_axis=column_axis)

    def init(key: jax.Array, shape: tuple[int, ...], dtype=jnp.float32) -> jax.Array:
        return jax.custom_batching.sequential_vmap(lambda k: base(k, shape, dtype))(key)

    return init


def hidden_init(kind: str) -> nn.initializers.Initializer:
    """Kernel initializer of hidden layers: orthogonal with gain sqrt(2), flax's default lecun_normal, lecun_uniform
    (+-sqrt(3 / fan_in): brax.training's networks),
    PyTorch's ``nn.Linear``/``nn.Conv2d`` default (uniform in +-1/sqrt(fan_in)), or Glorot's uniform with gain 1
    (+-sqrt(6 / (fan_in + fan_out)), ``nn.init.xavier_uniform_``)."""
    if kind == "pytorch":
        return nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")
    if kind == "xavier_uniform":
        return nn.initializers.xavier_uniform()
    if kind == "lecun_uniform":
        return nn.initializers.lecun_uniform()
    return orthogonal(math.sqrt(2.0)) if kind == "orthogonal" else nn.initializers.lecun_normal()


def _uniform(bound: float) -> nn.initializers.Initializer:
    def init(key: jax.Array, shape: tuple[int, ...], dtype=jnp.float32) -> jax.Array:
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def hidden_bias_init(kind: str, fan_in: int) -> nn.initializers.Initializer:
    """Bias initializer of a hidden layer with ``fan_in`` inputs: zeros, or PyTorch's +-1/sqrt(fan_in)."""
    return _uniform(1.0 / math.sqrt(fan_in)) if kind == "pytorch" else nn.initializers.zeros


def mixed_dense(
    x: jax.Array,
    width: int,
    kernel_init: nn.initializers.Initializer,
    compute_dtype: str,
    bias_init: nn.initializers.Initializer = nn.initializers.zeros,
) -> jax.Array:
    """``nn.Dense(width)(x)`` with float32 parameters whose matmul runs in ``compute_dtype`` (``float32`` or
    ``bfloat16``: input, kernel and bias cast down); the result is float32 either way. Call it inside a compact
    ``__call__`` (it creates ``Dense_i`` there)."""
    if compute_dtype == "float32":
        return nn.Dense(width, kernel_init=kernel_init, bias_init=bias_init)(x)
    dense = nn.Dense(width, kernel_init=kernel_init, bias_init=bias_init, dtype=jnp.dtype(compute_dtype))
    return dense(x).astype(jnp.float32)


def output_init(kind: str, scale: float) -> nn.initializers.Initializer:
    """Kernel initializer of an output layer: orthogonal with gain ``scale``, lecun_normal, lecun_uniform or
    Glorot's uniform scaled by it; for ``pytorch`` PyTorch's default, or with ``scale != 1`` N(0, scale^2) (``nn.init.normal_(w, 0,
    scale)``, as FastTD3's actor head)."""
    if kind == "pytorch":
        return hidden_init(kind) if scale == 1.0 else nn.initializers.normal(scale)
    if kind == "xavier_uniform":
        return nn.initializers.variance_scaling(scale**2, "fan_avg", "uniform")
    if kind == "lecun_uniform":
        return nn.initializers.variance_scaling(scale**2, "fan_in", "uniform")
    if kind == "orthogonal":
        return orthogonal(scale)
    if scale == 1.0:
        return nn.initializers.lecun_normal()
    return nn.initializers.variance_scaling(scale**2, "fan_in", "truncated_normal")


def output_bias_init(kind: str, scale: float, fan_in: int) -> nn.initializers.Initializer:
    """Bias initializer of an output layer: zeros, or PyTorch's default where its kernel is (``scale`` 1)."""
    return hidden_bias_init(kind, fan_in) if scale == 1.0 else nn.initializers.zeros


_THREEFRY_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))


def _threefry2x32(k1: jax.Array, k2: jax.Array, x1: jax.Array, x2: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Threefry-2x32 with 20 rounds (Salmon et al. 2011), written out: jax lowers its own to a 5-step ``while``
    loop on CPU, which XLA:CPU runs ~4x slower on large arrays; on GPU jax already unrolls it."""
    ks = (k1, k2, k1 ^ k2 ^ jnp.uint32(0x1BD11BDA))
    x1, x2 = x1 + ks[0], x2 + ks[1]
    for i in range(5):
        for r in _THREEFRY_ROTATIONS[i % 2]:
            x1 = x1 + x2
            x2 = x1 ^ ((x2 << jnp.uint32(r)) | (x2 >> jnp.uint32(32 - r)))
        x1, x2 = x1 + ks[(i + 1) % 3], x2 + ks[(i + 2) % 3] + jnp.uint32(i + 1)
    return x1, x2


def bernoulli(key: jax.Array, p: float, shape: tuple[int, ...]) -> jax.Array:
    """``jax.random.bernoulli(key, p, shape)``, bit for bit, with the hash unrolled (:func:`_threefry2x32`).

    Same bits as jax's partitionable threefry (the default since jax 0.5): element ``n`` of the flattened
    array hashes the counter ``(0, n)`` under the key; the two words' xor gives a float32 in ``[0, 1)`` through
    its top 23 bits, compared with ``p``. Keys of another PRNG, the non-partitionable scheme, 64-bit mode and
    arrays of 2^32 or more elements take ``jax.random.bernoulli`` itself."""
    size = math.prod(shape)
    typed = jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
    data = jax.random.key_data(key) if typed else key
    threefry = (str(jax.random.key_impl(key)) == "threefry2x32") if typed else data.shape == (2,)
    if not threefry or not jax.config.jax_threefry_partitionable or jax.config.jax_enable_x64 or size >= 2**32:
        return jax.random.bernoulli(key, p, shape)
    counts = jax.lax.iota(jnp.uint32, size).reshape(shape)
    bits1, bits2 = _threefry2x32(data[0], data[1], jnp.zeros_like(counts), counts)
    mantissa = ((bits1 ^ bits2) >> jnp.uint32(9)) | jnp.uint32(0x3F800000)
    return jax.lax.bitcast_convert_type(mantissa, jnp.float32) - jnp.float32(1.0) < jnp.float32(p)


class Dropout(nn.Module):
    """``nn.Dropout(rate)`` with the same masks, bit for bit (:func:`bernoulli`; rng stream ``dropout``), at a
    quarter of the mask cost on XLA:CPU: DroQ's 20 critic steps per transition spent 70% of each step on them."""

    rate: float

    @nn.compact
    def __call__(self, x: jax.Array, deterministic: bool) -> jax.Array:
        if deterministic or self.rate == 0.0:
            return x
        keep = 1.0 - self.rate
        mask = bernoulli(self.make_rng("dropout"), keep, x.shape)
        return jax.lax.select(mask, x / keep, jnp.zeros_like(x))


def signed_sqrt_normal(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """NoisyNet's factorised noise ``f(e) = sign(e) sqrt(|e|)`` of standard normals ``e`` of ``shape``. One draw for
    a whole network: ``jax.random.normal``'s hash runs in a loop whose result XLA keeps, where per-layer draws (or a
    hash written out) got recomputed inside every consumer, each weight element of the noisy layers included."""
    noise = jax.random.normal(key, shape)
    return jnp.sign(noise) * jnp.sqrt(jnp.abs(noise))


class NoisyDense(nn.Module):
    """NoisyNet's linear layer with factorised Gaussian noise (Fortunato et al. 2018): weights ``mu_W + sigma_W *
    outer(f_in, f_out)`` and bias ``mu_b + sigma_b * f_out`` for the noise ``concat(f_in [fan_in], f_out [features])``
    given to the call (:func:`signed_sqrt_normal`): one vector shared by the batch, or one per sample of ``x [*batch,
    fan_in]`` (``noise [*batch, fan_in + features]``), computed as ``x mu_W + mu_b + f_out ((x f_in) sigma_W +
    sigma_b)``, which never forms a sample's weights. Without noise it is the mean layer ``x mu_W + mu_b``. The means
    (``kernel``, ``bias``) take ``kernel_init`` and ``bias_init``; ``kernel_sigma`` and ``bias_sigma`` start at
    ``sigma0 / sqrt(fan_in)``, the paper's."""

    features: int
    sigma0: float
    kernel_init: nn.initializers.Initializer
    bias_init: nn.initializers.Initializer = nn.initializers.zeros

    @nn.compact
    def __call__(self, x: jax.Array, noise: jax.Array | None = None) -> jax.Array:
        fan_in = x.shape[-1]
        kernel = self.param("kernel", self.kernel_init, (fan_in, self.features))
        bias = self.param("bias", self.bias_init, (self.features,))
        sigma_init = nn.initializers.constant(self.sigma0 / math.sqrt(fan_in))
        kernel_sigma = self.param("kernel_sigma", sigma_init, (fan_in, self.features))
        bias_sigma = self.param("bias_sigma", sigma_init, (self.features,))
        if noise is None:
            return x @ kernel + bias
        f_in, f_out = noise[..., :fan_in], noise[..., fan_in:]
        if noise.ndim > 1:
            return x @ kernel + bias + f_out * ((x * f_in) @ kernel_sigma + bias_sigma)
        # one draw for the batch: forming the weights costs fan_in x features, a second matmul batch times that
        return x @ (kernel + kernel_sigma * jnp.outer(f_in, f_out)) + (bias + bias_sigma * f_out)


class BatchRenorm(nn.Module):
    """Batch renormalization over the leading (batch) axes, features on the last axis.

    Training mode normalizes with the batch's statistics, corrected toward the running ones:
    ``y = scale * ((x - mean_B) / std_B * r + d) + bias`` with ``r = clip(std_B / std, 1/r_max, r_max)`` and
    ``d = clip((mean_B - mean) / std, -d_max, d_max)`` (both without gradient), where ``std = sqrt(var + eps)``.
    For the first ``warmup_steps`` training calls ``r = 1, d = 0`` (plain batch norm), as CrossQ does. Then
    the running mean and variance move toward the batch's by ``1 - momentum``. Evaluation mode normalizes
    with the running statistics. State (``batch_stats``): ``mean``, ``var`` and the call count ``steps``.

    ``correction="folded"`` is CrossQ's code instead, which folds ``r`` and ``d`` into the statistics that flax's
    batch norm then uses: ``y = scale * (x - mean_B + d sqrt(var_B) / r) / sqrt(var_B / r^2 + eps) + bias``
    (Ioffe's up to where ``eps`` sits; they part for features whose ``var_B`` is near ``eps``). A feature with
    zero batch variance gets a zero gradient through ``sqrt(var_B)`` here, where theirs is NaN.
    """

    momentum: float = 0.99
    epsilon: float = 1e-3
    warmup_steps: int = 100_000
    r_max: float = 3.0
    d_max: float = 5.0
    correction: str = "ioffe"

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        features = x.shape[-1]
        running_mean = self.variable("batch_stats", "mean", lambda: jnp.zeros((features,), jnp.float32))
        running_var = self.variable("batch_stats", "var", lambda: jnp.ones((features,), jnp.float32))
        steps = self.variable("batch_stats", "steps", lambda: jnp.zeros((), jnp.int32))
        scale = self.param("scale", nn.initializers.ones, (features,))
        bias = self.param("bias", nn.initializers.zeros, (features,))
        running_std = jnp.sqrt(running_var.value + self.epsilon)
        if not train or self.is_initializing():
            return scale * (x - running_mean.value) / running_std + bias
        axes = tuple(range(x.ndim - 1))
        mean = jnp.mean(x, axis=axes)
        var = jnp.mean(jnp.square(x - mean), axis=axes)
        std = jnp.sqrt(var + self.epsilon)
        warm = steps.value >= self.warmup_steps
        r = jnp.where(warm, jnp.clip(std / running_std, 1.0 / self.r_max, self.r_max), 1.0)
        d = jnp.where(warm, jnp.clip((mean - running_mean.value) / running_std, -self.d_max, self.d_max), 0.0)
        r, d = jax.lax.stop_gradient(r), jax.lax.stop_gradient(d)
        running_mean.value = self.momentum * running_mean.value + (1.0 - self.momentum) * jax.lax.stop_gradient(mean)
        running_var.value = self.momentum * running_var.value + (1.0 - self.momentum) * jax.lax.stop_gradient(var)
        steps.value = steps.value + 1
        if self.correction == "ioffe":
            return scale * ((x - mean) / std * r + d) + bias
        positive = var > 0
        batch_std = jnp.where(positive, jnp.sqrt(jnp.where(positive, var, 1.0)), 0.0)  # no NaN gradient at 0
        folded_mean, folded_var = mean - d * batch_std / r, var / jnp.square(r)  # the batch's in warm-up (r 1, d 0)
        return scale * (x - folded_mean) / jnp.sqrt(folded_var + self.epsilon) + bias


class Conv(nn.Module):
    """A 2-D convolution with VALID padding over ``x [N, height, width, channels]``, ``kernel [k, k, channels,
    features]`` and ``bias [features]`` (``flax.linen.Conv``'s parameters and result).

    Computed as one matrix product of the ``k * k`` shifted views of ``x`` concatenated along channels: on
    XLA:CPU this trains MinAtar's 3x3 / 16-channel layer ~3x faster than ``lax.conv_general_dilated``, whose
    backward pass dominates a small network's gradient step there. ``compute_dtype: bfloat16`` runs the matmul in
    bfloat16 and returns float32.
    """

    features: int
    kernel_size: int
    stride: int = 1
    kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()
    compute_dtype: str = "float32"
    bias_init: nn.initializers.Initializer = nn.initializers.zeros

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        k, s = self.kernel_size, self.stride
        kernel = self.param("kernel", self.kernel_init, (k, k, x.shape[-1], self.features))
        bias = self.param("bias", self.bias_init, (self.features,))
        out_h, out_w = (x.shape[1] - k) // s + 1, (x.shape[2] - k) // s + 1
        views = [
            x[:, i : i + s * (out_h - 1) + 1 : s, j : j + s * (out_w - 1) + 1 : s] for i in range(k) for j in range(k)
        ]
        patches, kernel = jnp.concatenate(views, axis=-1), kernel.reshape(-1, self.features)
        if self.compute_dtype == "float32":
            return patches @ kernel + bias
        low = jnp.dtype(self.compute_dtype)
        return (patches.astype(low) @ kernel.astype(low)).astype(jnp.float32) + bias
