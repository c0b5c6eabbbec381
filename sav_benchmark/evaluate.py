"""The `evaluate` command: J, F and J&F of a folder of predicted masks against the ground truth,
printed and saved exactly as the official SA-V evaluator (`sav_dataset/sav_evaluator.py`) prints
and saves them, with the same numbers to float rounding, many times faster.

Both of its layouts are read, decided per video as it decides: SA-V (`<video>/<object>/<frame>.png`,
one binary mask per object) and DAVIS (`<video>/<frame>.png`, object ids as palette indices).

Where the official evaluator stops with an assertion, this one names the file and the fix in one
line (exit code 2). An SA-V object with no score (ground truth empty on every evaluated frame, or
fewer than three annotated frames), on which the official evaluator fails, is left out of the
table and the global score with a warning on stderr.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import Pool
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import cv2
import numpy as np

from .errors import UsageError
from .masks import read_ids, read_mask
from .metrics import FrameResult, ObjectScorer, frame_scores, score_frame

GLOBAL_LABEL = "Global score"
MAX_THREADS = 4  # threads decoding and scoring frames ahead


@dataclass(frozen=True)
class ObjectFrames:
    """One object's evaluated frames: SA-V objects are folders, a DAVIS video is one 'object'."""

    key: str | None  # the object folder; None for a DAVIS video
    gt_dir: Path
    pred_dir: Path
    frames: list[str]


@dataclass
class VideoResult:
    """Per object, in the official evaluator's order: its key and J and F in percent."""

    name: str
    scores: list[tuple[str | int, float, float]] = field(default_factory=list)
    unscored: list[tuple[str, str]] = field(default_factory=list)  # (object, why)


@dataclass(frozen=True)
class Options:
    gt_root: Path
    pred_root: Path
    skip_first_and_last: bool = True
    threads: int = 1  # decoding and scoring frames ahead


def find_videos(gt_root: str, pred_root: str, strict: bool) -> tuple[str, list[str]]:
    """The ground-truth folder and the videos to evaluate: with strict, every ground-truth video
    must have predictions (and the other way round); without, those in both folders."""
    for flag, root in (("--gt_root", gt_root), ("--pred_root", pred_root)):
        if not os.path.isdir(root):
            raise UsageError(f"{flag} {root} is not a folder; give the folder that holds one folder per video")
    gt_root = _annotations_within(gt_root, pred_root)
    truth, predictions = Path(gt_root).resolve(), Path(pred_root).resolve()
    if predictions == truth or truth in predictions.parents:
        raise UsageError(
            f"--pred_root {pred_root} is {'the' if predictions == truth else 'inside the'} ground truth ({gt_root}): results.csv would be "
            "written among the ground truth; give the folder of the predicted masks"
        )
    gt_videos = {name for name in os.listdir(gt_root) if os.path.isdir(os.path.join(gt_root, name))}
    pred_videos = {name for name in os.listdir(pred_root) if os.path.isdir(os.path.join(pred_root, name))}
    if not gt_videos:
        raise UsageError(f"--gt_root {gt_root} holds no video folders; for SA-V give sav_val/Annotations_6fps (or sav_test/...)")
    if strict:
        for what, extra, other in (("ground truth", gt_videos - pred_videos, pred_root), ("predictions", pred_videos - gt_videos, gt_root)):
            if extra:
                raise UsageError(
                    f"--strict: {len(extra)} videos of the {what} are not in {other}: "
                    f"{', '.join(sorted(extra)[:5])}{' ...' if len(extra) > 5 else ''}"
                )
        return gt_root, sorted(gt_videos)
    if not gt_videos & pred_videos:
        raise UsageError(
            f"no video folder of --gt_root {gt_root} is in --pred_root {pred_root}; give the folder that holds the predicted videos"
        )
    return gt_root, sorted(gt_videos & pred_videos)


def _annotations_within(gt_root: str, pred_root: str) -> str:
    """The official evaluator's one guess: given a dataset's root (video counts differ, and it
    holds an Annotations folder whose first entry is no PNG), it evaluates that Annotations folder."""
    gt_names, pred_names = os.listdir(gt_root), os.listdir(pred_root)
    annotations = os.path.join(gt_root, "Annotations")
    if len(gt_names) != len(pred_names) and "Annotations" in gt_names and os.path.isdir(annotations):
        inside = os.listdir(annotations)
        if inside and ".png" not in inside[0]:
            return annotations
    return gt_root


def scan_video(options: Options, video: str) -> tuple[list[ObjectFrames], bool]:
    """The video's objects and whether it is in SA-V layout (DAVIS when it holds only PNGs).
    Frames are every file of a folder, first and last dropped, as the official evaluator takes
    them; anything but a PNG among the evaluated ones, or a file beside the object folders, is
    refused. Every evaluated frame must have a prediction. All before any work."""
    gt_dir, pred_dir = options.gt_root / video, options.pred_root / video
    names = sorted(os.listdir(gt_dir))
    if all(name.endswith(".png") for name in names):
        objects, is_sav = [ObjectFrames(None, gt_dir, pred_dir, names)], False
    else:
        for name in names:
            if not (gt_dir / name).is_dir():
                raise UsageError(
                    f"{gt_dir / name} is a file beside object folders; an SA-V video folder holds one folder per object, a DAVIS one only "
                    "PNGs: move it away"
                )
        objects, is_sav = [ObjectFrames(name, gt_dir / name, pred_dir / name, sorted(os.listdir(gt_dir / name))) for name in names], True
    objects = [ObjectFrames(o.key, o.gt_dir, o.pred_dir, o.frames[1:-1] if options.skip_first_and_last else o.frames) for o in objects]
    for obj in objects:
        stray = next((name for name in obj.frames if not name.endswith(".png")), None)
        if stray:
            raise UsageError(
                f"{obj.gt_dir / stray} is not a PNG; the official evaluator counts every file of the folder as a frame: move it away"
            )
        missing = sorted(set(obj.frames) - set(os.listdir(obj.pred_dir)) if obj.pred_dir.is_dir() else obj.frames)
        if missing:
            raise UsageError(
                f"{obj.pred_dir / missing[0]} not found ({len(missing)} of the {len(obj.frames)} evaluated frames are missing); predict "
                "every annotated frame (--save_masks writes them all)"
            )
    return objects, is_sav


def evaluate_video(options: Options, video: str) -> VideoResult:
    objects, is_sav = scan_video(options, video)
    result = VideoResult(video)
    with ThreadPoolExecutor(options.threads) if options.threads > 1 else _Inline() as pool:
        frames = FrameQueue(pool, 2 * options.threads)
        for obj in objects:
            if is_sav:
                _score_sav_object(obj, frames, result)
            else:
                _score_davis_video(obj, frames, result)
    return result


def _score_sav_object(obj: ObjectFrames, frames: FrameQueue, result: VideoResult) -> None:
    scorer = ObjectScorer()
    for frame in frames.results(obj, _sav_frame):
        scorer.add(frame)
    score = scorer.conclude()
    if score.missing_reason:
        result.unscored.append((obj.key, score.missing_reason))
    else:
        result.scores.append((obj.key, score.J, score.F))


def _sav_frame(obj: ObjectFrames, frame: str) -> FrameResult:
    gt, pred = _read_sav_mask(obj.gt_dir / frame), _read_sav_mask(obj.pred_dir / frame)
    _check_sizes(obj, frame, gt, pred)
    return score_frame(pred, gt)


def _read_sav_mask(path: Path) -> np.ndarray:
    try:
        return read_mask(path, require_binary=True)
    except ValueError as exc:
        raise UsageError(f"{exc}; fix or remove that file") from None


@dataclass(frozen=True)
class LabelFrame:
    """One frame of a DAVIS video: the ids in each map, and (J, F) of each id found in either."""

    gt_ids: list[int]
    pred_ids: list[int]
    scores: dict[int, tuple[float, float]]


def _score_davis_video(obj: ObjectFrames, frames: FrameQueue, result: VideoResult) -> None:
    """The official evaluator's rules for label maps: every id seen so far in either map is
    scored on each frame (from the frame where it first shows up; where an id is in neither map
    that is J = F = 1); ids of the ground truth are reported, in the order of its Python set, so
    that the table lists them as it does."""
    in_gt: set[int] = set()
    in_pred: set[int] = set()
    j: dict[int, list[float]] = {}
    f: dict[int, list[float]] = {}
    for frame in frames.results(obj, _davis_frame):
        in_gt.update(set(frame.gt_ids))
        in_pred.update(set(frame.pred_ids))
        for object_id in in_gt | in_pred:
            frame_j, frame_f = frame.scores.get(object_id, (1.0, 1.0))
            j.setdefault(object_id, []).append(frame_j)
            f.setdefault(object_id, []).append(frame_f)
    for object_id in in_gt:
        result.scores.append((object_id, 100.0 * float(np.mean(j[object_id])), 100.0 * float(np.mean(f[object_id]))))


def _davis_frame(obj: ObjectFrames, frame: str) -> LabelFrame:
    gt, pred = _read_ids(obj.gt_dir / frame), _read_ids(obj.pred_dir / frame)
    _check_sizes(obj, frame, gt, pred)
    gt_ids, pred_ids = _ids_present(gt), _ids_present(pred)
    scores = {object_id: frame_scores(pred == object_id, gt == object_id) for object_id in sorted(set(gt_ids) | set(pred_ids))}
    return LabelFrame(gt_ids, pred_ids, scores)


def _read_ids(path: Path) -> np.ndarray:
    try:
        return read_ids(path)
    except ValueError as exc:
        raise UsageError(f"{exc}; fix or remove that file") from None


def _ids_present(ids: np.ndarray) -> list[int]:
    """The non-zero ids, ascending, as np.unique gives them (a histogram: a fraction of np.unique's
    or np.bincount's cost on a 1080p map)."""
    counts = cv2.calcHist([ids], [0], None, [256], [0, 256]).ravel()
    return (np.flatnonzero(counts[1:]) + 1).tolist()


def _check_sizes(obj: ObjectFrames, frame: str, gt: np.ndarray, pred: np.ndarray) -> None:
    if gt.shape[:2] != pred.shape[:2]:
        raise UsageError(
            f"{obj.pred_dir / frame} is {_size(pred)} but its ground truth {obj.gt_dir / frame} is {_size(gt)}; predict at the ground "
            "truth's resolution"
        )


def _size(image: np.ndarray) -> str:
    return f"{image.shape[1]}x{image.shape[0]}"


T = TypeVar("T")


@dataclass
class FrameQueue:
    """Decodes and scores an object's frames a few ahead, on a pool of threads (zlib, numpy and
    OpenCV let go of the GIL); the results come back in frame order, for the streaming accumulators."""

    pool: ThreadPoolExecutor | _Inline
    frames_ahead: int

    def results(self, obj: ObjectFrames, work: Callable[[ObjectFrames, str], T]) -> Iterator[T]:
        ahead: deque[Future] = deque()
        for frame in obj.frames:
            ahead.append(self.pool.submit(work, obj, frame))
            if len(ahead) >= self.frames_ahead:
                yield ahead.popleft().result()
        while ahead:
            yield ahead.popleft().result()


class _Inline:
    """Runs each call at once: the pool of a single thread."""

    def __enter__(self) -> "_Inline":
        return self

    def __exit__(self, *exc_info: object) -> None:
        pass

    def submit(self, fn: Callable, *args: object) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args))
        except BaseException as exc:  # raised again by result(), in order, as a pool does
            future.set_exception(exc)
        return future


@dataclass
class Evaluation:
    results: list[VideoResult]
    seconds: float

    def global_scores(self) -> tuple[float, float, float]:
        """(J&F, J, F): object-weighted means over every scored object, in table order."""
        j = [s[1] for r in self.results for s in r.scores]
        f = [s[2] for r in self.results for s in r.scores]
        global_j = float(np.mean(j)) if j else float("nan")
        global_f = float(np.mean(f)) if f else float("nan")
        return (global_j + global_f) / 2, global_j, global_f

    def table(self) -> str:
        """The official evaluator's results.csv: a global line, then one line per object."""
        width = max([len(r.name) for r in self.results] + [len(GLOBAL_LABEL)])
        global_jf, global_j, global_f = self.global_scores()
        lines = [f"{'sequence':<{width}},{'obj':>3}, {'J&F':>4}, {'J':>4}, {'F':>4}\n"]
        lines.append(f"{GLOBAL_LABEL:<{width}},{'':>3}, {global_jf:.1f}, {global_j:.1f}, {global_f:.1f}\n")
        for result in self.results:
            for key, j, f in result.scores:
                lines.append(f"{result.name:<{width}},{key:03}, {(j + f) / 2:>4.1f}, {j:>4.1f}, {f:>4.1f}\n")
        return "".join(lines)


def evaluate(options: Options, videos: list[str], processes: int) -> Evaluation:
    start = time.perf_counter()
    if processes > 1 and len(videos) > 1:
        # Leaving the block terminates the workers; they ignore Ctrl-C, which is the parent's to handle.
        with Pool(min(processes, len(videos)), initializer=signal.signal, initargs=(signal.SIGINT, signal.SIG_IGN)) as pool:
            results = pool.starmap(evaluate_video, [(options, video) for video in videos])
    else:
        results = [evaluate_video(options, video) for video in videos]
    return Evaluation(results, time.perf_counter() - start)


def scoring_threads(processes: int, videos: int) -> int:
    """Threads per process that decode and score frames: the cores left to each process, at most MAX_THREADS."""
    return max(1, min(MAX_THREADS, (os.cpu_count() or 1) // max(1, min(processes, videos))))


def run_evaluate(gt_root: str, pred_root: str, processes: int, strict: bool, skip_first_and_last: bool, quiet: bool) -> int:
    """The command: check, evaluate, print as the official evaluator prints, save results.csv."""
    gt_root, videos = find_videos(gt_root, pred_root, strict)
    options = Options(Path(gt_root), Path(pred_root), skip_first_and_last, scoring_threads(processes, len(videos)))
    for video in videos:  # every missing prediction is found before any work
        scan_video(options, video)
    if not quiet:
        if skip_first_and_last:
            print(
                "We are *SKIPPING* the evaluation of the first and the last frame (standard for semi-supervised video object segmentation)."
            )
        else:
            print(
                "We are *NOT SKIPPING* the evaluation of the first and the last frame (*NOT STANDARD* for semi-supervised video object "
                "segmentation)."
            )
        print(f"In dataset {gt_root}, we are evaluating on {len(videos)} videos: {videos}")
    evaluation = evaluate(options, videos, processes)
    for result in evaluation.results:
        for key, why in result.unscored:
            print(
                f"warning: {result.name}/{key}: no score ({why}); left out of the table and the global score (the official evaluator stops "
                "here)",
                file=sys.stderr,
            )
    table = evaluation.table()
    if not quiet:
        global_jf, global_j, global_f = evaluation.global_scores()
        print(table.replace(",", " "), end="")
        print("\nSummary:")
        print(f"Global score: J&F: {global_jf:.1f} J: {global_j:.1f} F: {global_f:.1f}")
        print(f"Time taken: {evaluation.seconds:.2f}s")
    result_path = os.path.join(pred_root, "results.csv")
    print(f"Saving the results to {result_path}")
    try:
        Path(result_path).write_text(table)
    except OSError as exc:
        raise UsageError(f"cannot write {result_path} ({exc.strerror}); make --pred_root writable") from None
    return 0
