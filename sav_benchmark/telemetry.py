"""Telemetry: reading what a Jetson reports about itself.

`tegrastats` prints one line per interval. Its format differs between boards and JetPack releases
(capital or lower-case temperature labels, `GR3D_FREQ x%@f` or `GR3D_FREQ x%`, `NC` placeholder
rails, `off` CPU cores, offline sensors reading -256C, different rail names), so the parser reads
the fields it knows by pattern and passes over everything else.
"""

from __future__ import annotations

import re
from typing import Any

RAM = re.compile(r"\bRAM (\d+)/(\d+)MB")
GPU = re.compile(r"\bGR3D_FREQ (\d+)%(?:@\[?(\d+)\]?)?")
RAIL = re.compile(r"\b([A-Z][A-Z0-9_]*) (\d+)mW/(\d+)mW")
TEMPERATURE = re.compile(r"\b([A-Za-z][A-Za-z0-9_]*)@(-?\d+(?:\.\d+)?)C\b")
OFFLINE_SENSOR_C = -256.0
NOT_CONNECTED = "NC"
# The board's whole input, where it has one rail for it (Orin Nano, Orin NX).
MODULE_INPUT_RAIL = "VDD_IN"


def parse_tegrastats(line: str) -> dict[str, Any]:
    """One tegrastats line as numbers; None (or empty) for what the line does not have.

    Keys: ram_used_mb, ram_total_mb, gpu_load_pct, gpu_freq_mhz, rails_mw (rail -> current mW,
    NC placeholders left out), temps_c (sensor in lower case -> degrees C, offline sensors left out).
    """
    ram = RAM.search(line)
    gpu = GPU.search(line)
    return {
        "ram_used_mb": int(ram.group(1)) if ram else None,
        "ram_total_mb": int(ram.group(2)) if ram else None,
        "gpu_load_pct": int(gpu.group(1)) if gpu else None,
        "gpu_freq_mhz": int(gpu.group(2)) if gpu and gpu.group(2) is not None else None,
        "rails_mw": {name: int(now) for name, now, _average in RAIL.findall(line) if name != NOT_CONNECTED},
        "temps_c": {name.lower(): float(value) for name, value in TEMPERATURE.findall(line) if float(value) != OFFLINE_SENSOR_C},
    }


def module_power_w(rails_mw: dict[str, int]) -> tuple[float | None, list[str]]:
    """The module's power in watts and the rails it comes from: the input rail where the board has
    one, else the sum of all rails (AGX Orin has no single total rail). None when there is no rail."""
    if MODULE_INPUT_RAIL in rails_mw:
        return rails_mw[MODULE_INPUT_RAIL] / 1000.0, [MODULE_INPUT_RAIL]
    if not rails_mw:
        return None, []
    return sum(rails_mw.values()) / 1000.0, sorted(rails_mw)
