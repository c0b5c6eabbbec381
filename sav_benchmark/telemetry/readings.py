"""Telemetry readings and what a job's row makes of them: time averages, the energy integral, peaks.

A reading is what the sources said at one instant (`time.perf_counter()` seconds, the clock the
timers use). Between two readings a quantity is taken to change linearly; before the first and
after the last it is held. Averages and the energy integrate that function exactly over the
propagate loop's time, so they do not depend on where the sampler's ticks happened to fall.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

Window = tuple[float, float]  # (start, end) of the propagate loop, perf_counter seconds


@dataclass(slots=True)  # no per-instance dict: a sampler keeps ten a second for as long as a job runs
class Reading:
    """One sample; None for what the source cannot tell."""

    t: float
    power_w: float | None = None  # the module's (Jetson) or the board's (NVML) power
    energy_mj: float | None = None  # a device's cumulative energy counter (NVML), where it has one
    device_mem_mb: float | None = None  # memory in use on the device (on Jetson: RAM, which is unified)
    sys_mem_mb: float | None = None  # system memory in use (MemTotal - MemAvailable)
    rss_mb: float | None = None  # this process's resident memory
    cpu_util_pct: float | None = None  # all CPUs, since the previous reading
    gpu_util_pct: float | None = None
    gpu_clock_mhz: float | None = None
    temp_c: float | None = None  # the hottest sensor
    throttled: bool | None = None  # clocks held down for power or heat


TELEMETRY_COLUMNS = (
    "telemetry_source",
    "avg_power_w",
    "energy_j",
    "energy_mj_per_frame",
    "peak_device_mem_mb",
    "peak_rss_mb",
    "peak_sys_mem_mb",
    "cpu_util_mean_pct",
    "gpu_util_mean_pct",
    "gpu_clock_mhz_mean",
    "temp_max_c",
    "throttled",
)


def integral(times: list[float], values: list[float], window: Window) -> float:
    """The integral over the window of the piecewise-linear function through (times, values),
    held constant before the first point and after the last. Times must be increasing."""
    start, end = window
    if end <= start:
        return 0.0
    inner = [t for t in times if start < t < end]
    knots = np.array([start, *inner, end])
    heights = np.interp(knots, times, values)  # np.interp holds the end values outside the points
    return float(np.sum((heights[1:] + heights[:-1]) / 2.0 * np.diff(knots)))


def _series(readings: list[Reading], name: str) -> tuple[list[float], list[float]]:
    known = [(r.t, getattr(r, name)) for r in readings if getattr(r, name) is not None]
    return [t for t, _ in known], [float(v) for _, v in known]


def covers(times: list[float], window: Window, max_gap_s: float) -> bool:
    """Whether readings come close enough to both ends of the window to speak for all of it: a
    source that stopped (or never started) in the middle must not have its last value held."""
    start, end = window
    return bool(times) and times[0] <= start + max_gap_s and times[-1] >= end - max_gap_s


def time_average(readings: list[Reading], name: str, window: Window, max_gap_s: float = math.inf) -> float | None:
    """The mean of one quantity over the window, weighted by time; None if the readings that have
    it do not cover the window."""
    times, values = _series(readings, name)
    start, end = window
    if not covers(times, window, max_gap_s):
        return None
    if end <= start:
        return float(np.interp(start, times, values))
    return integral(times, values, window) / (end - start)


def energy_j(readings: list[Reading], window: Window, max_gap_s: float = math.inf) -> float | None:
    """The energy over the window: from the device's energy counter where readings bracket the
    window (exact up to the counter's resolution), else the integral of the power readings."""
    start, end = window
    times, counter_mj = _series(readings, "energy_mj")
    if times and times[0] <= start and times[-1] >= end:
        at_start, at_end = np.interp([start, end], times, counter_mj)
        return float(at_end - at_start) / 1000.0
    power = time_average(readings, "power_w", window, max_gap_s)
    return power * max(end - start, 0.0) if power is not None else None


def within(readings: list[Reading], window: Window) -> list[Reading]:
    """The readings that tell about the window: those inside it and the nearest on either side."""
    start, end = window
    before = [r for r in readings if r.t <= start]
    inside = [r for r in readings if start < r.t < end]
    after = [r for r in readings if r.t >= end]
    return before[-1:] + inside + after[:1]


def _peak(readings: list[Reading], name: str) -> float | None:
    values = [getattr(r, name) for r in readings if getattr(r, name) is not None]
    return max(values) if values else None


def _throttled(readings: list[Reading]) -> bool | None:
    states = [r.throttled for r in readings if r.throttled is not None]
    return any(states) if states else None


def telemetry_columns(
    source: str, readings: list[Reading], window: Window | None, n_frames: int, peak_rss_mb: float | None, max_gap_s: float = math.inf
) -> dict[str, Any]:
    """A job's telemetry cells. Peaks cover the whole job (build to the last frame); power, energy,
    utilisation, clocks, temperature and throttling cover the propagate loop (`window`), which is
    None when the job failed before finishing it. A figure whose readings leave more than
    `max_gap_s` uncovered at either end of the loop stays empty."""
    columns: dict[str, Any] = {
        "telemetry_source": source,
        "peak_device_mem_mb": _peak(readings, "device_mem_mb"),
        "peak_rss_mb": peak_rss_mb if peak_rss_mb is not None else _peak(readings, "rss_mb"),
        "peak_sys_mem_mb": _peak(readings, "sys_mem_mb"),
    }
    if window is None:
        return columns
    energy = energy_j(readings, window, max_gap_s)
    duration = window[1] - window[0]
    nearby = within(readings, window) if covers([r.t for r in readings], window, max_gap_s) else []
    columns.update(
        avg_power_w=energy / duration if energy is not None and duration > 0 else time_average(readings, "power_w", window, max_gap_s),
        energy_j=energy,
        energy_mj_per_frame=1000.0 * energy / n_frames if energy is not None and n_frames else None,
        cpu_util_mean_pct=time_average(readings, "cpu_util_pct", window, max_gap_s),
        gpu_util_mean_pct=time_average(readings, "gpu_util_pct", window, max_gap_s),
        gpu_clock_mhz_mean=time_average(readings, "gpu_clock_mhz", window, max_gap_s),
        temp_max_c=_peak(nearby, "temp_c"),
        throttled=_throttled(nearby),
    )
    return columns
