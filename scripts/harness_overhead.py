"""What the harness costs in a run: overhead_s as a share of wall_s per model on the demo split,
from the CSV of a real run (`run --weights random`). The evaluator's speed against the official
evaluator is scripts/evaluate_speed.py's.

    python scripts/harness_overhead.py [--models static_mask,sam2.1_tiny_points] [--imgsz 256] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))


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
    parser.add_argument("--models", default="static_mask,sam2.1_tiny_points,sam2.1_tiny_mask")
    parser.add_argument("--imgsz", type=int, default=256)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    args = parser.parse_args()
    overhead_table(args.models, args.imgsz, args.device)


if __name__ == "__main__":
    main()
