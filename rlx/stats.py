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


def bootstrap_ci(
    scores: np.ndarray, statistic=iqm, num_resamples: int = 2000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """Point estimate and percentile bootstrap interval of ``statistic`` over runs.

    ``scores`` is ``[runs]`` or ``[runs, tasks]``: runs are resampled with replacement independently
    within each task (column), i.e. a stratified bootstrap. Returns ``(estimate, low, high)``.
    """
    x = np.asarray(scores, np.float64)
    if x.ndim == 1:
        x = x[:, None]
    rng = np.random.default_rng(seed)
    runs, tasks = x.shape
    samples = np.empty(num_resamples)
    for b in range(num_resamples):
        rows = rng.integers(0, runs, size=(runs, tasks))
        samples[b] = statistic(np.take_along_axis(x, rows, axis=0))
    alpha = (1.0 - confidence) / 2.0
    return statistic(x), float(np.quantile(samples, alpha)), float(np.quantile(samples, 1.0 - alpha))
