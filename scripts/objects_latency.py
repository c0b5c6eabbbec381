"""What tracking K objects costs per frame, with --objects separate and --objects together.

For each K, a synthetic SA-V video with K objects, all prompted on frame 0, is run through the CLI
(`run --weights random`) once per mode, the modes alternated, each run in a process of its own.
Separate, the video's K jobs each propagate every frame for one object, so a frame of all K
objects costs the sum of their per-frame latencies; together, one job propagates every frame for
all K (one image encoding per frame). Per K and mode: that per-frame latency (the jobs' medians,
summed for separate), the frames per second it gives for all K objects, and the run's wall time
(the manifest's wall_s: builds, inits and scoring included). With --repeats R each figure is the
median of R alternated runs.

    python scripts/objects_latency.py [--objects 1,2,4,8] [--frames 25] [--imgsz 256] [--device cpu|cuda]
        [--model sam2.1_tiny_mask] [--repeats 1] [--width 320] [--height 240]
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sav_benchmark.split.synthetic import make_split  # noqa: E402

MODES = ("separate", "together")
VIDEO = "synth_001"  # make_split's second video: every object from frame 0 (the first has one entering late)


def run_once(split: Path, out: Path, mode: str, args: argparse.Namespace) -> tuple[float, float]:
    """One CLI run; (per-frame latency of all the video's objects in ms, the run's wall time in s)."""
    command = [
        sys.executable, str(REPO / "jetson_benchmark.py"), "--split_dir", str(split), "--video_ids", VIDEO,
        "--models", args.model, "--weights", "random", "--imgsz", str(args.imgsz), "--device", args.device,
        "--autocast_dtype", "float32" if args.device == "cpu" else "bfloat16", "--objects", mode, "--quiet", "--output", str(out),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"the run failed (exit code {done.returncode}):\n{done.stderr[-3000:]}")
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    if {row["tracking"] for row in rows} != {mode}:
        sys.exit(f"{out}: not every object was tracked {mode}")
    latencies = [float(row["latency_ms_p50"]) for row in rows]
    wall = json.loads(Path(f"{out}.json").read_text())["wall_s"]
    # separate: one job per object, each paying its frames; together: every row is the one shared job's
    return (sum(latencies) if mode == "separate" else latencies[0]), wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", default="1,2,4,8", help="the numbers of objects to measure, comma-separated")
    parser.add_argument("--frames", type=int, default=25)
    parser.add_argument("--imgsz", type=int, default=256)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model", default="sam2.1_tiny_mask")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    args = parser.parse_args()
    counts = [int(k) for k in args.objects.split(",")]
    print(f"{args.model}, {args.imgsz} px, {args.device}, random weights, one video of {args.frames} frames; median of {args.repeats} runs")
    print(
        "| objects | separate ms/frame | together ms/frame | separate FPS | together FPS | together speed-up "
        "| separate wall s | together wall s |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        for k in counts:
            split = work / f"split_{k}"
            make_split(split, videos=2, frames=args.frames, width=args.width, height=args.height, objects=k)
            measured: dict[str, list[tuple[float, float]]] = {mode: [] for mode in MODES}
            for repeat in range(args.repeats):
                for mode in MODES if repeat % 2 == 0 else MODES[::-1]:  # alternated, so drift hits both
                    measured[mode].append(run_once(split, work / f"{k}_{mode}_{repeat}.csv", mode, args))
            latency = {mode: statistics.median(ms for ms, _ in runs) for mode, runs in measured.items()}
            wall = {mode: statistics.median(s for _, s in runs) for mode, runs in measured.items()}
            print(
                f"| {k} | {latency['separate']:.0f} | {latency['together']:.0f} | {1000 / latency['separate']:.2f} | "
                f"{1000 / latency['together']:.2f} | {latency['separate'] / latency['together']:.2f}x | {wall['separate']:.1f} | "
                f"{wall['together']:.1f} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
