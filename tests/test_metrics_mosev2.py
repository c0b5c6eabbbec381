"""MOSEv2's official scores (sav_benchmark.metrics_mosev2): values worked out by hand, the window
against a plain full-frame computation, and, with MOSE_API pointing at a checkout of
github.com/henghuiding/MOSE-api, against the official metricsv2.py and score.py themselves.

The official code imports scikit-image; MOSE_API_PYTHON names a Python that has it (with NumPy,
OpenCV, Pillow and tqdm; this process's Python by default). A checkout:
    git clone https://github.com/henghuiding/MOSE-api && export MOSE_API=$PWD/MOSE-api
    python -m venv /tmp/offenv && /tmp/offenv/bin/pip install scikit-image opencv-python-headless pillow tqdm
    MOSE_API_PYTHON=/tmp/offenv/bin/python python -m pytest tests/test_metrics_mosev2.py
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from sav_benchmark.metrics_mosev2 import (
    MISSING_OBJECT,
    MOSEV2_COLUMNS,
    MoseFrameResult,
    MoseObjectScore,
    MoseObjectScorer,
    MoseScores,
    boundary_f,
    boundary_radii,
    diagonal_radius,
    disk_footprint,
    global_scores,
    score_frame,
    score_object,
    smoothed_iou,
)

# ---------------------------------------------------------------------------------------------
# A plain full-frame computation of the rules, sharing no code with the module: the boundary
# rule, the footprint by loops, OpenCV's dilation as a union of shifts, radii as the official
# spells them.


def ref_boundary(mask: np.ndarray) -> np.ndarray:
    m = mask.astype(bool)
    h, w = m.shape
    padded = np.zeros((h + 1, w + 1), bool)
    padded[:h, :w] = m
    east, south, south_east = padded[:h, 1:], padded[1:, :w], padded[1:, 1:]
    b = (m != east) | (m != south) | (m != south_east)
    b[-1, :] = m[-1, :] != east[-1, :]
    b[:, -1] = m[:, -1] != south[:, -1]
    b[-1, -1] = False
    return b


def ref_footprint(r: float) -> np.ndarray:
    """skimage's disk(r) by loops: grid points -r, -r + 1, ... below r + 1, within r of 0."""
    n = 0
    while -r + n < r + 1:
        n += 1
    return np.array([[(-r + i) * (-r + i) + (-r + j) * (-r + j) <= r * r for j in range(n)] for i in range(n)], np.uint8)


def ref_dilate(src: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """OpenCV's dilation with the centre anchor (kh // 2, kw // 2) and nothing beyond the border:
    out(q) = OR of src(q + k - anchor) over the kernel's ones k."""
    kh, kw = kernel.shape
    h, w = src.shape
    padded = np.zeros((h + 2 * kh, w + 2 * kw), bool)
    padded[kh : kh + h, kw : kw + w] = src
    out = np.zeros((h, w), bool)
    for i, j in np.argwhere(kernel):
        dy, dx = i - kh // 2, j - kw // 2
        out |= padded[kh + dy : kh + dy + h, kw + dx : kw + dx + w]
    return out


def cv2_dilate(src: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    return cv2.dilate(src.astype(np.uint8), kernel).astype(bool)


def ref_f(pred_b: np.ndarray, gt_b: np.ndarray, radius: float, dilate) -> float:
    n_p, n_g = int(pred_b.sum()), int(gt_b.sum())
    if n_p == 0 or n_g == 0:
        p, r = (1.0, 1.0) if n_p == n_g == 0 else (1.0, 0.0) if n_p == 0 else (0.0, 1.0)
    else:
        kernel = ref_footprint(radius)
        p = int((pred_b & dilate(gt_b, kernel)).sum()) / n_p
        r = int((gt_b & dilate(pred_b, kernel)).sum()) / n_g
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def ref_frame(pred: np.ndarray, gt: np.ndarray, dilate=cv2_dilate) -> tuple[float, float, float, bool]:
    """(J, F, F_new, gt empty) on the full frame."""
    pred, gt = pred.astype(bool), gt.astype(bool)
    j = (int((pred & gt).sum()) + 1) / (int((pred | gt).sum()) + 1)
    diag = 0.008 * np.linalg.norm(gt.shape)
    adaptive = np.ceil(0.1 * np.sqrt(gt.sum())) if gt.any() else np.ceil(0.1 * np.linalg.norm(gt.shape))
    pb, gb = ref_boundary(pred), ref_boundary(gt)
    if min(diag, adaptive) < diag:
        f, f_new = ref_f(pb, gb, np.ceil(diag), dilate), ref_f(pb, gb, adaptive, dilate)
    else:
        f = f_new = ref_f(pb, gb, diag, dilate)
    return j, f, f_new, not gt.any()


def as_tuple(frame: MoseFrameResult) -> tuple[float, float, float, bool]:
    return frame.J, frame.F, frame.F_new, frame.gt_empty


def square(h: int, w: int, rows: tuple[int, int], cols: tuple[int, int]) -> np.ndarray:
    m = np.zeros((h, w), bool)
    m[rows[0] : rows[1] + 1, cols[0] : cols[1] + 1] = True
    return m


def random_pair(rng: np.random.Generator, h: int, w: int, gt_present: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """A ground truth and a prediction: unions of ellipses and rectangles of random sizes, the
    prediction a shifted, grown or shrunk, speckled copy; now and then empty, the whole frame,
    single pixels, or against the frame's edges and corners."""
    yy, xx = np.mgrid[:h, :w]

    def blobs() -> np.ndarray:
        m = np.zeros((h, w), bool)
        for _ in range(rng.integers(1, 4)):
            cy, cx = rng.uniform(-0.1, 1.1) * h, rng.uniform(-0.1, 1.1) * w
            scale = 10 ** rng.uniform(-2.5, -0.4)  # small objects (adaptive radius) as well as large ones
            ay, ax = scale * rng.uniform(0.5, 2) * h + 0.5, scale * rng.uniform(0.5, 2) * w + 0.5
            if rng.random() < 0.5:
                m |= ((yy - cy) / ay) ** 2 + ((xx - cx) / ax) ** 2 <= 1
            else:
                m |= (abs(yy - cy) <= ay) & (abs(xx - cx) <= ax)
        return m

    kind = rng.choice(["blobs"] * 6 + ["pixels", "full", "edge", "empty_pred"])
    if not gt_present:
        gt = np.zeros((h, w), bool)
        pred = blobs() if rng.random() < 0.5 else np.zeros((h, w), bool)
        return pred, gt
    if kind == "pixels":
        gt = np.zeros((h, w), bool)
        gt[rng.integers(0, h, 3), rng.integers(0, w, 3)] = True
        gt[h - 1, w - 1] = rng.random() < 0.5
        pred = np.zeros((h, w), bool)
        pred[rng.integers(0, h, 2), rng.integers(0, w, 2)] = True
        pred[0, w - 1] = True
        return pred, gt
    if kind == "full":
        gt = np.ones((h, w), bool)
        return (gt.copy() if rng.random() < 0.5 else blobs()), gt
    gt = blobs()
    if kind == "edge":
        gt[h // 2 :, w // 2 :] = True
    if not gt.any():
        gt[rng.integers(0, h), rng.integers(0, w)] = True
    if kind == "empty_pred":
        return np.zeros((h, w), bool), gt
    dy, dx = (int(rng.integers(-s, s + 1)) for s in (max(1, h // 20), max(1, w // 20)))
    pred = np.roll(gt, (dy, dx), axis=(0, 1))
    steps = int(rng.integers(-2, 3))
    if steps:
        op = cv2.dilate if steps > 0 else cv2.erode
        pred = op(pred.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=abs(steps)).astype(bool)
    pred ^= rng.random((h, w)) < 2e-4
    return pred, gt


# ---------------------------------------------------------------------------------------------
# J


@pytest.mark.parametrize("k", [1, 2, 7, 100])
def test_j_is_smoothed_by_one_when_either_mask_is_empty(k):
    h, w = 20, 30
    some = np.zeros((h, w), bool)
    some.flat[:k] = True
    empty = np.zeros((h, w), bool)
    assert smoothed_iou(some, empty) == smoothed_iou(empty, some) == 1 / (k + 1)
    on_empty_gt = score_frame(some, empty)
    assert (on_empty_gt.J, on_empty_gt.F, on_empty_gt.F_new, on_empty_gt.gt_empty) == (1 / (k + 1), 0.0, 0.0, True)
    missed = score_frame(empty, some)
    assert (missed.J, missed.F, missed.F_new, missed.gt_empty) == (1 / (k + 1), 0.0, 0.0, False)


def test_both_empty_scores_one_and_partial_overlap_is_smoothed():
    empty = np.zeros((9, 9), bool)
    assert as_tuple(score_frame(empty, empty)) == (1.0, 1.0, 1.0, True)
    gt = np.zeros((9, 9), bool)
    gt[2, 2:5] = True  # 3 pixels
    pred = np.zeros((9, 9), bool)
    pred[2, 3:7] = True  # 4 pixels, 2 shared: I = 2, U = 5
    assert score_frame(pred, gt).J == 3 / 6


def test_masks_of_the_whole_frame_have_no_boundary():
    full = np.ones((30, 40), bool)
    assert as_tuple(score_frame(full, full)) == (1.0, 1.0, 1.0, False)
    half = square(30, 40, (0, 14), (0, 39))
    # the prediction has a boundary, the ground truth none: precision 0, recall 1, F 0
    assert as_tuple(score_frame(half, full)) == ((600 + 1) / (1200 + 1), 0.0, 0.0, False)


def test_shapes_must_agree():
    with pytest.raises(ValueError, match="differ in size"):
        score_frame(np.zeros((4, 5), bool), np.zeros((5, 4), bool))


# ---------------------------------------------------------------------------------------------
# Radii and the footprint

D_1080P = 0.008 * math.sqrt(1080**2 + 1920**2)


def test_radii_at_1080p_switch_from_adaptive_to_the_unrounded_diagonal_above_28900_pixels():
    assert diagonal_radius(1080, 1920) == D_1080P == pytest.approx(17.6232573607)
    assert boundary_radii(1, 1080, 1920) == (18.0, 1.0)
    assert boundary_radii(100, 1080, 1920) == (18.0, 1.0)  # ceil(0.1 x 10) = 1
    assert boundary_radii(101, 1080, 1920) == (18.0, 2.0)
    assert boundary_radii(28900, 1080, 1920) == (18.0, 17.0)  # sqrt = 170: 17 < 17.62
    assert boundary_radii(28901, 1080, 1920) == (D_1080P, D_1080P)  # 18 >= 17.62: float D for both
    assert boundary_radii(0, 1080, 1920) == (D_1080P, D_1080P)  # empty ground truth
    assert boundary_radii(25, 100, 100) == (2.0, 1.0)  # D = 1.13
    assert boundary_radii(101, 100, 100) == (0.008 * math.sqrt(20000),) * 2


def test_below_the_threshold_f_new_is_the_tighter_adaptive_tolerance():
    """A 170x170 square (28,900 px: radius 17 for Ḟ, 18 for F) and its copy 18 columns right.
    Its boundary is the ring of the 171x171 square one up and left (680 px). With radius 18 every
    ring pixel is matched. With 17: the top and bottom rows but their first pixel (2 x 170), none
    of the left column's 169 others, and of the right column's 169 the 17 near each end (the
    copy's top and bottom rows pass 1..17 rows away): 374 of 680 each way."""
    gt = square(1080, 1920, (100, 269), (100, 269))
    pred = np.roll(gt, 18, axis=1)
    frame = score_frame(pred, gt)
    assert (frame.F, frame.F_new) == (1.0, 374 / 680)
    assert frame.J == (170 * 152 + 1) / (170 * 188 + 1)


def test_above_the_threshold_both_use_the_unrounded_diagonal_not_its_ceiling():
    gt = square(1080, 1920, (100, 269), (100, 270))  # 170 x 171 = 29,070 px
    pred = np.roll(gt, 18, axis=1)
    frame = score_frame(pred, gt)
    assert frame.F == frame.F_new < 1
    assert boundary_f(ref_boundary(pred), ref_boundary(gt), 18.0) == 1.0  # DAVIS's ceil(D) would match all
    assert frame.F == ref_frame(pred, gt, ref_dilate)[1]


def test_small_object_on_a_small_frame_worked_by_hand():
    """100x100 (D = 1.13): a 5x5 square, 25 px, gets radius 1 for Ḟ and 2 for F. Its copy 2
    columns right: the rings (6x6, 20 px) match fully within 2; within the plus-shaped disk(1)
    the top and bottom rows' 5 right pixels and the right column's 2 end pixels: 12 of 20."""
    gt = square(100, 100, (10, 14), (10, 14))
    pred = square(100, 100, (10, 14), (12, 16))
    frame = score_frame(pred, gt)
    assert (frame.J, frame.F, frame.F_new) == (16 / 36, 1.0, 12 / 20)


def test_float_footprint_can_leave_out_its_anchor_so_identical_masks_score_below_one():
    """100x100, an 11x11 square (121 px, so the float D = 1.13): disk(1.13) is a 4x4 kernel whose
    ones are at (1,1), (1,2), (2,1); the anchor is (2,2). A pixel matches when the other boundary
    has a pixel above, left of, or above-left of it. The ring of the 12x12 square (44 px) then
    matches itself except at its top-left corner: 43 of 44."""
    kernel = disk_footprint(diagonal_radius(100, 100))
    assert kernel.tolist() == [[0, 0, 0, 0], [0, 1, 1, 0], [0, 1, 0, 0], [0, 0, 0, 0]]
    gt = square(100, 100, (10, 20), (10, 20))
    assert as_tuple(score_frame(gt, gt)) == (1.0, 43 / 44, 43 / 44, False)


def test_footprint_of_the_1080p_float_radius_is_off_centre():
    r = D_1080P
    kernel = disk_footprint(r)
    # independent counts: lattice points within 18 of 0; grid points -r + i within r of 0
    assert sum(x * x + y * y <= 18 * 18 for x in range(-18, 19) for y in range(-18, 19)) == 1009
    n = math.ceil(2 * r + 1)
    assert sum((-r + i) ** 2 + (-r + j) ** 2 <= r * r for i in range(n) for j in range(n)) == 971
    assert kernel.shape == (37, 37) and int(kernel.sum()) == 971
    assert int(disk_footprint(18).sum()) == 1009 and disk_footprint(18).shape == (37, 37)
    assert not kernel[0].any() and not kernel[-1].any() and not kernel[:, 0].any() and not kernel[:, -1].any()
    # it reaches 17 pixels each way from the anchor (18, 18), but is wider toward the top left:
    # 12 ones in the row 17 above, 6 in the row 17 below, and so for the columns
    assert (int(kernel[1].sum()), int(kernel[35].sum()), int(kernel[:, 1].sum()), int(kernel[:, 35].sum())) == (12, 6, 12, 6)
    assert (kernel != kernel[::-1, ::-1]).any()
    assert not kernel.flags.writeable


@pytest.mark.parametrize("r", [1.0, 2.0, 3.0, 17.0, 18.0, 0.7014, 1.131370849898476, 2.5, 5.0774, 11.7488, D_1080P, 0.3])
def test_footprint_equals_skimage_disk_by_loops(r):
    assert np.array_equal(disk_footprint(r), ref_footprint(r))


def test_matching_is_by_the_union_of_shifts_by_kernel_minus_anchor():
    """OpenCV's dilation with an off-centre footprint is the union of the source shifted by each
    one's position minus the centre anchor; boundary_f matches by it, on scattered point sets."""
    rng = np.random.default_rng(3)
    for r in (D_1080P, 1.131370849898476, 0.7014, 2.0, 3.7, 6.0):
        kernel = disk_footprint(r)
        for shape in ((5, 7), (40, 31), (64, 64)):
            a, b = rng.random(shape) < 0.05, rng.random(shape) < 0.08
            assert np.array_equal(cv2_dilate(a, kernel), ref_dilate(a, kernel)), (r, shape)
            assert boundary_f(a, b, r) == ref_f(a, b, r, ref_dilate), (r, shape)


# ---------------------------------------------------------------------------------------------
# The window equals the full frame


@pytest.mark.parametrize(
    "h,w,n",
    [(1080, 1920, 4), (720, 1280, 4), (480, 854, 12), (100, 100, 40), (62, 62, 30), (37, 53, 30), (150, 200, 30), (7, 5, 30), (1, 1, 4)],
)
def test_window_equals_full_frame(h, w, n):
    rng = np.random.default_rng(h * 10007 + w)
    for i in range(n):
        pred, gt = random_pair(rng, h, w, gt_present=i % 5 != 4)
        assert as_tuple(score_frame(pred, gt)) == ref_frame(pred, gt), (h, w, i)


@pytest.mark.parametrize("h,w", [(100, 100), (150, 200), (48, 64)])
def test_window_equals_full_frame_with_dilation_by_shifts(h, w):
    """As above with no OpenCV in the reference (sizes whose footprint has ones)."""
    rng = np.random.default_rng(h + w)
    for i in range(30):
        pred, gt = random_pair(rng, h, w)
        assert as_tuple(score_frame(pred, gt)) == ref_frame(pred, gt, ref_dilate), (h, w, i)


def test_off_centre_footprint_near_the_window_edge():
    """Objects against each frame edge and corner, where the window is clipped, at 720p (float
    D = 11.75 above 12,100 px): 121x121 squares (the float footprint) and 11x11 ones (radius 2
    for Ḟ, 12 for F), the prediction the square moved about one tolerance each way."""
    h, w = 720, 1280
    for size in (121, 11):
        for top in (0, h - size, 300):
            for left in (0, w - size, 600):
                gt = square(h, w, (top, top + size - 1), (left, left + size - 1))
                for dy, dx in ((0, 12), (0, -12), (12, 0), (-12, 0), (8, 8), (-8, -9)):
                    rows = (max(top + dy, 0), min(top + dy + size - 1, h - 1))
                    pred = square(h, w, rows, (max(left + dx, 0), min(left + dx + size - 1, w - 1)))
                    assert as_tuple(score_frame(pred, gt)) == ref_frame(pred, gt), (size, top, left, dy, dx)


# ---------------------------------------------------------------------------------------------
# Per object: means and segments


def run(empty: str, js: list[float], fs: list[float] | None = None) -> MoseObjectScore:
    """An object from its frames: `empty` has 1 where the ground truth is empty; Ḟ = fs (J if
    None), F = 0.5 everywhere."""
    scorer = MoseObjectScorer()
    for e, j, f in zip(empty, js, fs or js, strict=True):
        scorer.add(MoseFrameResult(J=j, F=0.5, F_new=f, gt_empty=e == "1"))
    return scorer.conclude()


def test_a_disappearance_and_the_reappearance_after_it():
    s = run("0011000", [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7], [1, 1, 0, 0, 0.5, 0.5, 0.5])
    assert (s.disappear_j, s.disappear_f_new) == (pytest.approx(0.35), 0.0)  # frames 2, 3
    assert (s.reappear_j, s.reappear_f_new) == (pytest.approx(0.6), 0.5)  # frames 4..6
    assert s.j == pytest.approx(0.4) and s.f_new == pytest.approx(3.5 / 7) and s.f == 0.5 and s.n_frames == 7
    assert s.disappear_JF_new == pytest.approx(17.5) and s.reappear_JF_new == pytest.approx(55.0)


def test_an_initial_absence_is_no_disappearance_but_the_first_appearance_is_a_reappearance():
    s = run("110010", [0.9, 0.8, 0.1, 0.2, 0.6, 0.5])
    assert s.disappear_j == pytest.approx(0.6)  # only frame 4
    assert s.reappear_j == pytest.approx((0.15 + 0.5) / 2)  # segments unweighted: not (0.1 + 0.2 + 0.5) / 3
    assert s.reappear_j != pytest.approx(0.8 / 3)


@pytest.mark.parametrize(
    "empty,disappear,reappear",
    [
        ("0000", None, None),
        ("1111", None, None),  # absent from the first evaluated frame on: nothing counts
        ("1", None, None),
        ("0", None, None),
        ("011", 0.25, None),  # (0.2 + 0.3) / 2, to the end
        ("1100", None, 0.35),
        ("01010", (0.2 + 0.4) / 2, (0.3 + 0.5) / 2),
        ("10101", (0.3 + 0.5) / 2, (0.2 + 0.4) / 2),
    ],
)
def test_segment_rules(empty, disappear, reappear):
    js = [0.1 * (i + 1) for i in range(len(empty))]
    s = run(empty, js)
    for got, want in ((s.disappear_j, disappear), (s.disappear_f_new, disappear), (s.reappear_j, reappear), (s.reappear_f_new, reappear)):
        assert got == (None if want is None else pytest.approx(want))
    assert (s.disappear_JF_new is None) == (disappear is None) and (s.reappear_JF_new is None) == (reappear is None)


def test_object_means_count_every_frame_and_columns_are_percent_in_official_order():
    s = run("0110", [0.2, 1.0, 1.0, 0.6], [0.4, 1.0, 0.0, 0.2])
    assert (s.J, s.F_new, s.F) == (pytest.approx(70.0), pytest.approx(40.0), 50.0)
    assert (s.JF_new, s.JF) == (pytest.approx(55.0), pytest.approx(60.0))
    columns = s.columns()
    assert list(columns) == [*MOSEV2_COLUMNS, "n_eval_frames"]
    assert columns["J&F_new"] == s.JF_new and columns["disappear_J&F_new"] == pytest.approx(75.0)
    assert columns["reappear_J&F_new"] == pytest.approx(40.0) and columns["n_eval_frames"] == 4


def test_no_evaluated_frame_scores_zero():
    assert MoseObjectScorer().conclude() == MISSING_OBJECT
    assert (MISSING_OBJECT.J, MISSING_OBJECT.F_new, MISSING_OBJECT.F, MISSING_OBJECT.disappear_JF_new) == (0, 0, 0, None)


def test_feeding_masks_equals_adding_their_frame_results():
    rng = np.random.default_rng(5)
    pairs = [random_pair(rng, 60, 80, gt_present=i not in (2, 3, 6)) for i in range(9)]
    scorer = MoseObjectScorer()
    for pred, gt in pairs:
        scorer.add(score_frame(pred, gt))
    assert score_object([p for p, _ in pairs], [g for _, g in pairs]) == scorer.conclude()
    with pytest.raises(ValueError):
        score_object([pairs[0][0]], [])


# ---------------------------------------------------------------------------------------------
# Global


def test_global_scores_are_object_weighted_with_d_and_r_over_the_objects_that_have_them():
    a = MoseObjectScore(0.5, 0.7, 0.6, 0.2, 0.4, None, None, 5)
    b = MoseObjectScore(0.9, 0.3, 0.5, None, None, 0.8, 0.6, 5)
    g = global_scores([a, b, MISSING_OBJECT])
    assert isinstance(g, MoseScores) and list(g.columns()) == list(MOSEV2_COLUMNS)
    want = [(1.4 / 3 + 1.0 / 3) / 2 * 100, 1.4 / 3 * 100, 1.0 / 3 * 100, 30.0, 70.0, 1.1 / 3 * 100, (1.4 / 3 + 1.1 / 3) / 2 * 100]
    assert list(g) == pytest.approx(want)
    assert list(g.rounded()) == [40.0, 46.67, 33.33, 30.0, 70.0, 36.67, 41.67]


def test_global_scores_without_segments_or_objects_are_nan():
    g = global_scores([MoseObjectScore(1.0, 1.0, 1.0, None, None, None, None, 3)])
    assert (g.J, g.JF_new) == (100.0, 100.0) and math.isnan(g.disappear_JF_new) and math.isnan(g.reappear_JF_new)
    assert all(math.isnan(v) for v in global_scores([]))


# ---------------------------------------------------------------------------------------------
# Against the official code (MOSE_API)

MOSE_API = os.environ.get("MOSE_API")
OFFICIAL_PYTHON = os.environ.get("MOSE_API_PYTHON", sys.executable)
needs_mose_api = pytest.mark.skipif(
    not MOSE_API,
    reason="set MOSE_API to a checkout of github.com/henghuiding/MOSE-api (and MOSE_API_PYTHON to a Python with scikit-image) to run it",
)

# Run in the official tools folder: its metricsv2 functions per object, and score.py's merge.
OFFICIAL_OBJECTS = """
import json, sys
import numpy as np
from metricsv2 import db_eval_boundary, db_eval_iou
from score import merge_chunk_results

data = np.load(sys.argv[1])
out = {}
for name in sorted({key.rsplit("__", 1)[0] for key in data.files}):
    gt, pred = data[name + "__gt"], data[name + "__pred"]
    j, empty = db_eval_iou(gt, pred)
    f, f_new = db_eval_boundary(gt, pred, bound_th=0.1, bound_mode="area")
    chunk = {"vid_name": name, "anno_id": "1", "chunk_start": 1, "chunk_end": 1 + len(gt), "error": None,
             "j_list": j.tolist(), "f_list": f_new.tolist(), "f_list_": f.tolist(), "empty_gt": empty.tolist()}
    merged = merge_chunk_results([chunk], name, "1")
    out[name] = {"J": j.tolist(), "F": f.tolist(), "F_new": f_new.tolist(), "empty": empty.tolist(),
                 "object": [None if v is None else float(v) for v in merged]}
with open(sys.argv[2], "w") as fp:
    json.dump(out, fp)
"""


@pytest.fixture(scope="module")
def official_tools() -> Path:
    """The official tools folder, checked: MOSE_API must point at a checkout and MOSE_API_PYTHON
    (or this Python) must import what the official code imports."""
    tools = Path(MOSE_API) / "MOSEv2" / "sam2_rcms" / "tools"
    assert (tools / "metricsv2.py").is_file() and (tools / "score.py").is_file(), f"MOSE_API={MOSE_API}: no {tools}/metricsv2.py"
    probe = subprocess.run([OFFICIAL_PYTHON, "-c", "import skimage, cv2, PIL, tqdm, numpy"], capture_output=True, text=True)
    assert probe.returncode == 0, (
        f"{OFFICIAL_PYTHON} cannot run the official code ({probe.stderr.strip().splitlines()[-1:]}): "
        "set MOSE_API_PYTHON to a Python with scikit-image, opencv, pillow and tqdm"
    )
    return tools


def official_run(tools: Path, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([OFFICIAL_PYTHON, *args], cwd=tools, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def presence(rng: np.random.Generator, n: int) -> list[bool]:
    """Runs of presence and absence, starting either way."""
    out, state = [], bool(rng.random() < 0.75)
    while len(out) < n:
        out += [state] * int(rng.integers(2, 7) if state else rng.integers(1, 4))
        state = not state
    return out[:n]


@needs_mose_api
def test_frames_and_objects_equal_official_metricsv2(official_tools, tmp_path):
    rng = np.random.default_rng(2025)
    sizes = [(1080, 1920, 8), (720, 1280, 8), (480, 854, 10), (100, 100, 14), (62, 62, 10), (37, 53, 10), (150, 200, 10), (7, 5, 8)]
    arrays, objects = {}, {}
    for h, w, n in sizes:
        for k in range(3 if h < 500 else 2):
            name = f"{h}x{w}_{k}"
            pairs = [random_pair(rng, h, w, present) for present in presence(rng, n)]
            arrays[name + "__pred"] = np.stack([p for p, _ in pairs]).astype(np.uint8)
            arrays[name + "__gt"] = np.stack([g for _, g in pairs]).astype(np.uint8)
            objects[name] = pairs
    np.savez(tmp_path / "masks.npz", **arrays)
    official_run(official_tools, "-c", OFFICIAL_OBJECTS, str(tmp_path / "masks.npz"), str(tmp_path / "official.json"))
    official = json.loads((tmp_path / "official.json").read_text())

    worst = {"J": 0.0, "F": 0.0, "F_new": 0.0, "object": 0.0}
    segments, adaptive, float_partial, hd_float_partial = 0, 0, 0, 0
    for name, pairs in objects.items():
        theirs = official[name]
        scorer = MoseObjectScorer()
        for i, (pred, gt) in enumerate(pairs):
            frame = score_frame(pred, gt)
            scorer.add(frame)
            assert frame.gt_empty == theirs["empty"][i]
            for key in ("J", "F", "F_new"):
                worst[key] = max(worst[key], abs(getattr(frame, key) - theirs[key][i]))
            is_float = len(set(boundary_radii(int(gt.sum()), *gt.shape))) == 1
            adaptive += frame.F != frame.F_new
            float_partial += is_float and 0 < frame.F < 1
            hd_float_partial += is_float and 0 < frame.F < 1 and gt.shape == (1080, 1920)
        mine = scorer.conclude()
        values = [mine.j, mine.f_new, mine.f, mine.disappear_j, mine.disappear_f_new, mine.reappear_j, mine.reappear_f_new]
        for a, b in zip(values, theirs["object"], strict=True):
            assert (a is None) == (b is None), (name, values, theirs["object"])
            worst["object"] = max(worst["object"], 0.0 if a is None else abs(a - b))
        segments += mine.disappear_j is not None and mine.reappear_j is not None
    assert worst == {"J": 0.0, "F": 0.0, "F_new": 0.0, "object": 0.0}, worst
    coverage = {"objects with both segments": segments, "F != F_new": adaptive, "float D, 0 < F < 1": float_partial}
    assert min(coverage.values()) >= 5 and hd_float_partial >= 2, f"the comparison proves little: {coverage}, at 1080p {hd_float_partial}"


def write_mosev2_set(root: Path, videos: dict[str, dict], rng: np.random.Generator) -> None:
    """A tiny MOSEv2-layout set: meta.json, ann/<video>/<frame>.png and pred/<video>/<frame>.png
    (palette PNGs of object ids). `videos`: name -> height, width, frame names, objects, and
    whether the prediction folder exists and meta gives the size."""
    meta = {}
    for vid, spec in videos.items():
        h, w, names, n_obj = spec["h"], spec["w"], spec["names"], spec["objects"]
        sized = spec.get("sized", True)
        meta[vid] = {"length": len(names), "height": h if sized else None, "width": w if sized else None}
        meta[vid]["objects"] = {str(k): {} for k in range(1, n_obj + 1)}
        shows = {k: presence(rng, len(names)) for k in range(1, n_obj + 1)}
        for folder in ("ann", "pred") if spec.get("predicted", True) else ("ann",):
            (root / folder / vid).mkdir(parents=True)
        for t, name in enumerate(names):
            gt_ids, pred_ids = np.zeros((h, w), np.uint8), np.zeros((h, w), np.uint8)
            for k in range(1, n_obj + 1):
                pred, gt = random_pair(rng, h, w, shows[k][t])
                gt_ids[gt], pred_ids[pred] = k, k
            for folder, ids in (("ann", gt_ids), ("pred", pred_ids)):
                if (root / folder / vid).is_dir():
                    image = Image.fromarray(ids, mode="P")
                    image.putpalette([c for i in range(256) for c in (i * 37 % 256, i * 91 % 256, i * 53 % 256)])
                    image.save(root / folder / vid / f"{name}.png")
    (root / "meta.json").write_text(json.dumps({"videos": meta}))


def score_mosev2_set(root: Path) -> dict[str, MoseObjectScore]:
    """Every object of the set scored here, read as score.py reads it."""
    meta = json.loads((root / "meta.json").read_text())["videos"]
    scores = {}
    for vid, info in meta.items():
        pred_dir = root / "pred" / vid
        names = sorted((p.stem for p in (root / "ann" / vid).glob("*.png")), key=int)[1:-1]
        for obj in info["objects"]:
            if not pred_dir.is_dir():
                scores[f"{vid}_{obj}"] = MISSING_OBJECT
                continue
            scorer = MoseObjectScorer()
            for name in names:
                gt = np.asarray(Image.open(root / "ann" / vid / f"{name}.png").convert("P")) == int(obj)
                pred = np.asarray(Image.open(pred_dir / f"{name}.png").convert("P")) == int(obj)
                scorer.feed(pred, gt)
            scores[f"{vid}_{obj}"] = scorer.conclude()
    return scores


@needs_mose_api
def test_global_scores_equal_official_score_py_end_to_end(official_tools, tmp_path):
    rng = np.random.default_rng(7)
    videos = {
        "a1b2c3d4": {"h": 480, "w": 854, "names": [f"{i:05d}" for i in range(10)], "objects": 3},
        "hd000001": {"h": 1080, "w": 1920, "names": [f"{i:05d}" for i in range(5)], "objects": 2},
        "gappy005": {"h": 100, "w": 100, "names": [f"{5 * i:05d}" for i in range(14)], "objects": 2, "sized": False},
        "short002": {"h": 64, "w": 48, "names": ["00000", "00001"], "objects": 1},
        "nopred01": {"h": 60, "w": 80, "names": [f"{i:05d}" for i in range(4)], "objects": 2, "predicted": False},
        "tiny0037": {"h": 37, "w": 53, "names": [f"{i:05d}" for i in range(9)], "objects": 2},
    }
    write_mosev2_set(tmp_path, videos, rng)
    out = tmp_path / "out"
    paths = {"--meta": tmp_path / "meta.json", "--ann": tmp_path / "ann", "--pred": tmp_path / "pred", "--output": out}
    official_run(official_tools, "score.py", *(str(part) for pair in paths.items() for part in pair))
    scores_txt = dict(line.split(": ", 1) for line in (out / "scores.txt").read_text().splitlines())
    theirs = [float(scores_txt[key]) for key in MOSEV2_COLUMNS]
    per_object = json.loads((out / "metrics.json").read_text())

    mine = score_mosev2_set(tmp_path)
    assert sorted(mine) == sorted(k for k in per_object if k != "total_time")
    for key, score in mine.items():
        want = {c: None if v is None else float(np.round(v, 2)) for c, v in score.columns().items() if c in MOSEV2_COLUMNS}
        assert want == per_object[key], key
    assert list(global_scores(mine.values()).rounded()) == theirs
    assert sum(s.disappear_j is not None for s in mine.values()) >= 2 and sum(s.reappear_j is not None for s in mine.values()) >= 2
    assert theirs[MOSEV2_COLUMNS.index("F")] != theirs[MOSEV2_COLUMNS.index("F_new")]  # both radius rules at work
