"""A job's times as row columns: the per-frame latency statistics, the job's stages' times (build,
init, ...), each frame's model stages (image encoder, ...), and the overhead, the wall time that is
none of them."""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

LATENCY_COLUMNS = ("fps", "latency_ms_mean", "latency_ms_p50", "latency_ms_p90", "latency_ms_p99", "latency_ms_max")
# compiled_graphs counts torch.compile's graphs compiled inside the timers: the times above it include them.
STAGE_COLUMNS = ("build_s", "init_s", "prompt_ms", "propagate_s", "setup_s", "wall_s", "overhead_s", "compiled_graphs")
TIMED_STAGES_S = ("build_s", "init_s", "propagate_s", "setup_s")
# A frame's model stages (runners/stages.py times them), and the rest of its latency.
MODEL_STAGES = ("image_encoder", "memory_attention", "mask_decoder", "memory_encoder")
REST = "rest"
FRAME_STAGES = (*MODEL_STAGES, REST)
FRAME_STAGE_COLUMNS = tuple(f"stage_{stage}_ms_{statistic}" for stage in FRAME_STAGES for statistic in ("p50", "mean"))
# A clock's rounding, no more: the stages are timed inside the frame's own timer.
REST_TOLERANCE_S = 1e-6


@dataclass
class FrameLog:
    """Each propagated frame of a job: its index, latency, when it ended (perf_counter seconds) and,
    where the stages were timed, each stage's seconds. Held in typed arrays (8 bytes a number, a
    float object in a list takes 32): a long video's log stays small."""

    start: float = 0.0  # when the first frame was asked for
    frames: array = field(default_factory=lambda: array("q"))
    latencies_s: array = field(default_factory=lambda: array("d"))
    ends: array = field(default_factory=lambda: array("d"))
    stages: dict[str, array] | None = None
    stages_problem: str = ""  # why the stages' split is left out, found while the job ran

    def add(self, frame: int, latency_s: float, end: float, stages: dict[str, float] | None) -> None:
        self.frames.append(frame)
        self.latencies_s.append(latency_s)
        self.ends.append(end)
        if stages is not None:
            if self.stages is None:
                self.stages = {stage: array("d") for stage in MODEL_STAGES}
            for stage in MODEL_STAGES:
                self.stages[stage].append(stages[stage])

    def window(self) -> tuple[float, float]:
        """The propagate loop's start and end, on the timers' clock."""
        return self.start, self.ends[-1] if self.ends else self.start

    def split(self) -> tuple[dict[str, np.ndarray] | None, str]:
        """Each frame's seconds per stage, the rest included (the latency the four stages leave),
        or None and why there is no split: a problem found while it ran, or a frame whose stages
        took longer than its latency (a bug: the stages are timed inside the frame's timer)."""
        if self.stages is None or not self.frames:
            return None, ""
        if self.stages_problem:
            return None, f"stage times left out: {self.stages_problem}"
        split = {stage: np.asarray(self.stages[stage]) for stage in MODEL_STAGES}
        split[REST] = np.asarray(self.latencies_s) - sum(split.values())
        below = np.flatnonzero(split[REST] < -REST_TOLERANCE_S)
        if below.size:
            frame = self.frames[below[0]]
            return None, f"stage times left out: the stages took longer than frame {frame}'s latency (a bug)"
        split[REST] = np.maximum(split[REST], 0.0)
        return split, ""


def frame_stage_columns(log: FrameLog) -> tuple[dict[str, Any], str]:
    """Each stage's p50 and mean per frame in ms (the rest's mean is the latency's mean less the
    others'), or no cells and a warning that says why."""
    split, problem = log.split()
    if split is None:
        return {}, problem
    columns = {}
    for stage, seconds in split.items():
        columns[f"stage_{stage}_ms_p50"] = float(np.percentile(seconds, 50) * 1000.0)
        columns[f"stage_{stage}_ms_mean"] = float(seconds.mean() * 1000.0)
    return columns, ""


def latency_columns(latencies_s: Sequence[float]) -> dict[str, Any]:
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
