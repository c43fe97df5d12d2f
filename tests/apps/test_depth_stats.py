"""The statistics behind benchmarks/DEPTH.md: Spearman rho + p-value and the paired bootstrap."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.recipes import load_script

depth_stats = load_script("benchmarks", "depth_stats")


def test_rankdata_averages_ties() -> None:
    np.testing.assert_array_equal(depth_stats.rankdata(np.array([30, 10, 20, 20, 5])), [5, 2, 3.5, 3.5, 1])
    np.testing.assert_array_equal(depth_stats.rankdata(np.array([7.0, 7.0, 7.0])), [2, 2, 2])


def test_spearman_matches_scipy_reference_with_ties() -> None:
    # scipy.stats.spearmanr([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]) (the example in scipy's docs)
    c = depth_stats.spearman(np.array([1, 2, 3, 4, 5]), np.array([5, 6, 7, 8, 7]))
    assert c.rho == pytest.approx(0.8207826816681233, abs=1e-12)
    assert c.p == pytest.approx(0.08858700531354381, abs=1e-10)
    assert c.n == 5


def test_spearman_without_ties_equals_the_rank_difference_formula() -> None:
    rng = np.random.default_rng(3)
    x = rng.permutation(40).astype(float)
    y = x + rng.normal(0, 12, 40)
    d = depth_stats.rankdata(x) - depth_stats.rankdata(y)
    n = 40
    expected = 1 - 6 * float(d @ d) / (n * (n * n - 1))
    c = depth_stats.spearman(x, y)
    assert c.rho == pytest.approx(expected, abs=1e-12)
    # rank-based: a monotone transform of one variable changes nothing
    assert depth_stats.spearman(np.exp(x / 10), y).rho == pytest.approx(expected, abs=1e-12)
    assert depth_stats.spearman(x, -y).rho == pytest.approx(-expected, abs=1e-12)


def test_spearman_degenerate_cases() -> None:
    const = depth_stats.spearman(np.arange(10.0), np.full(10, 12.0))  # a static model's module counts
    assert const.rho is None and const.p is None
    assert depth_stats.spearman(np.arange(2.0), np.arange(2.0)).rho is None
    perfect = depth_stats.spearman(np.arange(10.0), np.arange(10.0) ** 3)
    assert perfect.rho == 1.0 and perfect.p == 0.0
    nan = depth_stats.spearman(np.array([1.0, 2.0, np.nan, 4.0, 5.0]), np.array([1.0, 3.0, 9.0, 2.0, 5.0]))
    assert nan.n == 4 and nan.rho == pytest.approx(0.8)


@pytest.mark.parametrize("t", [0.0, 0.3, 1.0, 2.5, 10.0, -4.0])
def test_t_tail_matches_closed_forms(t: float) -> None:
    # df = 1 (Cauchy) and df = 2 have closed-form tails
    assert depth_stats.t_sf_two_sided(t, 1) == pytest.approx(1 - 2 / math.pi * math.atan(abs(t)), abs=1e-12)
    assert depth_stats.t_sf_two_sided(t, 2) == pytest.approx(1 - abs(t) / math.sqrt(t * t + 2), abs=1e-12)
    # large df: the normal tail
    assert depth_stats.t_sf_two_sided(t, 1e7) == pytest.approx(math.erfc(abs(t) / math.sqrt(2)), abs=1e-6)


def test_t_tail_matches_numerical_integration() -> None:
    df = 7.0
    grid = np.linspace(2.0, 400.0, 2_000_001)
    norm = math.gamma((df + 1) / 2) / (math.sqrt(df * math.pi) * math.gamma(df / 2))
    dens = norm * (1 + grid**2 / df) ** (-(df + 1) / 2)  # Student-t density
    tail = 2 * float(np.sum((dens[1:] + dens[:-1]) / 2 * np.diff(grid)))
    assert depth_stats.t_sf_two_sided(2.0, df) == pytest.approx(tail, abs=1e-7)


def test_bootstrap_identical_systems_give_a_zero_interval() -> None:
    err = np.array([3, 0, 5, 2, 1])
    ci = depth_stats.paired_bootstrap(err, err, np.array([10, 4, 12, 6, 3]), resamples=200)
    assert (ci.diff, ci.lo, ci.hi) == (0.0, 0.0, 0.0)


def test_bootstrap_point_estimate_is_the_corpus_level_difference() -> None:
    a, b, words = np.array([2, 0, 7, 1]), np.array([1, 1, 3, 1]), np.array([10, 5, 20, 5])
    ci = depth_stats.paired_bootstrap(a, b, words, resamples=500, seed=1)
    assert ci.diff == pytest.approx(10 / 40 - 6 / 40)
    assert ci.lo <= ci.diff <= ci.hi
    # one extra edit per 10-word utterance is exactly +0.1 in every resample
    words = np.full(30, 10)
    base = np.random.default_rng(0).integers(0, 10, 30)
    shifted = depth_stats.paired_bootstrap(base + 1, base, words, resamples=300)
    assert shifted.diff == pytest.approx(0.1) and shifted.lo == pytest.approx(0.1) and shifted.hi == pytest.approx(0.1)


def test_bootstrap_interval_matches_the_normal_approximation() -> None:
    # per-utterance differences with mean 0.2 and sd 1: the 95% interval is about mean +- 1.96 sd / sqrt(n)
    rng = np.random.default_rng(5)
    n = 2000
    d = rng.normal(0.2, 1.0, n)
    ci = depth_stats.paired_bootstrap(d, np.zeros(n), resamples=1000, seed=2)
    half = 1.96 * d.std(ddof=1) / math.sqrt(n)
    assert ci.diff == pytest.approx(d.mean())
    assert ci.lo == pytest.approx(d.mean() - half, abs=0.15 * half)
    assert ci.hi == pytest.approx(d.mean() + half, abs=0.15 * half)
    # pairing matters: the same differences on top of large shared per-utterance noise give
    # the same interval (the shared part cancels), which an unpaired bootstrap would widen
    shared = rng.normal(0, 50, n)
    paired = depth_stats.paired_bootstrap(d + shared, shared, resamples=1000, seed=2)
    assert (paired.lo, paired.hi) == pytest.approx((ci.lo, ci.hi), abs=1e-9)


def test_bootstrap_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        depth_stats.paired_bootstrap(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError):
        depth_stats.paired_bootstrap(np.zeros(0), np.zeros(0))
