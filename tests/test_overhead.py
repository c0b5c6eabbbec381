"""Scoring, saving and row writing overlap the next job: a job's wall_s stops when the driver
moves on, the last job's when its row is written, and the rows' wall times add up to the run."""

import subprocess
import sys
import threading
import time

import pytest
from conftest import ROOT, require

from sav_benchmark.results import ResultWriter
from sav_benchmark.run import Benchmark, RunOptions
from sav_benchmark.runners import resolve_models
from sav_benchmark.runners.base import RunSettings
from sav_benchmark.scoring import JobScoring
from sav_benchmark.split import prepare_split
from sav_benchmark.split.synthetic import make_split

SLOW_SCORING_S = 0.3


def test_scoring_overlaps_the_next_job_and_wall_times_add_up(tmp_path):
    make_split(tmp_path / "split", videos=2, frames=9, width=64, height=48, objects=2)
    split = prepare_split(tmp_path / "split")
    options = RunOptions(RunSettings("cpu", "float32", None, "random", tmp_path), run_id="t")
    writer = ResultWriter(tmp_path / "o.csv")
    finishing_threads = set()

    class SlowScoring(JobScoring):
        def score_and_save(self, *args, **kwargs):
            finishing_threads.add(threading.current_thread().name)
            time.sleep(SLOW_SCORING_S)
            return super().score_and_save(*args, **kwargs)

    benchmark = Benchmark(split, resolve_models("static_mask"), options, writer, scoring=SlowScoring(split))
    start = time.perf_counter()
    rows = benchmark.run().rows
    elapsed = time.perf_counter() - start
    writer.close()
    scored = [r for r in rows if r["status"] == "ok"]
    assert len(scored) >= 4 and all(r["status"] == "ok" for r in rows)
    assert rows[0]["wall_s"] < SLOW_SCORING_S / 2, "the first job's scoring was counted in its wall time"
    assert rows[-1]["wall_s"] >= SLOW_SCORING_S, "the last job is finished before the run ends, inside its wall time"
    assert sum(r["wall_s"] for r in rows) <= elapsed
    assert sum(r["wall_s"] for r in rows) > elapsed - SLOW_SCORING_S / 2, "time waiting for the finisher went missing"
    assert finishing_threads == {"finisher", "MainThread"}
    for r in rows:
        assert r["overhead_s"] == pytest.approx(
            r["wall_s"] - r["build_s"] - r["init_s"] - r["prompt_ms"] / 1000 - r["propagate_s"], abs=1e-12
        )


def test_a_failure_found_while_the_next_job_ran_still_ends_the_run_at_its_row(tmp_path):
    """Saving masks fails (the folder is a file) on the finisher's thread: with
    --max_consecutive_failures 2 the run's last row is the second failure, as when rows were
    finished in line; the job that ran meanwhile gets no row (a resume runs it)."""
    make_split(tmp_path / "split", videos=2, frames=9, width=64, height=48, objects=2)
    split = prepare_split(tmp_path / "split")
    (tmp_path / "not_a_folder").write_text("")
    options = RunOptions(
        RunSettings("cpu", "float32", None, "random", tmp_path),
        run_id="t",
        save_masks=tmp_path / "not_a_folder",
        max_consecutive_failures=2,
    )
    writer = ResultWriter(tmp_path / "o.csv")
    report = Benchmark(split, resolve_models("static_mask"), options, writer).run()
    writer.close()
    assert [r["status"] for r in report.rows] == ["error", "error"]
    assert report.rows[-1]["error"].startswith("saving masks failed: ")
    assert report.stopped == "max_consecutive_failures" and report.stopped_at is report.rows[-1]


def test_the_bare_loop_script_prints_a_ratio_for_each_mode():
    """scripts/bare_loop.py (docs/methodology.md: The harness against a bare loop), small and once, so that it cannot rot."""
    require("sam2.build_sam")
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bare_loop.py"), "--repeats", "1", "--lockstep", "1", "--frames", "5", "--imgsz", "64"]
        + ["--width", "64", "--height", "48"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    measured = [
        f"{what}--{mode}" for what in ("", "frame by frame, ", "init_state, prompt and frames in all, ") for mode in ("stream", "no-stream")
    ]
    assert [line.split(":")[0] for line in lines[-7:]] == [*measured, "decoding a frame"]
    assert all(float(line.rsplit("ratio ", 1)[1]) > 0 for line in lines[-7:-1])
    assert lines[-5].startswith("frame by frame, --stream: 2 frames")  # 5 frames, the first 3 left out (warm-up)
