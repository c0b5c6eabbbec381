"""What the harness costs, in two tables.

1. The evaluator: `jetson_benchmark.py evaluate`'s code against the in-repo reference
   (scripts/reference_evaluator.py: the spec computed directly on full frames, as the official
   evaluator computes it) and, with --official, the official SA-V evaluator itself run with one
   process. Synthetic SA-V-style masks at 480p (848x480) and 1080p (1920x1080): moving blobs,
   predictions that drift, shrink and get lost, stored as sam2's tools/vos_inference.py stores
   predictions (palette PNGs of 0 and 1, zlib level 6). The numbers must be identical.
2. The run: overhead_s as a share of wall_s per model on the demo split, from the CSV of a real
   run (`run --weights random` on the CPU).

    python scripts/harness_overhead.py [--official PATH/sav_dataset] [--official_python PYTHON]
        [--skip_run] [--models static_mask,sam2.1_tiny_points] [--imgsz 256] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import csv
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from reference_evaluator import evaluate_folders  # noqa: E402

from sav_benchmark.evaluate import Options, evaluate, find_videos, scoring_threads  # noqa: E402
from sav_benchmark.masks import write_ids  # noqa: E402

SIZES = {"480p": (480, 848), "1080p": (1080, 1920)}
VIDEOS, OBJECTS, ANNOTATED = 3, 3, 26
PIL_COMPRESSION = 6
REPEATS = 3  # of our evaluator, which takes seconds; the reference and the official run once


def blob(height: int, width: int, centre: tuple[float, float], axes: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    """A filled polygon around an ellipse with a ragged outline."""
    angles = np.linspace(0, 2 * np.pi, 90, endpoint=False)
    radius = 1 + 0.04 * rng.standard_normal(angles.size)
    points = np.stack([centre[0] + axes[0] * radius * np.cos(angles), centre[1] + axes[1] * radius * np.sin(angles)], axis=1)
    mask = np.zeros((height, width), np.uint8)
    cv2.fillPoly(mask, [points.astype(np.int32)], 1)
    return mask


def make_masks(root: Path, height: int, width: int, seed: int = 0) -> int:
    """GT and predictions for VIDEOS x OBJECTS objects; returns the number of evaluated frames."""
    rng = np.random.default_rng(seed)
    for video in range(VIDEOS):
        for obj in range(OBJECTS):
            axes = (rng.uniform(0.03, 0.25) * width, rng.uniform(0.03, 0.25) * height)
            centre = np.array([rng.uniform(0.25, 0.75) * width, rng.uniform(0.25, 0.75) * height])
            lost = set(rng.choice(ANNOTATED, 3, replace=False).tolist())  # frames the prediction loses it
            for i in range(ANNOTATED):
                centre += rng.normal(0, 0.01, 2) * (width, height)
                gt = blob(height, width, tuple(centre), axes, rng)
                drift = centre + rng.normal(0, 0.005, 2) * (width, height)
                pred = (
                    np.zeros_like(gt) if i in lost else blob(height, width, tuple(drift), (axes[0] * rng.uniform(0.85, 1.1), axes[1]), rng)
                )
                name = f"sav_{video:06d}/{obj:03d}/{4 * i:05d}.png"
                write_ids(root / "gt" / name, gt, PIL_COMPRESSION)
                write_ids(root / "pred" / name, pred, PIL_COMPRESSION)
    return VIDEOS * OBJECTS * (ANNOTATED - 2)


def time_ours(root: Path, threads: int | None = None) -> tuple[float, dict]:
    """Our evaluator with one process; threads: decoding and scoring threads (default: as the command sets them)."""
    _, videos = find_videos(str(root / "gt"), str(root / "pred"), strict=True)
    threads = threads or scoring_threads(1, len(videos))
    evaluation = evaluate(Options(root / "gt", root / "pred", threads=threads), videos, processes=1)
    scores = {(r.name, key): (j, f) for r in evaluation.results for key, j, f in r.scores}
    return evaluation.seconds, scores


def median_of(repeats: int, timed: Callable[[], tuple[float, dict]]) -> tuple[float, dict]:
    """The median time of a few runs (the first runs after writing the files are the noisiest)."""
    runs = [timed() for _ in range(repeats)]
    return float(np.median([seconds for seconds, _ in runs])), runs[0][1]


def time_reference(root: Path) -> tuple[float, dict]:
    start = time.perf_counter()
    scores = evaluate_folders(root / "gt", root / "pred")
    return time.perf_counter() - start, scores


def time_official(root: Path, official: Path, python: str) -> tuple[float, str]:
    """The official evaluator with one process: its own "Time taken", and its results.csv."""
    out = subprocess.run(
        [python, "sav_evaluator.py", "--gt_root", str(root / "gt"), "--pred_root", str(root / "pred"), "--num_processes", "1"],
        cwd=official,
        capture_output=True,
        text=True,
        check=True,
    )
    seconds = float(re.search(r"Time taken: ([0-9.]+)s", out.stdout).group(1))
    return seconds, (root / "pred" / "results.csv").read_text()


def ours_results_csv(root: Path) -> str:
    """Our results.csv for the same folders, written by the command itself."""
    subprocess.run(
        [
            sys.executable,
            str(REPO / "jetson_benchmark.py"),
            "evaluate",
            "--gt_root",
            str(root / "gt"),
            "--pred_root",
            str(root / "pred"),
            "-n",
            "1",
            "-q",
        ],
        check=True,
        capture_output=True,
    )
    return (root / "pred" / "results.csv").read_text()


def largest_difference(ours: dict, reference: dict) -> float:
    if set(ours) != {key for key, value in reference.items() if value is not None}:
        return float("inf")
    return max(abs(a - b) for key in ours for a, b in zip(ours[key], reference[key]))


def evaluator_table(official: Path | None, python: str) -> None:
    print(f"Evaluator: seconds for all evaluated frames, one process (ours: median of {REPEATS} runs, with its default threads and with 1)")
    header = [
        "masks",
        "frames",
        "evaluate",
        "1 thread",
        "reference",
        "official",
        "x ref",
        "x official",
        "max |dJ|,|dF| vs ref",
        "results.csv = official's",
    ]
    rows = []
    for label, (height, width) in SIZES.items():
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            frames = make_masks(root, height, width)
            ours_s, ours = median_of(REPEATS, lambda: time_ours(root))
            single_s, _ = median_of(REPEATS, lambda: time_ours(root, threads=1))
            ref_s, reference = time_reference(root)
            row = [label, str(frames), f"{ours_s:.2f}", f"{single_s:.2f}", f"{ref_s:.2f}"]
            if official:
                official_s, official_csv = time_official(root, official, python)
                same = "yes" if ours_results_csv(root) == official_csv else "NO"
                row += [f"{official_s:.2f}", f"{ref_s / ours_s:.1f}", f"{official_s / ours_s:.1f}"]
            else:
                same = "-"
                row += ["-", f"{ref_s / ours_s:.1f}", "-"]
            row += [f"{largest_difference(ours, reference):.1e}", same]
            rows.append(row)
    print_table(header, rows)


def print_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows)]
    for row in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(cell.rjust(w) for cell, w in zip(row, widths)))
    print()


def overhead_table(models: str, imgsz: int, device: str) -> None:
    """A real run on the demo split; overhead share per model from its CSV."""
    with tempfile.TemporaryDirectory() as tmp:
        split, output = Path(tmp) / "demo", Path(tmp) / "run.csv"
        subprocess.run([sys.executable, "-m", "sav_benchmark.synthetic", "--out", str(split)], cwd=REPO, check=True, capture_output=True)
        start = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                str(REPO / "jetson_benchmark.py"),
                "run",
                "--split_dir",
                str(split),
                "--models",
                models,
                "--weights",
                "random",
                "--device",
                device,
                "--imgsz",
                str(imgsz),
                "--output",
                str(output),
                "--save_masks",
                str(Path(tmp) / "masks"),
                "--quiet",
            ],
            cwd=REPO,
            check=True,
            capture_output=True,
        )
        run_s = time.perf_counter() - start
        with open(output, newline="") as f:
            rows = list(csv.DictReader(f))
    print(
        f"Run overhead on the demo split (--weights random --device {device} --imgsz {imgsz} --save_masks; the command took {run_s:.1f} s)"
    )
    table = []
    for model in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == model and r["wall_s"]]
        wall = sum(float(r["wall_s"]) for r in mine)
        overhead = sum(float(r["overhead_s"]) for r in mine)
        table.append([model, str(len(mine)), f"{wall:.2f}", f"{overhead:.3f}", f"{100 * overhead / wall:.2f}%"])
    print_table(["model", "jobs", "wall_s", "overhead_s", "overhead share"], table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--official", type=Path, help="the official evaluator's folder (sam2's sav_dataset/, with sav_evaluator.py)")
    parser.add_argument("--official_python", default=sys.executable, help="a Python with the official evaluator's requirements")
    parser.add_argument("--skip_run", action="store_true", help="only the evaluator table")
    parser.add_argument("--models", default="static_mask,sam2.1_tiny_points,sam2.1_tiny_mask")
    parser.add_argument("--imgsz", type=int, default=256)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    args = parser.parse_args()
    evaluator_table(args.official, args.official_python)
    if not args.skip_run:
        overhead_table(args.models, args.imgsz, args.device)


if __name__ == "__main__":
    main()
