"""The background sampler of one job: a thread, never on the timed path, that collects readings
from the job's start until its propagate loop ends (or the job fails), and stops with the job."""

from __future__ import annotations

import logging
import threading
from typing import Any

from .procfs import ProcStats
from .readings import Reading, Window, telemetry_columns
from .source import Source

log = logging.getLogger("sav_benchmark")
STOP_TIMEOUT_S = 5.0
# How far a reading may lie from an end of the propagate loop and still speak for it: two
# intervals, plus slack for a thread or process that the loaded machine scheduled late.
GAP_INTERVALS, GAP_SLACK_S = 2, 0.25
OFF = "off"


class Sampler:
    """Use as a context manager around the job; then `columns()` gives the row's telemetry cells.

    With no source (telemetry off) it does nothing and the row says `off`.
    """

    def __init__(self, source: Source | None, interval_ms: int, proc: ProcStats | None = None) -> None:
        self.source = source
        self.interval_s = interval_ms / 1000.0
        self.proc = proc or ProcStats()
        self.max_gap_s = GAP_INTERVALS * self.interval_s + GAP_SLACK_S
        self.readings: list[Reading] = []
        self.peak_rss_mb: float | None = None
        self._stop = threading.Event()
        self._first_reading = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Sampler:
        """Start sampling, and wait (before any timer starts) for the first reading, so that a
        source that needs a moment (tegrastats prints its first line after one interval) watches
        the job from its beginning."""
        if self.source is not None:
            self.proc.reset_peak_rss()
            self._thread = threading.Thread(target=self._run, name="sav-benchmark-telemetry", daemon=True)
            self._thread.start()
            self._first_reading.wait(self.max_gap_s)
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(STOP_TIMEOUT_S)
        if self._thread.is_alive():
            log.warning("telemetry: the %s sampler did not stop within %.0f s", self.source.name, STOP_TIMEOUT_S)
        self._thread = None
        self.peak_rss_mb = self.proc.peak_rss_mb()

    def _run(self) -> None:
        try:
            self.source.stream(self.interval_s, self._stop, self._emit)
        except Exception as exc:  # a broken sensor costs the telemetry cells, never the job
            log.warning("telemetry: the %s source failed: %s: %s", self.source.name, type(exc).__name__, exc)
            return
        if not self._stop.is_set():
            log.warning("telemetry: the %s source stopped sending readings before its job ended", self.source.name)

    def _emit(self, reading: Reading) -> None:
        self.proc.fill(reading)
        if self.source.unified_memory and reading.device_mem_mb is None:
            reading.device_mem_mb = reading.sys_mem_mb
        self.readings.append(reading)
        self._first_reading.set()

    def columns(self, window: Window | None, n_frames: int) -> dict[str, Any]:
        if self.source is None:
            return {"telemetry_source": OFF}
        return telemetry_columns(self.source.name, list(self.readings), window, n_frames, self.peak_rss_mb, self.max_gap_s)
