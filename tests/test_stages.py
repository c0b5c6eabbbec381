"""Per-frame model stages (runners/stages.py, timing.FrameLog) and per-frame traces (traces.py):
the split against known durations, the cases where no split is given, the telemetry at each frame,
and the run's files with the real sam2 predictor."""

import csv
import subprocess
import sys
import time

import pytest
from conftest import ROOT, cli, require

from sav_benchmark.runners.stages import StageClock, stages_problem
from sav_benchmark.telemetry.readings import Reading
from sav_benchmark.timing import FrameLog, frame_stage_columns
from sav_benchmark.traces import TRACE_COLUMNS, TraceWriter, job_trace, keep_traces_of

SLEEPS_S = {"forward_image": 0.03, "_prepare_memory_conditioned_features": 0.02, "_forward_sam_heads": 0.01, "_encode_new_memory": 0.005}


class SleepingModel:
    """A stand-in with SAM2Base's four stage methods, each sleeping a known time."""

    def forward_image(self):
        time.sleep(SLEEPS_S["forward_image"])

    def _prepare_memory_conditioned_features(self):
        time.sleep(SLEEPS_S["_prepare_memory_conditioned_features"])

    def _forward_sam_heads(self):
        time.sleep(SLEEPS_S["_forward_sam_heads"])

    def _encode_new_memory(self):
        time.sleep(SLEEPS_S["_encode_new_memory"])

    def track(self):
        self.forward_image()
        self._prepare_memory_conditioned_features()
        self._forward_sam_heads()
        self._encode_new_memory()


def test_each_stage_is_timed_on_its_own_method_and_the_model_is_left_as_it_was():
    model = SleepingModel()
    clock = StageClock(model, "cpu")
    model.track()
    model._forward_sam_heads()  # twice in a frame (the prompt frame's object pointer): added up
    seconds = clock.take()
    expected = {"image_encoder": 0.03, "memory_attention": 0.02, "mask_decoder": 0.02, "memory_encoder": 0.005}
    for stage, at_least in expected.items():
        assert at_least <= seconds[stage] < at_least + 0.5, (stage, seconds)  # a loaded machine may sleep long
    assert clock.take() == dict.fromkeys(expected, 0.0)  # a take empties it
    clock.remove()
    assert vars(model) == {} and not clock.problem


def test_a_stage_called_inside_another_gives_no_split():
    class Nesting(SleepingModel):
        def _prepare_memory_conditioned_features(self):
            self.forward_image()  # its time would count twice

    model = Nesting()
    clock = StageClock(model, "cpu")
    model.track()
    log = FrameLog()
    log.add(0, 1.0, 1.0, clock.take())
    log.stages_problem = clock.problem
    assert clock.problem == "forward_image ran inside _prepare_memory_conditioned_features"
    assert frame_stage_columns(log) == ({}, "stage times left out: forward_image ran inside _prepare_memory_conditioned_features")


def test_a_model_without_a_stage_method_is_named():
    class Other:
        def forward_image(self):
            pass

    assert stages_problem(Other()) == "it has no _prepare_memory_conditioned_features, _forward_sam_heads, _encode_new_memory"
    assert stages_problem(SleepingModel()) == ""


def test_stage_columns_and_the_rest_by_hand():
    log = FrameLog(start=0.0)
    log.add(0, 0.100, 0.1, {"image_encoder": 0.050, "memory_attention": 0.020, "mask_decoder": 0.010, "memory_encoder": 0.005})
    log.add(1, 0.200, 0.3, {"image_encoder": 0.150, "memory_attention": 0.010, "mask_decoder": 0.010, "memory_encoder": 0.010})
    log.add(2, 0.300, 0.6, {"image_encoder": 0.100, "memory_attention": 0.030, "mask_decoder": 0.020, "memory_encoder": 0.050})
    columns, warning = frame_stage_columns(log)
    assert warning == ""
    assert columns["stage_image_encoder_ms_p50"] == pytest.approx(100.0)
    assert columns["stage_image_encoder_ms_mean"] == pytest.approx(100.0)
    assert columns["stage_memory_encoder_ms_mean"] == pytest.approx(65 / 3)
    # rest: 100 - 85 = 15, 200 - 180 = 20, 300 - 200 = 100
    assert columns["stage_rest_ms_p50"] == pytest.approx(20.0)
    assert columns["stage_rest_ms_mean"] == pytest.approx(45.0)
    assert log.window() == (0.0, 0.6)


def test_stages_longer_than_their_frame_are_a_bug_and_give_no_split():
    log = FrameLog()
    log.add(7, 0.010, 1.0, {"image_encoder": 0.02, "memory_attention": 0.0, "mask_decoder": 0.0, "memory_encoder": 0.0})
    assert frame_stage_columns(log) == ({}, "stage times left out: the stages took longer than frame 7's latency (a bug)")


def test_a_runner_without_stages_gives_no_stage_cells_and_no_warning():
    log = FrameLog()
    log.add(0, 0.1, 0.1, None)
    assert frame_stage_columns(log) == ({}, "")


def test_the_telemetry_at_each_frame_is_interpolated_and_held_at_the_ends():
    log = FrameLog(start=0.0)
    for frame, end in enumerate((0.5, 1.0, 1.5, 3.0)):
        log.add(frame, 0.1, end, None)
    readings = [Reading(t=1.0, power_w=10.0, rss_mb=100.0), Reading(t=2.0, power_w=20.0), Reading(t=1.5, temp_c=None)]
    trace = job_trace(log, readings)
    assert trace["power_w"] == [10.0, 10.0, 15.0, 20.0]  # held before the first reading and after the last
    assert trace["rss_mb"] == [100.0] * 4
    assert trace["temp_c"] == [None] * 4 and trace["image_encoder_ms"] == [None] * 4
    assert trace["latency_ms"] == [100.0] * 4 and trace["frame"] == [0, 1, 2, 3]


def test_a_resume_keeps_the_records_of_the_kept_rows_only(tmp_path):
    path = tmp_path / "o.csv.traces.csv"
    writer = TraceWriter(path)
    trace = job_trace(FrameLog(frames=[0, 1], latencies_s=[0.1, 0.2], ends=[0.1, 0.3]), [])
    for video in ("v0", "v1", "v2"):
        writer.write({"video_id": video, "object_id": "000", "model": "m"}, trace)
    writer.close()
    with open(path, "a") as f:
        f.write("v3,000,m,0,1.")  # torn by a kill
    kept = {("v0", "000", "m"), ("v2", "000", "m"), ("v9", "000", "m")}  # v9: a kept row without records
    assert keep_traces_of(path, kept) == {("v0", "000", "m"), ("v2", "000", "m")}  # v1's two records and the torn one dropped
    with open(path, newline="") as f:
        records = list(csv.reader(f))
    assert records[0] == list(TRACE_COLUMNS)
    assert [(r[0], r[3], r[4]) for r in records[1:]] == [
        ("v0", "0", "100.0"),
        ("v0", "1", "200.0"),
        ("v2", "0", "100.0"),
        ("v2", "1", "200.0"),
    ]
    before = path.read_bytes()
    assert keep_traces_of(path, kept) == {("v0", "000", "m"), ("v2", "000", "m")}
    assert path.read_bytes() == before  # nothing more to drop: the file is left as it is


@pytest.mark.parametrize("flags", [(), ("--stages", "off"), ("--traces", "off")])
def test_a_sam2_run_writes_stage_cells_and_traces_unless_switched_off(synthetic_split, tmp_path, flags):
    require("sam2.build_sam")
    out = tmp_path / "o.csv"
    split = synthetic_split(videos=1, frames=9)
    done = cli("--split_dir", split, "--models", "sam2.1_tiny_mask", "--weights", "random", "--imgsz", "64", "--output", out, *flags)
    assert done.returncode == 0, done.stderr
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    traces = tmp_path / "o.csv.traces.csv"
    assert traces.exists() == (flags != ("--traces", "off"))
    stages = ("image_encoder", "memory_attention", "mask_decoder", "memory_encoder", "rest")
    for row in rows:
        cells = [row[f"stage_{stage}_ms_mean"] for stage in stages]
        if "--stages" in flags:
            assert cells == [""] * 5
            continue
        assert all(float(row[f"stage_{stage}_ms_p50"]) > 0 for stage in stages[:4]), row  # each stage ran on most frames
        # The model's four stages are most of a frame (the rest is bookkeeping), and with the rest they are all of it.
        assert 0 < float(row["stage_rest_ms_mean"]) < 0.5 * float(row["latency_ms_mean"])
        assert sum(map(float, cells)) == pytest.approx(float(row["latency_ms_mean"]), rel=0.01)


def test_the_stage_cost_script_prints_its_ratio_and_the_split():
    """scripts/stages_cost.py (docs/methodology.md: Stage times), small and once, so that it cannot rot."""
    require("sam2.build_sam")
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "stages_cost.py"), "--imgsz", "64", "--frames", "5", "--rounds", "1"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[-2].startswith("--stages on against off: 2 frames, median of the frame time without over with: ratio ")
    assert float(lines[-2].rsplit(" ", 1)[1]) > 0
    assert lines[-1].startswith("stages' medians per frame: image_encoder ")
