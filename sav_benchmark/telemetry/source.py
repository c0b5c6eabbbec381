"""What every telemetry source offers the sampler, and the loop of those that are read on demand."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Protocol

from .readings import Reading

Emit = Callable[[Reading], None]


class TelemetryUnavailable(Exception):
    """A source cannot run here; the message says why."""


class Source(Protocol):
    name: str
    unified_memory: bool  # device memory is system memory (Jetson)

    def stream(self, interval_s: float, stop: threading.Event, emit: Emit) -> None:
        """Emit readings about every interval until `stop` is set; return soon after."""

    def describe(self) -> dict[str, Any]:
        """For the manifest: where the figures come from, and what is missing and why."""


class PolledSource:
    """A source read on demand: one reading at once, one per interval, and one when stopped, so
    that the readings span the whole of what they watched."""

    name = ""
    unified_memory = False

    def read(self, reading: Reading) -> None:
        """Fill in the device's figures."""

    def stream(self, interval_s: float, stop: threading.Event, emit: Emit) -> None:
        while True:
            emit(self._reading())
            if stop.wait(interval_s):
                break
        emit(self._reading())

    def _reading(self) -> Reading:
        reading = Reading(time.perf_counter())
        self.read(reading)
        return reading


class ProcfsOnly(PolledSource):
    """No device source: the process's and the system's figures only (filled in by the sampler)."""

    name = "procfs"

    def describe(self) -> dict[str, Any]:
        return {
            "source": self.name,
            "power": "no power source here: avg_power_w, energy_j and energy_mj_per_frame stay empty",
            "device_memory": "no device memory counter here: peak_device_mem_mb stays empty; peak_rss_mb is the process's, peak_sys_mem_mb "
            "the system's",
            "throttled": "not known here: left empty",
        }
