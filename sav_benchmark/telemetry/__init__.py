"""Power, energy, memory, utilisation and thermals per job, sampled in the background.

Sources: `sysfs` (Jetson INA3221 power monitors, thermal zones, GPU devfreq), `tegrastats`
(Jetson), `nvml` (desktop and datacenter NVIDIA GPUs), and `procfs` (no device source: the
process's and the system's memory and CPU only; power stays empty, never 0). The driver chooses
one before any work (`choose_telemetry`); each process that runs jobs opens it once (`open_source`)
and samples each job with a `Sampler`. Nothing here imports torch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .nvml import INSTALL_HINT, NvmlSource
from .readings import TELEMETRY_COLUMNS, Reading, integral, telemetry_columns, time_average
from .sampler import OFF, Sampler
from .source import ProcfsOnly, Source, TelemetryUnavailable
from .sysfs import SysfsSource
from .tegrastats import TegrastatsSource, module_power_w, parse_tegrastats

__all__ = [
    "TELEMETRY_COLUMNS",
    "Reading",
    "Sampler",
    "Source",
    "TelemetryConfig",
    "TelemetryUnavailable",
    "choose_telemetry",
    "integral",
    "module_power_w",
    "open_source",
    "parse_tegrastats",
    "telemetry_columns",
    "time_average",
]

AUTO = "auto"
SOURCES = ("sysfs", "tegrastats", "nvml", "procfs")
CHOICES = (AUTO, OFF, *SOURCES)
DEFAULT_INTERVAL_MS = 100
# Where sysfs is mounted: "/" on the device itself; a container may see the host's elsewhere.
SYSFS_ROOT_ENV = "SAV_BENCHMARK_SYSFS_ROOT"
HINTS = {
    "sysfs": f"a Jetson's INA3221 power monitors appear there (set {SYSFS_ROOT_ENV} where sysfs is mounted elsewhere); else use "
    "--telemetry auto",
    "tegrastats": "it comes with JetPack (/usr/bin/tegrastats); elsewhere use --telemetry auto",
    "nvml": f"{INSTALL_HINT} and check the NVIDIA driver, or use --telemetry auto",
    "procfs": "it needs Linux's /proc; use --telemetry off",
}


@dataclass(frozen=True)
class TelemetryConfig:
    """What each process that runs jobs needs to open the chosen source."""

    source: str = OFF
    interval_ms: int = DEFAULT_INTERVAL_MS
    gpu_uuid: str | None = None  # NVML's name of the GPU torch uses ("GPU-<uuid>")
    sysfs_root: str = "/"


@lru_cache(maxsize=None)
def open_source(config: TelemetryConfig) -> Source | None:
    """The configured source, opened once per process (NVML starts once) and kept for the
    process's life: what it found (rails, the NVML handle, the tegrastats path) stays as it was
    when the run began. None when off."""
    if config.source == OFF:
        return None
    if config.source == "sysfs":
        return SysfsSource(Path(config.sysfs_root))
    if config.source == "tegrastats":
        return TegrastatsSource()
    if config.source == "nvml":
        return NvmlSource(config.gpu_uuid)
    if not Path("/proc/self/status").exists():
        raise TelemetryUnavailable("this system has no /proc")
    return ProcfsOnly()


def _auto_order(device: str, on_jetson: bool) -> list[str]:
    """Jetson sources first (power monitors are there only on such boards), NVML for a GPU that is
    not a Jetson's, the process's own figures last."""
    return ["sysfs", "tegrastats", *(["nvml"] if device == "cuda" and not on_jetson else []), "procfs"]


def choose_telemetry(
    requested: str, interval_ms: int, device: str, gpu_uuid: str | None, on_jetson: bool
) -> tuple[TelemetryConfig, dict[str, Any]]:
    """The source for --telemetry, and its description for the manifest. An explicit source that
    cannot run here is a UsageError; `auto` takes the first that can and says why others could not."""
    if requested == OFF:
        return TelemetryConfig(OFF, interval_ms), {"source": OFF}
    if requested == "nvml" and on_jetson:
        raise UsageError("--telemetry nvml: NVML does not report a Jetson's power or memory; use --telemetry sysfs, tegrastats or auto")
    not_used = {}
    for name in _auto_order(device, on_jetson) if requested == AUTO else [requested]:
        config = TelemetryConfig(name, interval_ms, gpu_uuid, os.environ.get(SYSFS_ROOT_ENV, "/"))
        try:
            description = {**open_source(config).describe(), "interval_ms": interval_ms}
        except TelemetryUnavailable as exc:
            if requested != AUTO:
                raise UsageError(f"--telemetry {name}: {exc}; {HINTS[name]}") from None
            not_used[name] = str(exc)
            continue
        return config, {**description, **({"not_used": not_used} if not_used else {})}
    return TelemetryConfig(OFF, interval_ms), {"source": OFF, "not_used": not_used}
