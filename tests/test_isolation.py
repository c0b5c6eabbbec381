"""--isolation process: each model in a persistent worker process; a dying worker costs one row."""

import csv
import json
import os
import shlex
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


@pytest.fixture(scope="module")
def split(synthetic_split):
    return synthetic_split(videos=3, frames=13, objects=1)  # 2 + 1 + 1 objects


def rows(path):
    return list(csv.DictReader(open(path, newline="")))


def test_a_segfault_costs_one_crash_row_and_the_worker_is_replaced(split, tmp_path):
    out = tmp_path / "o.csv"
    result = cli_with_fakes(
        "--split_dir",
        str(split),
        "--models",
        "static_mask,fake_crash",
        "--isolation",
        "process",
        "--output",
        str(out),
        FAKE_FAIL_VIDEOS="synth_001",
    )
    assert result.returncode == 1
    # the worker's own output (its stack dump) stays out of the terminal: only the failure summary
    retry = [*COMMAND, "--split_dir", str(split), "--models", "static_mask,fake_crash", "--isolation", "process", "--output", str(out)]
    assert result.stderr == (
        "jetson_benchmark.py: 1 job failed (1 crash):\n"
        "  synth_001/000 fake_crash: crash: worker died (killed by SIGSEGV); its output says: Fatal Python error: Segmentation fault\n"
        f"Details of each failure are in {out}.log. Once the cause is fixed, run them again with:\n"
        f"  {shlex.join([*retry, '--resume', '--retry_failed'])}\n"
    )
    by_key = {(r["video_id"], r["model"]): r for r in rows(out) if r["object_id"] == "000"}
    crash = by_key[("synth_001", "fake_crash")]
    assert (crash["status"], crash["error"]) == (
        "crash",
        "worker died (killed by SIGSEGV); its output says: Fatal Python error: Segmentation fault",
    )
    assert by_key[("synth_002", "fake_crash")]["status"] == "ok"  # a new worker took over
    assert len(rows(out)) == 8
    manifest = json.loads(Path(f"{out}.json").read_text())
    assert manifest["config"]["isolation"] == "process"
    assert len(manifest["worker_startup_s"]["fake_crash"]) == 2 and len(manifest["worker_startup_s"]["static_mask"]) == 1
    log = Path(f"{out}.log").read_text()
    assert "fake_runners.py" in log and "in propagate" in log  # the dead worker's stack, for whoever debugs it


def test_sam2_in_a_worker_gives_the_same_scores_as_in_process(split, tmp_path):
    require("sam2.build_sam")
    common = [
        "--split_dir",
        str(split),
        "--models",
        "sam2.1_tiny_points",
        "--weights",
        "random",
        "--imgsz",
        "64",
        "--device",
        "cpu",
        "--autocast_dtype",
        "float32",
        "--limit_videos",
        "2",
    ]
    outputs = {}
    for isolation in ("process", "none"):
        outputs[isolation] = tmp_path / f"{isolation}.csv"
        result = cli_with_fakes(*common, "--isolation", isolation, "--output", str(outputs[isolation]))
        assert result.returncode == 0, result.stderr
    scores = {iso: [(r["video_id"], r["object_id"], r["status"], r["J"], r["F"]) for r in rows(path)] for iso, path in outputs.items()}
    assert scores["process"] == scores["none"] and len(scores["process"]) == 3


def test_sigterm_with_workers_then_resume(split, tmp_path):
    out = tmp_path / "o.csv"
    args = ["--split_dir", str(split), "--models", "static_mask,fake_slow", "--isolation", "process", "--output", str(out)]
    process = start(*args, FAKE_FRAME_DELAY_S="0.05")
    wait_for_rows(out, 2, process)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr
    assert "interrupted by SIGTERM; the current job was cleaned up and left no row. Resume with:" in stderr
    result = cli_with_fakes(*args, "--resume")
    assert result.returncode == 0, result.stderr
    assert sorted(keys_of(out)) == sorted(
        (v, o, m)
        for v, objs in (("synth_000", ("000", "001")), ("synth_001", ("000",)), ("synth_002", ("000",)))
        for o in objs
        for m in ("static_mask", "fake_slow")
    )


def children(pid):
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                pass
    return found


def test_workers_exit_when_the_driver_is_killed(split, tmp_path):
    out = tmp_path / "o.csv"
    process = start(
        "--split_dir", str(split), "--models", "fake_slow", "--isolation", "process", "--output", str(out), FAKE_FRAME_DELAY_S="1"
    )
    time.sleep(3)  # the worker is in the middle of its first job (13 frames of 1 s)
    workers = [pid for pid in children(process.pid) if "spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")]
    assert workers, "no worker process found"
    process.kill()
    process.wait()
    deadline = time.monotonic() + 3  # far less than the job's 13 s: the worker must not finish it
    while any(Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2] for pid in workers):
        assert time.monotonic() < deadline, "an orphaned worker kept running"
        time.sleep(0.1)


def test_a_failed_job_gets_its_worker_replaced(split, tmp_path):
    """An error can leave a CUDA context unusable in a process that lives on: the next job starts afresh."""
    out = tmp_path / "o.csv"
    result = cli_with_fakes(
        "--split_dir", str(split), "--models", "fake_fail", "--isolation", "process", "--output", str(out), FAKE_FAIL_VIDEOS="synth_001"
    )
    assert result.returncode == 1
    assert [r["status"] for r in rows(out)] == ["ok", "no_score", "error", "ok"]
    assert len(json.loads(Path(f"{out}.json").read_text())["worker_startup_s"]["fake_fail"]) == 2


def test_ctrl_c_while_a_worker_starts_prints_no_traceback(split, tmp_path):
    out = tmp_path / "o.csv"
    process = subprocess.Popen(
        [*COMMAND, "--split_dir", str(split), "--models", "fake_slow", "--isolation", "process", "--output", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment(True),
        cwd=ROOT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while not children(process.pid):  # the worker is being spawned: Ctrl-C now reaches it too
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.005)
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
