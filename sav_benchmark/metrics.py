"""J, F and J&F exactly as the SA-V evaluation defines them (see SPEC-metrics.md in shared/).

Edge cases, as the spec writes them down:
- J is 1 when both masks are empty.
- F: no boundary in the prediction but one in the ground truth gives precision 1, recall 0;
  the reverse gives precision 0, recall 1; neither gives 1 and 1; F is 0 when
  precision + recall is 0.
- Per object, frames count only from the first evaluated frame where the ground truth or the
  prediction is non-empty; from then on every evaluated frame counts, empty ones too (J = F = 1).
- An object whose ground truth is empty on every evaluated frame has no score: it is reported
  as missing with a reason, never as 0 or 100. So is one with no evaluated frame at all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

import numpy as np

BOUNDARY_TOLERANCE = 0.008


def evaluated_frames(annotated: Sequence[int], skip_first_and_last: bool = True) -> list[int]:
    """The annotated frames that are scored: all but the first and last, sorted."""
    frames = sorted(annotated)
    return frames[1:-1] if skip_first_and_last else frames


def boundary_map(mask: np.ndarray) -> np.ndarray:
    """One-pixel-wide boundary of a boolean mask, offset half a pixel toward the origin."""
    east = np.zeros_like(mask)
    east[:, :-1] = mask[:, 1:]
    south = np.zeros_like(mask)
    south[:-1, :] = mask[1:, :]
    south_east = np.zeros_like(mask)
    south_east[:-1, :-1] = mask[1:, 1:]
    boundary = (mask ^ east) | (mask ^ south) | (mask ^ south_east)
    boundary[-1, :] = mask[-1, :] ^ east[-1, :]
    boundary[:, -1] = mask[:, -1] ^ south[:, -1]
    boundary[-1, -1] = False
    return boundary


def tolerance_radius(height: int, width: int) -> int:
    """Boundary tolerance in pixels: ceil(0.008 x image diagonal)."""
    return math.ceil(BOUNDARY_TOLERANCE * math.hypot(height, width))


def foreground_window(pred: np.ndarray, gt: np.ndarray) -> tuple[slice, slice] | None:
    """The part of the frame that decides J and F: the bounding box of both masks grown by one
    pixel (clipped to the frame); None when both are empty.

    Outside it both masks are empty, so is either boundary: the pixel a row above or a column
    left of the box is the first that can be a boundary pixel, and the row and column past the
    box make the boundary rule see the same zeros it sees in the full frame (at the frame's own
    last row and column the box stops there, and the rule is the frame's). Every boundary pixel
    lies in the window, so dilating inside it with zero padding loses nothing."""
    rows = np.flatnonzero(pred.any(axis=1) | gt.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(pred.any(axis=0) | gt.any(axis=0))
    height, width = gt.shape
    return slice(max(rows[0] - 1, 0), min(rows[-1] + 2, height)), slice(max(cols[0] - 1, 0), min(cols[-1] + 2, width))


def count_near(queries: np.ndarray, sources: np.ndarray, radius: int) -> int:
    """How many `queries` pixels have a `sources` pixel within `radius`: the query pixels inside
    the dilation of `sources` by the disk of integer offsets dx^2 + dy^2 <= radius^2.

    Exact, from nearest-neighbour distances between the two pixel sets (a k-d tree): boundaries
    are thin, so this costs in their length where a dilation or distance transform costs in the
    window's area. Distances are square roots of integers, so `<= radius` is exact."""
    query_points, source_points = pixel_coordinates(queries), pixel_coordinates(sources)
    if len(query_points) == 0 or len(source_points) == 0:
        return 0
    from scipy.spatial import cKDTree  # here, not at the top: the commands that never score do not pay for SciPy

    distances, _ = cKDTree(source_points).query(query_points, distance_upper_bound=radius + 0.5)
    return int(np.count_nonzero(distances <= radius))


def pixel_coordinates(mask: np.ndarray) -> np.ndarray:
    """(row, column) of each set pixel."""
    flat = np.flatnonzero(mask)
    return np.stack(np.divmod(flat, mask.shape[1]), axis=1)


def region_similarity(pred: np.ndarray, gt: np.ndarray) -> float:
    """J: intersection over union of two boolean masks; 1 when both are empty."""
    union = np.count_nonzero(pred | gt)
    if union == 0:
        return 1.0
    return np.count_nonzero(pred & gt) / union


def contour_accuracy(pred: np.ndarray, gt: np.ndarray, radius: int) -> float:
    """F: boundary F-measure with the spec's tolerance and empty-boundary cases."""
    return boundary_f_measure(boundary_map(pred), boundary_map(gt), lambda queries, sources: count_near(queries, sources, radius))


def boundary_f_measure(pred_boundary: np.ndarray, gt_boundary: np.ndarray, matched: Callable[[np.ndarray, np.ndarray], int]) -> float:
    """The F-measure of two boundary maps, where matched(queries, sources) counts the query pixels
    within the tolerance of a source pixel, with the spec's empty-boundary cases (which MOSEv2's
    scorer shares)."""
    n_pred = np.count_nonzero(pred_boundary)
    n_gt = np.count_nonzero(gt_boundary)
    if n_pred == 0 and n_gt == 0:
        precision, recall = 1.0, 1.0
    elif n_pred == 0:
        precision, recall = 1.0, 0.0
    elif n_gt == 0:
        precision, recall = 0.0, 1.0
    else:
        precision = matched(pred_boundary, gt_boundary) / n_pred
        recall = matched(gt_boundary, pred_boundary) / n_gt
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def frame_scores(pred: np.ndarray, gt: np.ndarray) -> tuple[float, float]:
    """(J, F) of one frame; non-zero is foreground; masks must have the same shape. Only the
    window around the masks is looked at (see foreground_window); the tolerance radius comes
    from the full frame."""
    if pred.shape != gt.shape:
        raise ValueError(f"prediction {pred.shape} and ground truth {gt.shape} differ in size")
    window = foreground_window(pred, gt)
    if window is None:
        return 1.0, 1.0
    pred_part = pred[window].astype(bool, copy=False)
    gt_part = gt[window].astype(bool, copy=False)
    return region_similarity(pred_part, gt_part), contour_accuracy(pred_part, gt_part, tolerance_radius(*gt.shape))


SCORE_COLUMNS = ("J", "F", "JF")


@dataclass(frozen=True)
class ObjectScore:
    """J, F and J&F of one object, in percent; all None when the object has no score."""

    J: float | None
    F: float | None
    JF: float | None
    n_frames: int
    missing_reason: str = ""

    def columns(self) -> dict[str, Any]:
        """The score as row columns: J, F, JF and the number of frames scored."""
        return {"J": self.J, "F": self.F, "JF": self.JF, "n_eval_frames": self.n_frames}


@dataclass(frozen=True)
class FrameResult:
    """One evaluated frame of one object: which masks are non-empty, and its J and F."""

    gt_present: bool
    pred_present: bool
    J: float
    F: float


def score_frame(pred: np.ndarray, gt: np.ndarray) -> FrameResult:
    """What the per-object accumulator needs of a frame; it can be computed on any thread."""
    if pred.shape != gt.shape:  # checked on every frame, counted or not, as the evaluator does
        raise ValueError(f"prediction {pred.shape} and ground truth {gt.shape} differ in size")
    j, f = frame_scores(pred, gt)
    return FrameResult(bool(gt.any()), bool(pred.any()), j, f)


class ObjectScorer:
    """Streaming per-object accumulator: feed its evaluated frames in order, then conclude."""

    def __init__(self) -> None:
        self._j: list[float] = []
        self._f: list[float] = []
        self._fed = 0
        self._gt_seen = False

    def feed(self, pred: np.ndarray, gt: np.ndarray) -> None:
        self.add(score_frame(pred, gt))

    def add(self, frame: FrameResult) -> None:
        """A frame scored elsewhere (score_frame), in frame order."""
        self._fed += 1
        self._gt_seen = self._gt_seen or frame.gt_present
        if not self._j and not frame.gt_present and not frame.pred_present:
            return  # before the object first shows up nothing counts
        self._j.append(frame.J)
        self._f.append(frame.F)

    def conclude(self) -> ObjectScore:
        if self._fed == 0:
            return ObjectScore(None, None, None, 0, "no evaluated frame (fewer than 3 annotated frames)")
        if not self._gt_seen:
            return ObjectScore(None, None, None, 0, "ground truth empty on every evaluated frame")
        j = 100.0 * float(np.mean(self._j))
        f = 100.0 * float(np.mean(self._f))
        return ObjectScore(j, f, (j + f) / 2, len(self._j))


def score_object(preds: Iterable[np.ndarray], gts: Iterable[np.ndarray]) -> ObjectScore:
    """Score one object from its evaluated frames' predictions and ground truths, in order."""
    scorer = ObjectScorer()
    for pred, gt in zip(preds, gts, strict=True):
        scorer.feed(pred, gt)
    return scorer.conclude()


def global_scores(object_scores: Iterable[tuple[float, float]]) -> tuple[float, float, float]:
    """Global (J&F, J, F): object-weighted means of per-object J and F; NaN when none."""
    pairs = list(object_scores)
    if not pairs:
        return math.nan, math.nan, math.nan
    j = float(np.mean([p[0] for p in pairs]))
    f = float(np.mean([p[1] for p in pairs]))
    return (j + f) / 2, j, f
