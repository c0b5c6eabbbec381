#!/usr/bin/env python3
"""Check a run's per-object J and F against the official SA-V evaluator, at full precision.

The official evaluator is not part of this project: point --evaluator at the `sav_dataset`
folder of a checkout of the public sam2 repository (it needs scikit-image). Run the benchmark
with --save_masks first, then:

    python scripts/check_against_official.py --evaluator sam2/sav_dataset \
        --csv out.csv --masks masks --gt_root SPLIT/Annotations_6fps

Prints the largest difference per model and exits 1 if any object differs by more than 1e-9
(points of J or F), or if the two disagree on which objects have a score.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import tempfile
from pathlib import Path

TOLERANCE = 1e-9


def official_scores(
    evaluator: Path, gt_root: Path, pred_root: Path, objects: list[tuple[str, str]], skip: bool
) -> dict[tuple[str, str], tuple[float, float]]:
    """The official evaluator's per-object (J, F), on a ground truth narrowed to `objects` by links
    (it requires a prediction for every object it finds, and a run may cover only some)."""
    sys.path.insert(0, str(evaluator))
    from utils.sav_benchmark import benchmark  # the official code, from the user's checkout

    with tempfile.TemporaryDirectory() as narrowed:
        for video, obj in objects:
            (Path(narrowed) / video).mkdir(exist_ok=True)
            (Path(narrowed) / video / obj).symlink_to((gt_root / video / obj).resolve())
        *_, object_metrics = benchmark([narrowed], [str(pred_root)], strict=False, num_processes=1, verbose=False, skip_first_and_last=skip)
    scores = {}
    for video, (iou, boundary_f) in object_metrics[0].items():
        for obj in iou:
            scores[(video, obj)] = (float(iou[obj]), float(boundary_f[obj]))  # already in percent
    return scores


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--evaluator", required=True, type=Path, help="sav_dataset folder of the public sam2 repository")
    parser.add_argument("--csv", required=True, type=Path)
    parser.add_argument("--masks", required=True, type=Path, help="the run's --save_masks folder")
    parser.add_argument("--gt_root", required=True, type=Path, help="the split's Annotations_6fps folder")
    parser.add_argument("--do_not_skip_first_and_last_frame", action="store_true", help="as given to the run")
    args = parser.parse_args()
    all_rows = list(csv.DictReader(args.csv.open()))
    rows = [r for r in all_rows if r["status"] == "ok"]
    unscored = sum(r["status"] == "no_score" for r in all_rows)
    if unscored:  # the official evaluator stops with an AssertionError on such objects
        print(f"left out: {unscored} rows with status no_score (ground truth empty on every evaluated frame)")
    failed = False
    for model in dict.fromkeys(r["model"] for r in rows):
        ours = {(r["video_id"], r["object_id"]): (r["J"], r["F"]) for r in rows if r["model"] == model}
        theirs = official_scores(args.evaluator, args.gt_root, args.masks / model, list(ours), not args.do_not_skip_first_and_last_frame)
        worst = 0.0
        for key, (j, f) in ours.items():
            if key not in theirs:
                print(f"{model} {key}: scored here, not by the official evaluator")
                failed = True
            else:
                worst = max(worst, abs(float(j) - theirs[key][0]), abs(float(f) - theirs[key][1]))
        compared = sum(1 for key in ours if key in theirs)
        failed = failed or not worst <= TOLERANCE or math.isnan(worst)
        print(f"{model:<28} objects compared: {compared:>4}  largest |difference| in J or F: {worst:.3g}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
