"""MOSEv2's scores exactly as its official scorer computes them: J, Ḟ (F_new), F, J&Ḟ, J&F and the
disappearance and reappearance scores J&Ḟ_d and J&Ḟ_r.

The rules are those of MOSEv2/sam2_rcms/tools/score.py and tools/metricsv2.py of
github.com/henghuiding/MOSE-api (the Codabench scorer), written anew here; SA-V's J and F are in
sav_benchmark.metrics. Per frame and object, with G the ground truth, P the prediction, both full
frames of height h and width w, and D = 0.008 x sqrt(h^2 + w^2):

- J = (|P and G| + 1) / (|P or G| + 1): smoothed, unlike SA-V and DAVIS.
- Boundaries are SA-V's (metrics.boundary_map). A boundary pixel of one mask matches when it lies
  in the other's boundary dilated by skimage's `disk(r)` footprint (`L = arange(-r, r + 1)`,
  `X, Y = meshgrid(L, L)`, `X^2 + Y^2 <= r^2`) with OpenCV's dilation, anchored at the kernel's
  centre. F = 2PR / (P + R) of the matched fractions.
- Radii: with a = ceil(0.1 x sqrt(|G|)), when G is non-empty and a < D, Ḟ uses radius a and F
  uses ceil(D). Otherwise (a >= D, or G empty) both use the float radius D itself, not rounded:
  the footprint of a float radius is off centre (at 1920x1080, D = 17.62: a 37x37 kernel with
  971 ones whose first and last rows and columns are empty, where disk(18) has 1009), so the
  tolerance is not the same in every direction. At 1920x1080 the adaptive radius applies up to
  |G| = 28,900 pixels. On small frames the float footprint can even leave out its own anchor
  (at 100x100, D = 1.13 gives a 4x4 kernel with 3 ones, none at the anchor), so identical masks
  can score F < 1; below D = 2 - sqrt(2) (a diagonal under 73.2 px) it has no ones at all, where
  OpenCV's dilation is not defined by its documentation (the OpenCV 5.0 build tried acts as if
  the kernel's first element were set). Either way this module calls cv2.dilate as the official
  scorer does, so it agrees with it under the same OpenCV.
- Per object, over its evaluated frames (frames 1 .. L-2 of an L-frame video): J, Ḟ and F are
  plain means over every evaluated frame, those where the object is absent included.
- Segments, from which frames have an empty G: a disappearance is a run of absent frames that does
  not start at the first evaluated frame; a reappearance is a run of present frames that follows an
  absent run (the first appearance after an initial absence counts). Each segment gives its mean J
  and mean Ḟ; the object's disappear J and Ḟ are unweighted means over its disappearance segments,
  and likewise for reappearance.
- Globally every object weighs the same, across videos: J = mean J, Ḟ = mean Ḟ, J&Ḟ = (J + Ḟ)/2,
  F and J&F alike; J&Ḟ_d = (mean disappear J + mean disappear Ḟ)/2 over the objects that have a
  disappearance, J&Ḟ_r alike. The official scorer rounds only its output, to 2 decimals.

Edge cases, as the official scorer has them:
- Both masks empty: J = 1 and F = Ḟ = 1. G empty and k predicted pixels: J = 1/(k+1), F = Ḟ = 0.
  P empty and G of k pixels: J = 1/(k+1), F = Ḟ = 0.
- F's empty-boundary cases are SA-V's: no boundary in P but one in G gives precision 1, recall 0;
  the reverse precision 0, recall 1; neither 1 and 1; F is 0 when precision + recall is 0. A mask
  covering the whole frame has no boundary at all (the frame's border is none).
- An object with no evaluated frame (a video of 2 frames or fewer), or whose prediction folder is
  missing (MISSING_OBJECT), scores J = F = Ḟ = 0 with no disappearance or reappearance, and
  counts in the global means as such: nothing is left out as unscored, unlike SA-V.
- An object with no disappearance (or reappearance) segment has None there and is left out of
  J&Ḟ_d (J&Ḟ_r); when no object has one, that global score is NaN (the official prints nan).

Only a window around the masks is looked at (metrics.foreground_window: their bounding box grown
by one pixel): its boundary maps equal the full frame's there and are empty outside it, so every
dilation source and every pixel read back lies inside it, and dilating inside the window (what
lies beyond it is empty in the full frame too) gives the full frame's values at those pixels,
whatever the footprint's shape and however far it reaches on one side. Per-frame values, and
the means (NumPy's, over the same values in the same order), come out bit for bit as the
official's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterable, NamedTuple

import cv2
import numpy as np

from .metrics import boundary_f_measure, boundary_map, foreground_window

DIAGONAL_FRACTION = 0.008  # tolerance of F: a fraction of the frame's diagonal
AREA_FRACTION = 0.1  # tolerance of Ḟ: a fraction of the square root of the object's area

# The official column order (the README's table and scores.txt).
MOSEV2_COLUMNS = ("J&F_new", "J", "F_new", "disappear_J&F_new", "reappear_J&F_new", "F", "J&F")


def diagonal_radius(height: int, width: int) -> float:
    """D = 0.008 x the frame's diagonal, as a float (17.6233 at 1920x1080)."""
    return DIAGONAL_FRACTION * math.sqrt(height * height + width * width)


def boundary_radii(gt_area: int, height: int, width: int) -> tuple[float, float]:
    """(radius of F, radius of Ḟ) for a ground truth of `gt_area` pixels in a `height` x `width`
    frame: (ceil(D), ceil(0.1 sqrt(area))) when the latter is below D, else (D, D), D unrounded.
    An empty ground truth always gives (D, D)."""
    diagonal = diagonal_radius(height, width)
    if gt_area > 0:
        adaptive = math.ceil(AREA_FRACTION * math.sqrt(gt_area))
        if adaptive < diagonal:
            return float(math.ceil(diagonal)), float(adaptive)
    return diagonal, diagonal


@lru_cache(maxsize=64)
def disk_footprint(radius: float) -> np.ndarray:
    """skimage's `disk(radius)` (its plain form, decomposition=None) as a read-only uint8 kernel:
    the grid points of arange(-radius, radius + 1) in both axes within `radius` of the origin. A
    float radius gives a grid that does not straddle 0 symmetrically: the kernel is off centre."""
    axis = np.arange(-radius, radius + 1)
    x, y = np.meshgrid(axis, axis)
    kernel = (x**2 + y**2 <= radius**2).astype(np.uint8)
    kernel.flags.writeable = False
    return kernel


def smoothed_iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """J = (intersection + 1) / (union + 1) of two boolean masks (1 when both are empty)."""
    inter = int(np.count_nonzero(pred & gt))
    union = int(np.count_nonzero(pred | gt))
    return (inter + 1) / (union + 1)


def boundary_f(pred_boundary: np.ndarray, gt_boundary: np.ndarray, radius: float) -> float:
    """Boundary F-measure of two boundary maps: each map's pixels that fall in the other's
    dilation by disk_footprint(radius) (OpenCV, centre anchor, nothing beyond the border)."""
    kernel = disk_footprint(radius)

    def matched(queries: np.ndarray, sources: np.ndarray) -> int:
        return int(np.count_nonzero(queries & cv2.dilate(sources.astype(np.uint8), kernel).view(bool)))

    return boundary_f_measure(pred_boundary, gt_boundary, matched)


@dataclass(frozen=True)
class MoseFrameResult:
    """One evaluated frame of one object: J, F (legacy radius), Ḟ (F_new, adaptive radius), as
    fractions, and whether its ground truth is empty."""

    J: float
    F: float
    F_new: float
    gt_empty: bool


def score_frame(pred: np.ndarray, gt: np.ndarray) -> MoseFrameResult:
    """J, F and Ḟ of one object in one frame, from its full-frame masks (non-zero is foreground).
    Computed on the window around the masks (see the module's docstring); radii come from the
    full frame's size."""
    if pred.shape != gt.shape:
        raise ValueError(f"prediction {pred.shape} and ground truth {gt.shape} differ in size")
    window = foreground_window(pred, gt)
    if window is None:
        return MoseFrameResult(1.0, 1.0, 1.0, True)
    pred_part = pred[window].astype(bool, copy=False)
    gt_part = gt[window].astype(bool, copy=False)
    gt_area = int(np.count_nonzero(gt_part))
    radius, adaptive_radius = boundary_radii(gt_area, *gt.shape)
    pred_boundary, gt_boundary = boundary_map(pred_part), boundary_map(gt_part)
    f = boundary_f(pred_boundary, gt_boundary, radius)
    f_new = f if adaptive_radius == radius else boundary_f(pred_boundary, gt_boundary, adaptive_radius)
    return MoseFrameResult(smoothed_iou(pred_part, gt_part), f, f_new, gt_area == 0)


@dataclass(frozen=True)
class MoseObjectScore:
    """One object's scores over its evaluated frames. The fields are fractions (0..1), as the
    official scorer keeps them and averages them; the upper-case properties are in percent,
    unrounded. The disappear and reappear fields are None when the object has no such segment."""

    j: float
    f_new: float
    f: float
    disappear_j: float | None
    disappear_f_new: float | None
    reappear_j: float | None
    reappear_f_new: float | None
    n_frames: int

    @property
    def J(self) -> float:
        return self.j * 100

    @property
    def F_new(self) -> float:
        return self.f_new * 100

    @property
    def F(self) -> float:
        return self.f * 100

    @property
    def JF_new(self) -> float:
        return (self.j + self.f_new) / 2 * 100

    @property
    def JF(self) -> float:
        return (self.j + self.f) / 2 * 100

    @property
    def disappear_JF_new(self) -> float | None:
        return _pair_mean(self.disappear_j, self.disappear_f_new)

    @property
    def reappear_JF_new(self) -> float | None:
        return _pair_mean(self.reappear_j, self.reappear_f_new)

    def columns(self) -> dict[str, Any]:
        """The object's scores in percent under the official keys (metrics.json's, unrounded),
        in the official order, and the number of frames scored."""
        values = (self.JF_new, self.J, self.F_new, self.disappear_JF_new, self.reappear_JF_new, self.F, self.JF)
        return {**dict(zip(MOSEV2_COLUMNS, values)), "n_eval_frames": self.n_frames}


def _pair_mean(j: float | None, f: float | None) -> float | None:
    return None if j is None or f is None else (j + f) / 2 * 100


# An object without an evaluated frame, or whose video the prediction lacks: zero, counted.
MISSING_OBJECT = MoseObjectScore(0.0, 0.0, 0.0, None, None, None, None, 0)


class MoseObjectScorer:
    """Streaming per-object accumulator: feed its evaluated frames in order, then conclude."""

    def __init__(self) -> None:
        self._j: list[float] = []
        self._f_new: list[float] = []
        self._f: list[float] = []
        self._runs: list[tuple[int, bool]] = []  # (first frame, gt empty) of each run of frames alike

    def feed(self, pred: np.ndarray, gt: np.ndarray) -> None:
        """The next evaluated frame's full-frame masks."""
        self.add(score_frame(pred, gt))

    def add(self, frame: MoseFrameResult) -> None:
        """The next evaluated frame, scored elsewhere (score_frame)."""
        if not self._runs or self._runs[-1][1] != frame.gt_empty:
            self._runs.append((len(self._j), frame.gt_empty))
        self._j.append(frame.J)
        self._f_new.append(frame.F_new)
        self._f.append(frame.F)

    def conclude(self) -> MoseObjectScore:
        """The object's scores; MISSING_OBJECT's zeros when no frame was fed."""
        if not self._j:
            return MISSING_OBJECT
        j, f_new = np.array(self._j), np.array(self._f_new)
        segments: dict[bool, list[tuple[float, float]]] = {True: [], False: []}  # gt empty: disappearance
        ends = [start for start, _ in self._runs[1:]] + [len(j)]
        for (start, empty), end in zip(self._runs, ends):
            if start > 0:  # a run from the first evaluated frame is no disappearance nor reappearance
                segments[empty].append((float(np.mean(j[start:end])), float(np.mean(f_new[start:end]))))
        disappear_j, disappear_f_new = _segment_means(segments[True])
        reappear_j, reappear_f_new = _segment_means(segments[False])
        return MoseObjectScore(
            float(np.mean(j)),
            float(np.mean(f_new)),
            float(np.mean(self._f)),
            disappear_j,
            disappear_f_new,
            reappear_j,
            reappear_f_new,
            len(j),
        )


def _segment_means(segments: list[tuple[float, float]]) -> tuple[float | None, float | None]:
    """Unweighted means of the segments' mean J and mean Ḟ; None when there is no segment."""
    if not segments:
        return None, None
    return float(np.mean([s[0] for s in segments])), float(np.mean([s[1] for s in segments]))


def score_object(preds: Iterable[np.ndarray], gts: Iterable[np.ndarray]) -> MoseObjectScore:
    """One object's scores from its evaluated frames' full-frame masks, in order."""
    scorer = MoseObjectScorer()
    for pred, gt in zip(preds, gts, strict=True):
        scorer.feed(pred, gt)
    return scorer.conclude()


class MoseScores(NamedTuple):
    """The global scores in percent, unrounded, in the official column order (MOSEV2_COLUMNS)."""

    JF_new: float
    J: float
    F_new: float
    disappear_JF_new: float
    reappear_JF_new: float
    F: float
    JF: float

    def columns(self) -> dict[str, float]:
        """The scores under the official keys, in the official order."""
        return dict(zip(MOSEV2_COLUMNS, self))

    def rounded(self) -> MoseScores:
        """Rounded to 2 decimals as scores.txt has them (NumPy's rounding, which score.py's
        round() of NumPy floats uses)."""
        return MoseScores(*(float(np.round(value, 2)) for value in self))


def global_scores(objects: Iterable[MoseObjectScore]) -> MoseScores:
    """The global scores of score.py from every object's scores: object-weighted means over all
    objects, the disappear and reappear scores over the objects that have them; NaN where no
    object counts."""
    scores = list(objects)

    def mean(values: list[float]) -> float:
        return float(np.mean(values)) if values else math.nan

    j = mean([s.j for s in scores])
    f_new = mean([s.f_new for s in scores])
    f = mean([s.f for s in scores])
    disappear = [s for s in scores if s.disappear_j is not None and s.disappear_f_new is not None]
    reappear = [s for s in scores if s.reappear_j is not None and s.reappear_f_new is not None]
    disappear_jf = (mean([s.disappear_j for s in disappear]) + mean([s.disappear_f_new for s in disappear])) / 2 * 100
    reappear_jf = (mean([s.reappear_j for s in reappear]) + mean([s.reappear_f_new for s in reappear])) / 2 * 100
    return MoseScores((j + f_new) / 2 * 100, j * 100, f_new * 100, disappear_jf, reappear_jf, f * 100, (j + f) / 2 * 100)
