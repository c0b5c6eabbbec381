"""`evaluate` against the official SA-V evaluator, vos-benchmark and the floor, in both layouts.

Synthetic masks at 480p (848x480) and 1080p (1920x1080): 3 videos x 3 objects x 26 annotated
frames of moving ragged blobs, predictions that drift, shrink and get lost, stored as sam2's
`tools/vos_inference.py` stores predictions (palette PNGs, zlib level 6). The SA-V layout holds one
binary PNG per object and frame (`<video>/<object>/<frame>.png`); the DAVIS layout the same objects
as one label map per frame (`<video>/<frame>.png`), so both have 216 evaluated object-frames.

Per layout and size, in seconds for all evaluated frames, one process each:
- `evaluate`: this package's evaluator, median of 3 runs, with its default thread pool and with 1
  thread; J and F compared with the in-repo reference (scripts/reference_evaluator.py, SA-V only);
- `official`: sam2's `sav_dataset/sav_evaluator.py --num_processes 1` (its own "Time taken"), and
  whether our results.csv equals its results.csv byte for byte;
- `vos-benchmark`: `vos_benchmark.benchmark(..., num_processes=1)` (it reads label maps only, so
  DAVIS layout only);
- `floor`: reading the same PNG files and inflating their image data with zlib, nothing else, on
  the same thread pool (and on one thread): what no evaluator of these files can go below.

    python scripts/evaluate_speed.py --official /tmp/official/sav_dataset --official_python /tmp/offenv/bin/python

`--official_python` needs the official evaluator's requirements (scikit-image, opencv, pillow,
tqdm) and, for the vos-benchmark column, `pip install vos-benchmark`.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
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
LAYOUTS = ("sav", "davis")
VIDEOS, OBJECTS, ANNOTATED = 3, 3, 26
PIL_COMPRESSION = 6
REPEATS = 3  # of our evaluator and the floor, which take seconds; the others run once
VOS_BENCHMARK = """
import sys, time
from vos_benchmark.benchmark import benchmark
start = time.perf_counter()
benchmark([sys.argv[1]], [sys.argv[2]], num_processes=1, verbose=False)
print(time.perf_counter() - start)
"""


def blob(height: int, width: int, centre: tuple[float, float], axes: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    """A filled polygon around an ellipse with a ragged outline."""
    angles = np.linspace(0, 2 * np.pi, 90, endpoint=False)
    radius = 1 + 0.04 * rng.standard_normal(angles.size)
    points = np.stack([centre[0] + axes[0] * radius * np.cos(angles), centre[1] + axes[1] * radius * np.sin(angles)], axis=1)
    mask = np.zeros((height, width), np.uint8)
    cv2.fillPoly(mask, [points.astype(np.int32)], 1)
    return mask


def object_track(height: int, width: int, rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    """(ground truth, prediction) of one object on each annotated frame."""
    axes = (rng.uniform(0.03, 0.25) * width, rng.uniform(0.03, 0.25) * height)
    centre = np.array([rng.uniform(0.25, 0.75) * width, rng.uniform(0.25, 0.75) * height])
    lost = set(rng.choice(ANNOTATED, 3, replace=False).tolist())  # frames the prediction loses it
    track = []
    for i in range(ANNOTATED):
        centre += rng.normal(0, 0.01, 2) * (width, height)
        gt = blob(height, width, tuple(centre), axes, rng)
        drift = centre + rng.normal(0, 0.005, 2) * (width, height)
        pred = np.zeros_like(gt) if i in lost else blob(height, width, tuple(drift), (axes[0] * rng.uniform(0.85, 1.1), axes[1]), rng)
        track.append((gt, pred))
    return track


def make_masks(root: Path, layout: str, height: int, width: int, seed: int = 0) -> int:
    """GT and predictions in the layout; returns the number of evaluated object-frames."""
    rng = np.random.default_rng(seed)
    for video in range(VIDEOS):
        tracks = [object_track(height, width, rng) for _ in range(OBJECTS)]
        for i in range(ANNOTATED):
            if layout == "sav":
                for obj, track in enumerate(tracks):
                    for kind, mask in zip(("gt", "pred"), track[i]):
                        write_ids(root / kind / f"sav_{video:06d}/{obj:03d}/{4 * i:05d}.png", mask, PIL_COMPRESSION)
                continue
            for k, kind in enumerate(("gt", "pred")):
                labels = np.zeros((height, width), np.uint8)
                for obj, track in enumerate(tracks):
                    labels[track[i][k] > 0] = obj + 1  # later objects in front
                write_ids(root / kind / f"video_{video:03d}/{i:05d}.png", labels, PIL_COMPRESSION)
    return VIDEOS * OBJECTS * (ANNOTATED - 2)


def time_ours(root: Path, threads: int | None = None) -> tuple[float, dict]:
    """Our evaluator with one process; threads: decoding and scoring threads (default: as the command sets them)."""
    _, videos = find_videos(str(root / "gt"), str(root / "pred"), strict=True)
    threads = threads or scoring_threads(1, len(videos))
    evaluation = evaluate(Options(root / "gt", root / "pred", threads=threads), videos, processes=1)
    scores = {(r.name, str(key)): (j, f) for r in evaluation.results for key, j, f in r.scores}
    return evaluation.seconds, scores


def evaluated_pngs(root: Path) -> list[Path]:
    """Every PNG the evaluators read: ground truth and prediction of each evaluated frame."""
    paths = []
    for folder in sorted({p.parent for p in (root / "gt").rglob("*.png")}):
        for name in sorted(os.listdir(folder))[1:-1]:
            paths += [folder / name, root / "pred" / folder.relative_to(root / "gt") / name]
    return paths


def inflate(path: Path) -> int:
    """Read a PNG and inflate its image data; nothing else."""
    data = path.read_bytes()
    idat, at = [], 8
    while at < len(data):
        length = int.from_bytes(data[at : at + 4], "big")
        if data[at + 4 : at + 8] == b"IDAT":
            idat.append(data[at + 8 : at + 8 + length])
        at += 12 + length
    return len(zlib.decompress(b"".join(idat)))


def time_floor(paths: list[Path], threads: int) -> tuple[float, dict]:
    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        sum(pool.map(inflate, paths))
    return time.perf_counter() - start, {}


def median_of(repeats: int, timed: Callable[[], tuple[float, dict]]) -> tuple[float, dict]:
    """The median time of a few runs (the first runs after writing the files are the noisiest)."""
    runs = [timed() for _ in range(repeats)]
    return float(np.median([seconds for seconds, _ in runs])), runs[0][1]


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


def time_vos_benchmark(root: Path, python: str) -> str:
    out = subprocess.run([python, "-c", VOS_BENCHMARK, str(root / "gt"), str(root / "pred")], capture_output=True, text=True)
    if out.returncode != 0:
        return "n/a"  # not installed for that Python
    return f"{float(out.stdout.split()[-1]):.2f}"


def ours_results_csv(root: Path) -> str:
    """Our results.csv for the same folders, written by the command itself."""
    command = [sys.executable, str(REPO / "jetson_benchmark.py"), "evaluate", "--gt_root", str(root / "gt")]
    subprocess.run(command + ["--pred_root", str(root / "pred"), "-n", "1", "-q"], check=True, capture_output=True)
    return (root / "pred" / "results.csv").read_text()


def largest_difference(ours: dict, reference: dict) -> str:
    if set(ours) != {key for key, value in reference.items() if value is not None}:
        return "objects differ"
    return f"{max(abs(a - b) for key in ours for a, b in zip(ours[key], reference[key])):.1e}"


HEADER = [
    "layout",
    "masks",
    "frames",
    "evaluate",
    "1 thread",
    "floor",
    "floor 1 thread",
    "official",
    "vos-benchmark",
    "x official",
    "evaluate / floor",
    "max |dJ|,|dF| vs ref",
    "results.csv = official's",
]


def measure(layout: str, label: str, official: Path | None, python: str) -> list[str]:
    height, width = SIZES[label]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        frames = make_masks(root, layout, height, width)
        threads = scoring_threads(1, VIDEOS)
        paths = evaluated_pngs(root)
        ours_s, ours = median_of(REPEATS, lambda: time_ours(root))
        single_s, _ = median_of(REPEATS, lambda: time_ours(root, threads=1))
        floor_s, _ = median_of(REPEATS, lambda: time_floor(paths, threads))
        floor_single_s, _ = median_of(REPEATS, lambda: time_floor(paths, 1))
        difference = largest_difference(ours, evaluate_folders(root / "gt", root / "pred")) if layout == "sav" else "-"
        official_s, same = "-", "-"
        if official:
            seconds, official_csv = time_official(root, official, python)
            official_s, same = f"{seconds:.2f}", "yes" if ours_results_csv(root) == official_csv else "NO"
        vos = time_vos_benchmark(root, python) if layout == "davis" else "-"
        ratio = f"{float(official_s) / ours_s:.1f}" if official else "-"
        return [layout, label, str(frames), f"{ours_s:.2f}", f"{single_s:.2f}", f"{floor_s:.2f}", f"{floor_single_s:.2f}"] + [
            official_s,
            vos,
            ratio,
            f"{ours_s / floor_s:.1f}",
            difference,
            same,
        ]


def print_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows)]
    for row in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(cell.rjust(w) for cell, w in zip(row, widths)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--official", type=Path, help="the official evaluator's folder (sam2's sav_dataset/, with sav_evaluator.py)")
    parser.add_argument("--official_python", default=sys.executable, help="a Python with the official evaluator's requirements")
    parser.add_argument("--sizes", default=",".join(SIZES), help="of " + ", ".join(SIZES))
    parser.add_argument("--layouts", default=",".join(LAYOUTS), help="of " + ", ".join(LAYOUTS))
    args = parser.parse_args()
    print(
        f"Seconds for all evaluated frames, one process ({os.cpu_count()} cores; evaluate and floor: median of {REPEATS} runs, "
        f"default threads {scoring_threads(1, VIDEOS)} and 1)"
    )
    rows = [
        measure(layout, label, args.official, args.official_python) for layout in args.layouts.split(",") for label in args.sizes.split(",")
    ]
    print_table(HEADER, rows)


if __name__ == "__main__":
    main()
