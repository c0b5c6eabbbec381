"""What Linux says about this process and the system, whatever the device: resident memory (with
its exact peak), system memory in use, CPU utilisation. Every reading gets these."""

from __future__ import annotations

import re
from pathlib import Path

from .readings import Reading

PROC = Path("/proc")
KIB_PER_MB = 1024.0
# Writing 5 to clear_refs resets the process's peak resident memory (VmHWM) to its current size
# (Linux 4.0 and later): the peak of one job is then exact, not limited to what sampling caught.
RESET_PEAK_RSS = "5"


def _status_kib(text: str, key: str) -> float | None:
    match = re.search(rf"^{key}:\s+(\d+) kB", text, re.MULTILINE)
    return float(match.group(1)) if match else None


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


class ProcStats:
    def __init__(self, proc: Path = PROC) -> None:
        self.proc = proc
        self._cpu_before: tuple[float, float] | None = None
        self.exact_peak = False

    def reset_peak_rss(self) -> None:
        """Start a job's peak: exact where the kernel lets us reset it, else the largest reading."""
        try:
            (self.proc / "self" / "clear_refs").write_text(RESET_PEAK_RSS)
            self.exact_peak = True
        except OSError:
            self.exact_peak = False

    def peak_rss_mb(self) -> float | None:
        """The peak since reset_peak_rss(); None where it could not be reset."""
        if not self.exact_peak:
            return None
        peak = _status_kib(_read(self.proc / "self" / "status") or "", "VmHWM")
        return peak / KIB_PER_MB if peak is not None else None

    def fill(self, reading: Reading) -> None:
        status = _read(self.proc / "self" / "status") or ""
        rss = _status_kib(status, "VmRSS")
        reading.rss_mb = rss / KIB_PER_MB if rss is not None else None
        reading.sys_mem_mb = self.system_memory_used_mb()
        reading.cpu_util_pct = self._cpu_util()

    def system_memory_used_mb(self) -> float | None:
        meminfo = _read(self.proc / "meminfo") or ""
        total, available = _status_kib(meminfo, "MemTotal"), _status_kib(meminfo, "MemAvailable")
        if total is None or available is None:
            return None
        return (total - available) / KIB_PER_MB

    def _cpu_util(self) -> float | None:
        """Busy share of all CPUs since the previous call (None at the first)."""
        line = (_read(self.proc / "stat") or "").split("\n", 1)[0].split()
        if not line or line[0] != "cpu":
            return None
        ticks = [float(x) for x in line[1:]]
        idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0.0)  # idle + iowait
        now = (sum(ticks[:8]), idle)  # guest time is already counted in user time
        before, self._cpu_before = self._cpu_before, now
        if before is None or now[0] <= before[0]:
            return None
        return 100.0 * (1.0 - (now[1] - before[1]) / (now[0] - before[0]))
