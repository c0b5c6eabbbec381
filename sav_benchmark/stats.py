"""Paired statistics for comparing runs: the Wilcoxon signed-rank test and bootstrap intervals.

Written for small samples (a model's objects in a split, from a handful to a few hundred) and
without scipy. Bootstrap resampling is seeded, so the same files always print the same intervals.
"""

from __future__ import annotations

import math

import numpy as np

BOOTSTRAP_SAMPLES = 2000
BOOTSTRAP_SEED = 0
EXACT_UP_TO = 25  # pairs: above this (or with tied magnitudes) the normal approximation is used


def _exact_two_sided_p(n: int, w_plus: float) -> float:
    """P(W+ as extreme as observed) under the null for ranks 1..n, by counting sign assignments."""
    total = n * (n + 1) // 2
    counts = np.zeros(total + 1)
    counts[0] = 1.0
    for rank in range(1, n + 1):
        counts[rank:] = counts[rank:] + counts[: total + 1 - rank]
    probabilities = counts / counts.sum()
    low = probabilities[: int(w_plus) + 1].sum()
    high = probabilities[int(w_plus) :].sum()
    return float(min(1.0, 2.0 * min(low, high)))


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks from 1, ties sharing their mean rank."""
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values))
    sorted_values = values[order]
    start = 0
    while start < len(values):
        end = start
        while end + 1 < len(values) and sorted_values[end + 1] == sorted_values[start]:
            end += 1
        ranks[order[start : end + 1]] = (start + end) / 2.0 + 1.0
        start = end + 1
    return ranks


def wilcoxon_p(differences: list[float]) -> float:
    """Two-sided p-value of the Wilcoxon signed-rank test that the differences centre on 0.

    Zero differences are dropped (Wilcoxon's rule); none left gives 1. Exact for up to 25 pairs
    without tied magnitudes, else the normal approximation with the tie correction.
    """
    d = np.asarray([x for x in differences if x != 0.0], dtype=float)
    n = len(d)
    if n == 0:
        return 1.0
    magnitudes = np.abs(d)
    ranks = _ranks(magnitudes)
    w_plus = float(ranks[d > 0].sum())
    tied = len(np.unique(magnitudes)) < n
    if n <= EXACT_UP_TO and not tied:
        return _exact_two_sided_p(n, w_plus)
    mean = n * (n + 1) / 4.0
    _, tie_sizes = np.unique(magnitudes, return_counts=True)
    variance = n * (n + 1) * (2 * n + 1) / 24.0 - float(np.sum(tie_sizes**3 - tie_sizes)) / 48.0
    if variance <= 0:
        return 1.0
    z = (w_plus - mean) / math.sqrt(variance)
    return float(math.erfc(abs(z) / math.sqrt(2.0)))


def bootstrap_mean_interval(values: list[float], level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean."""
    data = np.asarray(values, dtype=float)
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    means = data[rng.integers(0, len(data), size=(BOOTSTRAP_SAMPLES, len(data)))].mean(axis=1)
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(means, [tail, 100.0 - tail])
    return float(low), float(high)
