"""Jetson telemetry straight from sysfs, without root or extra packages: the INA3221 power monitors
(hwmon), the thermal zones and the GPU's devfreq node.

INA3221 hwmon files (Linux `Documentation/hwmon/ina3221.rst`): `in[123]_label` names a channel's
rail, `in[123]_input` is its bus voltage in mV and `curr[123]_input` its current in mA. Channels
labelled `NC` are not connected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .readings import Reading
from .source import PolledSource, TelemetryUnavailable
from .tegrastats import NOT_CONNECTED, module_power_w, power_note

HWMON = Path("sys/class/hwmon")
THERMAL = Path("sys/class/thermal")
DEVFREQ = Path("sys/class/devfreq")
INA3221_CHANNELS = (1, 2, 3)
GPU_DEVFREQ = re.compile(r"gpu|ga10b|gv11b|gp10b|gm20b")  # Orin (JetPack 6, 5), Xavier, TX2, Nano
OFFLINE_MILLIDEGREES = -256000


@dataclass(frozen=True)
class Rail:
    label: str
    voltage: Path  # mV
    current: Path  # mA


def _text(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _number(path: Path) -> float | None:
    text = _text(path)
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def ina3221_rails(root: Path) -> list[Rail]:
    rails = []
    for hwmon in sorted((root / HWMON).glob("hwmon*")):
        if _text(hwmon / "name") != "ina3221":
            continue
        for channel in INA3221_CHANNELS:
            label = _text(hwmon / f"in{channel}_label")
            if label and label != NOT_CONNECTED and (hwmon / f"curr{channel}_input").exists():
                rails.append(Rail(label, hwmon / f"in{channel}_input", hwmon / f"curr{channel}_input"))
    return rails


def _thermal_zones(root: Path) -> dict[str, Path]:
    return {(_text(zone / "type") or zone.name).lower(): zone / "temp" for zone in sorted((root / THERMAL).glob("thermal_zone*"))}


def _gpu_node(root: Path) -> Path | None:
    nodes = sorted(node for node in (root / DEVFREQ).glob("*") if GPU_DEVFREQ.search(node.name))
    return nodes[0] if nodes else None


class SysfsSource(PolledSource):
    name = "sysfs"
    unified_memory = True

    def __init__(self, root: Path = Path("/")) -> None:
        self.root = root
        self.rails = ina3221_rails(root)
        if not self.rails:
            raise TelemetryUnavailable(f"no INA3221 power monitor under {root / HWMON}")
        self.temperatures = _thermal_zones(root)
        self.gpu = _gpu_node(root)

    def rails_mw(self) -> dict[str, float]:
        rails = {}
        for rail in self.rails:
            millivolts, milliamps = _number(rail.voltage), _number(rail.current)
            if millivolts is not None and milliamps is not None:
                rails[rail.label] = millivolts * milliamps / 1000.0
        return rails

    def read(self, reading: Reading) -> None:
        rails = self.rails_mw()
        # A rail that cannot be read leaves the power unknown: a sum without it (or the sum of the
        # parts where VDD_IN is missing) would be a wrong number that looks right.
        reading.power_w = module_power_w(rails)[0] if len(rails) == len(self.rails) else None
        temperatures = [t / 1000.0 for t in map(_number, self.temperatures.values()) if t is not None and t != OFFLINE_MILLIDEGREES]
        reading.temp_c = max(temperatures) if temperatures else None
        if self.gpu is not None:
            hertz, per_mille = _number(self.gpu / "cur_freq"), _number(self.gpu / "device" / "load")
            reading.gpu_clock_mhz = hertz / 1e6 if hertz is not None else None
            reading.gpu_util_pct = per_mille / 10.0 if per_mille is not None else None

    def describe(self) -> dict[str, Any]:
        _, summed = module_power_w({rail.label: 0 for rail in self.rails})
        return {
            "source": self.name,
            "power": power_note(summed),
            "rails_summed": summed,
            "rails_found": [rail.label for rail in self.rails],
            "device_memory": "system memory in use (MemTotal - MemAvailable): a Jetson's memory is unified",
            "gpu": str(self.gpu) if self.gpu else "no GPU devfreq node found: GPU load and clock stay empty",
            "temperature": f"hottest of the thermal zones {sorted(self.temperatures)}" if self.temperatures else "no thermal zone found",
            "throttled": "not known from sysfs: left empty",
        }
