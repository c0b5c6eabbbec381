"""Jetson telemetry from the `tegrastats` tool: its lines parsed, and a source that runs it.

`tegrastats` prints one line per interval. Its format differs between boards and JetPack releases
(capital or lower-case temperature labels, `GR3D_FREQ x%@f` or `GR3D_FREQ x%`, `NC` placeholder
rails, `off` CPU cores, offline sensors reading -256C, different rail names), so the parser reads
the fields it knows by pattern and passes over everything else.
"""

from __future__ import annotations

import os
import re
import select
import shutil
import subprocess
import threading
import time
from typing import Any

from .readings import Reading
from .source import Emit, TelemetryUnavailable

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


class TegrastatsSource:
    """Runs `tegrastats --interval N` for each job and turns each line into a reading, stamped when
    it arrives. The process ends with the job; should this process die first, tegrastats dies at
    its next line, on the closed pipe."""

    name = "tegrastats"
    unified_memory = True
    PROBE_TIMEOUT_S = 5.0

    def __init__(self, executable: str = "tegrastats") -> None:
        found = shutil.which(executable)
        if found is None:
            raise TelemetryUnavailable(f"no {executable} executable on PATH")
        self.executable = found

    def stream(self, interval_s: float, stop: threading.Event, emit: Emit) -> None:
        process = subprocess.Popen(
            [self.executable, "--interval", str(max(1, round(interval_s * 1000)))],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C for the run must not end it while the job finishes
        )
        rails: set[str] | None = None  # those of the first line: a line that lacks one has no power
        try:
            for line in _lines(process, stop, interval_s):
                reading, found = reading_from_line(line, time.perf_counter())
                rails = found if rails is None else rails
                if found != rails:
                    reading.power_w = None
                emit(reading)
        finally:
            _end(process)

    def first_line(self) -> str:
        """One line of output, to learn the board's rails; '' if none came in time."""
        stop = threading.Event()
        timer = threading.Timer(self.PROBE_TIMEOUT_S, stop.set)
        timer.start()
        process = subprocess.Popen(
            [self.executable, "--interval", "100"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            return next(_lines(process, stop, 0.1), "")
        finally:
            timer.cancel()
            _end(process)

    def describe(self) -> dict[str, Any]:
        line = self.first_line()
        _, summed = module_power_w(parse_tegrastats(line)["rails_mw"])
        return {
            "source": self.name,
            "executable": self.executable,
            "power": power_note(summed)
            if line
            else f"tegrastats printed no line within {self.PROBE_TIMEOUT_S:.0f} s: its rails are not known here",
            "rails_summed": summed,
            "device_memory": "tegrastats RAM used: a Jetson's memory is unified",
            "gpu": "GR3D_FREQ load and frequency",
            "temperature": "hottest of the sensors tegrastats lists",
            "throttled": "not known from tegrastats: left empty",
        }


def power_note(summed: list[str]) -> str:
    """The manifest's word on what the power figures are."""
    if not summed:
        return "no power rail found: power and energy stay empty"
    if summed == [MODULE_INPUT_RAIL]:
        return f"{MODULE_INPUT_RAIL}: the module's whole input"
    return f"the sum of the rails {', '.join(summed)}: this board has no rail for the module's whole input"


def reading_from_line(line: str, t: float) -> tuple[Reading, set[str]]:
    """The reading a line gives, and the rails it names."""
    parsed = parse_tegrastats(line)
    temperatures = parsed["temps_c"].values()
    reading = Reading(
        t,
        power_w=module_power_w(parsed["rails_mw"])[0],
        device_mem_mb=parsed["ram_used_mb"],
        gpu_util_pct=parsed["gpu_load_pct"],
        gpu_clock_mhz=parsed["gpu_freq_mhz"],
        temp_c=max(temperatures) if temperatures else None,
    )
    return reading, set(parsed["rails_mw"])


def _lines(process: subprocess.Popen, stop: threading.Event, interval_s: float):
    """The process's output lines as they come, until `stop` is set or the output ends."""
    fd = process.stdout.fileno()
    pending = b""
    while not stop.is_set():
        ready, _, _ = select.select([fd], [], [], interval_s)
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            return
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            if line.strip():
                yield line.decode("utf-8", "replace")


def _end(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=2)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    process.stdout.close()
