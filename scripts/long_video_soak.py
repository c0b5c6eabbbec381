"""Memory of one long job: a 20,000-frame video with --stream, its RSS every 500 frames, and how
fast it grows, against the plain path's (--no-stream).

One synthetic SA-V video (small frames, one object prompted on frame 0) runs through the CLI
(`run --weights random --isolation none`) in a process of its own: the real sam2 predictor, the
same job code and harness as any run (stage clock, telemetry sampler, traces, masks kept for
scoring). That process samples itself from the frame counter the propagation loop bumps after each
frame (the one the progress bar reads), so a sample's frame count is exact: the process's RSS
(VmRSS in /proc/self/status) and, on CUDA, the memory torch's allocator holds on the device
(memory_allocated, memory_reserved), every --every frames (and at frame 0, once the prompt is in).
The growth in MB per 1,000 frames is the least-squares slope of the samples from --fit_from on. The
plain path runs a --plain_frames video the same way, sampled ten times as often, for its slope over
its first frames (it decodes every frame up front, in init: that is in its frame-0 sample, not in
its slope). --tracemalloc also compares the Python heap of the streamed job at --fit_from and at
its last sample, and prints where it grew (slow: for finding a leak, not for the figures).
--threads 1 suits a machine that other work shares: torch's thread per core then waits on cores
that others hold (here 1 FPS instead of 12-20); it changes nothing that is kept.

    python scripts/long_video_soak.py [--frames 20000] [--every 500] [--imgsz 64] [--device cpu|cuda]
        [--model sam2.1_tiny_mask] [--plain_frames 1000] [--width 64] [--height 48] [--fit_from 1000]
        [--threads N] [--keep DIR] [--tracemalloc]

The goal: with --stream, RSS (and on CUDA the device's reserved memory) grows by under 1 MB per
1,000 frames.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

GOAL_MB_PER_1000 = 1.0
MODES = {"stream": "--stream", "no-stream": "--no-stream"}
TRACEMALLOC_TOP = 15


# ---------------------------------------------------------------- the measured process


def rss_mb() -> float:
    """This process's resident set (VmRSS), in MB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS in /proc/self/status")


class Recorder:
    """Writes one JSON line per sample; with tracemalloc, compares the heap at two frame counts."""

    def __init__(self, path: Path, device: str, tracemalloc_at: tuple[int, int] | None) -> None:
        self._file = open(path, "w", buffering=1)
        self._device = device
        self._start = time.perf_counter()
        self._tracemalloc_at = tracemalloc_at
        self._first_snapshot = None
        if tracemalloc_at:
            import tracemalloc

            tracemalloc.start(8)

    def sample(self, frames: int) -> None:
        sample = {"frames": frames, "rss_mb": rss_mb(), "s": time.perf_counter() - self._start}
        if self._device == "cuda":
            import torch

            sample["alloc_mb"] = torch.cuda.memory_allocated() / 2**20
            sample["reserved_mb"] = torch.cuda.memory_reserved() / 2**20
        self._file.write(json.dumps(sample) + "\n")
        print(f"  frame {frames}: RSS {sample['rss_mb']:.1f} MB, {sample['s']:.0f} s", file=sys.stderr, flush=True)
        if self._tracemalloc_at:
            self._heap(frames)

    def _heap(self, frames: int) -> None:
        import tracemalloc

        first, last = self._tracemalloc_at
        if frames == first:
            self._first_snapshot = tracemalloc.take_snapshot()
        elif frames == last and self._first_snapshot is not None:
            grown = tracemalloc.take_snapshot().compare_to(self._first_snapshot, "traceback")
            total = sum(stat.size_diff for stat in grown) / 2**20
            print(f"\nPython heap (tracemalloc) from frame {first} to {last}: {total:+.2f} MB; where it grew most:", file=sys.stderr)
            for stat in grown[:TRACEMALLOC_TOP]:
                # the allocating line first, then its callers
                place = " <- ".join(f"{Path(f.filename).name}:{f.lineno}" for f in reversed(stat.traceback))
                print(f"  {stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+7d} blocks  {place}", file=sys.stderr)
            print(file=sys.stderr, flush=True)


def measured_run(args: argparse.Namespace) -> int:
    """--child: the CLI run in this process, sampled by the frame counter its propagation loop bumps."""
    import sav_benchmark.executors as executors
    from sav_benchmark.progress import FrameCounter

    tracemalloc_at = (args.fit_from, args.last_sample) if args.tracemalloc else None
    recorder = Recorder(args.samples, args.device, tracemalloc_at)
    every = args.every

    class SampledCounter(FrameCounter):
        """The in-process executor's frame counter: the loop sets it to 0 before the first frame
        and adds 1 after each frame's masks are kept; every `every`-th count is a sample."""

        def __init__(self) -> None:
            self._value = 0

        @property
        def value(self) -> int:
            return self._value

        @value.setter
        def value(self, count: int) -> None:
            self._value = count
            if count % every == 0:
                recorder.sample(count)

    executors.FrameCounter = SampledCounter
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    sys.argv = [str(REPO / "jetson_benchmark.py"), *args.cli]
    from sav_benchmark.launch import main

    return main()


# ---------------------------------------------------------------- the driver


def run_mode(mode: str, split: Path, work: Path, frames: int, every: int, args: argparse.Namespace) -> tuple[list[dict], dict, float]:
    """One CLI run in a process of its own: its samples (the last of each frame count), its row and
    its wall time."""
    work.mkdir(parents=True, exist_ok=True)
    out, samples = work / f"{mode}.csv", work / f"{mode}.samples.jsonl"
    cli = ["run", "--split_dir", str(split), "--models", args.model, "--weights", "random", "--device", args.device]
    cli += ["--imgsz", str(args.imgsz), "--limit_objects", "1", "--isolation", "none", "--quiet", MODES[mode], "--output", str(out)]
    child = [sys.executable, str(Path(__file__).resolve()), "--child", "--samples", str(samples), "--every", str(every)]
    child += ["--device", args.device, "--fit_from", str(args.fit_from), "--last_sample", str(frames - frames % every)]
    child += ["--tracemalloc"] if args.tracemalloc and mode == "stream" else []
    child += ["--threads", str(args.threads)] if args.threads else []
    print(f"{mode}: {frames} frames, a sample every {every}", file=sys.stderr, flush=True)
    start = time.perf_counter()
    done = subprocess.run([*child, "--", *cli], stdout=sys.stderr, stderr=sys.stderr)
    wall = time.perf_counter() - start
    rows = list(csv.DictReader(out.open())) if out.exists() else []
    if done.returncode != 0 or len(rows) != 1 or rows[0]["status"] != "ok":
        error = rows[0]["error"] if rows else ""
        sys.exit(f"{mode} failed (exit code {done.returncode}) {error}")
    by_frame = {}
    for line in samples.read_text().splitlines():
        sample = json.loads(line)
        by_frame[sample["frames"]] = sample  # frame 0: the one taken as the loop starts
    return [by_frame[k] for k in sorted(by_frame)], rows[0], wall


def slope(samples: list[dict], column: str, first: int) -> tuple[float, int, int, int] | None:
    """MB per 1,000 frames, least squares over the samples from frame `first` on; with the frames
    it spans and the number of samples. None with fewer than 2 samples."""
    points = [(s["frames"], s[column]) for s in samples if s["frames"] >= first and s.get(column) is not None]
    if len(points) < 2:
        return None
    x, y = np.array(points, dtype=float).T
    return 1000.0 * float(np.polyfit(x, y, 1)[0]), int(x[0]), int(x[-1]), len(points)


def fit_start(samples: list[dict], wanted: int) -> int:
    """--fit_from, or where fewer than 2 samples lie from it on, the first sample after frame 0."""
    if sum(s["frames"] >= wanted for s in samples) >= 2:
        return wanted
    return min((s["frames"] for s in samples if s["frames"] > 0), default=0)


def table(samples: list[dict], device: str, base: int) -> str:
    header = ["frames", "RSS MB", f"RSS vs frame {base}"]
    header += ["device alloc MB", "device reserved MB"] if device == "cuda" else []
    header += ["s", "FPS since last"]
    reference = next((s["rss_mb"] for s in samples if s["frames"] == base), samples[0]["rss_mb"])
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    previous = None
    for s in samples:
        cells = [str(s["frames"]), f"{s['rss_mb']:.1f}", f"{s['rss_mb'] - reference:+.1f}"]
        cells += [f"{s['alloc_mb']:.1f}", f"{s['reserved_mb']:.1f}"] if device == "cuda" else []
        fps = (s["frames"] - previous["frames"]) / (s["s"] - previous["s"]) if previous and s["s"] > previous["s"] else None
        cells += [f"{s['s']:.0f}", f"{fps:.1f}" if fps else "-"]
        lines.append("| " + " | ".join(cells) + " |")
        previous = s
    return "\n".join(lines)


def slope_text(fit: tuple[float, int, int, int] | None) -> str:
    if fit is None:
        return "too few samples to fit"
    value, first, last, count = fit
    return f"{value:+.3f} MB per 1,000 frames (frames {first}-{last}, {count} samples)"


def report(args: argparse.Namespace, stream: list[dict], plain: list[dict], rows: dict, walls: dict) -> str:
    first = fit_start(stream, args.fit_from)
    plain_first = min((s["frames"] for s in plain if s["frames"] > 0), default=0)
    lines = [
        f"{args.model}, --imgsz {args.imgsz}, {args.device}, --weights random, {args.width}x{args.height} video, "
        f"one object prompted on frame 0",
        "",
        f"--stream, {args.frames} frames ({rows['stream']['n_propagated']} propagated, {float(rows['stream']['fps']):.1f} FPS, "
        f"{walls['stream']:.0f} s):",
        "",
        table(stream, args.device, first),
        "",
        f"--no-stream, {args.plain_frames} frames ({rows['no-stream']['n_propagated']} propagated, "
        f"{float(rows['no-stream']['fps']):.1f} FPS, {walls['no-stream']:.0f} s):",
        "",
        table(plain, args.device, plain_first),
        "",
    ]
    columns = [("rss_mb", "RSS")] + ([("alloc_mb", "device alloc"), ("reserved_mb", "device reserved")] if args.device == "cuda" else [])
    for column, name in columns:
        lines.append(
            f"{name} slope: --stream {slope_text(slope(stream, column, first))}; "
            f"--no-stream {slope_text(slope(plain, column, plain_first))}"
        )
    judged = "reserved_mb" if args.device == "cuda" else "rss_mb"
    verdicts = []
    for column in sorted({"rss_mb", judged}):
        fit = slope(stream, column, first)
        met = fit is not None and fit[0] < GOAL_MB_PER_1000
        verdicts.append(f"{'RSS' if column == 'rss_mb' else 'device reserved'} {'met' if met else 'NOT met'}")
    lines.append(f"goal: --stream under {GOAL_MB_PER_1000:.0f} MB per 1,000 frames: {', '.join(verdicts)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=20000, help="the streamed video's length (default 20000)")
    parser.add_argument("--every", type=int, default=500, help="a sample every N frames of the streamed job (default 500)")
    parser.add_argument("--imgsz", type=int, default=64, help="model input size (default 64, the smallest SAM 2 takes)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--model", default="sam2.1_tiny_mask")
    parser.add_argument("--plain_frames", type=int, default=1000, help="the --no-stream video's length (default 1000)")
    parser.add_argument("--fit_from", type=int, default=1000, help="the streamed slope is fitted from this frame on (default 1000)")
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--height", type=int, default=48)
    parser.add_argument("--keep", type=Path, help="keep the videos, CSVs and samples in this folder")
    parser.add_argument("--tracemalloc", action="store_true", help="also print where the streamed job's Python heap grew")
    parser.add_argument("--threads", type=int, help="torch's CPU threads (default torch's own: a thread per core)")
    # The measured process (run_mode starts it): the CLI's arguments after --.
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--samples", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--last_sample", type=int, help=argparse.SUPPRESS)
    parser.add_argument("cli", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return measured_run(args)
    if args.every <= 0 or args.frames < args.every or args.plain_frames < 10:
        parser.error("--every must be positive and at most --frames; --plain_frames at least 10")
    start = time.perf_counter()
    from sav_benchmark.split.synthetic import make_split

    with tempfile.TemporaryDirectory() as scratch:
        root = args.keep or Path(scratch)
        splits = {}
        for mode, frames in (("stream", args.frames), ("no-stream", args.plain_frames)):
            made = time.perf_counter()
            splits[mode] = root / f"video_{frames}"
            if not (splits[mode] / "sav_val.txt").exists():
                make_split(splits[mode], videos=1, frames=frames, width=args.width, height=args.height, objects=1)
            print(f"{frames}-frame video: {time.perf_counter() - made:.0f} s", file=sys.stderr)
        plain_every = max(1, args.plain_frames // 10)
        runs = root / time.strftime("runs_%Y%m%d_%H%M%S")  # the CLI refuses an existing --output without --resume
        stream, stream_row, stream_wall = run_mode("stream", splits["stream"], runs, args.frames, args.every, args)
        plain, plain_row, plain_wall = run_mode("no-stream", splits["no-stream"], runs, args.plain_frames, plain_every, args)
    rows, walls = {"stream": stream_row, "no-stream": plain_row}, {"stream": stream_wall, "no-stream": plain_wall}
    print(report(args, stream, plain, rows, walls))
    print(f"\nwall time: {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
