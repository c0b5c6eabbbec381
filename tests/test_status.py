"""`status RUN.csv` on a finished run, a run in progress, a run killed with kill -9 and a run with
failures: what it prints, exactly, and its exit code; it changes no file of the run."""

import json
import re
import shlex

import pytest
from conftest import COMMAND, assert_usage_error, cli, cli_with_fakes, start, wait_for_rows

from sav_benchmark.status import _eta


@pytest.fixture(scope="module")
def split(synthetic_split):
    return synthetic_split(videos=3, frames=13)  # 3 + 2 + 2 objects: 14 jobs with two models


def status(out):
    return cli("status", out)


def files_of(folder):
    return {path.name: path.read_bytes() for path in folder.iterdir()}


def finished_at(out) -> str:
    manifest = json.loads(open(f"{out}.json").read())
    return (manifest.get("resumed") or [manifest])[-1]["finished_utc"]


def command_of(*args) -> list[str]:
    """The run's command as its manifest records it (the interpreter and the script, then its arguments)."""
    return [*COMMAND, *map(str, args)]


def test_a_finished_run(split, tmp_path):
    out = tmp_path / "o.csv"
    assert cli_with_fakes("--split_dir", split, "--models", "static_mask,fake_slow", "--output", out).returncode == 0
    before = files_of(tmp_path)
    done = status(out)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == f"{out}: finished at {finished_at(out)}\njobs: 14 of 14 have a row (100%); 0 failed\n"
    assert files_of(tmp_path) == before


def test_a_run_killed_with_kill_9_says_so_and_how_to_continue(split, tmp_path):
    out = tmp_path / "o.csv"
    args = ["--split_dir", split, "--models", "static_mask,fake_slow", "--output", out]
    process = start(*args, FAKE_FRAME_DELAY_S="0.05")
    wait_for_rows(out, 3, process)
    process.kill()
    process.wait()
    rows = open(out).read().count("\n") - 1
    done = status(out)
    assert (done.returncode, done.stderr) == (1, "")
    resume = shlex.join([*command_of(*args), "--resume"])
    assert done.stdout == (
        f"{out}: not running, and its last session did not end: it was killed (kill -9, power, the OOM killer)\n"
        f"jobs: {rows} of 14 have a row ({100 * rows / 14:.0f}%); 0 failed\n"
        f"continue it with:\n  {resume}\n"
    )
    assert cli_with_fakes(*shlex.split(resume)[len(COMMAND) :]).returncode == 0  # the command it gives continues the run
    assert status(out).returncode == 0


def test_a_run_in_progress_is_alive_with_an_eta(split, tmp_path):
    out = tmp_path / "o.csv"
    process = start("--split_dir", split, "--models", "static_mask,fake_slow", "--output", out, FAKE_FRAME_DELAY_S="0.2")
    try:
        wait_for_rows(out, 2, process)
        done = status(out)
    finally:
        process.kill()
        process.wait()
    assert (done.returncode, done.stderr) == (1, "")
    lines = done.stdout.splitlines()
    assert lines[0] == f"{out}: running (its process holds the lock)"
    assert lines[1].startswith("jobs: ") and lines[1].endswith(" of 14 have a row (" + lines[1].split("(")[1])
    assert re.fullmatch(r"ETA: (under a minute|about \d+ min) for \d+ jobs left \(each model's median wall_s so far\)", lines[2])
    assert len(lines) == 3  # nothing to continue while it runs


def test_failures_are_counted_by_status_with_their_reasons(split, tmp_path):
    out = tmp_path / "o.csv"
    args = ["--split_dir", split, "--models", "static_mask,fake_fail", "--output", out]
    assert cli_with_fakes(*args, FAKE_FAIL_VIDEOS="synth_001").returncode == 1
    done = status(out)
    assert (done.returncode, done.stderr) == (1, "")
    lines = done.stdout.splitlines()
    assert lines[1] == "jobs: 14 of 14 have a row (100%); 2 failed"
    assert lines[2] == "  error: 2"
    assert lines[3].startswith("    2 x ")
    assert lines[-2:] == ["run its failed jobs again with:", "  " + shlex.join([*command_of(*args), "--resume", "--retry_failed"])]


def test_a_path_that_is_no_run_is_a_usage_error(tmp_path):
    assert_usage_error(
        status(tmp_path / "none.csv"), f"status: {tmp_path / 'none.csv'} is not a file; give the CSV of a run (its --output)"
    )


def test_the_eta_is_each_models_jobs_left_at_its_median_by_hand():
    rows = [{"model": "a", "video_id": "v", "object_id": str(i), "wall_s": wall} for i, wall in enumerate(("60", "120"))]
    assert _eta(rows, 3, ["a"]) == "ETA: about 2 min for 1 job left (each model's median wall_s so far)"  # 1 x 90 s
    assert _eta(rows, 3, ["a", "b"]) == (
        "ETA: about 2 min for 4 jobs left (each model's median wall_s so far), and more: no job of b has finished yet"
    )
    assert _eta(rows * 50 + [{**rows[0], "object_id": str(i)} for i in range(2, 90)], 90, ["a"]) == ("ETA: the last rows are being written")
    assert _eta(rows, 62, ["a"]) == "ETA: about 1 h 30 min for 60 jobs left (each model's median wall_s so far)"  # 60 x 90 s


def test_a_run_made_elsewhere_with_relative_paths_is_read_from_anywhere(split, tmp_path):
    """The manifest names the prepared split as the run was given it (relative to where it ran):
    status run from another folder still counts every job, and says where to continue from."""
    args = ["--split_dir", split, "--models", "static_mask,fake_slow", "--output", "o.csv"]
    assert cli_with_fakes(*args, cwd=tmp_path).returncode == 0
    done = status(tmp_path / "o.csv")  # from the repository's folder
    assert (done.returncode, done.stdout.splitlines()[1]) == (0, "jobs: 14 of 14 have a row (100%); 0 failed"), done.stdout
    text = (tmp_path / "o.csv").read_text()
    (tmp_path / "o.csv").write_text("\n".join(text.splitlines()[:-4]) + "\n")  # as if killed four rows early
    done = status(tmp_path / "o.csv")
    assert done.returncode == 1
    assert done.stdout.splitlines()[-1] == f"  cd {tmp_path} && " + shlex.join([*command_of(*args), "--resume"])
