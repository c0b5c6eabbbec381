"""--objects together: one job per (video, model) tracks the objects prompted on the video's first
prompt frame, as tools/vos_inference.py does; an object that starts later keeps a job of its own
(that script's separate mode). Each object keeps its row; the rows of a shared job carry its
timing, memory and power cells, say how the object was tracked and how many objects the job
tracked, and are written, failed, resumed and retried together."""

import csv
from pathlib import Path

import pytest
from checkpoints import write_checkpoint
from conftest import cli, cli_with_fakes, require, rows_of

from sav_benchmark.configuration import CONFIG_VERSION
from sav_benchmark.masks import read_ids, read_mask

# the cells that describe a job rather than an object
SHARED = ("build_s", "init_s", "prompt_ms", "propagate_s", "n_propagated", "latency_ms_p50", "fps", "wall_s", "setup_s", "peak_rss_mb")
CRASHED_TWICE = "the run died twice during this job, so it was not run again (with --isolation process a crash costs only its row)"


def tracking(rows):
    return [(r["video_id"], r["object_id"], r["model"], r["tracking"], r["objects_in_job"], r["prompt_frame"]) for r in rows]


@pytest.fixture
def split(synthetic_split):
    """Three videos of 13 frames: the first has four objects, the last entering late (prompted on
    frame 12); the others three, all from frame 0."""
    return synthetic_split(videos=3, frames=13, objects=3)


def test_objects_on_the_first_frame_share_a_job_and_a_later_object_has_its_own(split, tmp_path):
    out = tmp_path / "o.csv"
    result = cli("--split_dir", split, "--models", "static_mask", "--objects", "together", "--output", out, "--limit_videos", "2")
    assert result.returncode == 0, result.stderr
    rows = rows_of(out)
    assert tracking(rows) == [
        *[("synth_000", f"00{k}", "static_mask", "together", "3", "0") for k in range(3)],
        ("synth_000", "003", "static_mask", "separate", "1", "12"),
        *[("synth_001", f"00{k}", "static_mask", "together", "3", "0") for k in range(3)],
    ]
    for video in ("synth_000", "synth_001"):
        shared = [r for r in rows if r["video_id"] == video and r["tracking"] == "together"]
        assert all(shared[0][c] != "" for c in SHARED if c != "setup_s")
        assert all(r[c] == shared[0][c] for r in shared for c in SHARED), "a shared job's rows describe one job"
        assert len({r["J"] for r in shared}) > 1, "each object is scored on its own masks"
    separate = tmp_path / "s.csv"
    assert cli("--split_dir", split, "--models", "static_mask", "--output", separate, "--limit_videos", "2").returncode == 0
    by_key = {(r["video_id"], r["object_id"]): (r["J"], r["F"], r["status"]) for r in rows_of(separate)}
    assert {(r["video_id"], r["object_id"]): (r["J"], r["F"], r["status"]) for r in rows} == by_key
    assert {(r["tracking"], r["objects_in_job"]) for r in rows_of(separate)} == {("separate", "1")}


def test_a_failed_shared_job_fails_each_of_its_objects_and_counts_as_one_failure(split, tmp_path):
    """Two failures in a row stop the run; the shared job's three failed rows are one failure, so the run goes on."""
    out = tmp_path / "o.csv"
    result = cli_with_fakes(
        "--split_dir", split, "--models", "fake_fail", "--objects", "together", "--max_consecutive_failures", "2", "--output", out,
        FAKE_FAIL_VIDEOS="synth_000",
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    rows = rows_of(out)
    failed = [(r["object_id"], r["status"], r["error"], r["tracking"]) for r in rows if r["status"] not in ("ok", "no_score")]
    assert failed == [(f"00{k}", "error", "ValueError: fake failure on video synth_000", "together") for k in range(3)]
    assert len(rows) == 4 + 3 + 3  # the late object (one frame: it never reaches the failing third) and the other videos ran


def test_a_worker_that_dies_in_a_shared_job_costs_a_crash_row_per_object(split, tmp_path):
    out = tmp_path / "o.csv"
    result = cli_with_fakes(
        "--split_dir", split, "--models", "fake_crash", "--objects", "together", "--isolation", "process", "--limit_videos", "2",
        "--output", out, FAKE_FAIL_VIDEOS="synth_001",
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    crashed = [r for r in rows_of(out) if r["status"] == "crash"]
    assert [r["object_id"] for r in crashed] == ["000", "001", "002"]
    assert {r["video_id"] for r in crashed} == {"synth_001"} and len({r["error"] for r in crashed}) == 1
    assert "worker died (killed by SIGSEGV" in crashed[0]["error"]


def test_a_shared_job_that_kills_an_unisolated_run_twice_gets_a_crash_row_per_object(split, tmp_path):
    out = tmp_path / "o.csv"
    args = ["--split_dir", split, "--models", "fake_crash", "--objects", "together", "--isolation", "none", "--output", out]
    assert cli_with_fakes(*args, FAKE_FAIL_VIDEOS="synth_001").returncode == -11
    assert cli_with_fakes(*args, "--resume", FAKE_FAIL_VIDEOS="synth_001").returncode == -11
    third = cli_with_fakes(*args, "--resume", FAKE_FAIL_VIDEOS="synth_001")
    assert third.returncode == 1, third.stderr
    rows = rows_of(out)
    crashed = [
        (r["video_id"], r["object_id"], r["status"], r["error"], r["tracking"], r["objects_in_job"])
        for r in rows
        if r["status"] not in ("ok", "no_score")
    ]
    assert crashed == [("synth_001", f"00{k}", "crash", CRASHED_TWICE, "together", "3") for k in range(3)]
    assert len(rows) == 4 + 3 + 3 and not Path(f"{out}.current").exists()


def test_a_resume_runs_a_shared_job_again_whole_when_some_of_its_rows_are_missing(split, tmp_path):
    out = tmp_path / "o.csv"
    args = ("--split_dir", split, "--models", "static_mask", "--objects", "together", "--output", out)
    assert cli(*args).returncode == 0
    lines = out.read_text().splitlines(keepends=True)
    kept = [line for line in lines if ",synth_001,001," not in line]  # one row of the second video's shared job is lost
    assert len(kept) == len(lines) - 1
    out.write_text("".join(kept))
    resumed = cli(*args, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    rows = rows_of(out)
    keys = [(r["video_id"], r["object_id"]) for r in rows]
    assert sorted(keys) == sorted(set(keys)) and len(keys) == 4 + 3 + 3
    assert keys[-3:] == [("synth_001", "000"), ("synth_001", "001"), ("synth_001", "002")], "the group ran again, whole, at the end"


def test_retry_failed_runs_the_failed_shared_job_again(split, tmp_path):
    out = tmp_path / "o.csv"
    args = ("--split_dir", split, "--models", "fake_fail", "--objects", "together", "--output", out)
    assert cli_with_fakes(*args, FAKE_FAIL_VIDEOS="synth_002").returncode == 1
    retried = cli_with_fakes(*args, "--resume", "--retry_failed")
    assert retried.returncode == 0, retried.stderr
    rows = rows_of(out)
    assert len(rows) == 10 and {r["status"] for r in rows} <= {"ok", "no_score"}
    assert [(r["video_id"], r["tracking"]) for r in rows[-3:]] == [("synth_002", "together")] * 3


def masks_in_both_modes(split, checkpoint, models, tmp_path, read):
    """mode -> {saved mask file: read(file)} of a CPU float32 run at 128 px with --objects mode
    (rows in tmp_path/<mode>.csv, masks in tmp_path/<mode>)."""
    common = ["--split_dir", split, "--models", models, "--checkpoint_dir", checkpoint.parent]
    common += ["--imgsz", "128", "--device", "cpu", "--autocast_dtype", "float32"]
    saved = {}
    for mode in ("separate", "together"):
        result = cli(*common, "--objects", mode, "--output", tmp_path / f"{mode}.csv", "--save_masks", tmp_path / mode)
        assert result.returncode == 0, result.stderr
        saved[mode] = {p.relative_to(tmp_path / mode): read(p) for p in (tmp_path / mode).rglob("*.png")}
    return saved


@pytest.mark.slow
def test_sam2_tracks_objects_together_with_the_masks_it_gives_them_separately(synthetic_split, tmp_path):
    """sam2 >= 1.1 keeps each object's memory apart in a shared state: the masks are the same bit
    for bit, for mask and click prompts, the late object's too; only the cost differs. compare warns."""
    require("sam2.build_sam")
    split = synthetic_split(videos=1, frames=17, width=160, height=120, objects=2)  # objects 000, 001 from frame 0; 002 late
    checkpoint = write_checkpoint(tmp_path / "ckpt" / "sam2.1_hiera_tiny.pt", imgsz=128)
    saved = masks_in_both_modes(split, checkpoint, "sam2.1_tiny_mask,sam2.1_tiny_points", tmp_path, lambda p: p.read_bytes())
    assert len(saved["together"]) == 2 * 3 * 5 and saved["together"] == saved["separate"]
    foreground = sum(read_mask(tmp_path / "together" / name).any() for name in saved["together"])
    # every mask but the late object's before it enters (3 frames a model) should hold an object
    assert foreground >= 2 * (3 * 5 - 3) * 0.9, "mostly empty masks would agree whatever the pipelines did"
    together = rows_of(tmp_path / "together.csv")
    assert [(r["object_id"], r["model"], r["tracking"], r["objects_in_job"]) for r in together] == [
        ("000", "sam2.1_tiny_mask", "together", "2"),
        ("001", "sam2.1_tiny_mask", "together", "2"),
        ("000", "sam2.1_tiny_points", "together", "2"),
        ("001", "sam2.1_tiny_points", "together", "2"),
        ("002", "sam2.1_tiny_mask", "separate", "1"),
        ("002", "sam2.1_tiny_points", "separate", "1"),
    ]
    separate = {(r["object_id"], r["model"]): (r["J"], r["F"]) for r in rows_of(tmp_path / "separate.csv")}
    assert {(r["object_id"], r["model"]): (r["J"], r["F"]) for r in together} == separate
    compared = cli("compare", tmp_path / "separate.csv", tmp_path / "together.csv")
    assert "warning: objects differs: separate in the reference, together here" in compared.stdout + compared.stderr


@pytest.mark.slow
def test_davis_label_maps_are_the_same_when_objects_are_tracked_together(synthetic_split, tmp_path):
    """Together, the predictor resolves overlaps by score itself (++model.non_overlap_masks=true, as
    tools/vos_inference.py builds it for label maps); separately, the per-object scores are merged
    by the same rule: the label maps are the same."""
    require("sam2.build_sam")
    split = synthetic_split(videos=1, frames=12, width=160, height=120, objects=3, layout="davis")  # four objects, all from frame 0
    checkpoint = write_checkpoint(tmp_path / "ckpt" / "sam2.1_hiera_tiny.pt", imgsz=128)
    saved = masks_in_both_modes(split, checkpoint, "sam2.1_tiny_mask", tmp_path, read_ids)
    assert len(saved["together"]) == 12 and saved["together"].keys() == saved["separate"].keys()
    differing = [name for name in saved["together"] if not (saved["together"][name] == saved["separate"][name]).all()]
    assert differing == []
    assert sum(len(set(ids.flat) - {0}) >= 2 for ids in saved["together"].values()) >= 10, "the objects must meet in the label maps"
    rows = rows_of(tmp_path / "together.csv")
    assert {(r["tracking"], r["objects_in_job"]) for r in rows} == {("together", "4")}
    separate = {r["object_id"]: (r["J"], r["F"]) for r in rows_of(tmp_path / "separate.csv")}
    assert {r["object_id"]: (r["J"], r["F"]) for r in rows} == separate


def test_the_objects_flag_is_stored_in_the_manifest(split, tmp_path):
    import json

    out = tmp_path / "o.csv"
    assert cli("--split_dir", split, "--models", "static_mask", "--objects", "together", "--output", out).returncode == 0
    manifest = json.loads(Path(f"{out}.json").read_text())
    assert (manifest["config"]["objects"], manifest["config_version"]) == ("together", CONFIG_VERSION)
    with open(out, newline="") as f:
        assert "tracking" in next(csv.reader(f))


def test_shards_of_a_run_of_objects_together_merge_and_compare_warns_against_separate(split, tmp_path):
    """Rows say how each object was tracked (a late object separate); the run's mode is its
    manifest's, so shards of one run merge, and a run of the other mode is compared with a warning."""
    common = ("--split_dir", split, "--models", "static_mask", "--objects", "together")
    for part in ("1/2", "2/2"):
        assert cli(*common, "--shard", part, "--output", tmp_path / f"{part[0]}.csv").returncode == 0
    assert {r["tracking"] for r in rows_of(tmp_path / "1.csv")} != {r["tracking"] for r in rows_of(tmp_path / "2.csv")}
    merged = cli("compare", tmp_path / "1.csv", tmp_path / "2.csv", "--merge", tmp_path / "all.csv")
    assert merged.returncode == 0, merged.stderr
    assert len(rows_of(tmp_path / "all.csv")) == 10
    assert cli("--split_dir", split, "--models", "static_mask", "--output", tmp_path / "separate.csv").returncode == 0
    compared = cli("compare", tmp_path / "separate.csv", tmp_path / "all.csv")
    assert "warning: objects differs: separate in the reference, together here" in compared.stdout + compared.stderr


def test_a_model_that_tracks_one_object_at_a_time_warms_up_on_one(tmp_path):
    """EdgeTAM fails on a state of several objects: warmed up on the shared job's objects it would
    fail its warm-up, and its first timed job would run cold."""
    import numpy as np

    from sav_benchmark.executors import job_timeout, warmup_of
    from sav_benchmark.runners import MODELS
    from sav_benchmark.runners.base import Job, Prompt

    prompts = [Prompt(0, [[1, 1]], [0, 0, 2, 2], np.ones((4, 4), bool)) for _ in range(3)]
    warmup = Job(tmp_path, 20, prompts, max_frames=8)
    assert len(warmup_of(MODELS["edgetam_mask"], warmup).prompts) == 1
    assert warmup_of(MODELS["sam2.1_tiny_mask"], warmup) is warmup
    assert warmup_of(MODELS["edgetam_mask"], None) is None
    assert job_timeout(Job(tmp_path, 20, prompts), 0) == 600 + 10 * 20 * 3  # each object's frames
