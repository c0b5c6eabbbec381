"""scripts/long_video_soak.py (docs/methodology.md: Memory flat in video length): its fit, and a tiny run
through the real sam2 predictor, so that the script cannot rot."""

import importlib.util
import re
import subprocess
import sys

import pytest
from conftest import ROOT, require

SCRIPT = ROOT / "scripts" / "long_video_soak.py"


def load_script():
    spec = importlib.util.spec_from_file_location("long_video_soak", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_slope_is_fitted_from_the_frame_asked_and_falls_back_to_the_first_after_frame_0():
    soak = load_script()
    # 1000 MB before frame 1,000 (start-up), then 0.5 MB per 1,000 frames
    samples = [{"frames": f, "rss_mb": (900.0 if f < 1000 else 1000.0 + 0.0005 * f)} for f in range(0, 5001, 500)]
    assert soak.fit_start(samples, 1000) == 1000
    value, first, last, count = soak.slope(samples, "rss_mb", 1000)
    assert value == pytest.approx(0.5) and (first, last, count) == (1000, 5000, 9)
    assert soak.slope(samples, "alloc_mb", 1000) is None  # a figure the samples lack (device memory on CPU)
    short = samples[:3]  # frames 0, 500, 1000: one sample from frame 1,000 on
    assert soak.fit_start(short, 1000) == 500


@pytest.mark.slow
def test_a_tiny_soak_prints_its_table_and_both_slopes():
    require("sam2.build_sam")
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--frames", "60", "--every", "20", "--plain_frames", "20", "--imgsz", "64"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    # the streamed job's samples: frame 0 (the prompt in) and every 20th frame; the slope from frame 20 on (too few from 1,000)
    assert "| frames | RSS MB | RSS vs frame 20 | s | FPS since last |" in out
    assert re.findall(r"^\| (\d+) \| [\d.]+ \| [+-][\d.]+ \|", out, re.MULTILINE)[:4] == ["0", "20", "40", "60"]
    assert "--no-stream, 20 frames (20 propagated" in out
    assert re.search(
        r"^RSS slope: --stream [+-][\d.]+ MB per 1,000 frames \(frames 20-60, 3 samples\); "
        r"--no-stream [+-][\d.]+ MB per 1,000 frames \(frames 2-20, 10 samples\)$",
        out,
        re.MULTILINE,
    )
    assert re.search(r"^goal: --stream under 1 MB per 1,000 frames: RSS (met|NOT met)$", out, re.MULTILINE)
