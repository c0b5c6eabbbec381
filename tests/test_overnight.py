"""Overnight runs that survive: kill -9 and resume, signals, failures, retries, through the real CLI."""

import csv
import json
import os
import random
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import (
    COMMAND,
    ROOT,
    cli_with_fakes,
    environment,
    keys_of,
    require,
    start,
    wait_for_rows,
)

from sav_benchmark.split.synthetic import make_split


@pytest.fixture(scope="module")
def split(synthetic_split):
    return synthetic_split(videos=3, frames=13)  # 3 + 2 + 2 objects


@pytest.fixture(scope="module")
def reference_keys(split, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "ref.csv"
    result = cli_with_fakes("--split_dir", str(split), "--models", "static_mask,fake_slow", "--output", str(out))
    assert result.returncode == 0, result.stderr
    assert len(keys_of(out)) == 14
    return keys_of(out)


@pytest.mark.parametrize("isolation", ["none", "process"])
def test_kill_9_at_random_points_then_resume_gives_every_job_once(split, reference_keys, tmp_path, isolation):
    rng = random.Random(7)
    for attempt in range(3):
        out = tmp_path / f"o{attempt}.csv"
        args = ["--split_dir", str(split), "--models", "static_mask,fake_slow", "--isolation", isolation, "--output", str(out)]
        process = start(*args, FAKE_FRAME_DELAY_S="0.01")
        wait_for_rows(out, rng.randrange(0, 13), process)  # some rows are written, the run is not over
        time.sleep(rng.uniform(0, 0.1))  # and the kill may fall in the middle of a job
        process.kill()
        process.wait()
        result = cli_with_fakes(*args, "--resume")
        assert result.returncode == 0, result.stderr
        assert sorted(keys_of(out)) == sorted(reference_keys), f"attempt {attempt}"
        assert len(set(keys_of(out))) == len(keys_of(out))
        assert_traces_match_rows(out)


def test_a_partial_last_line_is_dropped_with_a_warning(split, reference_keys, tmp_path):
    out = tmp_path / "o.csv"
    args = ["--split_dir", str(split), "--models", "static_mask,fake_slow", "--output", str(out), "--limit_videos", "1"]
    assert cli_with_fakes(*args).returncode == 0
    text = out.read_text()
    out.write_text(text[: -len(text.splitlines()[-1]) // 2 - 1])  # as if killed in the middle of a row
    traces = Path(f"{out}.traces.csv")
    with open(traces, "a") as f:  # ... after its records were written, and during the next job's
        f.write("synth_002,000,static_mask,0,1.5,,,,")
    result = cli_with_fakes(*args[:-2], "--resume")
    assert result.returncode == 0, result.stderr
    assert f"warning: dropped a partial last line of {out}" in result.stderr
    assert sorted(keys_of(out)) == sorted(reference_keys)
    assert_traces_match_rows(out)  # the job whose row was cut ran again: its records are there once


@pytest.mark.parametrize(
    "signum,code,name", [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGINT, 130, "SIGINT"), (signal.SIGHUP, 129, "SIGHUP")]
)
def test_signal_ends_between_rows_and_prints_the_resume_command(split, reference_keys, tmp_path, signum, code, name):
    out = tmp_path / "o.csv"
    process = start("--split_dir", str(split), "--models", "static_mask,fake_slow", "--output", str(out), FAKE_FRAME_DELAY_S="0.03")
    wait_for_rows(out, 3, process)
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == code, stderr
    # the command as it was invoked: this interpreter and the script's path as given
    command = shlex.join([*COMMAND, "--split_dir", str(split), "--models", "static_mask,fake_slow", "--output", str(out), "--resume"])
    assert stderr.endswith(f"interrupted by {name}; the current job was cleaned up and left no row. Resume with:\n  {command}\n")
    rows = list(csv.DictReader(out.open()))
    assert 3 <= len(rows) < 14 and {r["status"] for r in rows} <= {"ok", "no_score"}
    result = subprocess.run(shlex.split(command), capture_output=True, text=True, env=environment(True), cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr
    assert sorted(keys_of(out)) == sorted(reference_keys)


def test_failures_are_rows_and_the_run_goes_on(split, tmp_path):
    out = tmp_path / "o.csv"
    result = cli_with_fakes("--split_dir", str(split), "--models", "fake_oom,fake_fail", "--output", str(out), FAKE_FAIL_VIDEOS="synth_001")
    assert result.returncode == 1
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 14
    failed = {(r["object_id"], r["model"]): (r["status"], r["error"]) for r in rows if r["video_id"] == "synth_001"}
    assert failed == {
        (o, "fake_oom"): ("oom", "RuntimeError: CUDA out of memory. Tried to allocate 20.00 GiB (a test stand-in)") for o in ("000", "001")
    } | {(o, "fake_fail"): ("error", "ValueError: fake failure on video synth_001") for o in ("000", "001")}
    # the late object of synth_000 enters after both evaluated frames: no score, but no failure either
    assert {r["status"] for r in rows if r["video_id"] != "synth_001"} == {"ok", "no_score"}
    assert "Traceback" not in result.stderr
    assert open(f"{out}.log").read().count("ValueError: fake failure on video synth_001") >= 2


def test_fail_fast_stops_at_the_first_failure(split, tmp_path):
    out = tmp_path / "o.csv"
    result = cli_with_fakes(
        "--split_dir", str(split), "--models", "static_mask,fake_fail", "--output", str(out), "--fail_fast", FAKE_FAIL_VIDEOS="synth_001"
    )
    assert result.returncode == 1
    assert keys_of(out)[-1] == ("synth_001", "000", "fake_fail") and len(keys_of(out)) == 8
    assert (
        "stopped at the first failed job (--fail_fast); the last, synth_001/000 fake_fail, said: ValueError: fake failure on video "
        "synth_001" in result.stderr
    )
    assert result.stderr.rstrip().endswith(f"--output {out} --fail_fast --resume --retry_failed")


def test_max_consecutive_failures_ends_the_run_with_exit_3(split, tmp_path):
    out = tmp_path / "o.csv"
    result = cli_with_fakes(
        "--split_dir",
        str(split),
        "--models",
        "fake_fail",
        "--output",
        str(out),
        "--max_consecutive_failures",
        "2",
        FAKE_FAIL_VIDEOS="synth_000,synth_001,synth_002",
    )
    assert result.returncode == 3
    assert len(keys_of(out)) == 2
    assert "stopped after 2 failed jobs in a row (--max_consecutive_failures)" in result.stderr


def test_retry_failed_reruns_only_failed_jobs_and_keeps_one_row_each(split, reference_keys, tmp_path):
    out = tmp_path / "o.csv"
    args = ["--split_dir", str(split), "--models", "static_mask,fake_slow", "--output", str(out)]
    assert cli_with_fakes(*args[:3], "static_mask,fake_fail", *args[4:], FAKE_FAIL_VIDEOS="synth_002").returncode == 1
    # the failed jobs were fake_fail's; a resume without --retry_failed leaves them as they are
    assert cli_with_fakes(*args[:3], "static_mask,fake_fail", *args[4:], "--resume").returncode == 1
    result = cli_with_fakes(*args[:3], "static_mask,fake_fail", *args[4:], "--resume", "--retry_failed")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 14 and {r["status"] for r in rows} == {"ok", "no_score"}
    assert len({(r["video_id"], r["object_id"], r["model"]) for r in rows}) == 14


def test_resume_refuses_other_settings_unless_forced(split, tmp_path):
    out = tmp_path / "o.csv"
    assert cli_with_fakes("--split_dir", str(split), "--models", "static_mask", "--output", str(out), "--limit_videos", "1").returncode == 0
    result = cli_with_fakes("--split_dir", str(split), "--models", "static_mask", "--output", str(out), "--resume", "--num_points", "3")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        "jetson_benchmark.py: error: --resume: settings differ from the earlier run's (num_points 1 -> 3); its rows would "
        "not be comparable. Use the same settings, a new --output, or --force\n"
    )
    forced = cli_with_fakes(
        "--split_dir", str(split), "--models", "static_mask,fake_slow", "--output", str(out), "--resume", "--num_points", "3", "--force"
    )
    assert forced.returncode == 0, forced.stderr
    assert len(keys_of(out)) == 14  # a different model list is fine


def test_real_sam2_run_killed_and_resumed(tmp_path):
    require("sam2.build_sam")
    make_split(tmp_path / "s", videos=2, frames=9, width=64, height=48, objects=1)
    out = tmp_path / "o.csv"
    args = [
        "--split_dir",
        str(tmp_path / "s"),
        "--models",
        "sam2.1_tiny_points,static_mask",
        "--weights",
        "random",
        "--imgsz",
        "64",
        "--device",
        "cpu",
        "--output",
        str(out),
    ]
    process = start(*args)
    wait_for_rows(out, 1, process, timeout=300)
    process.kill()
    process.wait()
    result = cli_with_fakes(*args, "--resume")
    assert result.returncode == 0, result.stderr
    expected = [
        (v, o, m)
        for v, objs in (("synth_000", ("000", "001")), ("synth_001", ("000",)))
        for o in objs
        for m in ("sam2.1_tiny_points", "static_mask")
    ]
    assert sorted(keys_of(out)) == sorted(expected)
    assert_traces_match_rows(out, stages=True)


def assert_traces_match_rows(out: Path, stages: bool = False) -> None:
    """Every row's frames have one record each in the traces, and nothing else does (a killed
    run's records of the job it did not finish were dropped by the resume); where the stages were
    timed, a sam2 row's records split each frame's latency into them."""
    with open(out, newline="") as f:
        rows = {(r["video_id"], r["object_id"], r["model"]): r for r in csv.DictReader(f)}
    with open(f"{out}.traces.csv", newline="") as f:
        records = list(csv.DictReader(f))
    frames = [(r["video_id"], r["object_id"], r["model"], int(r["frame"])) for r in records]
    assert len(set(frames)) == len(frames), "a frame has two records"
    for key, row in rows.items():
        mine = [r for r in records if (r["video_id"], r["object_id"], r["model"]) == key]
        assert len(mine) == int(row["n_propagated"] or 0), key
        if stages and key[2].startswith("sam2") and mine:
            for record in mine[1:]:  # after the prompt frame, every frame runs the image encoder and most of its time is the stages'
                parts = [float(record[f"{stage}_ms"]) for stage in ("image_encoder", "memory_attention", "mask_decoder", "memory_encoder")]
                assert parts[0] > 0 and 0.5 * float(record["latency_ms"]) < sum(parts) <= float(record["latency_ms"])
                assert sum(parts) + float(record["rest_ms"]) == pytest.approx(float(record["latency_ms"]), rel=1e-9)
    assert {key[:3] for key in frames} <= set(rows), "records of a row that is not in the CSV"


@pytest.mark.parametrize("isolation", ["none", "process"])
def test_oom_retry_at_a_lower_imgsz_is_recorded_in_the_row(split, tmp_path, isolation):
    out = tmp_path / "o.csv"
    result = cli_with_fakes(
        "--split_dir",
        str(split),
        "--models",
        "fake_oom",
        "--limit_videos",
        "1",
        "--output",
        str(out),
        "--isolation",
        isolation,
        "--oom_retry_imgsz",
        "256",
        FAKE_OOM_ABOVE_IMGSZ="512",
    )
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(out.open()))
    # objects 000 and 001 ran out of memory at 1024 and were retried; the late 002 propagates one frame only
    assert [(r["status"], r["imgsz"], r["oom_retry_from_imgsz"]) for r in rows] == [
        ("ok", "256", "1024"),
        ("ok", "256", "1024"),
        ("no_score", "", ""),
    ]
    still = cli_with_fakes(
        "--split_dir",
        str(split),
        "--models",
        "fake_oom",
        "--limit_videos",
        "1",
        "--output",
        str(tmp_path / "again.csv"),
        "--oom_retry_imgsz",
        "256",
        FAKE_OOM_ABOVE_IMGSZ="128",
    )
    assert still.returncode == 1
    row = next(csv.DictReader((tmp_path / "again.csv").open()))
    assert (row["status"], row["imgsz"], row["error"]) == ("oom", "256", "RuntimeError: CUDA out of memory at imgsz 256 (a test stand-in)")


def run_on_a_terminal(*args, **extra):
    """Run with stderr on a pseudo-terminal, as a user at a console sees it; returns what it drew."""
    import fcntl
    import pty
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))  # a terminal has a size
    process = subprocess.Popen([*COMMAND, *args], stdout=subprocess.DEVNULL, stderr=follower, env=environment(True, **extra), cwd=ROOT)
    os.close(follower)
    drawn = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closes when the process ends
            break
        if not chunk:
            break
        drawn += chunk
    process.wait(timeout=60)
    os.close(leader)
    return process.returncode, drawn.decode(errors="replace")


@pytest.mark.parametrize("isolation", ["none", "process"])
def test_progress_bars_show_jobs_and_frames_on_a_terminal(split, tmp_path, isolation):
    code, drawn = run_on_a_terminal(
        "--split_dir",
        str(split),
        "--models",
        "fake_slow",
        "--isolation",
        isolation,
        "--output",
        str(tmp_path / "o.csv"),
        FAKE_FRAME_DELAY_S="0.06",
    )
    assert code == 0
    assert "7/7 [" in drawn and "job" in drawn  # the run's bar, to the end
    assert "frame" in drawn and "/13 [" in drawn  # the current job's frames
    code, drawn = run_on_a_terminal(
        "--split_dir",
        str(split),
        "--models",
        "fake_slow",
        "--isolation",
        isolation,
        "--quiet",
        "--output",
        str(tmp_path / "q.csv"),
        FAKE_FRAME_DELAY_S="0.06",
    )
    assert code == 0 and "job" not in drawn and "frame" not in drawn


def test_a_bad_video_is_not_a_systematic_failure(split, tmp_path):
    bad = tmp_path / "s"
    shutil.copytree(split, bad)
    frame = bad / "JPEGImages_24fps/synth_000/00005.jpg"
    frame.write_bytes(frame.read_bytes()[:100])
    out = tmp_path / "o.csv"
    result = cli_with_fakes(
        "--split_dir", str(bad), "--models", "static_mask,fake_slow,fake_oom", "--output", str(out), "--max_consecutive_failures", "3"
    )
    assert result.returncode == 1, result.stderr  # not 3: the 9 failed rows of synth_000 are the input's fault
    assert len(keys_of(out)) == 21


def test_two_runs_cannot_write_one_csv(split, reference_keys, tmp_path):
    out = tmp_path / "o.csv"
    args = ["--split_dir", str(split), "--models", "static_mask,fake_slow", "--output", str(out)]
    first = start(*args, FAKE_FRAME_DELAY_S="0.03")
    wait_for_rows(out, 1, first)
    second = cli_with_fakes(*args, "--resume")
    assert (second.returncode, second.stderr) == (
        2,
        f"jetson_benchmark.py: error: --output {out}: another run is writing it (it holds {out}.lock); wait for it to end, or choose "
        "another --output\n",
    )
    assert first.wait(timeout=120) == 0
    assert sorted(keys_of(out)) == sorted(reference_keys)


def test_resume_needs_output_and_refuses_damaged_csvs(split, tmp_path):
    result = cli_with_fakes("--split_dir", str(split), "--models", "static_mask", "--resume")
    assert (result.returncode, result.stderr) == (
        2,
        "jetson_benchmark.py: error: --resume needs --output: the CSV of the run to continue\n",
    )
    out = tmp_path / "o.csv"
    args = ["--split_dir", str(split), "--models", "static_mask", "--output", str(out)]
    assert cli_with_fakes(*args, "--limit_videos", "1").returncode == 0
    with open(out, "a") as f:
        f.write("abc\n")
    result = cli_with_fakes(*args, "--resume")
    assert (result.returncode, result.stderr) == (
        2,
        f"jetson_benchmark.py: error: --resume: line 5 of {out} is not a row of this benchmark (it has 1 cells, not 74); delete or mend "
        "that line, then resume\n",
    )
    out.write_bytes(out.read_bytes().replace(b"abc\n", b"\xff\xfe\n"))
    result = cli_with_fakes(*args, "--resume")
    assert (result.returncode, result.stderr) == (
        2,
        f"jetson_benchmark.py: error: --resume: {out} is not a result CSV of this benchmark (it is not UTF-8 text); give the CSV of the "
        "run to continue\n",
    )


def test_retry_failed_changes_nothing_when_the_run_is_refused(split, tmp_path):
    out = tmp_path / "o.csv"
    args = ["--split_dir", str(split), "--models", "fake_fail", "--output", str(out)]
    assert cli_with_fakes(*args, FAKE_FAIL_VIDEOS="synth_001").returncode == 1
    before = out.read_bytes()
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = cli_with_fakes(*args, "--resume", "--retry_failed", "--save_masks", str(blocker / "m"))
    assert result.returncode == 2
    assert out.read_bytes() == before  # the failed rows are still there


def test_a_hung_job_times_out_and_the_run_goes_on(split, tmp_path):
    out = tmp_path / "o.csv"
    result = cli_with_fakes(
        "--split_dir",
        str(split),
        "--models",
        "fake_slow",
        "--isolation",
        "process",
        "--job_timeout_s",
        "1",
        "--limit_videos",
        "1",
        "--output",
        str(out),
        FAKE_FRAME_DELAY_S="0.3",
    )
    assert result.returncode == 1
    rows = list(csv.DictReader(out.open()))
    assert [r["status"] for r in rows] == ["timeout", "timeout", "no_score"]  # the late object propagates one frame only
    assert rows[0]["error"] == "no answer after 1 s: the worker was killed; it printed nothing"


def test_every_new_worker_is_warmed_up_before_it_is_timed(split, tmp_path):
    out = tmp_path / "o.csv"
    result = cli_with_fakes(
        "--split_dir",
        str(split),
        "--models",
        "fake_fail",
        "--isolation",
        "process",
        "--warmup_frames",
        "2",
        "--output",
        str(out),
        FAKE_FAIL_VIDEOS="synth_001",
    )
    assert result.returncode == 1
    manifest = json.loads(open(f"{out}.json").read())
    # synth_001's two objects fail: two replacements, so three starts, each warmed up
    assert len(manifest["worker_startup_s"]["fake_fail"]) == len(manifest["warmup_s"]["fake_fail"]) == 3
    assert all(isinstance(t, float) for t in manifest["warmup_s"]["fake_fail"])


def test_warm_up_with_an_unreadable_prompt_is_reported_not_raised(split, tmp_path):
    work = tmp_path / "s"
    shutil.copytree(split, work)
    prepared = tmp_path / "p.json"
    assert cli_with_fakes("prepare", "--split_dir", str(work), "--output", str(prepared)).returncode == 0
    (work / "Annotations_6fps/synth_000/000/00000.png").unlink()
    out = tmp_path / "o.csv"
    result = cli_with_fakes("--prepared", str(prepared), "--models", "fake_slow", "--warmup_frames", "2", "--output", str(out))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    first = next(csv.DictReader(out.open()))
    assert (first["status"], first["error"]) == (
        "error",
        f"reading the prompt failed: ValueError: cannot read {work / 'Annotations_6fps/synth_000/000/00000.png'} (No such file or "
        "directory)",
    )
    assert json.loads(open(f"{out}.json").read())["warmup_s"].startswith("no warm-up: ValueError: cannot read")


def test_a_job_that_kills_an_unisolated_run_twice_is_not_run_a_third_time(split, tmp_path):
    out = tmp_path / "o.csv"
    args = [
        "--split_dir",
        str(split),
        "--models",
        "static_mask,fake_crash",
        "--isolation",
        "none",
        "--limit_objects",
        "1",
        "--output",
        str(out),
    ]
    first = cli_with_fakes(*args, FAKE_FAIL_VIDEOS="synth_001")
    assert first.returncode == -11  # the segfault takes the whole run down: nothing isolates it
    assert cli_with_fakes(*args, "--resume", FAKE_FAIL_VIDEOS="synth_001").returncode == -11  # once more: it may have been a kill -9
    third = cli_with_fakes(*args, "--resume", FAKE_FAIL_VIDEOS="synth_001")
    assert third.returncode == 1, third.stderr
    rows = {(r["video_id"], r["model"]): r for r in csv.DictReader(out.open())}
    assert len(rows) == 6
    crashed = rows[("synth_001", "fake_crash")]
    assert (crashed["status"], crashed["error"]) == (
        "crash",
        "the run died twice during this job, so it was not run again (with --isolation process a crash costs only its row)",
    )
    assert rows[("synth_002", "fake_crash")]["status"] == "ok"
    assert not Path(f"{out}.current").exists()
