"""Phase 2: for each video, each object, each model: run the job, score it, write its row.

The job itself (build, init, prompt, propagate under the timers, clean up) runs in an executor:
this process, or the model's worker process. Scoring, saving masks and writing rows come after it.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
import traceback
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import numpy as np

from .executors import Executor, InProcessExecutor
from .files import write_atomically
from .masks import PackedMasks, write_mask
from .measure import JobOutcome, one_line
from .metrics import ObjectScorer, evaluated_frames
from .progress import Progress
from .results import (
    NOT_FAILED,
    STATUS_CRASH,
    STATUS_ERROR,
    STATUS_NO_SCORE,
    STATUS_OK,
    STATUS_OOM,
    STATUS_SKIPPED,
    ResultWriter,
)
from .runners import ModelSpec
from .runners.base import Job, RunSettings
from .runners.sizes import DEFAULT_IMGSZ
from .scoring import Composite
from .signals import Interrupted, SignalGuard, interruption_behind, signals_raised
from .split import LAYOUT_DAVIS, PreparedObject, PreparedSplit, PreparedVideo

log = logging.getLogger("sav_benchmark")


@dataclass
class RunOptions:
    settings: RunSettings
    warmup_frames: int = 0
    save_masks: Path | None = None
    skip_first_and_last: bool = True
    run_id: str = ""
    done: set[tuple[str, str, str]] = field(default_factory=set)  # (video, object, model) already in the CSV
    fail_fast: bool = False
    max_consecutive_failures: int | None = None
    oom_retry_imgsz: int | None = None
    current_job_file: Path | None = None  # in-process runs: the job in progress, to know it if it kills the run


class ResultsNotWritable(Exception):
    """The run cannot record its progress (a full disk, a lost mount): it stops; --resume redoes that job."""

    def __init__(self, path: Path, cause: OSError) -> None:
        super().__init__(f"cannot write to {path} ({cause.strerror or cause})")


FINISHER_NICENESS = 10
STOPPED_FAIL_FAST = "fail_fast"
STOPPED_FAILURES = "max_consecutive_failures"


@dataclass
class RunReport:
    rows: list[dict[str, Any]] = field(default_factory=list)
    stopped: str = ""  # why the run ended early, if it did
    stopped_at: dict[str, Any] = field(default_factory=dict)  # the failed row that ended it


def make_job(split: PreparedSplit, video: PreparedVideo, obj: PreparedObject, max_frames: int | None = None) -> Job:
    mask = split.read_truth(video, obj, obj.prompt_frame)
    return Job(split.frames_dir(video), video.n_frames, obj.prompt_frame, obj.points, obj.box, mask, max_frames)


def warmup_job(split: PreparedSplit, frames: int) -> tuple[Job | None, str]:
    """The job every model (and every new worker) warms up on: the first frames of the first
    usable object. Returns it, or None and why there is none."""
    if frames <= 0:
        return None, "no warm-up (--warmup_frames 0)"
    target = next(((v, o) for v in split.videos if not v.problem for o in v.objects if not o.skip_reason), None)
    if target is None:
        return None, "no warm-up: no video and object can run"
    try:
        return make_job(split, *target, max_frames=frames), ""
    except Exception as exc:  # its own job will report the problem in its row
        return None, f"no warm-up: {one_line(exc)}"


class Benchmark:
    """Runs every (video, object, model) job of a prepared split and writes one row per job."""

    def __init__(
        self,
        split: PreparedSplit,
        specs: list[ModelSpec],
        options: RunOptions,
        writer: ResultWriter,
        executor: Executor | None = None,
        guard: SignalGuard | None = None,
    ) -> None:
        self.split = split
        self.specs = specs
        self.options = options
        self.writer = writer
        self.executor = executor or InProcessExecutor(specs, options.settings)
        self.guard = guard or SignalGuard()
        self.report = RunReport()
        self._consecutive_failures = 0
        self._held = HeldVideo()  # the DAVIS video in progress
        self._truth_key: tuple[str, str] | None = None
        self._truth = PackedMasks()
        self._state_lock = threading.Lock()  # the job-state file: both threads update it

    def jobs(self) -> Iterator[tuple[PreparedVideo, PreparedObject, ModelSpec]]:
        """Every job still to run, in video -> object -> model order."""
        for video in self.split.videos:
            for obj in video.objects:
                for spec in self.specs:
                    if (video.video_id, obj.object_id, spec.name) not in self.options.done:
                        yield video, obj, spec

    def run(self, show_progress: bool = False) -> RunReport:
        """Predict each job here; score, save and write it on the finisher's thread while the next
        job runs. The last job, and any job without masks to score, is finished here once the
        finisher is idle, so that rows stay in order and a failure stops the run at once."""
        todo = list(self.jobs())
        progress = Progress(len(todo), show_progress, self.executor.frames_done)
        finisher = Finisher(self._finish)
        raised_before = signals_raised()
        try:
            started = time.perf_counter()
            for index, (video, obj, spec) in enumerate(todo):
                if self.report.stopped:
                    break
                progress.start_job(f"{video.video_id}/{obj.object_id} {spec.name}", video.n_frames - (obj.prompt_frame or 0))
                if self._died_here_before((video.video_id, obj.object_id, spec.name)):
                    row, input_problem, predictions = self._killed_the_run_row(spec, video, obj), False, None
                else:
                    row, input_problem, predictions = self._predict(spec, video, obj)
                    self._job_ended()
                video_ends = index + 1 == len(todo) or todo[index + 1][0] is not video
                pending = Pending(Finished(row, input_problem, spec, obj), video, predictions, video_ends, started)
                if index + 1 == len(todo) or predictions is None or self.options.fail_fast:
                    finisher.drain()
                    with self.guard.critical():  # a video's rows are written together, or none of them
                        self._finish(pending)
                    started = time.perf_counter()
                else:
                    started = pending.hand_over()
                    finisher.submit(pending)
                progress.end_job()
                if video_ends:
                    self.executor.between_videos(self.specs)
            finisher.close()
        except BaseException as exc:
            if isinstance(exc, (Interrupted, ResultsNotWritable)) or interruption_behind(exc, raised_before):
                self._job_ended_cleanly()  # the run ends with its cleanup: the job in progress did not kill it
            raise
        finally:
            progress.close()
            with self.guard.hold():  # the finished jobs' rows are written before the run ends
                finisher.close(raise_error=False)  # an interruption is what the user needs to hear of
        return self.report

    def _finish(self, pending: Pending) -> None:
        """Score and save a job (a DAVIS video's jobs once it ends), then write the rows. Once the
        run has stopped (a failure found here while the next job ran), later jobs get no row: the
        run ends at the row that stopped it, and a resume runs them."""
        if self.report.stopped:
            return
        job, video = pending.job, pending.video
        if self.split.layout == LAYOUT_DAVIS:
            self._held.add(job, pending.predictions)
            finished = self._conclude_davis_video(video, self._held) if pending.video_ends else []
        elif pending.predictions is None:
            finished = [job]
        else:
            finished = [self._conclude(job, video, pending.predictions, self._truth_of(video, job.obj))]
        pending.settle_wall()
        for done in finished:
            done.row["overhead_s"] = _overhead(done.row)
            self._write(done.row, video, done.obj, done.spec)
            self._should_stop(done.row, done.input_problem)
        self._rows_written([(video.video_id, done.obj.object_id, done.spec.name) for done in finished])

    def _truth_of(self, video: PreparedVideo, obj: PreparedObject) -> PackedMasks:
        """The object's ground truth, decoded once for all its models (kept as bits: a long video's
        frames add up)."""
        key = (video.video_id, obj.object_id)
        if self._truth_key != key:
            self._truth_key, self._truth = key, PackedMasks()
        return self._truth

    def _write(self, row: dict[str, Any], video: PreparedVideo, obj: PreparedObject, spec: ModelSpec) -> None:
        """One row to the CSV; called inside the guard's critical section."""
        try:
            self.writer.write(row)
        except OSError as exc:
            raise ResultsNotWritable(self.writer.path, exc) from exc
        self.report.rows.append(row)
        log.info("%s/%s %s: %s %s", video.video_id, obj.object_id, spec.name, row["status"], row["error"])

    def _died_here_before(self, key: tuple[str, str, str]) -> bool:
        """With jobs in this process, a model that crashes (segfault) ends the whole run, and a resume
        would start with the same job again. A file keeps the job in progress and, per job without a
        row yet, how often the run died during it: a job during which the run died twice is not run
        a third time. (Once could be a kill -9.) Deaths are kept until the job's row is written, as
        DAVIS holds a video's rows until its last job."""
        with self._state_lock:
            state = self._job_state()
            if state is None:
                return False
            if state["in_progress"]:
                died = "/".join(state["in_progress"])
                state["deaths"][died] = state["deaths"].get(died, 0) + 1
            state["in_progress"] = None if state["deaths"].get("/".join(key), 0) >= 2 else list(key)
            self._save_job_state(state)
            return state["in_progress"] is None

    def _job_ended(self) -> None:
        with self._state_lock:
            state = self._job_state()
            if state is not None:
                state["in_progress"] = None
                self._save_job_state(state)

    def _job_ended_cleanly(self) -> None:
        """The run ends by a signal it handled or a full disk: the job in progress did not kill
        it, so it counts no death. (Any other way out, such as a library's SystemExit, may be the
        job's doing: it stays in progress, and dying in it twice gives it a crash row.)"""
        try:
            self._job_ended()
        except ResultsNotWritable:  # the disk refuses: the run is ending with that error anyway
            pass

    def _rows_written(self, keys: list[tuple[str, str, str]]) -> None:
        with self._state_lock:
            state = self._job_state()
            if state is not None:
                for key in keys:
                    state["deaths"].pop("/".join(key), None)
                self._save_job_state(state)

    def _job_state(self) -> dict[str, Any] | None:
        """{"in_progress": key or None, "deaths": {"video/object/model": count}}; None when not kept."""
        path = self.options.current_job_file
        if path is None:
            return None
        try:
            state = json.loads(path.read_text())
            if isinstance(state.get("deaths"), dict) and isinstance(state.get("in_progress"), (list, type(None))):
                return state
        except (OSError, ValueError, AttributeError):
            pass
        return {"in_progress": None, "deaths": {}}

    def _save_job_state(self, state: dict[str, Any]) -> None:
        path = self.options.current_job_file
        try:
            if state["in_progress"] or state["deaths"]:
                write_atomically(path, json.dumps(state))
            else:
                path.unlink(missing_ok=True)
        except OSError as exc:
            raise ResultsNotWritable(path, exc) from exc

    def _killed_the_run_row(self, spec: ModelSpec, video: PreparedVideo, obj: PreparedObject) -> dict[str, Any]:
        row = {**self._row_start(spec, video, obj), "prompt_frame": obj.prompt_frame}
        reason = "the run died twice during this job, so it was not run again (with --isolation process a crash costs only its row)"
        log.error("%s %s/%s: %s", spec.name, video.video_id, obj.object_id, reason)
        return _finish(row, STATUS_CRASH, reason)

    def _should_stop(self, row: dict[str, Any], input_problem: bool) -> bool:
        if row["status"] in NOT_FAILED:
            self._consecutive_failures = 0
            return False
        if input_problem:
            return self.options.fail_fast and self._stop(STOPPED_FAIL_FAST, row)  # bad input is no systematic failure
        self._consecutive_failures += 1
        if self.options.fail_fast:
            return self._stop(STOPPED_FAIL_FAST, row)
        limit = self.options.max_consecutive_failures
        return bool(limit) and self._consecutive_failures >= limit and self._stop(STOPPED_FAILURES, row)

    def _stop(self, why: str, row: dict[str, Any]) -> bool:
        if not self.report.stopped:
            self.report.stopped, self.report.stopped_at = why, row
        return True

    def _row_start(self, spec: ModelSpec, video: PreparedVideo, obj: PreparedObject) -> dict[str, Any]:
        """The columns every row of a job has, whatever becomes of it."""
        return {
            "run_id": self.options.run_id,
            "video_id": video.video_id,
            "object_id": obj.object_id,
            "model": spec.name,
            "prompt": spec.prompt,
            "n_frames": video.n_frames or None,
            **self._settings_columns(spec),
        }

    def _settings_columns(self, spec: ModelSpec) -> dict[str, Any]:
        settings = self.options.settings
        if not spec.uses_torch:
            return {"weights": "none", "device": "cpu"}
        return {
            "weights": settings.weights,
            "device": settings.device,
            "dtype": settings.dtype,
            "imgsz": settings.imgsz or DEFAULT_IMGSZ,
        }

    def _prompt_detail(self, spec: ModelSpec, video: PreparedVideo, obj: PreparedObject) -> str:
        if spec.prompt == "points":
            return json.dumps({"points": obj.points})
        if spec.prompt == "bbox":
            return json.dumps({"box": obj.box})
        where = self.split.truth_path(video, obj, obj.prompt_frame).relative_to(self.split.split_dir)
        return json.dumps({"mask": str(where), "object_id": obj.object_id})

    def _prompt_warning(self, spec: ModelSpec, obj: PreparedObject) -> str:
        """A click prompt with fewer clicks than --num_points asked (the mask has fewer pixels)."""
        clicks, asked = len(obj.points), self.split.num_points
        if spec.prompt != "points" or clicks >= asked:
            return ""
        return f"{clicks} of the {asked} clicks of --num_points: the prompt mask has only {clicks} pixels"

    def _predict(self, spec: ModelSpec, video: PreparedVideo, obj: PreparedObject) -> tuple[dict[str, Any], bool, PackedMasks | None]:
        """Run the job: its row, whether a failure there is the input's fault rather than the model's,
        and its masks on every annotated frame. Without masks the row is finished, else scoring finishes it."""
        row = self._row_start(spec, video, obj)
        if video.problem:
            return _finish(row, STATUS_ERROR, video.problem), True, None
        if obj.skip_reason:
            return _finish(row, STATUS_SKIPPED, obj.skip_reason), True, None
        row["prompt_frame"] = obj.prompt_frame
        row["prompt_detail"] = self._prompt_detail(spec, video, obj)
        try:
            job = make_job(self.split, video, obj)
        except Exception as exc:
            log.error("%s %s/%s: reading the prompt failed\n%s", spec.name, video.video_id, obj.object_id, traceback.format_exc())
            return _finish(row, STATUS_ERROR, f"reading the prompt failed: {one_line(exc)}"), True, None
        outcome = self._execute(spec, job, obj, row)
        row.update(outcome.columns)
        row["warning"] = "; ".join(filter(None, [self._prompt_warning(spec, obj), row.get("warning")]))
        if outcome.status:
            log.error("%s %s/%s: %s\n%s", spec.name, video.video_id, obj.object_id, outcome.reason, outcome.traceback)
            return _finish(row, outcome.status, outcome.reason), False, None
        try:
            return row, False, _annotated_predictions(obj, outcome.masks, (video.height, video.width))
        except Exception as exc:
            log.error("%s %s/%s: scoring failed\n%s", spec.name, video.video_id, obj.object_id, traceback.format_exc())
            return _finish(row, STATUS_ERROR, f"scoring failed: {one_line(exc)}"), True, None

    def _conclude(
        self, job: Finished, video: PreparedVideo, predictions: Mapping[int, np.ndarray], ground_truth: PackedMasks, save: bool = True
    ) -> Finished:
        """Score the job's masks and save them; the row gets its status."""
        spec, obj, row = job.spec, job.obj, job.row
        try:
            status, reason = self._score(row, video, obj, predictions, ground_truth)
        except Exception as exc:
            log.error("%s %s/%s: scoring failed\n%s", spec.name, video.video_id, obj.object_id, traceback.format_exc())
            return replace(job, row=_finish(row, STATUS_ERROR, f"scoring failed: {one_line(exc)}"), input_problem=True)
        if save and self.options.save_masks is not None:
            try:
                self._save_masks(spec, video, obj, predictions)
            except Exception as exc:  # the scores stand; the row says the masks are missing
                log.error("%s %s/%s: saving masks failed\n%s", spec.name, video.video_id, obj.object_id, traceback.format_exc())
                return replace(job, row=_finish(row, STATUS_ERROR, f"saving masks failed: {one_line(exc)}"))
        return replace(job, row=_finish(row, status, reason))

    def _conclude_davis_video(self, video: PreparedVideo, held: HeldVideo) -> list[Finished]:
        """DAVIS scores label maps, one id per pixel: each model's objects of the video are put
        together (see Composite), and each object is scored on what it keeps of its mask there, as
        the official evaluator scores the saved frames."""
        finished = []
        for job in held.jobs:
            composite = held.composites.get(job.spec.name)
            if job.row.get("status") or composite is None:
                finished.append(job)
                continue
            object_id = int(job.obj.object_id)
            masks = {frame: composite.frames[frame] == object_id for frame in job.obj.annotated_frames}
            finished.append(self._conclude(job, video, masks, PackedMasks(), save=False))
        if self.options.save_masks is not None:
            for name, composite in held.composites.items():
                self._save_davis_frames(video, name, composite, finished)
        held.clear()
        return finished

    def _save_davis_frames(self, video: PreparedVideo, model: str, composite: Composite, finished: list[Finished]) -> None:
        """DIR/<model>/<video>/<frame>.png; if that fails, the model's scored rows say so."""
        obj = next(job.obj for job in finished if job.spec.name == model)
        try:
            composite.save(self.options.save_masks / model / video.video_id, dict(zip(obj.annotated_frames, obj.annotation_files)))
        except Exception as exc:
            log.error("%s %s: saving masks failed\n%s", model, video.video_id, traceback.format_exc())
            for i, job in enumerate(finished):
                if job.spec.name == model and job.row["status"] in NOT_FAILED:
                    finished[i] = replace(job, row=_finish(job.row, STATUS_ERROR, f"saving masks failed: {one_line(exc)}"))

    def _execute(self, spec: ModelSpec, job: Job, obj: PreparedObject, row: dict[str, Any]) -> JobOutcome:
        """Run the job; out of memory, run it once more at --oom_retry_imgsz when that is set."""
        settings = self.options.settings
        setup_before = self.executor.setup_total_s
        outcome = self.executor.run_job(spec, job, set(obj.annotated_frames), settings)
        retry = self.options.oom_retry_imgsz
        if outcome.status == STATUS_OOM and retry:
            log.warning("%s %s: %s; retrying at imgsz %d", spec.name, obj.object_id, outcome.reason, retry)
            row["oom_retry_from_imgsz"] = settings.imgsz or DEFAULT_IMGSZ
            row["imgsz"] = retry
            outcome = self.executor.run_job(spec, job, set(obj.annotated_frames), replace(settings, imgsz=retry))
        setup = self.executor.setup_total_s - setup_before
        if setup:
            row["setup_s"] = setup
        return outcome

    def _score(
        self,
        row: dict[str, Any],
        video: PreparedVideo,
        obj: PreparedObject,
        predictions: Mapping[int, np.ndarray],
        ground_truth: PackedMasks,
    ) -> tuple[str, str]:
        """J, F, J&F of the object, and the row's status; ground truth is decoded once per object."""
        scorer = ObjectScorer()
        for frame in evaluated_frames(obj.annotated_frames, self.options.skip_first_and_last):
            if frame in ground_truth:
                truth = ground_truth[frame]
            else:
                truth = self.split.read_truth(video, obj, frame)
                ground_truth.add(frame, truth)
            scorer.feed(predictions[frame], truth)
        score = scorer.conclude()
        row.update(J=score.J, F=score.F, JF=score.JF, n_eval_frames=score.n_frames)
        if score.missing_reason:
            return STATUS_NO_SCORE, score.missing_reason
        return STATUS_OK, ""

    def _save_masks(self, spec: ModelSpec, video: PreparedVideo, obj: PreparedObject, predictions: Mapping[int, np.ndarray]) -> None:
        """The official evaluator's layout: DIR/<model>/<video>/<object>/<frame>.png, every annotated frame."""
        folder = self.options.save_masks / spec.name / video.video_id / obj.object_id
        for frame, mask in predictions.items():
            write_mask(folder / obj.mask_file(frame), mask)


@dataclass
class Pending:
    """A predicted job on its way to its row: what finishing needs, and when the job started."""

    job: Finished
    video: PreparedVideo
    predictions: PackedMasks | None
    video_ends: bool
    started: float
    handed_over: float | None = None

    def hand_over(self) -> float:
        """The driver moves on to the next job: this job's wall time ends here, and its scoring
        and saving overlap the next job. Returns the moment, where the next job's time starts."""
        self.handed_over = time.perf_counter()
        self.job.row["wall_s"] = self.handed_over - self.started
        return self.handed_over

    def settle_wall(self) -> None:
        """Finished by the driver itself: its wall time runs until its row is written, now."""
        if self.handed_over is None:
            self.job.row["wall_s"] = time.perf_counter() - self.started


class Finisher:
    """Runs the finishing of jobs on a thread of its own, in order, at most one waiting. A failure
    there (a results file that cannot be written) is raised in the driver at its next call."""

    def __init__(self, finish: Callable[[Pending], None]) -> None:
        self._finish = finish
        self._tasks: queue.Queue[Pending | None] = queue.Queue(maxsize=1)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, name="finisher", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        _lower_priority()
        while True:
            task = self._tasks.get()
            try:
                if task is None:
                    return
                if self._error is None:
                    self._finish(task)
            except BaseException as exc:  # handed to the driver
                self._error = exc
            finally:
                self._tasks.task_done()

    def submit(self, task: Pending) -> None:
        self._raise_error()
        self._tasks.put(task)

    def drain(self) -> None:
        """Wait until every submitted job is finished."""
        self._tasks.join()
        self._raise_error()

    def close(self, raise_error: bool = True) -> None:
        """Finish what was submitted and end the thread; closing again does nothing."""
        if self._thread.is_alive():
            self._tasks.put(None)
            self._thread.join()
        if raise_error:
            self._raise_error()

    def _raise_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error


def _lower_priority() -> None:
    """The finisher yields the CPU to the timed work (Linux gives each thread a nice value)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), FINISHER_NICENESS)
    except (AttributeError, OSError):
        pass


def _overhead(row: dict[str, Any]) -> float | None:
    """The job's wall time that is neither the model's timed work nor one-off setup."""
    if row.get("wall_s") is None:
        return None
    timed = sum(row.get(name) or 0.0 for name in ("build_s", "init_s", "propagate_s", "setup_s")) + (row.get("prompt_ms") or 0.0) / 1000.0
    return row["wall_s"] - timed


@dataclass(frozen=True)
class Finished:
    """A job that ran (or could not): its row, with a status once scored."""

    row: dict[str, Any]
    input_problem: bool
    spec: ModelSpec
    obj: PreparedObject


@dataclass
class HeldVideo:
    """The jobs of the DAVIS video in progress, held until its last one, and each model's composite."""

    jobs: list[Finished] = field(default_factory=list)
    composites: dict[str, Composite] = field(default_factory=dict)

    def add(self, job: Finished, predictions: Mapping[int, np.ndarray] | None) -> None:
        self.jobs.append(job)
        if predictions is not None:
            self.composites.setdefault(job.spec.name, Composite()).add(int(job.obj.object_id), predictions)

    def clear(self) -> None:
        self.jobs, self.composites = [], {}


def _annotated_predictions(obj: PreparedObject, masks: PackedMasks, size: tuple[int, int]) -> PackedMasks:
    """A mask for every annotated frame: empty before the prompt frame, the model's from it on."""
    predictions = PackedMasks()
    for frame in obj.annotated_frames:
        if frame < obj.prompt_frame:
            predictions.add_empty(frame, size)
        elif frame in masks:
            predictions.copy_from(masks, frame)
        else:
            raise RuntimeError(f"the model gave no mask for annotated frame {frame}")
    return predictions


def _finish(row: dict[str, Any], status: str, error: str) -> dict[str, Any]:
    row["status"] = status
    row["error"] = error
    row["timestamp_utc"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return row
