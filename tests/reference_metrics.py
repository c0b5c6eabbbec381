"""A deliberately plain implementation of SPEC-metrics for tests: per-pixel loops, no OpenCV.

It shares no code with sav_benchmark.metrics, so agreement between the two checks both.
"""

from __future__ import annotations

import math

import numpy as np


def boundary(mask: np.ndarray) -> np.ndarray:
    h, w = mask.shape
    m = mask.astype(bool)

    def at(y: int, x: int) -> bool:
        return bool(m[y, x]) if y < h and x < w else False

    out = np.zeros((h, w), bool)
    for y in range(h):
        for x in range(w):
            if y == h - 1 and x == w - 1:
                continue
            if x == w - 1:
                out[y, x] = at(y, x) != at(y + 1, x)
            elif y == h - 1:
                out[y, x] = at(y, x) != at(y, x + 1)
            else:
                out[y, x] = at(y, x) != at(y, x + 1) or at(y, x) != at(y + 1, x) or at(y, x) != at(y + 1, x + 1)
    return out


def dilate_by_shifts(mask: np.ndarray, radius: int) -> np.ndarray:
    """Union of the mask shifted by every disk offset, zero-padded (no OpenCV)."""
    h, w = mask.shape
    padded = np.zeros((h + 2 * radius, w + 2 * radius), bool)
    padded[radius : radius + h, radius : radius + w] = mask
    out = np.zeros((h, w), bool)
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            if dx * dx + dy * dy <= radius * radius:
                out |= padded[radius + dy : radius + dy + h, radius + dx : radius + dx + w]
    return out


def jf(pred: np.ndarray, gt: np.ndarray, boundary_fn=boundary) -> tuple[float, float]:
    pred, gt = pred.astype(bool), gt.astype(bool)
    union = (pred | gt).sum()
    j = 1.0 if union == 0 else (pred & gt).sum() / union
    bp, bg = boundary_fn(pred), boundary_fn(gt)
    r = math.ceil(0.008 * math.sqrt(gt.shape[0] ** 2 + gt.shape[1] ** 2))
    n_p, n_g = bp.sum(), bg.sum()
    if n_p == 0 and n_g == 0:
        p, rc = 1.0, 1.0
    elif n_p == 0:
        p, rc = 1.0, 0.0
    elif n_g == 0:
        p, rc = 0.0, 1.0
    else:
        p = (bp & dilate_by_shifts(bg, r)).sum() / n_p
        rc = (bg & dilate_by_shifts(bp, r)).sum() / n_g
    f = 0.0 if p + rc == 0 else 2 * p * rc / (p + rc)
    return float(j), float(f)


def object_jf(preds: list[np.ndarray], gts: list[np.ndarray], boundary_fn=boundary) -> tuple[float, float] | None:
    """Per-object (J, F) in percent over already-evaluated frames; None when unscored."""
    if not any(g.any() for g in gts):
        return None
    js, fs, started = [], [], False
    for p, g in zip(preds, gts):
        started = started or p.any() or g.any()
        if started:
            j, f = jf(p, g, boundary_fn)
            js.append(j)
            fs.append(f)
    return 100 * sum(js) / len(js), 100 * sum(fs) / len(fs)
