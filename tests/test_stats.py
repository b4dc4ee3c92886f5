"""IQM and stratified bootstrap CIs against NumPy references on fixed data."""

import numpy as np
import pytest

from rlx.stats import bootstrap_ci, iqm


def test_iqm_matches_trimmed_mean_when_divisible_by_four():
    x = np.array([10.0, 1.0, 7.0, 3.0, 100.0, -50.0, 5.0, 4.0])
    middle = np.sort(x)[2:6]  # drop 2 lowest and 2 highest
    assert iqm(x) == pytest.approx(middle.mean())


def test_iqm_fractional_weights_hand_computed():
    # n = 5: keep [1.25, 3.75) of the sorted order -> weights .75, 1, .75 on the 2nd..4th scores
    x = np.array([0.0, 1.0, 2.0, 3.0, 40.0])
    assert iqm(x) == pytest.approx((0.75 * 1 + 2 + 0.75 * 3) / 2.5)


def test_stratified_bootstrap_matches_numpy_reference():
    rng = np.random.default_rng(1)
    scores = rng.normal(size=(10, 3))
    est, low, high = bootstrap_ci(scores, num_resamples=500, seed=7)
    ref_rng = np.random.default_rng(7)
    samples = []
    for _ in range(500):
        rows = ref_rng.integers(0, 10, size=(10, 3))
        resampled = np.stack([scores[rows[:, t], t] for t in range(3)], axis=1)
        samples.append(iqm(resampled))
    assert est == pytest.approx(iqm(scores))
    assert low == pytest.approx(np.quantile(samples, 0.025))
    assert high == pytest.approx(np.quantile(samples, 0.975))
    assert low <= est <= high


def test_constant_scores_give_a_zero_width_interval():
    assert bootstrap_ci(np.full(8, 3.0), num_resamples=50) == (3.0, 3.0, 3.0)
