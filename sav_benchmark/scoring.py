"""Scoring a job's masks as the evaluators score them, and saving them in their layout.

J, F and J&F per object against the split's ground truth (decoded once per object, kept as bits),
by the split's protocol: the SA-V evaluator's rules (SA-V, DAVIS, MOSE v1: the annotated frames
minus the first and the last), LVOS v2's toolkit's (each object's frame range from the meta, and V)
or MOSEv2's scorer's (its J, F-dot and the disappearance and reappearance scores); val/test splits
whose ground truth only a challenge server holds are not scored (`no_score`). DAVIS, LVOS and MOSE
store one label map per frame (one object id per pixel), so a model's objects of a video are held
until its last job, put together, and each object is scored on what it keeps of its mask there;
LVOS and MOSE keep and save a label map of every frame, as their evaluators read them.
"""

from __future__ import annotations

import logging
import tempfile
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

from .errors import one_line, os_reason
from .masks import PackedMasks, write_ids, write_mask
from .metrics import ObjectScorer, evaluated_frames
from .metrics_lvos import LVOSObjectScore, LVOSObjectScorer, scored_frames
from .metrics_mosev2 import MoseObjectScorer
from .results import NOT_FAILED, PROTOCOL_COLUMN, STATUS_ERROR, STATUS_NO_SCORE, STATUS_OK
from .rows import JobResult, with_status
from .split import PROTOCOL_LVOS, PROTOCOL_MOSEV2, PROTOCOL_SERVER, PreparedObject, PreparedSplit, PreparedVideo

log = logging.getLogger("sav_benchmark")


class Composite:
    """One model's masks of one video as DAVIS stores them, one id per pixel, put together as the
    model owners' evaluation puts them together (tools/vos_inference.py, its non-overlap rule): a
    pixel that several objects claim goes to the one whose mask scores highest there, equal
    scores to the lowest id (argmax takes the first), and pixels no object claims stay background.
    Masks that come without scores (the baseline) score the same everywhere, so there the lowest
    id wins. The result does not depend on the order the objects are added in. Each frame's ids
    (1 byte a pixel) and winning scores (4 bytes) are files in `folder`, mapped only while an
    object is added, so that memory stays flat however long the video."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.frame_shapes: dict[int, tuple[int, ...]] = {}
        self.problem = ""  # why the label maps could not be kept (a full disk): the model's rows of the video fail

    def _open(self, frame: int, shape: tuple[int, ...]) -> tuple[np.memmap, np.memmap]:
        """The frame's ids and winning scores, mapped from their files. New files are written out
        as zeros (no id, and a score that counts only where there is an id): a full disk is then an
        OSError here, not a fault in a mapped page later."""
        paths = self.folder / f"{frame}.ids.npy", self.folder / f"{frame}.scores.npy"
        if frame not in self.frame_shapes:
            np.save(paths[0], np.zeros(shape, np.uint8))
            np.save(paths[1], np.zeros(shape, np.float32))
            self.frame_shapes[frame] = shape
        return np.lib.format.open_memmap(paths[0], "r+"), np.lib.format.open_memmap(paths[1], "r+")

    def add(self, object_id: int, masks: PackedMasks) -> None:
        for frame in masks:
            mask = masks[frame]
            ids, best = self._open(frame, mask.shape)
            pixels = np.flatnonzero(mask)
            scores = masks.scores(frame)
            scores = np.zeros(pixels.size, np.float32) if scores is None else scores
            held, holder = best.flat[pixels], ids.flat[pixels]
            wins = (holder == 0) | (scores > held) | ((scores == held) & (holder > object_id))
            ids.flat[pixels[wins]] = object_id
            best.flat[pixels[wins]] = scores[wins]
            del ids, best  # unmapped (and written back) before the next frame: memory stays flat

    def ids(self, frame: int) -> np.ndarray:
        """The frame's label map, read into memory."""
        return np.load(self.folder / f"{frame}.ids.npy")

    def save(self, folder: Path, names: dict[int, str]) -> None:
        """<folder>/<frame>.png for every frame, as palette PNGs."""
        for frame in self.frame_shapes:
            write_ids(folder / names[frame], self.ids(frame))


class KeptInLabelMaps(Mapping):
    """What an object keeps of its masks in the label maps, frame by frame, each read when asked."""

    def __init__(self, composite: Composite, object_id: int, frames: list[int]) -> None:
        self.composite, self.object_id, self.frames = composite, object_id, frames

    def __getitem__(self, frame: int) -> np.ndarray:
        if frame not in self.frames:
            raise KeyError(frame)
        return self.composite.ids(frame) == self.object_id

    def __iter__(self) -> Iterator[int]:
        return iter(self.frames)

    def __len__(self) -> int:
        return len(self.frames)


@dataclass
class HeldVideo:
    """The jobs of the DAVIS video in progress, held until its last one, and each model's composite
    (its files in a temporary folder, removed when the video is concluded or the process ends)."""

    jobs: list[JobResult] = field(default_factory=list)
    composites: dict[str, Composite] = field(default_factory=dict)
    _files: tempfile.TemporaryDirectory | None = None

    def add(self, job: JobResult, predictions: PackedMasks | None) -> None:
        self.jobs.append(job)
        if predictions is None:
            return
        try:
            if self._files is None:
                self._files = tempfile.TemporaryDirectory(prefix="sav-benchmark-label-maps-")
            if job.spec.name not in self.composites:
                folder = Path(self._files.name) / str(len(self.composites))
                folder.mkdir()
                self.composites[job.spec.name] = Composite(folder)
        except OSError as exc:
            self.composites[job.spec.name] = Composite(Path(tempfile.gettempdir()))
            self.composites[job.spec.name].problem = f"cannot keep the label maps in {tempfile.gettempdir()} ({os_reason(exc)}); set TMPDIR"
            return
        composite = self.composites[job.spec.name]
        if composite.problem:
            return
        try:
            composite.add(int(job.obj.object_id), predictions)
        except OSError as exc:
            composite.problem = f"cannot keep the label maps in {composite.folder} ({os_reason(exc)}); set TMPDIR to a folder with room"

    def clear(self) -> None:
        self.jobs, self.composites = [], {}
        if self._files is not None:
            self._files.cleanup()
            self._files = None


def kept_frames(split: PreparedSplit, video: PreparedVideo, objects: list[PreparedObject]) -> list[int]:
    """The frames whose masks a job keeps: the objects' annotated frames, or every frame where the
    split's evaluator reads them all."""
    if split.every_frame:
        return list(range(video.n_frames))
    return sorted({frame for obj in objects for frame in obj.annotated_frames})


def kept_predictions(obj: PreparedObject, masks: PackedMasks, size: tuple[int, int], frames: list[int]) -> PackedMasks:
    """A mask for every kept frame: empty before the prompt frame, the model's from it on."""
    predictions = PackedMasks()
    for frame in frames:
        if frame < obj.prompt_frame:
            predictions.add_empty(frame, size)
        elif frame in masks:
            predictions.copy_from(masks, frame)
        else:
            raise RuntimeError(f"the model gave no mask for frame {frame}")
    return predictions


SERVER_REASON = "the split's ground truth is its challenge server's: submit the zip of --save_masks (DIR/<model>.zip)"
# MOSEv2's scores (metrics.json's keys) in the row's columns.
MOSEV2_ROW_COLUMNS = {
    "J&F_new": "JF_dot",
    "J": "J",
    "F_new": "F_dot",
    "disappear_J&F_new": "JF_dot_disappear",
    "reappear_J&F_new": "JF_dot_reappear",
    "F": "F",
    "J&F": "JF",
    "n_eval_frames": "n_eval_frames",
}


class JobScoring:
    """Scores finished jobs and saves their masks (--save_masks): rows get J, F, J&F and their status."""

    def __init__(
        self, split: PreparedSplit, skip_first_and_last: bool = True, save_masks: Path | None = None, objects_together: bool = False
    ) -> None:
        self.split = split
        # Jobs come object by object, or (objects together) model by model over the video's objects:
        # the ground truth is kept for the object in progress, or for the whole video.
        self.objects_together = objects_together
        self.skip_first_and_last = skip_first_and_last
        self.save_masks = save_masks
        self._held = HeldVideo()  # the DAVIS video in progress
        self._truth_video = ""
        self._truth: dict[str, PackedMasks] = {}  # the video's objects' ground truth, as decoded so far

    def conclude(self, job: JobResult, video: PreparedVideo, predictions: PackedMasks | None, video_ends: bool) -> list[JobResult]:
        """The jobs whose rows are now complete: this one, or with DAVIS input all of the video's
        once it ends (none before). A job without masks (it failed) keeps its row as it is."""
        if self.split.label_maps:
            self._held.add(job, predictions)
            return self._conclude_davis_video(video) if video_ends else []
        if predictions is None:
            return [job]
        return [self.score_and_save(job, video, predictions, self._truth_of(video, job.obj))]

    def score_and_save(
        self, job: JobResult, video: PreparedVideo, predictions: Mapping[int, np.ndarray], ground_truth: PackedMasks, save: bool = True
    ) -> JobResult:
        """Score the job's masks and save them; the row gets its status."""
        spec, obj, row = job.spec, job.obj, job.row
        try:
            status, reason = self._score(row, video, obj, predictions, ground_truth)
        except Exception as exc:
            log.error("%s %s/%s: scoring failed\n%s", spec.name, video.video_id, obj.object_id, traceback.format_exc())
            return replace(job, row=with_status(row, STATUS_ERROR, f"scoring failed: {one_line(exc)}"), input_problem=True)
        if save and self.save_masks is not None:
            try:
                self._save_masks(spec.name, video, obj, predictions)
            except Exception as exc:  # the scores stand; the row says the masks are missing
                log.error("%s %s/%s: saving masks failed\n%s", spec.name, video.video_id, obj.object_id, traceback.format_exc())
                return replace(job, row=with_status(row, STATUS_ERROR, f"saving masks failed: {one_line(exc)}"))
        return replace(job, row=with_status(row, status, reason))

    def _truth_of(self, video: PreparedVideo, obj: PreparedObject) -> PackedMasks:
        """The object's ground truth, decoded once for all its models (kept as bits: a long video's
        frames add up)."""
        if self._truth_video != video.video_id or (not self.objects_together and obj.object_id not in self._truth):
            self._truth_video, self._truth = video.video_id, {}
        return self._truth.setdefault(obj.object_id, PackedMasks())

    def _conclude_davis_video(self, video: PreparedVideo) -> list[JobResult]:
        """Each model's objects of the video put together (see Composite), each object scored on
        what it keeps of its mask there, as the official evaluator scores the saved frames."""
        concluded = []
        for job in self._held.jobs:
            composite = self._held.composites.get(job.spec.name)
            if job.row.get("status") or composite is None:
                concluded.append(job)
                continue
            if composite.problem:
                concluded.append(replace(job, row=with_status(job.row, STATUS_ERROR, composite.problem)))
                continue
            object_id = int(job.obj.object_id)
            masks = KeptInLabelMaps(composite, object_id, kept_frames(self.split, video, [job.obj]))
            concluded.append(self.score_and_save(job, video, masks, PackedMasks(), save=False))
        if self.save_masks is not None:
            for name, composite in self._held.composites.items():
                if composite.problem:
                    continue
                self._save_davis_frames(video, name, composite, concluded)
        self._held.clear()
        return concluded

    def _save_davis_frames(self, video: PreparedVideo, model: str, composite: Composite, concluded: list[JobResult]) -> None:
        """DIR/<model>/<video>/<frame>.png; if that fails, the model's scored rows say so."""
        obj = next(job.obj for job in concluded if job.spec.name == model)
        if self.split.every_frame:
            names = {frame: f"{name}.png" for frame, name in enumerate(video.frame_names)}
        else:
            names = dict(zip(obj.annotated_frames, obj.annotation_files))
        try:
            composite.save(self.save_masks / model / video.video_id, names)
        except Exception as exc:
            log.error("%s %s: saving masks failed\n%s", model, video.video_id, traceback.format_exc())
            for i, job in enumerate(concluded):
                if job.spec.name == model and job.row["status"] in NOT_FAILED:
                    concluded[i] = replace(job, row=with_status(job.row, STATUS_ERROR, f"saving masks failed: {one_line(exc)}"))

    def _score(
        self,
        row: dict[str, Any],
        video: PreparedVideo,
        obj: PreparedObject,
        predictions: Mapping[int, np.ndarray],
        ground_truth: PackedMasks,
    ) -> tuple[str, str]:
        """J, F, J&F of the object (and its protocol's other measures), and the row's status;
        ground truth is decoded once per object."""
        protocol = self.split.protocol
        row[PROTOCOL_COLUMN] = protocol
        if protocol == PROTOCOL_SERVER:
            row["n_eval_frames"] = 0
            return STATUS_NO_SCORE, SERVER_REASON
        if protocol == PROTOCOL_LVOS:
            lvos = self._lvos_score(video, obj, predictions, ground_truth)
            row.update(lvos.columns())
            if lvos.slots == 0:  # LVOS's toolkit reports NaN for it (and for its group's means)
                return STATUS_NO_SCORE, "its frame_range has frame_nums 2: LVOS's toolkit scores no frame of it (NaN)"
            return STATUS_OK, ""
        if protocol == PROTOCOL_MOSEV2:
            scorer = MoseObjectScorer()
            for frame in range(1, video.n_frames - 1):  # every frame but the video's first and last
                scorer.feed(predictions[frame], self._truth_at(video, obj, frame, ground_truth))
            row.update({MOSEV2_ROW_COLUMNS[key]: value for key, value in scorer.conclude().columns().items()})
            return STATUS_OK, ""
        scorer = ObjectScorer()
        for frame in evaluated_frames(obj.annotated_frames, self.skip_first_and_last):
            scorer.feed(predictions[frame], self._truth_at(video, obj, frame, ground_truth))
        score = scorer.conclude()
        row.update(score.columns())
        if score.missing_reason:
            return STATUS_NO_SCORE, score.missing_reason
        return STATUS_OK, ""

    def _lvos_score(
        self, video: PreparedVideo, obj: PreparedObject, predictions: Mapping[int, np.ndarray], ground_truth: PackedMasks
    ) -> LVOSObjectScore:
        """The object's J, F and V over its meta frame range, as LVOS's toolkit scores them."""
        positions = {int(name): frame for frame, name in enumerate(video.frame_names)}
        start, end, frame_nums = obj.frame_range
        scorer = LVOSObjectScorer(frame_nums, video=video.video_id, obj=obj.object_id)
        for slot, number in scored_frames(start, end, frame_nums, video=video.video_id, obj=obj.object_id):
            frame = positions[number]
            scorer.feed(slot, predictions[frame], self._truth_at(video, obj, frame, ground_truth))
        return scorer.conclude()

    def _truth_at(self, video: PreparedVideo, obj: PreparedObject, frame: int, ground_truth: PackedMasks) -> np.ndarray:
        if frame not in ground_truth:
            ground_truth.add(frame, self.split.read_truth(video, obj, frame))
        return ground_truth[frame]

    def _save_masks(self, model: str, video: PreparedVideo, obj: PreparedObject, predictions: Mapping[int, np.ndarray]) -> None:
        """The official evaluator's layout: DIR/<model>/<video>/<object>/<frame>.png, every annotated frame."""
        folder = self.save_masks / model / video.video_id / obj.object_id
        for frame, mask in predictions.items():
            write_mask(folder / obj.mask_file(frame), mask)
