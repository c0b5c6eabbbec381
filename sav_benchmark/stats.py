"""Paired statistics for comparing runs: the Wilcoxon signed-rank test and bootstrap intervals, by SciPy.

For small samples (a model's objects in a split, from a handful to a few hundred). SciPy is imported
inside the functions, so that the commands that never compare (`--help`, `models`, `report`, `status`)
do not load it. Bootstrap resampling is seeded, so the same files always print the same intervals.
"""

from __future__ import annotations

import numpy as np

BOOTSTRAP_SAMPLES = 2000
BOOTSTRAP_SEED = 0


def wilcoxon_p(differences: list[float]) -> float:
    """Two-sided p-value of the Wilcoxon signed-rank test that the differences centre on 0.

    Zero differences are dropped first (Wilcoxon's rule); none left gives 1. Then `scipy.stats.wilcoxon`
    chooses (method "auto"): without tied magnitudes the exact distribution up to 50 pairs; with ties
    the exact distribution of the mid-rank statistic over all 2**n sign assignments up to 13 pairs;
    else the normal approximation with the tie correction, no continuity correction.
    """
    # Unlike the hand-written test before it (exact up to 25 pairs without ties, else normal): exact
    # from 26 to 50 pairs, and exact with ties up to 13, where the normal approximation gave p = 0.025
    # for 5 equal differences, which no sign assignment of 5 pairs can reach (2/32 at the least).
    # The zeros go before SciPy sees them: given them (zero_method "wilcox" drops them too) it would
    # take the normal approximation above 13 pairs instead of the exact distribution of the rest.
    d = np.asarray([x for x in differences if x != 0.0], dtype=float)
    if len(d) == 0:
        return 1.0
    from scipy.stats import wilcoxon

    return float(wilcoxon(d, method="auto").pvalue)


def bootstrap_mean_interval(values: list[float], level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean: 2000 resamples, seeded.

    Percentile, not SciPy's default BCa: BCa is NaN (with a warning) when every value is the same (two
    identical runs: every ratio 1), unsteady for the handful of objects a model often has, and the
    intervals printed so far were percentile ones. The resamples are those the hand-written version
    drew (`integers(0, n, (2000, n))` from the same seed), so the intervals are the same.
    """
    data = np.asarray(values, dtype=float)
    if len(data) == 1:  # every resample is that value; SciPy wants two
        return float(data[0]), float(data[0])
    from scipy.stats import bootstrap

    result = bootstrap(
        (data,),
        np.mean,
        n_resamples=BOOTSTRAP_SAMPLES,
        confidence_level=level,
        method="percentile",
        vectorized=True,
        rng=np.random.default_rng(BOOTSTRAP_SEED),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)
