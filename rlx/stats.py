"""Aggregate statistics across runs: interquartile mean (IQM) and stratified bootstrap confidence
intervals, as recommended by Agarwal et al. (2021, "Deep RL at the Edge of the Statistical Precipice")."""

from __future__ import annotations

import numpy as np


def iqm(scores: np.ndarray) -> float:
    """Mean of the middle 50% of ``scores`` (all axes pooled), trimming 25% at each end; with ``n``
    scores not divisible by 4 the boundary scores get fractional weight, as ``scipy.stats.trim_mean``
    would not, so that the estimate is continuous in the data."""
    x = np.sort(np.asarray(scores, np.float64).ravel())
    n = x.size
    lo, hi = 0.25 * n, 0.75 * n
    # weight of sorted score i = length of [i, i+1) inside [lo, hi)
    index = np.arange(n)
    weight = np.clip(np.minimum(index + 1, hi) - np.maximum(index, lo), 0.0, 1.0)
    return float(np.sum(weight * x) / np.sum(weight))


def _by_task(scores: np.ndarray) -> np.ndarray:
    x = np.asarray(scores, np.float64)
    return x[:, None] if x.ndim == 1 else x


def _bootstrap(samples: list[np.ndarray], statistic, num_resamples: int, confidence: float, seed: int):
    """Percentile interval of ``statistic(*samples)``, each sample's runs resampled with replacement
    independently within each task (the samples are independent: different methods' runs). A statistic returning
    an array gets an interval per element."""
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(num_resamples):
        resampled = []
        for x in samples:
            rows = rng.integers(0, x.shape[0], size=x.shape)
            resampled.append(np.take_along_axis(x, rows, axis=0))
        draws.append(statistic(*resampled))
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(np.asarray(draws, np.float64), [alpha, 1.0 - alpha], axis=0)
    estimate = statistic(*samples)
    if np.ndim(estimate) == 0:
        return estimate, float(low), float(high)
    return np.asarray(estimate, np.float64), low, high


def bootstrap_ci(
    scores: np.ndarray, statistic=iqm, num_resamples: int = 2000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """Point estimate and percentile bootstrap interval of ``statistic`` over runs.

    ``scores`` is ``[runs]`` or ``[runs, tasks]``: runs are resampled with replacement independently
    within each task (column), i.e. a stratified bootstrap. Returns ``(estimate, low, high)``.
    """
    return _bootstrap([_by_task(scores)], statistic, num_resamples, confidence, seed)


def performance_profile(scores: np.ndarray, taus: np.ndarray) -> np.ndarray:
    """``[taus]``: the fraction of runs scoring above each ``tau``, per task, averaged over tasks (Agarwal et al.
    2021's score distribution; ``scores`` ``[runs]`` or ``[runs, tasks]``, normalized when tasks differ in scale)."""
    x = _by_task(scores)
    return np.mean(x[None, :, :] > np.asarray(taus, np.float64)[:, None, None], axis=(1, 2))


def probability_of_improvement(x: np.ndarray, y: np.ndarray) -> float:
    """P(X > Y) + P(X = Y) / 2 for a run X drawn from ``x`` and a run Y from ``y`` (the Mann-Whitney U statistic
    over ``m * n``), averaged over tasks (Agarwal et al. 2021). ``x`` ``[m]`` or ``[m, tasks]``, ``y`` ``[n]`` or
    ``[n, tasks]``: scores of two methods on the same tasks; 0.5 means neither tends to score higher."""
    x, y = _by_task(x), _by_task(y)
    pairs_x, pairs_y = x[:, None, :], y[None, :, :]
    per_task = np.mean(pairs_x > pairs_y, axis=(0, 1)) + 0.5 * np.mean(pairs_x == pairs_y, axis=(0, 1))
    return float(np.mean(per_task))


def iqm_difference(x: np.ndarray, y: np.ndarray) -> float:
    """``iqm(x) - iqm(y)``: how much higher the first method's interquartile mean is."""
    return iqm(x) - iqm(y)


def bootstrap_ci_between(
    x: np.ndarray,
    y: np.ndarray,
    statistic=iqm_difference,
    num_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Point estimate and percentile bootstrap interval of ``statistic(x, y)`` comparing two methods' runs
    (:func:`iqm_difference` or :func:`probability_of_improvement`): each method's runs are resampled with
    replacement independently, within each task (column). ``x`` ``[m]`` or ``[m, tasks]``, ``y`` ``[n]`` or
    ``[n, tasks]`` with the same tasks. Returns ``(estimate, low, high)``."""
    x, y = _by_task(x), _by_task(y)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x has {x.shape[1]} tasks (columns) and y {y.shape[1]}: compare scores on the same tasks")
    return _bootstrap([x, y], statistic, num_resamples, confidence, seed)
