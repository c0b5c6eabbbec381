"""The paired statistics of `compare` (SciPy's) against expectations computed here independently:
every sign assignment counted, the rank-sum distribution built by hand, the resamples drawn again."""

import subprocess
import sys
import warnings
from itertools import product

import numpy as np
import pytest

from sav_benchmark.stats import bootstrap_mean_interval, wilcoxon_p


def mid_ranks(magnitudes):
    """Ranks from 1, tied magnitudes sharing the mean of their ranks."""
    ordered = sorted(magnitudes)
    return [(ordered.index(m) + 1 + len(ordered) - ordered[::-1].index(m)) / 2 for m in magnitudes]


def p_by_counting(differences):
    """Two-sided: the share of the 2**n sign assignments whose W+ lies as far from its mean as the observed."""
    ranks = mid_ranks([abs(d) for d in differences])
    observed = sum(r for r, d in zip(ranks, differences) if d > 0)
    mean = sum(ranks) / 2
    totals = [sum(r for r, positive in zip(ranks, signs) if positive) for signs in product([0, 1], repeat=len(ranks))]
    return sum(abs(t - mean) >= abs(observed - mean) - 1e-9 for t in totals) / len(totals)


def p_exact_without_ties(n, w_plus):
    """Two-sided p of W+ for ranks 1..n, from the number of subsets of 1..n with each sum."""
    total = n * (n + 1) // 2
    counts = [1] + [0] * total
    for rank in range(1, n + 1):
        counts = [counts[s] + (counts[s - rank] if s >= rank else 0) for s in range(total + 1)]
    low, high = sum(counts[: int(w_plus) + 1]), sum(counts[int(w_plus) :])
    return min(1.0, 2 * min(low, high) / 2**n)


def test_tied_differences_get_the_exact_distribution_of_their_mid_ranks():
    # magnitudes 1, 1, 2, 2, 3, 3, 3, 4: mid-ranks 1.5, 1.5, 3.5, 3.5, 6, 6, 6, 8; W+ = 26.5 of 36, its mean 18
    differences = [1.0, 1.0, 2.0, -2.0, 3.0, 3.0, -3.0, 4.0]
    assert p_by_counting(differences) == 72 / 256  # the normal approximation with the tie correction: 0.230
    assert wilcoxon_p(differences) == pytest.approx(72 / 256, rel=1e-12)


def test_five_equal_differences_cannot_be_significant():
    """All 32 sign assignments: only all positive or all negative are as extreme, p = 2/32."""
    assert wilcoxon_p([0.7] * 5) == pytest.approx(2 / 32)
    assert wilcoxon_p([0.7] * 6) == pytest.approx(2 / 64)


def test_without_ties_the_test_is_exact_up_to_50_pairs():
    differences = [(-1) ** (k % 3 == 0) * (k + 0.5) for k in range(30)]  # 30 distinct magnitudes, 10 negative
    w_plus = sum(k + 1 for k in range(30) if k % 3 != 0)
    assert wilcoxon_p(differences) == pytest.approx(p_exact_without_ties(30, w_plus), rel=1e-9)


def test_zero_differences_are_dropped_and_the_rest_tested_exactly():
    rest = [(-1) ** (k % 4 == 0) * (k + 1.0) for k in range(20)]
    w_plus = sum(k + 1 for k in range(20) if k % 4 != 0)
    assert wilcoxon_p([0.0, *rest[:10], 0.0, *rest[10:], 0.0]) == pytest.approx(p_exact_without_ties(20, w_plus), rel=1e-9)
    assert wilcoxon_p([0.0, 0.0, 0.0]) == 1.0 and wilcoxon_p([]) == 1.0


def test_the_bootstrap_interval_is_the_percentile_interval_of_2000_seeded_resamples():
    values = [0.1, 0.2, 0.15, 0.3, 2.5, 0.05, 0.12, 1.1, 0.4]  # skewed: a BCa interval would be another
    rng = np.random.default_rng(0)
    means = np.asarray(values)[rng.integers(0, len(values), size=(2000, len(values)))].mean(axis=1)
    expected = np.percentile(means, [2.5, 97.5])
    assert bootstrap_mean_interval(values) == pytest.approx(tuple(expected), rel=1e-12)
    assert bootstrap_mean_interval(values, level=0.5) == pytest.approx(tuple(np.percentile(means, [25, 75])), rel=1e-12)


def test_the_bootstrap_of_equal_values_or_one_value_is_that_value():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # BCa would warn and give NaN here
        assert bootstrap_mean_interval([0.5] * 6) == (0.5, 0.5)
        assert bootstrap_mean_interval([3.0]) == (3.0, 3.0)


def test_the_command_line_imports_neither_scipy_nor_pandas():
    """SciPy (statistics, scoring's k-d tree) and pandas (LVOS's CSVs) are imported by the functions
    that use them: --help, models, report and status do not pay for them (docs/results.md)."""
    code = "import sys, sav_benchmark.cli; print(*(name in sys.modules for name in ('scipy', 'pandas', 'torch')))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout == "False False False\n"
