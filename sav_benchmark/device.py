"""Device selection, memory counters and the cleanup protocol. Imports torch: load it lazily."""

from __future__ import annotations

import gc
import platform

import torch

from .errors import UsageError
from .memory import MemoryReading

MIB = 1024 * 1024
DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": None}


def resolve_device(requested: str) -> str:
    """'auto' is CUDA when available; asking for CUDA without it is a UsageError."""
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is visible to torch here; use --device cpu or --device auto")
    return requested


def check_dtype(device: str, dtype: str) -> None:
    """Refuse bfloat16 autocast on a GPU without native bf16 (compute capability below 8.0)."""
    if device == "cuda" and dtype == "bfloat16":
        major, minor = torch.cuda.get_device_capability()
        if major < 8:
            raise UsageError(
                f"--autocast_dtype bfloat16: {torch.cuda.get_device_name()} (compute capability {major}.{minor}) "
                "has no native bfloat16; use --autocast_dtype float16"
            )


def device_name(device: str) -> str:
    if device == "cuda":
        return torch.cuda.get_device_name()
    return _cpu_model()


def gpu_uuid(device: str) -> str | None:
    """NVML's name ("GPU-<uuid>") of the GPU torch uses; None on CPU or where torch does not say."""
    if device != "cuda":
        return None
    uuid = getattr(torch.cuda.get_device_properties(torch.cuda.current_device()), "uuid", None)
    return f"GPU-{uuid}" if uuid is not None else None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "cpu"


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def release_memory(device: str, level: str = "full") -> None:
    """The cleanup protocol, once every reference to the predictor and its state is dropped:
    gc.collect, then on CUDA synchronize, empty_cache and ipc_collect (level "full", the default);
    only gc.collect ("gc"); or nothing ("none")."""
    if level == "none":
        return
    gc.collect()
    if device == "cuda" and level == "full":
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.ipc_collect()


def graphs_compiled() -> int:
    """Graphs torch.compile has compiled in this process so far (dynamo's own counter)."""
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


class MemoryCounters:
    """Reads the allocator's counters around one job; on CPU every reading stays None."""

    def __init__(self, device: str) -> None:
        self.enabled = device == "cuda"
        self.reading = MemoryReading()

    def start(self) -> None:
        if self.enabled:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.reading.alloc_before_mb = torch.cuda.memory_allocated() / MIB
            self.reading.reserved_before_mb = torch.cuda.memory_reserved() / MIB

    def record_peak(self) -> None:
        if self.enabled:
            torch.cuda.synchronize()
            self.reading.peak_alloc_mb = torch.cuda.max_memory_allocated() / MIB
            self.reading.peak_reserved_mb = torch.cuda.max_memory_reserved() / MIB

    def record_after_cleanup(self) -> None:
        if self.enabled:
            self.reading.alloc_after_cleanup_mb = torch.cuda.memory_allocated() / MIB
            self.reading.reserved_after_cleanup_mb = torch.cuda.memory_reserved() / MIB
