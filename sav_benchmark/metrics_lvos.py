"""J, F and V as LVOS v2's official toolkit scores the semi-supervised valid split.

The reference is LingyiHongfd/lvos-evaluation (HEAD 25cb02d1455b5d0c964a9836ff5242fb51df55ee; its
code last changed in c05e889dc40dc1c16ab77b79eba1a54a10f52323, "update code for v2"): its
`evaluation_method.py` run single-process, on the pure-Python boundary path (without its optional
Cython module, whose boundary map differs from DAVIS's and changes F). This module is written from
the rules, not from that code. Per-frame J and F are sav_benchmark.metrics.frame_scores, which
equals DAVIS's db_eval_iou / db_eval_boundary (bound_th 0.008, no void pixels) that the toolkit uses.

The rules:
- Frames are named `%08d` and only every 5th raw frame exists (1, 6, 11, ...). Each object has its
  own window from its meta `frame_range` (`start`, `end`, `frame_nums`, each through int()): the
  candidates are range(start, end, 5); candidate k (from 0) is skipped when k == 0 (the reference
  frame) or k == frame_nums - 1, and otherwise scored into slot k - 1 of an array of frame_nums - 2
  slots that starts at zero (scored_frames).
- JM and FM are the means over ALL frame_nums - 2 slots: a slot no candidate fills counts 0.
  V is the population standard deviation of the per-slot (J + F) / 2, with the variance rounded to
  4 decimals the way numpy rounds (rint(var * 1e4) / 1e4) before the square root. All three are
  fractions in [0, 1], as the toolkit reports them (LVOSObjectScore; `columns()` gives percent).
- Masks are `label_map == int(object id)` for both the ground truth and the prediction, with no
  void pixels (object_mask). Inside the window every candidate is scored, also where the object is
  absent: both masks empty gives J = F = 1, an empty ground truth with a non-empty prediction
  J = F = 0. So an object that leaves and comes back needs no special case.
- Seen or unseen is decided per video, by exact name, against the unseen list (UNSEEN_VIDEOS_V2
  by default); every object of an unseen video is unseen.
- The global numbers are macro averages over the two groups, each group mean being the plain mean
  over its objects: J-Mean = (J_seen + J_unseen) / 2, F-Mean and V-Mean likewise, and
  J&F-Mean = ((J_seen + F_seen) + (J_unseen + F_unseen)) / 4 (not the mean over all objects).
- The per-sequence table has one row per object, named `<video>_<position + 1>` where position is
  the object's place among its video's objects in the meta (not its id), with J-Mean, F-Mean and
  V-Mean; videos in sorted order, objects in meta order.
- The two CSVs, `global_results-<set>.csv` and `per-sequence_results-<set>.csv`, are pandas
  tables written without index and with float_format "%.3f"; a NaN is written as an empty field.

Edge cases, as the toolkit behaves (tested against it where it does not crash):
- frame_nums < 2: the toolkit fails allocating its array (negative size); scored_frames raises
  ValueError.
- More candidates than frame_nums (range(start, end, 5) longer than frame_nums, for instance
  `end` past start + 5 * frame_nums): the toolkit raises IndexError on the first slot past the
  array; scored_frames raises ValueError. `end` read as the last frame or as last + 5 selects the
  same frames when frame_nums is consistent.
- frame_nums == 2 with at most 2 candidates: no slot, no scored frame, and the toolkit reports NaN
  for JM, FM and V (numpy's mean of nothing); so does LVOSObjectScorer. (With a third candidate the
  toolkit crashes, as above.)
- frame_nums larger than the candidates + 1 (or start >= end): the unfilled slots stay 0 and pull
  JM and FM down; with no candidate at all JM = FM = V = 0.
- A group (seen or unseen) with no object has a NaN mean, and NaN propagates into J&F-Mean, J-Mean,
  F-Mean and V-Mean, as the toolkit's np.mean([]) does. The LVOS v2 valid split has both groups.
- Means are numpy's (pairwise summation), over the objects in the toolkit's order, so the global
  numbers are the toolkit's to the last bit: the aggregation sorts the objects by video name
  (stably, keeping each video's objects in the order given).
- A missing prediction file makes the toolkit exit with status 0 and no CSV; it is the reader's
  business here (this module never reads files), and should be an error.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Iterable, NamedTuple, Sequence

import numpy as np

from .metrics import frame_scores

FRAME_STEP = 5  # the 6 FPS annotated frames keep their 30 FPS numbers: 1, 6, 11, ...

# LVOS v2's unseen videos: `unseen_videos.txt` of LingyiHongfd/lvos-evaluation at commit
# c05e889dc40dc1c16ab77b79eba1a54a10f52323 (unchanged at HEAD 25cb02d1455b5d0c964a9836ff5242fb51df55ee),
# 51 names in the file's order. (Before c05e889 the file held LVOS v1's 27 names.)
UNSEEN_VIDEOS_V2: tuple[str, ...] = (
    "R3UJGYwy", "K3OUeINk", "058oeZ2p", "xpI7xRWN", "FiRTBMg2", "nfcT3owb", "JGG6MrhF", "yfzVCnvU", "6mNj04tC",
    "yWnanBID", "v3uNUctx", "49TNsJzk", "gw84JOqH", "711gAS21", "dtHbJvYy", "tAyQIobn", "vJ8W2TO5", "FmzvB44A",
    "8lxxCA5h", "N6CONZUW", "Oj1z5fO0", "gdqCcvs2", "LWVlKBlK", "yxCvN6OJ", "pMntJwSQ", "p9RjdKoh", "9NA8c5C3",
    "m37l7ti1", "nwflTTf1", "LY2zehlH", "beR0WT11", "afoR2rH6", "xQZlxhxV", "o36i3YWC", "cdzAjcuN", "IlvtT6D6",
    "YfoFnMgm", "FiQUhyRi", "9oLyy7aJ", "9RoNInYO", "wrrX6bxv", "q2HE4zaM", "rvwT3piq", "ZFqAoImI", "bwcKqVSN",
    "QE1wMR58", "eEcUJVBZ", "Qf9YVXOW", "SRRojucs", "PQfn7XV2", "3bvEjhOT",
)  # fmt: skip

GLOBAL_COLUMNS: tuple[str, ...] = (
    "J&F-Mean", "J-Mean", "J-seen-Mean", "J-unseen-Mean", "F-Mean", "F-seen-Mean", "F-unseen-Mean",
    "V-Mean", "V-seen-Mean", "V-unseen-Mean",
)  # fmt: skip
SEQUENCE_COLUMNS: tuple[str, ...] = ("Sequence", "J-Mean", "F-Mean", "V-Mean")
FLOAT_FORMAT = "%.3f"


def frame_file_name(frame: int) -> str:
    """The file stem of a frame: its number, 8 digits zero-padded ("00000006")."""
    return f"{frame:08d}"


def _where(video: str | None, obj: str | int | None) -> str:
    parts = ([f"video {video}"] if video is not None else []) + ([f"object {obj}"] if obj is not None else [])
    return f"{', '.join(parts)}: " if parts else ""


def scored_frames(
    start: int | str, end: int | str, frame_nums: int | str, *, video: str | None = None, obj: str | int | None = None
) -> list[tuple[int, int]]:
    """The (slot, frame number) pairs the toolkit scores for one object, in frame order.

    Candidates are range(start, end, 5); the k-th (from 0) goes to slot k - 1 of frame_nums - 2
    slots, except k == 0 and k == frame_nums - 1, which are skipped. The arguments go through int()
    as the toolkit's do (numeric strings work). Raises ValueError, naming `video` and `obj` when
    given, where the toolkit crashes: frame_nums < 2, or a candidate whose slot is past the array."""
    s, e, n = int(start), int(end), int(frame_nums)
    if n < 2:
        raise ValueError(
            f"{_where(video, obj)}frame_nums {n} < 2: the official evaluator cannot make its array of frame_nums - 2 scores and crashes"
        )
    candidates = range(s, e, FRAME_STEP)
    if len(candidates) > n:
        raise ValueError(
            f"{_where(video, obj)}frame_range start {s}, end {e} gives {len(candidates)} frames (range(start, end, {FRAME_STEP})), "
            f"more than frame_nums {n}: frame {candidates[n]} would go to slot {n - 1} of {n - 2}, where the official evaluator crashes"
        )
    return [(k - 1, frame) for k, frame in enumerate(candidates) if k != 0 and k != n - 1]


def object_mask(label_map: np.ndarray, obj: str | int) -> np.ndarray:
    """An object's boolean mask in a label map (ground truth or prediction): label == int(obj).
    No void label: 255 is an object id like any other."""
    return np.asarray(label_map) == int(obj)


def rounded_std(variance: float) -> float:
    """V from a variance: the square root of the variance rounded to 4 decimals as numpy rounds
    (rint(variance * 1e4) / 1e4, half to even on the scaled value). 0.0100848 -> sqrt(0.0101)."""
    return math.sqrt(float(np.rint(np.float64(variance) * 10000.0) / 10000.0))


def _percent(value: float) -> float | None:
    return None if math.isnan(value) else 100.0 * value


class LVOSObjectScore(NamedTuple):
    """One object's scores as the toolkit reports them: fractions; NaN when it has no slot
    (frame_nums == 2). `scored` counts the slots filled, `slots` is frame_nums - 2."""

    JM: float
    FM: float
    V: float
    scored: int
    slots: int

    def columns(self) -> dict[str, float | int | None]:
        """Row columns in percent: J, F, JF = (J + F) / 2 and V; None for a NaN; n_eval_frames."""
        j, f, v = _percent(self.JM), _percent(self.FM), _percent(self.V)
        jf = None if j is None or f is None else (j + f) / 2
        return {"J": j, "F": f, "JF": jf, "V": v, "n_eval_frames": self.scored}


class LVOSObjectScorer:
    """Streaming per-object accumulator: give it frame_nums, feed each scored frame's slot with its
    masks (feed) or its J and F (add), in any order, then conclude. Slots never fed count 0."""

    def __init__(self, frame_nums: int | str, *, video: str | None = None, obj: str | int | None = None) -> None:
        n = int(frame_nums)
        self._where = _where(video, obj)
        if n < 2:
            raise ValueError(f"{self._where}frame_nums {n} < 2: the official evaluator crashes on it")
        self._j = np.zeros(n - 2)
        self._f = np.zeros(n - 2)
        self._filled = np.zeros(n - 2, bool)

    def feed(self, slot: int, pred: np.ndarray, gt: np.ndarray) -> tuple[float, float]:
        """Score one frame's boolean (or non-zero = foreground) masks into `slot`; returns (J, F)."""
        j, f = frame_scores(pred, gt)
        self.add(slot, j, f)
        return j, f

    def add(self, slot: int, j: float, f: float) -> None:
        """One frame's J and F, scored elsewhere, into `slot` (0 <= slot < frame_nums - 2, once)."""
        if not 0 <= slot < len(self._j):
            raise ValueError(f"{self._where}slot {slot} is outside the {len(self._j)} slots of frame_nums - 2")
        if self._filled[slot]:
            raise ValueError(f"{self._where}slot {slot} was scored already")
        self._j[slot], self._f[slot], self._filled[slot] = j, f, True

    def conclude(self) -> LVOSObjectScore:
        """JM, FM (means over all slots) and V (see rounded_std); NaN for all three with no slot."""
        slots, scored = len(self._j), int(np.count_nonzero(self._filled))
        if slots == 0:
            return LVOSObjectScore(math.nan, math.nan, math.nan, scored, slots)
        jf = (self._j + self._f) / 2
        variance = np.sum((np.mean(jf) - jf) ** 2) / slots
        return LVOSObjectScore(float(np.mean(self._j)), float(np.mean(self._f)), rounded_std(variance), scored, slots)


class ObjectResult(NamedTuple):
    """One object's fractions for the tables; a plain (video, JM, FM, V) tuple works as well."""

    video: str
    JM: float
    FM: float
    V: float


def _in_official_order(objects: Iterable[Sequence]) -> list[ObjectResult]:
    """The objects sorted by video name, stably: the toolkit's order when each video's objects
    come in meta order."""
    return sorted((ObjectResult(str(o[0]), float(o[1]), float(o[2]), float(o[3])) for o in objects), key=lambda o: o.video)


def _mean(values: list[float]) -> float:
    """numpy's mean (pairwise summation, as the toolkit's np.mean); NaN for no value."""
    return float(np.mean(np.asarray(values, dtype=np.float64))) if values else math.nan


def global_table(objects: Iterable[Sequence], unseen_videos: Iterable[str] = UNSEEN_VIDEOS_V2) -> dict[str, float]:
    """The toolkit's global table (GLOBAL_COLUMNS -> fraction) from per-object (video, JM, FM, V),
    each video's objects in meta order. Group means are NaN for an empty group, and NaN spreads to
    the macro averages that use it."""
    unseen = set(unseen_videos)
    groups: dict[bool, list[ObjectResult]] = {False: [], True: []}
    for o in _in_official_order(objects):
        groups[o.video in unseen].append(o)
    js, fs, vs = (_mean([getattr(o, m) for o in groups[False]]) for m in ("JM", "FM", "V"))
    ju, fu, vu = (_mean([getattr(o, m) for o in groups[True]]) for m in ("JM", "FM", "V"))
    values = (((js + fs) + (ju + fu)) / 4.0, (js + ju) / 2, js, ju, (fs + fu) / 2, fs, fu, (vs + vu) / 2, vs, vu)
    return dict(zip(GLOBAL_COLUMNS, values))


def sequence_name(video: str, position: int) -> str:
    """The per-sequence row name of the object at `position` (from 0) among its video's objects."""
    return f"{video}_{position + 1}"


def per_sequence_table(objects: Iterable[Sequence]) -> list[tuple[str, float, float, float]]:
    """The toolkit's per-sequence rows (Sequence, J-Mean, F-Mean, V-Mean) from per-object
    (video, JM, FM, V), each video's objects in meta order; videos come out sorted."""
    rows, seen = [], {}
    for o in _in_official_order(objects):
        position = seen[o.video] = seen.get(o.video, -1) + 1
        rows.append((sequence_name(o.video, position), o.JM, o.FM, o.V))
    return rows


def csv_paths(results_dir: str | os.PathLike, subset: str = "valid") -> tuple[Path, Path]:
    """Where the toolkit writes its two tables: (global, per-sequence)."""
    root = Path(results_dir)
    return root / f"global_results-{subset}.csv", root / f"per-sequence_results-{subset}.csv"


def write_csvs(
    results_dir: str | os.PathLike, objects: Iterable[Sequence], unseen_videos: Iterable[str] = UNSEEN_VIDEOS_V2, subset: str = "valid"
) -> tuple[Path, Path]:
    """Write `global_results-<subset>.csv` and `per-sequence_results-<subset>.csv` into results_dir
    as the toolkit does (pandas, no index, "%.3f", NaN as an empty field); returns their paths."""
    import pandas as pd  # here, not at the top: only a run of LVOS pays for importing pandas

    objects = list(objects)
    global_path, sequence_path = csv_paths(results_dir, subset)
    table = global_table(objects, unseen_videos)
    frames = (
        (global_path, pd.DataFrame(data=np.array([list(table.values())]), columns=list(GLOBAL_COLUMNS))),
        (sequence_path, pd.DataFrame(data=per_sequence_table(objects), columns=list(SEQUENCE_COLUMNS))),
    )
    for path, frame in frames:
        with open(path, "w") as handle:
            frame.to_csv(handle, index=False, float_format=FLOAT_FORMAT)
    return global_path, sequence_path
