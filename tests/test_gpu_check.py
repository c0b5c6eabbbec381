"""scripts/gpu_check.sh --dry-run: the GPU check kit rehearsed on the CPU, so that it cannot rot
before a device is lent. Every step is in the table; none fails; the steps that need CUDA say why."""

import json
import subprocess

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
