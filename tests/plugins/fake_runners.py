"""Runners that exist only for the tests, registered through SAV_BENCHMARK_PLUGINS=fake_runners.

They behave like the static baseline (no torch) but can be slow, fail, run out of memory or die,
as the environment variables below say, so that failure handling is tested through the real CLI.
"""

import ctypes
import os
import time

from sav_benchmark.runners import ModelSpec, register
from sav_benchmark.runners.static_mask import StaticMaskRunner

FRAME_DELAY_S = float(os.environ.get("FAKE_FRAME_DELAY_S", "0"))
FAIL_VIDEOS = set(filter(None, os.environ.get("FAKE_FAIL_VIDEOS", "").split(",")))
FAIL_PROMPT_FRAMES = {int(f) for f in os.environ.get("FAKE_FAIL_PROMPT_FRAMES", "").split(",") if f}  # objects prompted there fail
OOM_ABOVE_IMGSZ = int(os.environ.get("FAKE_OOM_ABOVE_IMGSZ", "0"))  # fake_oom: out of memory above this size
EXIT_VIDEOS = set(filter(None, os.environ.get("FAKE_EXIT_VIDEOS", "").split(",")))  # a library that ends the process there


class FakeRunner(StaticMaskRunner):
    def __init__(self, spec, settings):
        super().__init__(spec, settings)
        self.spec = spec
        self.imgsz = settings.imgsz or 1024

    def propagate(self, job):
        video = job.frames_dir.name
        for count, item in enumerate(super().propagate(job)):
            time.sleep(FRAME_DELAY_S)
            if count == 2 and self.spec.name == "fake_oom" and OOM_ABOVE_IMGSZ and self.imgsz > OOM_ABOVE_IMGSZ:
                raise RuntimeError(f"CUDA out of memory at imgsz {self.imgsz} (a test stand-in)")
            if count == 2 and video in EXIT_VIDEOS:
                raise SystemExit(f"a library gave up on video {video} (a test stand-in)")
            if count == 2 and (video in FAIL_VIDEOS or job.start_frame in FAIL_PROMPT_FRAMES):
                if self.spec.name == "fake_oom" and os.environ.get("FAKE_REAL_DEVICE_OOM") == "1":
                    _allocate_past_the_device()
                if self.spec.name == "fake_oom":
                    raise RuntimeError("CUDA out of memory. Tried to allocate 20.00 GiB (a test stand-in)")
                if self.spec.name == "fake_crash":
                    ctypes.string_at(0)  # a real segfault: the process dies, no exception, no cleanup
                raise ValueError(f"fake failure on video {video}")
            yield item


def _allocate_past_the_device():
    """A real CUDA out-of-memory error (scripts/gpu_check.py on a GPU): twice the device's memory."""
    import torch

    total = torch.cuda.get_device_properties(0).total_memory
    torch.empty(2 * total, dtype=torch.uint8, device="cuda")


class SwallowingRunner(FakeRunner):
    """fake_swallow: reports whatever interrupts its frames as an error of its own, as a C extension
    that is importing does (numpy's PyCapsule_Import turns a KeyboardInterrupt into an ImportError)."""

    def propagate(self, job):
        try:
            yield from super().propagate(job)
        except BaseException as exc:
            raise ImportError(f"PyCapsule_Import could not import module (a test stand-in; it hid {type(exc).__name__})") from None


RUNNER = FakeRunner
if os.environ.get("FAKE_SWALLOW") == "1":
    RUNNER = SwallowingRunner
for name in ("fake_slow", "fake_fail", "fake_oom", "fake_crash"):
    register(ModelSpec(name, "mask", __name__, "test", uses_torch=False))
