"""A job's device memory readings: a leaf module, without torch, that the device code (which fills
them) and the runner protocol (which passes them on) both use."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

# --cleanup, a developer's measurement aid: the whole cleanup protocol after each job (the default),
# only its gc.collect, or nothing; the memory after cleanup then shows what each call does.
CLEANUP_LEVELS = ("full", "gc", "none")
MEMORY_COLUMNS = (
    "mem_alloc_before_mb",
    "mem_reserved_before_mb",
    "peak_alloc_mb",
    "peak_reserved_mb",
    "mem_alloc_after_cleanup_mb",
    "mem_reserved_after_cleanup_mb",
)


@dataclass
class MemoryReading:
    """Device memory in MiB; None where the device has no such counter (CPU)."""

    alloc_before_mb: float | None = None
    reserved_before_mb: float | None = None
    peak_alloc_mb: float | None = None
    peak_reserved_mb: float | None = None
    alloc_after_cleanup_mb: float | None = None
    reserved_after_cleanup_mb: float | None = None

    def columns(self) -> dict[str, Any]:
        """The readings as the row's memory columns, in their order."""
        return dict(zip(MEMORY_COLUMNS, asdict(self).values()))
