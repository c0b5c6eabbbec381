"""Desktop and datacenter NVIDIA GPUs through NVML (the `pynvml` module of the nvidia-ml-py
distribution): board power, memory used, utilisation, SM clock, temperature, throttle reasons.

NVML is mostly unsupported on Jetson; the sysfs or tegrastats sources serve there.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

from .readings import Reading
from .source import PolledSource, TelemetryUnavailable

MIB = 1024 * 1024
# Clock event reasons (nvml.h) that mean the clocks are held down for power or heat. Idle, the
# application clock setting, sync boost and the display clock are not throttling.
SW_POWER_CAP, HW_SLOWDOWN, SW_THERMAL, HW_THERMAL, HW_POWER_BRAKE = 0x4, 0x8, 0x20, 0x40, 0x80
THROTTLE_REASONS = SW_POWER_CAP | HW_SLOWDOWN | SW_THERMAL | HW_THERMAL | HW_POWER_BRAKE
NVML_CLOCK_SM, NVML_TEMPERATURE_GPU = 1, 0
INSTALL_HINT = "pip install nvidia-ml-py"


class NvmlSource(PolledSource):
    name = "nvml"

    def __init__(self, gpu_uuid: str | None = None) -> None:
        try:
            self.nvml = importlib.import_module("pynvml")
        except ImportError:
            raise TelemetryUnavailable(f"the pynvml module is not installed ({INSTALL_HINT})") from None
        try:
            self.nvml.nvmlInit()
            self.handle = self.nvml.nvmlDeviceGetHandleByUUID(gpu_uuid) if gpu_uuid else self.nvml.nvmlDeviceGetHandleByIndex(0)
            self.gpu_name = str(self.nvml.nvmlDeviceGetName(self.handle))
        except self.nvml.NVMLError as exc:
            raise TelemetryUnavailable(f"NVML did not start ({exc})") from None
        self.gpu_uuid = gpu_uuid
        self._unsupported: set[str] = set()
        self.has_energy_counter = self._energy_counter() is not None

    def _query(self, what: str, call: Callable[[], Any]) -> Any:
        """One NVML figure, or None where this GPU does not report it (then never asked again)."""
        if what in self._unsupported:
            return None
        try:
            return call()
        except self.nvml.NVMLError as exc:
            if isinstance(exc, getattr(self.nvml, "NVMLError_NotSupported", ())):
                self._unsupported.add(what)
            return None

    def _energy_counter(self) -> float | None:
        """mJ since the driver loaded (Volta and later): the energy between two readings is exact,
        where the power draw is smoothed (a 1 s average on Ampere and later)."""
        return self._query("energy", lambda: float(self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle)))

    def read(self, reading: Reading) -> None:
        nvml, handle = self.nvml, self.handle
        reading.energy_mj = self._energy_counter()
        milliwatts = self._query("power", lambda: nvml.nvmlDeviceGetPowerUsage(handle))
        memory = self._query("memory", lambda: nvml.nvmlDeviceGetMemoryInfo(handle))
        utilisation = self._query("utilisation", lambda: nvml.nvmlDeviceGetUtilizationRates(handle))
        reasons = self._query("throttle", lambda: _clock_event_reasons(nvml, handle))
        reading.power_w = milliwatts / 1000.0 if milliwatts is not None else None
        reading.device_mem_mb = memory.used / MIB if memory is not None else None
        reading.gpu_util_pct = float(utilisation.gpu) if utilisation is not None else None
        reading.gpu_clock_mhz = self._query("clock", lambda: float(nvml.nvmlDeviceGetClockInfo(handle, NVML_CLOCK_SM)))
        reading.temp_c = self._query("temperature", lambda: float(nvml.nvmlDeviceGetTemperature(handle, NVML_TEMPERATURE_GPU)))
        reading.throttled = bool(reasons & THROTTLE_REASONS) if reasons is not None else None

    def describe(self) -> dict[str, Any]:
        return {
            "source": self.name,
            "gpu": self.gpu_name,
            "gpu_uuid": self.gpu_uuid,
            "power": "the GPU board's (the rest of the machine is not included): "
            + (
                "energy from its energy counter (nvmlDeviceGetTotalEnergyConsumption) at the loop's ends, power = energy / time"
                if self.has_energy_counter
                else "its power draw (nvmlDeviceGetPowerUsage) integrated over the loop"
            ),
            "device_memory": "memory used on the whole GPU, by every process (nvmlDeviceGetMemoryInfo)",
            "throttled": "any clock event reason for power or heat: SW power cap, HW slowdown, SW/HW thermal slowdown, HW power brake",
        }


def _clock_event_reasons(nvml: Any, handle: Any) -> int:
    """Newer nvidia-ml-py releases call them clock event reasons (the throttle name is deprecated);
    older ones have only the throttle name."""
    query = getattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons", None) or nvml.nvmlDeviceGetCurrentClocksThrottleReasons
    return int(query(handle))
