"""scripts/gpu_check.sh --dry-run: the GPU check kit rehearsed on the CPU, so that it cannot rot
before a device is lent. Every step is in the table; none fails; the steps that need CUDA say why."""

import importlib.util
import json
import re
import subprocess
import sys
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


HANGING_STEP = """
import subprocess, time
print("grandchild", subprocess.Popen(["sleep", "300"]).pid, flush=True)
time.sleep(300)
"""


def _alive(pid: int) -> bool:
    """A process that exists and is not a zombie (a killed child waits as one until it is reaped)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_step_past_its_timeout_is_killed_with_what_it_started(tmp_path, monkeypatch):
    """A step that hangs, having started a process of its own: past the step's timeout both are
    killed at once (a hang costs one step, and nothing runs on into the next), the step fails
    saying so, and its output is in the log. The step's process is a stand-in that hangs; the
    killing is gpu_check's own."""
    gpu_check = _gpu_check_module(monkeypatch)
    popen = subprocess.Popen
    monkeypatch.setattr(gpu_check.subprocess, "Popen", lambda command, **kwargs: popen([sys.executable, "-c", HANGING_STEP], **kwargs))
    with open(tmp_path / "log", "w") as log:
        outcome = gpu_check._child(gpu_check.STEPS[0], "cpu", 5, log)
    assert outcome.status == "FAIL" and outcome.figure == "no result within its 5 s: stopped"
    grandchild = int(re.search(r"^grandchild (\d+)$", (tmp_path / "log").read_text(), re.MULTILINE).group(1))
    deadline = time.monotonic() + 5
    while _alive(grandchild) and time.monotonic() < deadline:  # killed: gone in milliseconds; not killed: sleeps on
        time.sleep(0.05)
    assert not _alive(grandchild)
