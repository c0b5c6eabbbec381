"""Nothing lost, nothing counted twice, no traceback: one regression test per defect of issue 16,
through the real command line. A refused command must leave every file byte for byte as it was."""

import csv
import os
import shlex
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import (
    COMMAND,
    ROOT,
    USAGE_ERROR,
    assert_usage_error,
    cli_with_fakes,
    environment,
    keys_of,
    small_disk,
    start,
)
from test_stateful import before_the_program

from sav_benchmark.masks import write_mask
from sav_benchmark.results import COLUMNS
from sav_benchmark.split.synthetic import make_split


def files(folder):
    """Every file under a folder and its bytes: what a refused command must not change."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(Path(folder).rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def split(synthetic_split):
    return synthetic_split(videos=1, frames=9)  # 3 objects, annotated frames 0, 4, 8


@pytest.fixture
def done(split, tmp_path):
    """A finished run of the baseline: its CSV and the arguments that made it."""
    out = tmp_path / "o.csv"
    args = ["--split_dir", str(split), "--models", "static_mask", "--output", str(out)]
    assert cli_with_fakes(*args).returncode == 0
    return out, args


# 1. --resume changes nothing before it has decided to run


def test_a_refused_resume_leaves_a_csv_without_its_last_newline_as_it_was(done, tmp_path):
    out, args = done
    out.write_bytes(out.read_bytes().rstrip(b"\r\n"))  # the last row is whole, only its newline is missing
    before = files(tmp_path)
    result = cli_with_fakes(*args, "--resume", "--num_points", "2")
    assert_usage_error(
        result,
        "--resume: settings differ from the earlier run's (num_points 1 -> 2); its rows would not be comparable. Use the same settings, a "
        "new --output, or --force",
    )
    assert files(tmp_path) == before
    resumed = cli_with_fakes(*args, "--resume")  # the last row parses as a full row: it is kept, not "partial"
    assert (resumed.returncode, resumed.stderr) == (0, "")
    assert len(keys_of(out)) == 3 and out.read_bytes().endswith(b"\r\n")


def test_a_file_that_is_not_a_result_csv_is_refused_untouched(split, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello\nworld")
    result = cli_with_fakes("--split_dir", str(split), "--models", "static_mask", "--output", str(notes), "--resume")
    assert_usage_error(
        result,
        f"--resume: {notes} is not a result CSV of this benchmark version (its first line is not this version's header); give the CSV of "
        "the run to continue, or a new --output",
    )
    assert files(tmp_path) == {"notes.txt": b"hello\nworld"}  # no lock, log or manifest left behind


def test_a_result_csv_without_its_manifest_is_refused_untouched(done, tmp_path):
    out, args = done
    Path(f"{out}.json").unlink()
    out.write_bytes(out.read_bytes()[:-20])  # and a partial last line, which must stay until the resume runs
    before = files(tmp_path)
    result = cli_with_fakes(*args, "--resume")
    assert result.returncode == 2 and result.stderr.startswith(
        f"{USAGE_ERROR}--resume: cannot read the manifest {out}.json of the earlier run ("
    )
    assert files(tmp_path) == before


# 2. an interruption the run handled is no death


def wait_for_job_in_progress(current, model, process, timeout=60):
    """Until the run has marked a job of the model as in progress (since the process started)."""
    started, deadline = time.time(), time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if current.stat().st_mtime >= started and f'"{model}"' in current.read_text():
                return
        except FileNotFoundError:
            pass
        assert process.poll() is None, process.communicate()
        time.sleep(0.02)
    raise AssertionError(f"no {model} job in progress after {timeout} s")


def test_two_ctrl_c_in_one_job_make_no_crash_row(split, tmp_path):
    out = tmp_path / "o.csv"
    args = [
        "--split_dir",
        str(split),
        "--models",
        "static_mask,fake_slow",
        "--isolation",
        "none",
        "--output",
        str(out),
        "--limit_objects",
        "1",
    ]
    for attempt in range(2):
        process = start(*args, *(["--resume"] if attempt else []), FAKE_FRAME_DELAY_S="0.5")  # the job takes 4.5 s
        wait_for_job_in_progress(Path(f"{out}.current"), "fake_slow", process)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 130 and "the current job was cleaned up and left no row" in stderr
    result = cli_with_fakes(*args, "--resume")
    assert result.returncode == 0, result.stderr
    assert [(r["model"], r["status"]) for r in csv.DictReader(out.open())] == [("static_mask", "ok"), ("fake_slow", "ok")]


def test_a_job_that_ends_the_process_otherwise_still_counts_as_a_death(split, tmp_path):
    """Only a handled signal or a full disk clear the job in progress: a library's SystemExit
    (like a segfault) ends the run in the job, and the second time the job gets a crash row."""
    out = tmp_path / "o.csv"
    args = [
        "--split_dir",
        str(split),
        "--models",
        "static_mask,fake_fail",
        "--isolation",
        "none",
        "--output",
        str(out),
        "--limit_objects",
        "1",
    ]
    for attempt in range(2):
        result = cli_with_fakes(*args, *(["--resume"] if attempt else []), FAKE_EXIT_VIDEOS="synth_000")
        assert (result.returncode, result.stderr) == (1, "a library gave up on video synth_000 (a test stand-in)\n")
    result = cli_with_fakes(*args, "--resume", FAKE_EXIT_VIDEOS="synth_000")
    assert result.returncode == 1
    rows = [(r["model"], r["status"], r["error"]) for r in csv.DictReader(out.open())]
    assert rows == [
        ("static_mask", "ok", ""),
        (
            "fake_fail",
            "crash",
            "the run died twice during this job, so it was not run again (with --isolation process a crash costs only its row)",
        ),
    ]


def test_a_ctrl_c_that_an_extension_reports_as_its_own_error_still_ends_the_run(split, tmp_path):
    """Not a failed job: the row is left out and the run ends as interrupted."""
    out = tmp_path / "o.csv"
    process = start(
        "--split_dir",
        str(split),
        "--models",
        "static_mask,fake_slow",
        "--isolation",
        "none",
        "--output",
        str(out),
        "--limit_objects",
        "1",
        FAKE_FRAME_DELAY_S="0.5",
        FAKE_SWALLOW="1",
    )
    wait_for_job_in_progress(Path(f"{out}.current"), "fake_slow", process)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and "interrupted by SIGINT; the current job was cleaned up and left no row" in stderr, stderr
    assert [(r["model"], r["status"]) for r in csv.DictReader(out.open())] == [("static_mask", "ok")]


SWALLOWED = """
import signal, time
from sav_benchmark.signals import Interrupted, SignalGuard

class Finalised:
    def __del__(self):
        signal.raise_signal(signal.SIGINT)
        for _ in range(3):  # the handler runs here, inside __del__, where no exception can propagate
            pass

with SignalGuard():
    try:
        Finalised()
        time.sleep(5)
        print("lost")
    except Interrupted as exc:
        print(exc)
"""


def test_an_interruption_python_swallows_is_delivered_again():
    """Python prints 'Exception ignored' and drops an exception raised in a __del__ or a weakref
    callback (the import machinery runs them): a Ctrl-C arriving there must still end the run."""
    result = subprocess.run([sys.executable, "-c", SWALLOWED], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert (result.returncode, result.stdout, result.stderr) == (0, "SIGINT\n", "")


STARTING_WORKER = """
import sys
if __name__ != "__main__":  # the worker, re-importing this script while multiprocessing starts it
    print("printed by the worker while it starts", file=sys.stderr)
else:
    from pathlib import Path
    from sav_benchmark.executors import ProcessExecutor
    from sav_benchmark.runners import MODELS
    from sav_benchmark.runners.base import RunSettings

    spec = MODELS["static_mask"]
    executor = ProcessExecutor([spec], RunSettings("cpu", "float32", None, "random", Path(".")))
    print(executor._worker(spec).stderr_path.read_text(), end="")
    executor.close()
"""


def test_what_a_worker_prints_while_it_starts_goes_to_its_file(tmp_path):
    """Not to the terminal: when the driver is killed while a worker starts, multiprocessing's
    bootstrap in the worker prints a traceback (EOFError) before the worker takes its output in hand."""
    script = tmp_path / "driver.py"
    script.write_text(STARTING_WORKER)
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "printed by the worker while it starts\n", "")


# 3. a signal the parent set to be ignored stays ignored (nohup, a background job of a script)


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGINT], ids=["SIGHUP", "SIGINT"])
def test_an_ignored_signal_stays_ignored(split, tmp_path, signum):
    out = tmp_path / "o.csv"
    process = subprocess.Popen(
        [*COMMAND, "--split_dir", str(split), "--models", "static_mask,fake_slow", "--output", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=environment(True, FAKE_FRAME_DELAY_S="0.05"),
        preexec_fn=lambda: signal.signal(signum, signal.SIG_IGN),
    )
    wait_for_job_in_progress(Path(f"{out}.current"), "fake_slow", process)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    assert (process.returncode, stderr) == (0, "")
    assert len(keys_of(out)) == 6


# 4. one row per job


def duplicate_last_row(out):
    text = out.read_text()
    out.write_text(text + text.splitlines(keepends=True)[-1])


def test_a_duplicated_row_is_refused_by_resume_and_report_and_retry_failed_repairs_it(done, tmp_path):
    out, args = done
    duplicate_last_row(out)
    before = files(tmp_path)
    assert_usage_error(
        cli_with_fakes(*args, "--resume"),
        f"--resume: synth_000/002 static_mask has 2 rows in {out}, on lines 4, 5; a job has one row. "
        "Delete all but one of them, or add --retry_failed to drop them and run the job again",
    )
    duplicate = (
        f"{out}: synth_000/002 static_mask has two rows, on lines 4 and 5; a job has one row: delete one of them (or resume the run with "
        "--retry_failed, which runs such jobs again)"
    )
    assert_usage_error(cli_with_fakes("report", str(out)), duplicate)
    assert_usage_error(cli_with_fakes("compare", str(out), str(out)), duplicate)
    assert files(tmp_path) == before
    repaired = cli_with_fakes(*args, "--resume", "--retry_failed")
    assert repaired.returncode == 0, repaired.stderr
    assert keys_of(out) == [("synth_000", "000", "static_mask"), ("synth_000", "001", "static_mask"), ("synth_000", "002", "static_mask")]


# 5. compare never overwrites an input, nor an existing file without --force


def test_compare_outputs_never_overwrite_an_input_or_an_existing_file(done, tmp_path):
    out, _ = done
    other = tmp_path / "other.csv"
    shutil.copy(out, other)
    before = files(tmp_path)
    assert_usage_error(
        cli_with_fakes("compare", str(out), str(other), "--csv", str(out)),
        f"--csv {out} is {out}, an input of this comparison; write the result to another file",
    )
    assert_usage_error(
        cli_with_fakes("compare", str(out), str(other), "--csv", str(other), "--force"),
        f"--csv {other} is {other}, an input of this comparison; write the result to another file",
    )
    assert_usage_error(
        cli_with_fakes("compare", str(out), str(other), "--plot", f"{out}.json"),
        f"--plot {out}.json is {out}.json, an input of this comparison; write the result to another file",
    )
    assert_usage_error(
        cli_with_fakes("compare", str(out), str(other), "--merge", str(other)),
        f"--merge {other} is {other}, an input of this comparison; write the result to another file",
    )
    existing = tmp_path / "findings.csv"
    existing.write_text("mine\n")
    before["findings.csv"] = b"mine\n"
    assert_usage_error(
        cli_with_fakes("compare", str(out), str(other), "--csv", str(existing)),
        f"--csv {existing} exists already; choose a new file, or add --force to overwrite it",
    )
    assert_usage_error(
        cli_with_fakes("compare", str(out), str(other), "--csv", str(existing), "--plot", str(existing)),
        f"--plot and --csv both name {existing}; give each its own file",
    )
    assert files(tmp_path) == before
    forced = cli_with_fakes("compare", str(out), str(other), "--csv", str(existing), "--force")
    assert forced.returncode == 0, forced.stderr
    assert existing.read_text().startswith("reference,file,model")


# 6. frame and mask numbers


def test_a_mask_named_by_a_non_ascii_digit_is_refused_before_any_work(split, tmp_path):
    copy = tmp_path / "s"
    shutil.copytree(split, copy)
    for name in ("².png", "٤.png"):  # str.isdigit() and int() take both
        bad = copy / "Annotations_6fps/synth_000/001" / name
        write_mask(bad, np.zeros((48, 64), bool))
        before = files(tmp_path)
        assert_usage_error(
            cli_with_fakes("--split_dir", str(copy), "--models", "static_mask", "--output", str(tmp_path / "o.csv")),
            f"video synth_000, object 001: mask {bad} is not named by a frame number in ASCII digits (00000.png, 00001.png, ...)",
        )
        assert files(tmp_path) == before
        bad.unlink()


def test_two_masks_naming_one_frame_are_refused_naming_both(split, tmp_path):
    copy = tmp_path / "s"
    shutil.copytree(split, copy)
    folder = copy / "Annotations_6fps/synth_000/001"
    shutil.copy(folder / "00004.png", folder / "4.png")
    assert_usage_error(
        cli_with_fakes("--split_dir", str(copy), "--models", "static_mask", "--output", str(tmp_path / "o.csv")),
        f"video synth_000, object 001: mask {folder / '00004.png'} and {folder / '4.png'} both name frame 4; keep one of them",
    )
    assert not (tmp_path / "o.csv").exists()


@pytest.mark.parametrize(
    "name,problem",
    [
        ("².jpg", "frame {frames}/².jpg is not named by a frame number in ASCII digits (00000.jpg, 00001.jpg, ...)"),
        ("4.jpg", "frame {frames}/00004.jpg and {frames}/4.jpg both name frame 4; keep one of them"),
    ],
)
def test_frames_not_numbered_one_to_one_fail_that_videos_rows(split, tmp_path, name, problem):
    copy = tmp_path / "s"
    shutil.copytree(split, copy)
    frames = copy / "JPEGImages_24fps/synth_000"
    shutil.copy(frames / "00004.jpg", frames / name)
    out = tmp_path / "o.csv"
    result = cli_with_fakes("--split_dir", str(copy), "--models", "static_mask", "--output", str(out))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    reason = problem.format(frames=frames) + "; fix the video's frames or leave it out (--video_ids)"
    assert {(r["status"], r["error"], r["n_propagated"]) for r in csv.DictReader(out.open())} == {("error", reason, "")}


def test_a_reason_with_a_newline_in_it_is_read_back_by_resume(split, tmp_path):
    """A file name may hold a newline, and the reason that names it too: the CSV quotes it."""
    copy = tmp_path / "s"
    shutil.copytree(split, copy)
    odd = copy / "JPEGImages_24fps/synth_000/x\ny.jpg"
    shutil.copy(copy / "JPEGImages_24fps/synth_000/00000.jpg", odd)
    out = tmp_path / "o.csv"
    args = ["--split_dir", str(copy), "--models", "static_mask", "--output", str(out)]
    failed = cli_with_fakes(*args)
    assert failed.returncode == 1
    escaped = str(odd).replace("\n", "\\n")  # the summary keeps each reason on one line
    assert f"  synth_000/000 static_mask: error: frame {escaped} is not named" in failed.stderr
    odd.unlink()
    resumed = cli_with_fakes(*args, "--resume", "--retry_failed")
    assert (resumed.returncode, resumed.stderr) == (0, "")
    assert [r["status"] for r in csv.DictReader(out.open(newline=""))] == ["ok", "ok", "ok"]


def test_a_huge_frame_number_is_one_reason_not_a_memory_error(split, tmp_path):
    copy = tmp_path / "s"
    shutil.copytree(split, copy)
    frames = copy / "JPEGImages_24fps/synth_000"
    shutil.copy(frames / "00008.jpg", frames / "99999999999999999999.jpg")
    shutil.copy(frames / "00008.jpg", frames / "00009.Jpg")  # not a frame for the sam2 loader: not one here either
    out = tmp_path / "o.csv"
    result = cli_with_fakes("--split_dir", str(copy), "--models", "static_mask", "--output", str(out))
    reason = (
        f"frames in {frames} are not numbered 0..9 without gaps (missing e.g. [9, 10, 11]); fix the video's frames or leave it out "
        "(--video_ids)"
    )
    assert result.returncode == 1 and {r["error"] for r in csv.DictReader(out.open())} == {reason}


# 7. every frame's size is read in prepare


def test_a_frame_of_another_size_fails_its_videos_rows_before_any_model_runs(split, tmp_path):
    copy = tmp_path / "s"
    shutil.copytree(split, copy)
    last = copy / "JPEGImages_24fps/synth_000/00008.jpg"
    cv2.imwrite(str(last), cv2.resize(cv2.imread(str(last)), (32, 24)))
    out = tmp_path / "o.csv"
    result = cli_with_fakes("--split_dir", str(copy), "--models", "static_mask", "--output", str(out))
    assert result.returncode == 1
    reason = (
        f"frame {last} is 32x24 but frame 00000.jpg is 64x48; every frame of a video must have one size; fix the video's frames or leave "
        "it out (--video_ids)"
    )
    assert {(r["status"], r["error"], r["n_propagated"]) for r in csv.DictReader(out.open())} == {("error", reason, "")}


# 8. report and compare: one line for a bad cell or a plot format


@pytest.mark.parametrize(
    "column,cell,problem",
    [
        ("fps", "abc", "'abc' is not a number"),
        ("fps", "inf", "'inf' is not a finite number"),
        ("fps", "1_000", "'1_000' is not a number"),
        ("fps", "-1", "-1 is below zero"),
        ("J", "-500", "-500 is not a percentage (0 to 100)"),
        ("JF", "1e308", "1e308 is not a percentage (0 to 100)"),
    ],
)
def test_a_bad_cell_is_one_line_naming_file_line_and_column(done, column, cell, problem):
    out, _ = done
    rows = list(csv.DictReader(out.open(newline="")))
    rows[1][column] = cell
    with open(out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    message = f"{out}, line 3, column {column}: {problem}; mend or delete that line"
    assert_usage_error(cli_with_fakes("report", str(out)), message)
    assert_usage_error(cli_with_fakes("compare", str(out), str(out)), message)


def test_a_csv_a_spreadsheet_saved_is_still_read(done, tmp_path):
    """A byte-order mark, and a column of the user's own, are no reason to refuse a CSV."""
    out, _ = done
    rows = list(csv.DictReader(out.open(newline="")))
    edited = tmp_path / "edited.csv"
    with open(edited, "w", newline="", encoding="utf-8-sig") as f:
        writer = csv.DictWriter(f, fieldnames=[*COLUMNS, "notes"])
        writer.writeheader()
        writer.writerows({**row, "notes": "rerun later"} for row in rows)
    assert cli_with_fakes("report", str(edited)).stdout.replace(str(edited), "X") == cli_with_fakes("report", str(out)).stdout.replace(
        str(out), "X"
    )


def test_force_never_writes_over_a_device(done, tmp_path):
    out, _ = done
    assert_usage_error(
        cli_with_fakes("compare", str(out), str(out), "--csv", "/dev/null", "--force"),
        "--csv /dev/null is not a regular file; give the path of a file to write",
    )
    assert_usage_error(
        cli_with_fakes("prepare", "--split_dir", str(out.parent), "--output", "/dev/null", "--force"),
        "--output /dev/null is not a regular file; give the path of a file to write",
    )
    assert_usage_error(
        cli_with_fakes("compare", str(out), str(out), "--csv", str(tmp_path / "no" / "x.csv")),
        f"--csv {tmp_path / 'no' / 'x.csv'}: cannot write it (No such file or directory: {tmp_path / 'no' / 'x.csv'}); choose a writable "
        "path",
    )


def test_a_plot_format_matplotlib_lacks_is_refused_before_any_work(done, tmp_path):
    out, _ = done
    before = files(tmp_path)
    result = cli_with_fakes("compare", str(out), str(out), "--plot", str(tmp_path / "plot.csv"), "--csv", str(tmp_path / "f.csv"))
    assert result.returncode == 2 and result.stderr.startswith(
        f"{USAGE_ERROR}--plot {tmp_path / 'plot.csv'}: matplotlib cannot write .csv files; give a name ending in one of "
    )
    assert ".png" in result.stderr and "\n" not in result.stderr[:-1]
    assert files(tmp_path) == before


# the smaller ones


def test_a_run_with_failed_rows_says_why_it_exits_1(split, tmp_path):
    out = tmp_path / "o.csv"
    args = ["--split_dir", str(split), "--models", "fake_fail", "--output", str(out)]
    result = cli_with_fakes(*args, FAKE_FAIL_VIDEOS="synth_000")
    assert result.returncode == 1
    assert result.stderr == (
        "jetson_benchmark.py: 3 jobs failed (3 error):\n"
        + "".join(f"  synth_000/00{i} fake_fail: error: ValueError: fake failure on video synth_000\n" for i in range(3))
        + f"Details of each failure are in {out}.log. Once the cause is fixed, run them again with:\n"
        f"  {shlex.join([*COMMAND, *args, '--resume', '--retry_failed'])}\n"
    )


def test_the_resume_command_is_printed_as_the_tool_was_invoked(split, tmp_path):
    out = tmp_path / "o.csv"
    args = ["--split_dir", str(split), "--models", "fake_fail", "--output", str(out)]
    module = subprocess.run(
        [sys.executable, "-m", "sav_benchmark", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=environment(True, FAKE_FAIL_VIDEOS="synth_000"),
    )
    assert module.stderr.endswith(f"\n  {shlex.join([sys.executable, '-m', 'sav_benchmark', *args, '--resume', '--retry_failed'])}\n")
    script = Path(sysconfig.get_path("scripts")) / "jetson-benchmark"
    if not script.exists():
        pytest.fail(f"the console script {script} is not installed: run scripts/install.sh")
    args[-1] = str(tmp_path / "second.csv")
    found = environment(True, FAKE_FAIL_VIDEOS="synth_000", PATH=f"{script.parent}{os.pathsep}{os.environ['PATH']}")
    console = subprocess.run(["jetson-benchmark", *args], capture_output=True, text=True, cwd=ROOT, env=found)
    assert console.stderr.endswith(f"\n  {shlex.join(['jetson-benchmark', *args, '--resume', '--retry_failed'])}\n")


def test_output_and_split_paths_that_cannot_be_what_they_must_be(split, tmp_path):
    folder = tmp_path / "folder"
    folder.mkdir()
    run_args = ["--split_dir", str(split), "--models", "static_mask"]
    assert_usage_error(
        cli_with_fakes(*run_args, "--output", str(folder)),
        f"--output {folder} is a folder; give the CSV's file name, e.g. {folder / 'run.csv'}",
    )
    assert_usage_error(
        cli_with_fakes(*run_args, "--output", f"{tmp_path}/newdir/"),
        f"--output {tmp_path}/newdir/ names a folder; give the CSV's file name, e.g. {tmp_path}/newdir/run.csv",
    )
    assert_usage_error(
        cli_with_fakes(*run_args, "--output", "/dev/null"),
        "--output /dev/null is not a regular file; the rows must go to a file that can be read back (for --resume): give a file path",
    )
    a_file = tmp_path / "file"
    a_file.write_text("")
    assert_usage_error(
        cli_with_fakes("--split_dir", str(a_file), "--models", "static_mask"),
        f"--split_dir {a_file} is a file, not a folder; give the folder of an SA-V split (make a demo split with: python -m "
        "sav_benchmark.synthetic --out DIR)",
    )
    assert_usage_error(
        cli_with_fakes(*run_args, "--video_ids", ",,,"),
        "--video_ids ',,,' names no video; give comma-separated video ids, or leave the flag out to run every video",
    )
    assert files(tmp_path) == {"file": b""} and not (tmp_path / "newdir").exists()


@pytest.mark.parametrize(
    "flag,value,message",
    [
        (
            "--imgsz",
            "100000",
            "argument --imgsz: must be at most 2048 (the largest input size this benchmark runs; the models are trained at 1024), not "
            "100000",
        ),
        (
            "--num_points",
            "10000",
            "argument --num_points: must be at most 64 (each click is placed by one more distance transform of the prompt mask), not 10000",
        ),
        ("--job_timeout_s", "-5", "argument --job_timeout_s: must be a number of seconds, 0 or more, not -5"),
        ("--job_timeout_s", "nan", "argument --job_timeout_s: must be a number of seconds, 0 or more, not nan"),
    ],
)
def test_numbers_out_of_range_are_refused(split, flag, value, message):
    assert_usage_error(
        cli_with_fakes("--split_dir", str(split), "--models", "static_mask", flag, value), f"{message} (see jetson_benchmark.py run --help)"
    )


def test_fewer_clicks_than_asked_are_said_in_the_row(tmp_path):
    make_split(tmp_path / "s", videos=1, frames=9, width=64, height=48, objects=1)
    tiny = np.zeros((48, 64), bool)
    tiny[10, 10:13] = True  # 3 pixels: 3 clicks at most
    write_mask(tmp_path / "s/Annotations_6fps/synth_000/000/00000.png", tiny)
    out = tmp_path / "o.csv"
    result = cli_with_fakes(
        "--split_dir",
        str(tmp_path / "s"),
        "--models",
        "sam2.1_tiny_points",
        "--weights",
        "random",
        "--imgsz",
        "128",
        "--num_points",
        "5",
        "--output",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    row = next(csv.DictReader(out.open()))
    assert row["warning"] == "3 of the 5 clicks of --num_points: the prompt mask has only 3 pixels"
    assert len(eval(row["prompt_detail"])["points"]) == 3  # noqa: S307 - our own JSON


def test_a_blank_line_is_refused_by_resume(done, tmp_path):
    out, args = done
    lines = out.read_text().splitlines(keepends=True)
    out.write_text("".join([*lines[:2], "\r\n", *lines[2:]]))
    before = files(tmp_path)
    assert_usage_error(cli_with_fakes(*args, "--resume"), f"--resume: line 3 of {out} is blank; delete that line, then resume")
    assert files(tmp_path) == before


def test_ctrl_c_while_the_program_loads_prints_no_traceback(split, tmp_path):
    for delay in (0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.1, 0.15, 0.2, 0.3):
        process = start("--split_dir", str(split), "--models", "static_mask", "--output", str(tmp_path / f"o{delay}.csv"))
        time.sleep(delay)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
        if before_the_program(stderr):
            continue
        assert "Traceback" not in stderr, (delay, stderr)
        assert process.returncode in (0, 130, -signal.SIGINT), (delay, process.returncode, stderr)


def test_evaluate_refuses_predictions_in_the_ground_truth(tmp_path):
    make_split(tmp_path / "s", videos=1, frames=9, width=64, height=48)
    truth = tmp_path / "s/Annotations_6fps"
    before = files(tmp_path)
    assert_usage_error(
        cli_with_fakes("evaluate", "--gt_root", str(truth), "--pred_root", str(truth)),
        f"--pred_root {truth} is the ground truth ({truth}): results.csv would be written among the ground truth; give the folder of the "
        "predicted masks",
    )
    inside = truth / "synth_000"
    assert_usage_error(
        cli_with_fakes("evaluate", "--gt_root", str(truth), "--pred_root", str(inside)),
        f"--pred_root {inside} is inside the ground truth ({truth}): results.csv would be written among the ground truth; give the folder "
        "of the predicted masks",
    )
    assert files(tmp_path) == before


def test_ctrl_c_during_evaluate_is_one_line_from_the_parent_alone(tmp_path):
    make_split(tmp_path / "s", videos=4, frames=200, width=640, height=480)
    truth, predictions = tmp_path / "s/Annotations_6fps", tmp_path / "pred"
    shutil.copytree(truth, predictions)
    process = subprocess.Popen(
        [*COMMAND, "evaluate", "--gt_root", str(truth), "--pred_root", str(predictions), "-n", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        start_new_session=True,
    )
    while "we are evaluating on" not in process.stdout.readline():  # the worker processes start now
        assert process.poll() is None
    time.sleep(0.05)
    os.killpg(process.pid, signal.SIGINT)  # as a terminal's Ctrl-C: to every process of the group
    _, stderr = process.communicate(timeout=60)
    assert (process.returncode, stderr) == (130, "jetson_benchmark.py: interrupted\n")
    assert not (predictions / "results.csv").exists()


def test_save_masks_into_a_folder_with_other_files_needs_force(split, tmp_path):
    masks = tmp_path / "masks"
    first = ["--split_dir", str(split), "--models", "static_mask", "--save_masks", str(masks)]
    assert cli_with_fakes(*first, "--output", str(tmp_path / "a.csv")).returncode == 0
    before = files(tmp_path)
    assert_usage_error(
        cli_with_fakes(*first, "--output", str(tmp_path / "b.csv")),
        f"--save_masks {masks} holds files already (e.g. static_mask): another run's masks would be mixed with this one's. "
        "Choose a new or empty folder, or add --force to write into it anyway",
    )
    assert files(tmp_path) == before
    assert cli_with_fakes(*first, "--output", str(tmp_path / "a.csv"), "--resume").returncode == 0  # the run's own folder
    assert cli_with_fakes(*first, "--output", str(tmp_path / "b.csv"), "--force").returncode == 0


def test_a_refusal_comes_before_training_videos_are_decoded(tmp_path):
    """SA-V training videos are decoded into a cache first, which can take hours: every check
    that can refuse the command comes before it."""
    make_split(tmp_path / "train", videos=1, frames=9, width=64, height=48, layout="sav-train")
    cache, out = tmp_path / "cache", tmp_path / "o.csv"
    args = ["--split_dir", str(tmp_path / "train"), "--models", "static_mask", "--cache_dir", str(cache), "--output", str(out)]
    assert cli_with_fakes(*args).returncode == 0
    shutil.rmtree(cache)
    before = files(tmp_path)
    result = cli_with_fakes(*args, "--resume", "--num_points", "2")
    assert result.returncode == 2 and "settings differ" in result.stderr
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    before["notes.txt"] = b"mine"
    assert_usage_error(
        cli_with_fakes("prepare", *args[:2], "--cache_dir", str(cache), "--output", str(notes)),
        f"--output {notes} exists already; choose a new file, or add --force to overwrite it",
    )
    assert files(tmp_path) == before and not cache.exists()


def test_a_run_refused_for_a_full_disk_leaves_nothing_behind(split, tmp_path):
    with small_disk(tmp_path / "disk", "8k") as disk:
        descriptor = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            while os.write(descriptor, b"x" * 512):  # up to the last byte
                pass
        except OSError:
            pass
        finally:
            os.close(descriptor)
        before = files(disk)
        result = cli_with_fakes("--split_dir", str(split), "--models", "static_mask", "--output", str(disk / "o.csv"))
        assert result.returncode == 2 and "No space left on device" in result.stderr and "Traceback" not in result.stderr
        assert files(disk) == before
