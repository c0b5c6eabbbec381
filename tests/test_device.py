"""Device handling: the cleanup protocol (nothing of a job's predictor survives it, on success and
failure), OOM classification, the bf16 check."""

import csv
import gc
import weakref

import pytest
from conftest import require

from sav_benchmark.measure import is_out_of_memory
from sav_benchmark.results import ResultWriter
from sav_benchmark.run import Benchmark, RunOptions
from sav_benchmark.runners import resolve_models
from sav_benchmark.runners.base import RunSettings
from sav_benchmark.split import prepare_split
from sav_benchmark.split.synthetic import make_split

require("sam2.build_sam")


class GpuOutOfMemoryStandIn(RuntimeError):
    """Stand-in for a CUDA allocator failure, which this machine (no GPU) cannot produce."""


def tracking_runner(fail_after_frames=None):
    from sav_benchmark.runners.sam2_family import Sam2Runner

    class TrackingRunner(Sam2Runner):
        refs: list = []
        alive_at_build: list = []

        def build(self):
            # Without collecting garbage itself: the previous job must already have let go of everything.
            TrackingRunner.alive_at_build.append(sum(ref() is not None for ref in TrackingRunner.refs))
            super().build()

        def init_video(self, job):
            super().init_video(job)
            TrackingRunner.refs += [weakref.ref(self.predictor), weakref.ref(self.state["images"])]

        def propagate(self, job):
            for count, item in enumerate(super().propagate(job)):
                if fail_after_frames is not None and count == fail_after_frames:
                    raise GpuOutOfMemoryStandIn("CUDA out of memory. Tried to allocate 2.00 GiB")
                yield item

    return TrackingRunner


@pytest.mark.parametrize("fail_after_frames,status", [(None, "ok"), (2, "oom")])
def test_predictor_and_state_are_freed_after_each_job(tmp_path, fail_after_frames, status):
    make_split(tmp_path / "split", videos=1, frames=9, width=64, height=48, objects=1)  # + 1 late object
    split = prepare_split(tmp_path / "split")
    specs = resolve_models("sam2.1_tiny_points")
    options = RunOptions(RunSettings("cpu", "float32", 64, "random", tmp_path), run_id="t")
    writer = ResultWriter(tmp_path / "o.csv")
    benchmark = Benchmark(split, specs, options, writer)
    runner_class = tracking_runner(fail_after_frames)
    benchmark.executor.runner_classes["sam2.1_tiny_points"] = runner_class
    report = benchmark.run()
    writer.close()
    assert [r["status"] for r in report.rows] == [status, status]
    rows = list(csv.DictReader((tmp_path / "o.csv").open()))
    assert [r["status"] for r in rows] == [status, status]  # every job has its row, failed or not
    if status == "oom":
        assert rows[0]["error"] == "GpuOutOfMemoryStandIn: CUDA out of memory. Tried to allocate 2.00 GiB"
    assert len(runner_class.refs) == 4
    assert runner_class.alive_at_build == [0, 0], "a predictor or its frames outlived its job"
    assert all(ref() is None for ref in runner_class.refs)


def test_release_memory_runs_the_protocol_in_order(monkeypatch):
    """CUDA calls replaced by recorders: a stand-in for the GPU this machine lacks."""
    import torch

    from sav_benchmark.device import release_memory

    calls = []
    gc.callbacks.append(lambda phase, info: phase == "start" and calls.append("gc.collect"))
    try:
        for name in ("synchronize", "empty_cache", "ipc_collect"):
            monkeypatch.setattr(torch.cuda, name, lambda name=name: calls.append(name))
        release_memory("cuda")
    finally:
        gc.callbacks.pop()
    assert calls == ["gc.collect", "synchronize", "empty_cache", "ipc_collect"]
    calls.clear()
    release_memory("cpu")
    assert calls == []


def test_out_of_memory_classification():
    import torch

    assert is_out_of_memory(torch.cuda.OutOfMemoryError("CUDA out of memory."))
    assert is_out_of_memory(RuntimeError("NvMapMemAllocInternalTagged: 1075072515 error 12"))
    assert is_out_of_memory(MemoryError())
    with pytest.raises(RuntimeError) as info:
        torch.empty(1 << 50, dtype=torch.uint8)  # a real CPU allocator failure: 1 PiB
    assert is_out_of_memory(info.value), str(info.value)
    assert not is_out_of_memory(RuntimeError("shape mismatch"))
    assert not is_out_of_memory(ValueError("out of memory"))


def test_bf16_is_refused_on_a_gpu_without_it(monkeypatch):
    """A stand-in for a Jetson Xavier (compute capability 7.2), which this machine lacks."""
    import torch

    from sav_benchmark.device import check_dtype
    from sav_benchmark.errors import UsageError

    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: (7, 2))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "Xavier stand-in")
    with pytest.raises(UsageError) as info:
        check_dtype("cuda", "bfloat16")
    assert str(info.value) == (
        "--autocast_dtype bfloat16: Xavier stand-in (compute capability 7.2) has no native bfloat16; use --autocast_dtype float16"
    )
    check_dtype("cuda", "float16")  # float16 is accepted there


@pytest.mark.parametrize("level,collections", [("full", 1), ("gc", 1), ("none", 0)])
def test_each_cleanup_level_runs_its_part_of_the_protocol(monkeypatch, level, collections):
    """--cleanup (a measurement aid): on the CPU, full and gc collect garbage, none does nothing."""
    from sav_benchmark import device

    calls = []
    monkeypatch.setattr(gc, "collect", lambda *args: calls.append(args) or 0)
    device.release_memory("cpu", level)
    assert len(calls) == collections
