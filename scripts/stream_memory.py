"""Peak memory and speed against video length, with --stream and --no-stream.

Synthetic SA-V videos of each length (one object, prompted on frame 0), each run through the CLI
(`run --weights random`) once per mode, in a process of its own. Per run: the job's peak memory
(on CUDA the device's peak allocated and reserved memory, everywhere the process's peak RSS, read
by the kernel's high-water mark from the job's start), FPS, the init time and init plus propagation
(--no-stream decodes every frame in init, --stream while propagating), and whether the two modes
saved the same mask files, byte for byte.

    python scripts/stream_memory.py [--frames 50,200,800] [--imgsz 512] [--device cpu|cuda]
        [--model sam2.1_tiny_mask] [--width 640] [--height 480] [--keep DIR]

The goal: with --stream, the peak at the longest video within 10% of the peak at the shortest,
while --no-stream grows with the length; FPS within noise of --no-stream.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sav_benchmark.split.synthetic import make_split  # noqa: E402

MODES = {"stream": "--stream", "no-stream": "--no-stream"}
GOAL_PCT = 10.0


def run_once(split: Path, work: Path, mode: str, args: argparse.Namespace) -> dict[str, str]:
    """One CLI run in its own process; its row."""
    out = work / f"{mode}.csv"
    command = [
        sys.executable,
        str(REPO / "jetson_benchmark.py"),
        "--split_dir",
        str(split),
        "--models",
        args.model,
        "--weights",
        "random",
        "--device",
        args.device,
        "--imgsz",
        str(args.imgsz),
        "--limit_objects",
        "1",
        "--quiet",
        MODES[mode],
        "--output",
        str(out),
        "--save_masks",
        str(work / f"{mode}_masks"),
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    rows = list(csv.DictReader(out.open())) if out.exists() else []
    if result.returncode != 0 or len(rows) != 1 or rows[0]["status"] != "ok":
        sys.exit(f"{mode} on {split.name} failed (exit code {result.returncode}):\n{result.stderr[-2000:]}")
    return rows[0]


def saved_masks(folder: Path) -> dict[Path, bytes]:
    return {path.relative_to(folder): path.read_bytes() for path in folder.rglob("*.png")}


def cell(value: str, digits: int = 0) -> str:
    return f"{float(value):.{digits}f}" if value else "-"


def measure(args: argparse.Namespace, root: Path) -> list[dict[str, object]]:
    results = []
    for frames in args.frames:
        split = root / f"video_{frames}"
        make_split(split, videos=1, frames=frames, width=args.width, height=args.height, objects=1)
        rows = {mode: run_once(split, root / f"runs_{frames}", mode, args) for mode in MODES}
        identical = saved_masks(root / f"runs_{frames}" / "stream_masks") == saved_masks(root / f"runs_{frames}" / "no-stream_masks")
        for mode, row in rows.items():
            results.append({"frames": frames, "mode": mode, "row": row, "identical": identical})
            print(f"  {frames} frames, {mode}: peak RSS {cell(row['peak_rss_mb'])} MB, {cell(row['fps'], 2)} FPS", file=sys.stderr)
    return results


def table(results: list[dict[str, object]]) -> str:
    shortest = {r["mode"]: float(r["row"]["peak_rss_mb"]) for r in results if r["frames"] == min(x["frames"] for x in results)}
    header = [
        "frames",
        "mode",
        "peak RSS MB",
        "vs shortest",
        "peak device alloc MB",
        "peak device reserved MB",
        "FPS",
        "init s",
        "init + propagate s",
        "masks equal",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for r in results:
        row = r["row"]
        growth = 100.0 * (float(row["peak_rss_mb"]) / shortest[r["mode"]] - 1.0)
        cells = [
            str(r["frames"]),
            r["mode"],
            cell(row["peak_rss_mb"]),
            f"{growth:+.1f}%",
            cell(row["peak_alloc_mb"]),
            cell(row["peak_reserved_mb"]),
            cell(row["fps"], 2),
            cell(row["init_s"], 2),
            f"{float(row['init_s']) + float(row['propagate_s']):.1f}",
            "yes" if r["identical"] else "NO",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def verdict(results: list[dict[str, object]], device: str) -> str:
    """Whether the streaming peak at the longest video is within GOAL_PCT of the shortest's: RSS,
    and on CUDA the device's reserved memory (what the allocator holds)."""
    column = "peak_reserved_mb" if device == "cuda" else "peak_rss_mb"
    streamed = sorted((r for r in results if r["mode"] == "stream"), key=lambda r: r["frames"])
    first, last = float(streamed[0]["row"][column]), float(streamed[-1]["row"][column])
    growth = 100.0 * (last / first - 1.0)
    met = "met" if growth <= GOAL_PCT else "NOT met"
    identical = "all masks equal" if all(r["identical"] for r in results) else "MASKS DIFFER"
    return (
        f"--stream {column} at {streamed[-1]['frames']} frames: {growth:+.1f}% against {streamed[0]['frames']} frames "
        f"(goal at most +{GOAL_PCT:.0f}%: {met}); {identical}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--frames", type=lambda text: [int(n) for n in text.split(",")], default=[50, 200, 800], help="video lengths (default 50,200,800)"
    )
    parser.add_argument("--imgsz", type=int, default=512, help="model input size (default 512)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--model", default="sam2.1_tiny_mask")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--keep", type=Path, help="keep the videos, CSVs and masks in this folder")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        root = args.keep or Path(scratch)
        results = measure(args, root)
    print(f"{args.model}, --imgsz {args.imgsz}, {args.device}, {args.width}x{args.height} videos, one object prompted on frame 0\n")
    print(table(results))
    print("\n" + verdict(results, args.device))
    return 0


if __name__ == "__main__":
    sys.exit(main())
