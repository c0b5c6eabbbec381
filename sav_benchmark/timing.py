"""A job's times as row columns: the per-frame latency statistics and the stages' times, and the
overhead, the wall time that is neither."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

LATENCY_COLUMNS = ("fps", "latency_ms_mean", "latency_ms_p50", "latency_ms_p90", "latency_ms_p99", "latency_ms_max")
# compiled_graphs counts torch.compile's graphs compiled inside the timers: the times above it include them.
STAGE_COLUMNS = ("build_s", "init_s", "prompt_ms", "propagate_s", "setup_s", "wall_s", "overhead_s", "compiled_graphs")
TIMED_STAGES_S = ("build_s", "init_s", "propagate_s", "setup_s")


def latency_columns(latencies_s: list[float]) -> dict[str, Any]:
    """n_propagated, propagate_s (the frames' latencies summed) and the latency statistics in ms."""
    propagate_s = sum(latencies_s)
    ms = np.asarray(latencies_s) * 1000.0
    if ms.size == 0:
        return {"n_propagated": 0, "propagate_s": propagate_s}
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return {
        "n_propagated": int(ms.size),
        "propagate_s": propagate_s,
        "fps": ms.size / propagate_s if propagate_s > 0 else math.nan,
        "latency_ms_mean": float(ms.mean()),
        "latency_ms_p50": float(p50),
        "latency_ms_p90": float(p90),
        "latency_ms_p99": float(p99),
        "latency_ms_max": float(ms.max()),
    }


def overhead(row: dict[str, Any]) -> float | None:
    """The job's wall time that is neither the model's timed work nor one-off setup."""
    if row.get("wall_s") is None:
        return None
    timed = sum(row.get(name) or 0.0 for name in TIMED_STAGES_S) + (row.get("prompt_ms") or 0.0) / 1000.0
    return row["wall_s"] - timed
