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


def test_probability_of_improvement_is_mann_whitney_u_over_pairs_averaged_over_tasks():
    from scipy.stats import mannwhitneyu

    from rlx.stats import probability_of_improvement

    x = np.array([[3.0, 1.0], [5.0, 2.0], [5.0, 2.0], [7.0, 0.5]])  # ties inside and across the two methods
    y = np.array([[5.0, 2.0], [1.0, 2.0], [4.0, 3.0]])
    per_task = [mannwhitneyu(x[:, t], y[:, t]).statistic / (4 * 3) for t in range(2)]
    assert probability_of_improvement(x, y) == pytest.approx(np.mean(per_task))
    # by hand on task 0: x > y in 1+2+2+3 = 8 of 12 pairs, x == y in 2 (the two 5s against y's 5): (8 + 1) / 12
    assert probability_of_improvement(x[:, 0], y[:, 0]) == pytest.approx(9 / 12)
    assert probability_of_improvement(y[:, 0], x[:, 0]) == pytest.approx(1 - 9 / 12)
    assert probability_of_improvement(x, x) == 0.5


def test_bootstrap_between_two_methods_resamples_each_independently_as_a_numpy_reference():
    from rlx.stats import bootstrap_ci_between, iqm_difference, probability_of_improvement

    rng = np.random.default_rng(2)
    x, y = rng.normal(1.0, size=(6, 2)), rng.normal(size=(9, 2))
    for statistic in (iqm_difference, probability_of_improvement):
        est, low, high = bootstrap_ci_between(x, y, statistic, num_resamples=300, seed=4)
        ref_rng, samples = np.random.default_rng(4), []
        for _ in range(300):
            rows_x, rows_y = ref_rng.integers(0, 6, size=(6, 2)), ref_rng.integers(0, 9, size=(9, 2))
            samples.append(statistic(np.take_along_axis(x, rows_x, 0), np.take_along_axis(y, rows_y, 0)))
        assert est == pytest.approx(statistic(x, y))
        assert (low, high) == pytest.approx((np.quantile(samples, 0.025), np.quantile(samples, 0.975)))
        assert low <= est <= high
    assert iqm_difference(x, y) == pytest.approx(iqm(x) - iqm(y))
    with pytest.raises(ValueError, match="x has 2 tasks .columns. and y 1"):
        bootstrap_ci_between(x, y[:, 0])


def test_performance_profile_counts_runs_above_each_score_per_task_and_its_bands_are_per_point_bootstraps():
    from rlx.stats import performance_profile

    scores = np.array([[0.1, 0.9], [0.5, 0.2], [0.7, 0.4], [0.3, 0.6]])  # [runs, tasks]
    # by hand: above 0.35, task 0 has 0.5, 0.7 (2 of 4), task 1 has 0.9, 0.4, 0.6 (3 of 4): (0.5 + 0.75) / 2
    taus = np.array([0.0, 0.35, 0.95])
    assert performance_profile(scores, taus) == pytest.approx([1.0, 0.625, 0.0])
    estimate, low, high = bootstrap_ci(scores, lambda x: performance_profile(x, taus), num_resamples=300, seed=3)
    for i, tau in enumerate(taus):  # the same resamples: each point's band is its own scalar bootstrap
        one = bootstrap_ci(scores, lambda x, t=tau: float(performance_profile(x, [t])[0]), num_resamples=300, seed=3)
        assert (estimate[i], low[i], high[i]) == pytest.approx(one)
