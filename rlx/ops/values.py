"""Value representations: how a critic's outputs encode a value, decode to a scalar, and learn from a
TD target. One small object per kind; every critic (DQN's Q-network, SAC/TD3's Q-ensembles) takes one.

Each has ``num_outputs`` (per value), ``decode(outputs [..., O]) -> [...]``, ``target(next_outputs, returns,
discount, shift) -> target`` (the TD target of ``returns + discount * (Z' + shift)``, where ``Z'`` is the
value the next outputs represent and ``shift`` a per-sample offset of it such as SAC's ``-alpha log pi``),
``target_value(target) -> [...]`` (its scalar value) and ``loss(outputs, target) -> [...]`` (per sample).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import optax
from jax.scipy.special import xlogy

from rlx.ops.distributional import (
    bin_centres,
    categorical_projection,
    cross_entropy,
    hl_gauss_histogram,
    quantile_huber_loss,
    quantile_midpoints,
    support,
)

VALUE_KINDS = ("mse", "huber", "hl_gauss", "c51", "quantile")


def _shifted(value: jax.Array, shift: jax.Array | None) -> jax.Array:
    return value if shift is None else value + shift


@dataclasses.dataclass(frozen=True)
class Scalar:
    """One output is the value; ``loss`` is ``0.5 (v - target)^2`` (mse) or Huber (huber): that below
    ``huber_delta`` in absolute error, ``huber_delta (|v - target| - huber_delta / 2)`` above."""

    kind: str = "mse"
    num_outputs: int = 1
    huber_delta: float = 1.0

    def decode(self, outputs: jax.Array) -> jax.Array:
        return outputs[..., 0]

    def target(
        self, next_outputs: jax.Array, returns: jax.Array, discount: jax.Array, shift: jax.Array | None = None
    ) -> jax.Array:
        return returns + discount * _shifted(self.decode(next_outputs), shift)

    def target_value(self, target: jax.Array) -> jax.Array:
        return target

    def loss(self, outputs: jax.Array, target: jax.Array) -> jax.Array:
        error = self.decode(outputs) - jax.lax.stop_gradient(target)
        return (
            optax.losses.huber_loss(error, delta=self.huber_delta) if self.kind == "huber" else 0.5 * jnp.square(error)
        )


@dataclasses.dataclass(frozen=True)
class HLGauss:
    """Classification over ``num_outputs`` equal bins of ``[v_min, v_max]`` ("Stop Regressing", Farebrother
    et al. 2024): the scalar TD target becomes the histogram of a Gaussian with ``sigma = sigma_ratio`` bin
    widths; cross-entropy loss; the value is the expectation over bin centres."""

    num_outputs: int
    v_min: float
    v_max: float
    sigma_ratio: float = 0.75
    kl_priority: bool = False  # priority_error: the KL divergence from the target, not the cross-entropy

    def decode(self, outputs: jax.Array) -> jax.Array:
        return jnp.sum(jax.nn.softmax(outputs) * bin_centres(self.v_min, self.v_max, self.num_outputs), axis=-1)

    def target(
        self, next_outputs: jax.Array, returns: jax.Array, discount: jax.Array, shift: jax.Array | None = None
    ) -> jax.Array:
        return returns + discount * _shifted(self.decode(next_outputs), shift)

    def target_value(self, target: jax.Array) -> jax.Array:
        return target

    def target_probs(self, target: jax.Array) -> jax.Array:
        """The histogram ``[..., num_outputs]`` the scalar ``target [...]`` becomes."""
        sigma = self.sigma_ratio * (self.v_max - self.v_min) / self.num_outputs
        return hl_gauss_histogram(target, self.v_min, self.v_max, self.num_outputs, sigma)

    def loss(self, outputs: jax.Array, target: jax.Array) -> jax.Array:
        return cross_entropy(outputs, self.target_probs(target))


@dataclasses.dataclass(frozen=True)
class Categorical:
    """C51 (Bellemare et al. 2017): a categorical distribution over ``num_outputs`` atoms of ``[v_min, v_max]``;
    the target is the distribution of ``returns + discount * (Z' + shift)`` projected back onto the atoms."""

    num_outputs: int
    v_min: float
    v_max: float
    kl_priority: bool = False  # priority_error: the KL divergence from the target, not the cross-entropy

    @property
    def atoms(self) -> jax.Array:
        return support(self.v_min, self.v_max, self.num_outputs)

    def decode(self, outputs: jax.Array) -> jax.Array:
        return jnp.sum(jax.nn.softmax(outputs) * self.atoms, axis=-1)

    def target(
        self, next_outputs: jax.Array, returns: jax.Array, discount: jax.Array, shift: jax.Array | None = None
    ) -> jax.Array:
        returns = returns if shift is None else returns + discount * shift
        batch = returns.shape
        probs = jax.nn.softmax(next_outputs).reshape((-1, self.num_outputs))
        projected = categorical_projection(probs, self.atoms, returns.reshape(-1), discount.reshape(-1))
        return projected.reshape((*batch, self.num_outputs))

    def target_value(self, target: jax.Array) -> jax.Array:
        return jnp.sum(target * self.atoms, axis=-1)

    def target_probs(self, target: jax.Array) -> jax.Array:
        return target

    def loss(self, outputs: jax.Array, target: jax.Array) -> jax.Array:
        return cross_entropy(outputs, target)


@dataclasses.dataclass(frozen=True)
class Quantile:
    """QR-DQN (Dabney et al. 2018): ``num_outputs`` quantiles at the fixed midpoints ``(2i + 1) / 2N``; the
    target is the ``N`` samples ``returns + discount * (theta'_j + shift)``; quantile Huber loss (kappa 1);
    the value is the mean of the quantiles."""

    num_outputs: int

    def decode(self, outputs: jax.Array) -> jax.Array:
        return jnp.mean(outputs, axis=-1)

    def target(
        self, next_outputs: jax.Array, returns: jax.Array, discount: jax.Array, shift: jax.Array | None = None
    ) -> jax.Array:
        return returns[..., None] + discount[..., None] * _shifted(
            next_outputs, None if shift is None else shift[..., None]
        )

    def target_value(self, target: jax.Array) -> jax.Array:
        return jnp.mean(target, axis=-1)

    def loss(self, outputs: jax.Array, target: jax.Array) -> jax.Array:
        return quantile_huber_loss(outputs, target, quantile_midpoints(self.num_outputs))


ValueRep = Scalar | HLGauss | Categorical | Quantile


def make(
    kind: str,
    num_bins: int = 51,
    v_min: float = -10.0,
    v_max: float = 10.0,
    sigma_ratio: float = 0.75,
    huber_delta: float = 1.0,
    kl_priority: bool = False,
) -> ValueRep:
    """The representation ``kind`` (one of ``VALUE_KINDS``) with its bins and support (or Huber threshold);
    ``kl_priority``: a categorical one's :func:`priority_error` is the KL divergence, not the cross-entropy."""
    if kind in ("mse", "huber"):
        return Scalar(kind, huber_delta=huber_delta)
    if kind == "hl_gauss":
        return HLGauss(num_bins, v_min, v_max, sigma_ratio, kl_priority)
    if kind == "c51":
        return Categorical(num_bins, v_min, v_max, kl_priority)
    if kind == "quantile":
        return Quantile(num_bins)
    raise ValueError(f"unknown value representation {kind!r}; one of {', '.join(VALUE_KINDS)}")


def from_section(section: Any) -> ValueRep:
    """The representation a critic config section (``rlx.nets.CriticNet``) names."""
    return make(
        section.value,
        section.num_bins,
        section.v_min,
        section.v_max,
        section.sigma_ratio,
        section.huber_delta,
        section.priority_error == "kl",
    )


def clipped_target(
    rep: ValueRep, next_outputs: jax.Array, returns: jax.Array, discount: jax.Array, shift: jax.Array | None = None
) -> Any:
    """The TD target from an ensemble's next outputs ``[K, batch, O]``: per sample, the member whose target
    has the lowest value (clipped double Q; for a scalar critic ``returns + discount * (min_k Q'_k + shift)``,
    for a distributional one the whole target distribution of that member, as FastTD3 does)."""
    targets = jax.vmap(lambda out: rep.target(out, returns, discount, shift))(next_outputs)
    if next_outputs.shape[0] == 1:
        return jax.tree.map(lambda t: t[0], targets)
    pick = jnp.argmin(rep.target_value(targets), axis=0)  # [batch]

    def select(t: jax.Array) -> jax.Array:
        index = pick.reshape((1, *pick.shape) + (1,) * (t.ndim - 1 - pick.ndim))
        return jnp.take_along_axis(t, index, axis=0)[0]

    return jax.tree.map(select, targets)


def priority_error(rep: ValueRep, outputs: jax.Array, target: Any, loss: jax.Array) -> jax.Array:
    """What prioritized replay ranks a sample by, given its ``outputs``, ``target`` and per-sample ``loss``:
    ``|target - Q|`` for a scalar value (Schaul et al.), the loss itself for a distributional one (Dopamine's
    Rainbow), or for a categorical one with ``kl_priority`` the KL divergence from the target (the Rainbow paper's:
    the cross-entropy ``loss`` less the target's entropy; floored at 0 against rounding)."""
    if isinstance(rep, Scalar):
        return jnp.abs(rep.target_value(target) - rep.decode(outputs))
    if getattr(rep, "kl_priority", False):
        probs = rep.target_probs(target)
        return jnp.maximum(loss + jnp.sum(xlogy(probs, probs), axis=-1), 0.0)
    return loss


def weighted_mean(loss: jax.Array, weights: jax.Array | None = None, axis: int | None = None) -> jax.Array:
    """The mean of per-sample ``loss [..., batch]`` over ``axis`` (all by default), each sample's loss times
    ``weights`` if given (broadcast against it: ``[batch]`` importance weights, or PAL's ``[..., batch]``)."""
    return jnp.mean(loss if weights is None else weights * loss, axis=axis)


def ensemble_losses(rep: ValueRep, outputs: jax.Array, target: Any) -> tuple[jax.Array, jax.Array]:
    """Each of the ensemble members' ``outputs [K, batch, O]`` per-sample loss to ``target`` and its
    :func:`priority_error`, both ``[K, batch]``."""
    per_sample = jax.vmap(lambda out: rep.loss(out, target))(outputs)
    error = jax.vmap(lambda out, loss: priority_error(rep, out, target, loss))(outputs, per_sample)
    return per_sample, error


def ensemble_loss_and_error(
    rep: ValueRep, outputs: jax.Array, target: Any, weights: jax.Array | None = None
) -> tuple[jax.Array, jax.Array]:
    """The sum over the ensemble members ``outputs [K, batch, O]`` of the mean per-sample loss to ``target``
    (each sample's loss times ``weights [batch]`` if given: importance weights), and the error ``[batch]``
    prioritized replay ranks samples by: the largest member's :func:`priority_error`, as Fujimoto et al.'s
    prioritized TD3 takes the larger of its two critics' ``|target - Q|``."""
    per_sample, error = ensemble_losses(rep, outputs, target)
    return jnp.sum(weighted_mean(per_sample, weights, axis=-1)), jnp.max(error, axis=0)
