"""Stand-ins for hardware this machine lacks: a Jetson's sysfs tree, a `tegrastats` executable and
the `pynvml` module of a machine with an NVIDIA GPU. Each gives fixed, hand-chosen figures."""

import shlex
import textwrap
from pathlib import Path

# Stand-in Orin Nano: INA3221 channel -> (label, bus mV, mA); VDD_IN = 5000 mV x 911 mA = 4.555 W.
ORIN_NANO_RAILS = {1: ("VDD_IN", 5000, 911), 2: ("VDD_CPU_GPU_CV", 5000, 97), 3: ("VDD_SOC", 5000, 290)}
# Stand-in AGX Orin: two INA3221 chips, no total rail, NC placeholders.
AGX_ORIN_RAILS = [
    {1: ("VDD_GPU_SOC", 19000, 126), 2: ("VDD_CPU_CV", 19000, 21), 3: ("VIN_SYS_5V0", 5000, 806)},
    {1: ("NC", 0, 0), 2: ("VDDQ_VDD2_1V8AO", 5000, 60), 3: ("NC", 0, 0)},
]
THERMAL_ZONES = {"cpu-thermal": 47687, "gpu-thermal": 48625, "cv0-thermal": -256000}  # millidegrees; -256 C = offline
GPU_HZ, GPU_LOAD_PER_MILLE = 612000000, 453


def _write(path: Path, text) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{text}\n")


def make_sysfs_tree(root: Path, chips: list[dict]) -> Path:
    """A sysfs tree as a Jetson's: INA3221 hwmon chips, an unrelated hwmon, thermal zones, the GPU's devfreq node."""
    for index, chip in enumerate(chips):
        hwmon = root / "sys/class/hwmon" / f"hwmon{index + 1}"
        _write(hwmon / "name", "ina3221")
        for channel, (label, millivolts, milliamps) in chip.items():
            _write(hwmon / f"in{channel}_label", label)
            _write(hwmon / f"in{channel}_input", millivolts)
            _write(hwmon / f"curr{channel}_input", milliamps)
    _write(root / "sys/class/hwmon/hwmon0/name", "soc_thermal")
    for index, (zone, millidegrees) in enumerate(THERMAL_ZONES.items()):
        _write(root / "sys/class/thermal" / f"thermal_zone{index}" / "type", zone)
        _write(root / "sys/class/thermal" / f"thermal_zone{index}" / "temp", millidegrees)
    gpu = root / "sys/class/devfreq/17000000.gpu"
    _write(gpu / "cur_freq", GPU_HZ)
    _write(gpu / "device" / "load", GPU_LOAD_PER_MILLE)
    return root


def write_fake_tegrastats(folder: Path, line: str, pid_file: Path) -> Path:
    """An executable named tegrastats that prints `line` every --interval ms, forever, and notes
    its process id in `pid_file` (to check that it was ended). A shell script: it starts at once."""
    script = folder / "tegrastats"
    folder.mkdir(parents=True, exist_ok=True)
    script.write_text(
        textwrap.dedent(f"""\
        #!/bin/sh
        # A stand-in for NVIDIA's tegrastats, for tests: tegrastats --interval MS
        echo $$ >> {shlex.quote(str(pid_file))}
        seconds=$(printf '%d.%03d' $(($2 / 1000)) $(($2 % 1000)))
        while true; do
            sleep "$seconds"
            printf '%s\\n' {shlex.quote(line)}
        done
        """)
    )
    script.chmod(0o755)
    return script


def write_nvml_standin(folder: Path, start_error: str | None = None, reasons: int = 0x20, energy_counter: bool = False) -> Path:
    """A `pynvml` module with nvidia-ml-py's names: an H200-like GPU drawing 250 W, 40 GiB used,
    87% busy at 1980 MHz, no temperature sensor, clocks reasons `reasons`; with `energy_counter`
    an energy counter that grows by 300 W from the process's clock (so that the counter, not the
    250 W power draw, must be what the energy comes from); or one whose nvmlInit fails."""
    folder.mkdir(parents=True, exist_ok=True)
    failure = f"raise NVMLError({start_error!r})" if start_error else "pass"
    (folder / "pynvml.py").write_text(
        textwrap.dedent(f"""\
        # A stand-in for nvidia-ml-py's pynvml, for tests.
        import time
        from types import SimpleNamespace

        class NVMLError(Exception):
            pass

        class NVMLError_NotSupported(NVMLError):
            pass

        def nvmlInit():
            {failure}

        def nvmlShutdown():
            pass

        def nvmlDeviceGetHandleByUUID(uuid):
            return ("handle", uuid)

        def nvmlDeviceGetHandleByIndex(index):
            return ("handle", index)

        def nvmlDeviceGetName(handle):
            return "NVIDIA H200 (stand-in)"

        def nvmlDeviceGetPowerUsage(handle):
            return 250000

        def nvmlDeviceGetMemoryInfo(handle):
            return SimpleNamespace(total=141 << 30, used=40 << 30, free=101 << 30)

        def nvmlDeviceGetUtilizationRates(handle):
            return SimpleNamespace(gpu=87, memory=40)

        def nvmlDeviceGetClockInfo(handle, clock):
            assert clock == 1  # NVML_CLOCK_SM
            return 1980

        def nvmlDeviceGetTemperature(handle, sensor):
            raise NVMLError_NotSupported("Not Supported")

        def nvmlDeviceGetCurrentClocksEventReasons(handle):
            return {reasons}

        def nvmlDeviceGetTotalEnergyConsumption(handle):
            if not {energy_counter}:
                raise NVMLError_NotSupported("Not Supported")
            return int(300 * 1000 * time.perf_counter())  # mJ: 300 W since the clock's zero
        """)
    )
    return folder
