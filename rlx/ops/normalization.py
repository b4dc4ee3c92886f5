"""Running mean/variance (Welford / Chan parallel update) for observation normalization.

The statistics are a pytree held in the train state, updated with whole batches inside the jitted
loop, and checkpointed with everything else.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class RunningStats:
    """Count, mean and summed squared deviations (M2) of everything seen, per feature."""

    count: jax.Array  # float32 scalar
    mean: jax.Array  # [*shape]
    m2: jax.Array  # [*shape]

    @property
    def variance(self) -> jax.Array:
        return self.m2 / jnp.maximum(self.count, 1.0)


def init_stats(shape: tuple[int, ...] | dict) -> RunningStats | dict:
    """Empty statistics for observations of ``shape``; for dict observations (``{key: shape}``) one
    :class:`RunningStats` per key, which :func:`update_stats` and :func:`normalize` handle key by key."""
    if isinstance(shape, dict):
        return {key: init_stats(s) for key, s in shape.items()}
    zeros = jnp.zeros(shape, jnp.float32)
    return RunningStats(count=jnp.zeros((), jnp.float32), mean=zeros, m2=zeros)


def update_stats(stats: RunningStats | dict, batch: jax.Array | dict) -> RunningStats | dict:
    """Merges a batch ``[..., *shape]`` (all leading axes are samples) into ``stats``."""
    if isinstance(stats, dict):
        return {key: update_stats(s, batch[key]) for key, s in stats.items()}
    shape = stats.mean.shape
    batch = batch.reshape((-1, *shape)).astype(jnp.float32)
    n = jnp.asarray(batch.shape[0], jnp.float32)
    batch_mean = batch.mean(axis=0)
    batch_m2 = jnp.square(batch - batch_mean).sum(axis=0)
    total = stats.count + n
    delta = batch_mean - stats.mean
    mean = stats.mean + delta * (n / total)
    m2 = stats.m2 + batch_m2 + jnp.square(delta) * stats.count * n / total
    return RunningStats(count=total, mean=mean, m2=m2)


def normalize(
    stats: RunningStats | dict,
    x: jax.Array | dict,
    clip: float | None = 10.0,
    eps: float = 1e-8,
    std_eps: float = 0.0,
) -> jax.Array | dict:
    """``(x - mean) / (sqrt(var + eps) + std_eps)``, clipped to ``[-clip, clip]`` (``None``: not clipped);
    identity before any data was seen. The defaults are gymnasium's and SB3's; ``eps=0, std_eps=0.01,
    clip=None`` is rsl_rl's and FastTD3's ``EmpiricalNormalization``."""
    if isinstance(stats, dict):
        return {key: normalize(s, x[key], clip, eps, std_eps) for key, s in stats.items()}
    std = jnp.sqrt(stats.variance + eps) + std_eps
    seen = stats.count > 0
    z = jnp.where(seen, (x - stats.mean) / std, x)
    return z if clip is None else jnp.clip(z, -clip, clip)


@struct.dataclass
class ReturnScale:
    """Running statistics of the discounted return for reward scaling (SimbaV2's reward normalization):
    each env's running discounted return ``G``, the statistics of ``G`` over all envs and steps, and the
    largest ``|G|`` seen."""

    discounted: jax.Array  # [num_envs] float32
    stats: RunningStats  # shape ()
    max_abs: jax.Array  # float32 scalar


def init_return_scale(num_envs: int) -> ReturnScale:
    return ReturnScale(jnp.zeros((num_envs,), jnp.float32), init_stats(()), jnp.zeros((), jnp.float32))


def update_return_scale(
    scale: ReturnScale, rewards: jax.Array, dones: jax.Array, gamma: float | jax.Array
) -> ReturnScale:
    """Folds in ``rewards`` and ``dones`` (episode ended at that step) ``[steps, num_envs]``, step by step:
    ``G <- gamma * (1 - done) * G + reward``, as the authors' code (and gymnasium's NormalizeReward) does."""

    def step(scale, reward_done):
        reward, done = reward_done
        g = gamma * (1.0 - done.astype(jnp.float32)) * scale.discounted + reward.astype(jnp.float32)
        return ReturnScale(g, update_stats(scale.stats, g), jnp.maximum(scale.max_abs, jnp.max(jnp.abs(g)))), None

    return jax.lax.scan(step, scale, (rewards, dones))[0]


def reward_scale(scale: ReturnScale, return_max: float, eps: float = 1e-8) -> jax.Array:
    """What rewards are divided by: ``max(std(G), max|G| / return_max)``, so scaled returns have about unit
    variance and stay within ``±return_max``; 1 before any data was seen."""
    denominator = jnp.maximum(jnp.sqrt(scale.stats.variance + eps), scale.max_abs / return_max)
    return jnp.where(scale.stats.count > 0, denominator, 1.0)
