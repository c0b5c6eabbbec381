"""On a CUDA device: synchronised timing, bf16 autocast, memory counters, cleanup, real OOM.

Skipped where torch sees no CUDA device (CI never has one); run them whenever a GPU is at hand.
"""

import csv
import json
from pathlib import Path

import pytest
from conftest import cli, require

from sav_benchmark.split.synthetic import make_split

torch = require("torch")
require("sam2.build_sam")
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


@pytest.fixture(scope="module")
def gpu_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gpu")
    make_split(tmp / "split", videos=2, frames=25, width=320, height=240)
    out = tmp / "o.csv"
    result = cli(
        "--split_dir",
        str(tmp / "split"),
        "--models",
        "sam2.1_tiny_points,sam2.1_tiny_mask",
        "--weights",
        "random",
        "--imgsz",
        "512",
        "--output",
        str(out),
        timeout=900,
    )
    return result, list(csv.DictReader(out.open())), json.loads(Path(f"{out}.json").read_text())


def test_cuda_run_defaults_bf16_and_warm_up(gpu_run):
    result, rows, manifest = gpu_run
    assert result.returncode == 0, result.stderr
    assert {(r["device"], r["dtype"], r["status"]) for r in rows} == {("cuda", "bfloat16", "ok")}
    assert manifest["config"]["warmup_frames"] == 8
    assert all(len(manifest["warmup_s"][m]) == 1 and manifest["warmup_s"][m][0] > 0 for m in ("sam2.1_tiny_points", "sam2.1_tiny_mask"))
    assert manifest["environment"]["device_name"] == torch.cuda.get_device_name()


def test_memory_counters_are_filled_and_do_not_leak(gpu_run):
    rows = gpu_run[1]
    for r in rows:
        before, peak, reserved, after = (
            float(r[c]) for c in ("mem_alloc_before_mb", "peak_alloc_mb", "peak_reserved_mb", "mem_alloc_after_cleanup_mb")
        )
        assert peak > before and reserved >= peak
        assert after <= before + 1.0  # the cleanup gives back what the job took
        assert float(r["mem_reserved_after_cleanup_mb"]) < reserved  # empty_cache returned the cache
    afters = [float(r["mem_alloc_after_cleanup_mb"]) for r in rows]
    assert max(afters) - min(afters) <= 1.0  # no growth over the run


def test_nvml_telemetry_fills_power_energy_and_device_memory(gpu_run):
    """On a desktop or datacenter GPU, auto picks NVML (nvidia-ml-py is a dependency)."""
    _, rows, manifest = gpu_run
    assert manifest["telemetry"]["source"] == "nvml"
    assert manifest["telemetry"]["gpu_uuid"].startswith("GPU-")
    for r in rows:
        assert r["telemetry_source"] == "nvml"
        assert float(r["avg_power_w"]) > 0 and float(r["energy_mj_per_frame"]) > 0
        assert float(r["peak_device_mem_mb"]) >= float(r["peak_reserved_mb"])  # NVML sees the whole GPU
        assert r["throttled"] in ("True", "False")


def test_autocast_context_is_bf16_on_cuda(tmp_path):
    from sav_benchmark.runners import MODELS
    from sav_benchmark.runners.base import RunSettings
    from sav_benchmark.runners.sam2_family import Sam2Runner

    runner = Sam2Runner(MODELS["sam2.1_tiny_points"], RunSettings("cuda", "bfloat16", 256, "random", tmp_path))
    with runner.inference_context():
        assert torch.is_autocast_enabled("cuda") and torch.get_autocast_dtype("cuda") == torch.bfloat16
        assert torch.is_inference_mode_enabled()


def test_real_cuda_out_of_memory_is_classified():
    from sav_benchmark.measure import is_out_of_memory

    with pytest.raises(torch.cuda.OutOfMemoryError) as info:
        torch.empty(1 << 50, dtype=torch.uint8, device="cuda")  # a plain allocation that cannot fit
    assert is_out_of_memory(info.value)


def test_compiled_run_compiles_in_the_warm_up_only(tmp_path):
    """--compile: the warm-up compiles (its time in setup_s and the manifest, apart from build_s);
    no graph is compiled inside the timers."""
    make_split(tmp_path / "split", videos=1, frames=25, width=320, height=240)
    out = tmp_path / "o.csv"
    result = cli(
        "--split_dir",
        str(tmp_path / "split"),
        "--models",
        "sam2.1_tiny_points",
        "--weights",
        "random",
        "--imgsz",
        "512",
        "--compile",
        "--output",
        str(out),
        timeout=1800,
    )
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(out.open()))
    assert all(r["status"] == "ok" and r["compiled_graphs"] == "0" for r in rows)
    assert float(rows[0]["setup_s"]) > float(rows[0]["build_s"])
    assert json.loads(Path(f"{out}.json").read_text())["config"]["compile"] is True


def test_streaming_on_cuda_is_as_identical_as_two_plain_runs(tmp_path):
    """bf16 autocast on CUDA: the streamed outputs differ from a plain run's no more than a second
    plain run's do (0 where the kernels are deterministic)."""
    from dataclasses import replace

    from streaming_probe import job_of, propagated_outputs

    from sav_benchmark.masks import read_mask
    from sav_benchmark.runners import MODELS
    from sav_benchmark.runners.base import RunSettings
    from sav_benchmark.runners.sam2_family import Sam2Runner

    make_split(tmp_path / "s", videos=1, frames=40, width=320, height=240, objects=1)
    job = job_of(
        tmp_path / "s" / "JPEGImages_24fps" / "synth_000",
        read_mask(tmp_path / "s" / "Annotations_6fps" / "synth_000" / "000" / "00000.png"),
    )
    spec, settings = MODELS["sam2.1_tiny_mask"], RunSettings("cuda", "bfloat16", 512, "random", tmp_path)
    first, second, streamed = (
        propagated_outputs(Sam2Runner, spec, replace(settings, stream=stream), job)[0] for stream in (False, False, True)
    )

    def largest_difference(a, b):
        return max((x - y).abs().max().item() for x, y in zip(a, b))

    assert len(streamed) == len(first) == 40
    assert largest_difference(streamed, first) <= largest_difference(second, first)
