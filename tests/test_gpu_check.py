"""scripts/gpu_check.sh --dry-run: the GPU check kit rehearsed on the CPU, so that it cannot rot
before a device is lent. Every step is in the table; none fails; the steps that need CUDA say why."""

import contextlib
import importlib.util
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

from conftest import ROOT, require

STEPS = ["environment", "timing", "isolation_oom", "bare_loop", "bf16", "nvml", "stream_memory", "cleanup", "gpu_tests", "compile"]


def test_the_dry_run_prints_every_step_and_none_fails(tmp_path):
    require("sam2.build_sam")
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "gpu_check.sh"), "--dry-run", "--out", str(tmp_path)], capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads((tmp_path / "gpu_check.json").read_text())
    assert results["device"] == "cpu"
    assert [r["step"] for r in results["steps"]] == STEPS
    assert {r["status"] for r in results["steps"]} <= {"PASS", "SKIP"}, results
    ran = [r["step"] for r in results["steps"] if r["status"] == "PASS"]
    assert ran == ["environment", "timing", "isolation_oom", "bare_loop", "bf16", "stream_memory", "cleanup"]  # their CPU stand-ins ran
    table = (tmp_path / "gpu_check.md").read_text()
    assert all(f"| {step} |" in table for step in STEPS) and table in done.stdout
    assert "===== isolation_oom" in (tmp_path / "gpu_check.log").read_text()


def _gpu_check_module(monkeypatch):
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "scripts" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "gpu_check", module)  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _group_of(pgid: int) -> dict[int, str]:
    """The live processes (zombies left out) of a process group, with their command lines."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if fields[0] != "Z" and int(fields[2]) == pgid:
                found[int(stat.parent.name)] = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    return found


def test_a_step_past_its_timeout_is_killed_with_what_it_started(tmp_path, monkeypatch):
    """The stream_memory step runs scripts/stream_memory.py in a process of its own, which runs the
    benchmark in more; past the step's timeout all of them are killed at once (a hang costs one step, and nothing runs
    on into the next), and the step fails, saying so."""
    gpu_check = _gpu_check_module(monkeypatch)
    started, seen = [], {}
    popen = subprocess.Popen

    def recorded(*args, **kwargs):
        started.append(popen(*args, **kwargs))
        return started[-1]

    def watch():  # the step's process group while it runs: the step and the processes it started
        while not started or started[-1].poll() is None:
            seen.update(_group_of(started[-1].pid) if started else {})
            time.sleep(0.05)

    monkeypatch.setattr(gpu_check.subprocess, "Popen", recorded)
    watcher = threading.Thread(target=watch)
    watcher.start()
    with open(tmp_path / "log", "w") as log:
        outcome = gpu_check._child(next(s for s in gpu_check.STEPS if s.name == "stream_memory"), "cpu", 6, log)
    watcher.join()
    assert outcome.status == "FAIL" and outcome.figure == "no result within its 6 s: stopped"
    assert any("stream_memory.py" in command for command in seen.values()), seen
    time.sleep(0.5)  # for the killed processes to die; one not killed would run on for seconds
    assert _group_of(started[0].pid) == {}
