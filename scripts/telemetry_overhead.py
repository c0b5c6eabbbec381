#!/usr/bin/env python3
"""What telemetry costs: FPS with the background sampler on vs off, on the demo split.

Runs the benchmark several times in each mode, alternating them so that drift in the machine
(heat, other load) touches every mode alike, and prints per mode the median FPS over all jobs and
the median of the per-job FPS ratios against telemetry off (jobs paired by video, object and
repeat). "off vs off" compares two repeats of the same mode: the noise that any difference must
exceed to mean something.

    python scripts/telemetry_overhead.py                  # CPU, sam2.1_tiny_points, 256 px, random weights
    python scripts/telemetry_overhead.py --device cuda --imgsz 1024 --repeats 5
"""

from __future__ import annotations

import argparse
import csv
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_once(workdir: Path, split: Path, args: argparse.Namespace, mode: list[str], tag: str) -> dict[tuple[str, str], float]:
    out = workdir / f"{tag}.csv"
    command = [
        sys.executable,
        str(ROOT / "jetson_benchmark.py"),
        "--split_dir",
        str(split),
        "--models",
        args.model,
        "--weights",
        "random",
        "--imgsz",
        str(args.imgsz),
        "--device",
        args.device,
        "--output",
        str(out),
        "--quiet",
        *mode,
    ]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if result.returncode != 0:
        sys.exit(f"telemetry_overhead.py: the run {tag} failed:\n{result.stderr}")
    return {(r["video_id"], r["object_id"]): float(r["fps"]) for r in csv.DictReader(out.open()) if r["status"] == "ok"}


def paired_ratio(runs: list[dict], reference: list[dict]) -> float:
    ratios = [run[key] / ref[key] for run, ref in zip(runs, reference) for key in run if key in ref]
    return statistics.median(ratios)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="sam2.1_tiny_points")
    parser.add_argument("--imgsz", type=int, default=256)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3, help="runs per mode, at least 2 (default 3)")
    parser.add_argument("--interval_ms", type=int, nargs="+", default=[100, 10], help="sampling intervals to try (default 100 10)")
    args = parser.parse_args()
    if args.repeats < 2:
        parser.error("--repeats must be at least 2: the noise is two runs of the same mode compared")
    sys.path.insert(0, str(ROOT))
    from sav_benchmark.split.synthetic import make_split

    modes = {
        "off": ["--telemetry", "off"],
        **{f"auto @{ms} ms": ["--telemetry", "auto", "--telemetry_interval_ms", str(ms)] for ms in args.interval_ms},
    }
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        split = workdir / "demo_split"
        make_split(split)  # the demo's split: scripts/demo.sh makes the same one
        fps: dict[str, list[dict]] = {name: [] for name in modes}
        for repeat in range(args.repeats):
            for index, (name, flags) in enumerate(modes.items()):
                fps[name].append(run_once(workdir, split, args, flags, f"r{repeat}_{index}"))
                print(f"repeat {repeat + 1}/{args.repeats}: {name} done", file=sys.stderr)
    print(f"{args.model} on the demo split, {args.device}, {args.imgsz} px, random weights, {args.repeats} repeats per mode\n")
    print("| mode | jobs | FPS median | FPS vs off (median paired ratio) |\n|---|---:|---:|---:|")
    for name, runs in fps.items():
        values = [v for run in runs for v in run.values()]
        reference = fps["off"][1:] if name == "off" else fps["off"]
        label = "off vs off (noise)" if name == "off" else name
        ratio = paired_ratio(runs[:-1] if name == "off" else runs, reference)
        print(f"| {label} | {len(values)} | {statistics.median(values):.2f} | {ratio:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
