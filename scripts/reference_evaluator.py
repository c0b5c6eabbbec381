"""The in-repo reference for `jetson_benchmark.py evaluate`: SPEC-metrics implemented directly,
the way the official SA-V evaluator computes it. Every frame is decoded with OpenCV, checked with
np.unique, and scored on the full frame: full-frame boundary maps, each dilated by the disk of
radius ceil(0.008 x diagonal) with cv2.dilate.

It shares no scoring code with sav_benchmark (only the spec), so the two agreeing checks both;
tests/test_evaluate.py checks it against the per-pixel loops of tests/reference_metrics.py.
Only the SA-V layout (one binary PNG per object and frame) is read. Used by
scripts/evaluate_speed.py, which times it against the package's evaluator.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import cv2
import numpy as np


def read_binary(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ValueError(f"cannot read {path}")
    if len(np.unique(image)) > 2:
        raise ValueError(f"{path} holds more than one object")
    return image.any(axis=2) if image.ndim == 3 else image > 0


def boundary(mask: np.ndarray) -> np.ndarray:
    """SPEC-metrics' boundary: a pixel that differs from its east, south or south-east neighbour,
    where the mask continues unchanged past its last row and column (so the last row compares
    only eastward, the last column only southward, and the bottom-right corner never counts).
    The continuation is np.pad's edge mode."""
    grown = np.pad(mask, ((0, 1), (0, 1)), mode="edge")
    here = grown[:-1, :-1]
    return (here != grown[:-1, 1:]) | (here != grown[1:, :-1]) | (here != grown[1:, 1:])


def disk(radius: int) -> np.ndarray:
    offsets = np.arange(-radius, radius + 1)
    return (offsets[:, None] ** 2 + offsets[None, :] ** 2 <= radius**2).astype(np.uint8)


def frame_jf(pred: np.ndarray, gt: np.ndarray) -> tuple[float, float]:
    union = np.count_nonzero(pred | gt)
    j = 1.0 if union == 0 else np.count_nonzero(pred & gt) / union
    pred_b, gt_b = boundary(pred), boundary(gt)
    n_pred, n_gt = np.count_nonzero(pred_b), np.count_nonzero(gt_b)
    if n_pred == 0 or n_gt == 0:
        precision = 1.0 if n_pred == 0 else 0.0
        recall = 1.0 if n_gt == 0 else 0.0
    else:
        kernel = disk(math.ceil(0.008 * math.hypot(*gt.shape)))
        precision = np.count_nonzero(pred_b & cv2.dilate(gt_b.astype(np.uint8), kernel).astype(bool)) / n_pred
        recall = np.count_nonzero(gt_b & cv2.dilate(pred_b.astype(np.uint8), kernel).astype(bool)) / n_gt
    f = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return j, f


def evaluate_object(gt_dir: Path, pred_dir: Path, skip_first_and_last: bool = True) -> tuple[float, float] | None:
    """(J, F) in percent of one SA-V object folder; None when it has no score."""
    frames = sorted(name for name in os.listdir(gt_dir) if name.endswith(".png"))
    if skip_first_and_last:
        frames = frames[1:-1]
    js, fs, started, gt_seen = [], [], False, False
    for frame in frames:
        gt, pred = read_binary(gt_dir / frame), read_binary(pred_dir / frame)
        if gt.shape != pred.shape:
            raise ValueError(f"{pred_dir / frame}: size differs from the ground truth")
        gt_seen = gt_seen or bool(gt.any())
        started = started or bool(gt.any()) or bool(pred.any())
        if started:
            j, f = frame_jf(pred, gt)
            js.append(j)
            fs.append(f)
    if not gt_seen:
        return None
    return 100 * float(np.mean(js)), 100 * float(np.mean(fs))


def evaluate_folders(gt_root: Path, pred_root: Path) -> dict[tuple[str, str], tuple[float, float] | None]:
    """Every (video, object) of an SA-V ground-truth folder."""
    scores = {}
    for video in sorted(p.name for p in gt_root.iterdir() if p.is_dir()):
        for obj in sorted(p.name for p in (gt_root / video).iterdir() if p.is_dir()):
            scores[video, obj] = evaluate_object(gt_root / video / obj, pred_root / video / obj)
    return scores
