"""Phase 2: for each video, each object, each model: run the job, score it, write its row (with
--objects together, one job tracks the objects that start together, and each gets its row).

The job itself (build, init, prompt, propagate under the timers, clean up) runs in an executor:
this process, or the model's worker process. Scoring and saving masks (`scoring`) and writing the
row come after it, on the finisher's thread (`finisher`) while the next job runs. This module is
the loop and the policy that stops it early; `rows` builds rows and `ledger` keeps the job in
progress for in-process runs.
"""

from __future__ import annotations

import logging
import time
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .errors import one_line
from .executors import Executor, InProcessExecutor
from .finisher import Finisher, PendingJob
from .ledger import JobLedger
from .masks import PackedMasks
from .measure import JobOutcome
from .plan import OBJECTS_SEPARATE, OBJECTS_TOGETHER, PlannedJob, plan_jobs, together_objects
from .progress import Progress
from .results import NOT_FAILED, STATUS_CRASH, STATUS_ERROR, STATUS_OOM, STATUS_SKIPPED, ResultsNotWritable, ResultWriter
from .rows import CRASHED_TWICE, JobResult, prompt_detail, prompt_warning, row_start, with_status
from .runners import ModelSpec
from .runners.base import Job, Prompt, RunSettings
from .runners.sizes import default_imgsz
from .scoring import JobScoring, kept_frames, kept_predictions
from .signals import Interrupted, SignalGuard, interruption_behind, signals_raised
from .split import PreparedObject, PreparedSplit, PreparedVideo
from .timing import overhead
from .traces import TraceWriter

log = logging.getLogger("sav_benchmark")
STOPPED_FAIL_FAST = "fail_fast"
STOPPED_FAILURES = "max_consecutive_failures"


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
    objects: str = OBJECTS_SEPARATE  # --objects: a predictor per object, or the objects that start together in one


@dataclass
class RunReport:
    rows: list[dict[str, Any]] = field(default_factory=list)
    stopped: str = ""  # why the run ended early, if it did
    stopped_at: dict[str, Any] = field(default_factory=dict)  # the failed row that ended it


def make_job(split: PreparedSplit, video: PreparedVideo, objects: list[PreparedObject], max_frames: int | None = None) -> Job:
    prompts = [Prompt(obj.prompt_frame, obj.points, obj.box, split.read_truth(video, obj, obj.prompt_frame)) for obj in objects]
    keep_scores = split.label_maps  # its label maps resolve overlaps by score
    return Job(split.frames_dir(video), video.n_frames, prompts, max_frames, keep_scores)


def warmup_job(split: PreparedSplit, frames: int, objects: str = OBJECTS_SEPARATE) -> tuple[Job | None, str]:
    """The job every model (and every new worker) warms up on: the first frames of the first
    usable object (with --objects together, of the first video's shared job, so that what is
    compiled fits its objects). Returns it, or None and why there is none."""
    if frames <= 0:
        return None, "no warm-up (--warmup_frames 0)"
    video = next((v for v in split.videos if together_objects(v)), None)
    if video is None:
        return None, "no warm-up: no video and object can run"
    target = together_objects(video)
    try:
        return make_job(split, video, target if objects == OBJECTS_TOGETHER else target[:1], max_frames=frames), ""
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
        scoring: JobScoring | None = None,
        traces: TraceWriter | None = None,
    ) -> None:
        self.split = split
        self.specs = specs
        self.options = options
        self.writer = writer
        self.traces = traces
        self.executor = executor or InProcessExecutor(specs, options.settings)
        self.guard = guard or SignalGuard()
        self.scoring = scoring or JobScoring(split, options.skip_first_and_last, options.save_masks, options.objects == OBJECTS_TOGETHER)
        self.ledger = JobLedger(options.current_job_file)
        self.report = RunReport()
        self._consecutive_failures = 0
        self._last_failed_job: int | None = None

    def jobs(self) -> list[PlannedJob]:
        """Every job still to run, in order (see plan)."""
        return [job for job in plan_jobs(self.split, self.specs, self.options.objects) if not set(job.keys()) <= self.options.done]

    def run(self, show_progress: bool = False) -> RunReport:
        """Predict each job here; score, save and write it on the finisher's thread while the next
        job runs. The last job, and any job without masks to score, is concluded here once the
        finisher is idle, so that rows stay in order and a failure stops the run at once."""
        todo = self.jobs()
        progress = Progress(len(todo), show_progress, self.executor.frames_done)
        finisher = Finisher(self._conclude_and_write)
        raised_before = signals_raised()
        try:
            started = time.perf_counter()
            for index, planned in enumerate(todo):
                if self.report.stopped:
                    break
                video = planned.video
                progress.start_job(planned.label, video.n_frames - min(obj.prompt_frame or 0 for obj in planned.objects))
                if self.ledger.starting(planned.keys()[0]):  # a shared job goes by its first object's key
                    outcomes, trace = [(self._crashed_twice_row(planned, obj), False, None) for obj in planned.objects], None
                else:
                    outcomes, trace = self._predict(planned)
                    self.ledger.ended()
                video_ends = index + 1 == len(todo) or todo[index + 1].video is not video
                results = [
                    JobResult(row, input_problem, planned.spec, obj, index, trace)
                    for (row, input_problem, _), obj in zip(outcomes, planned.objects)
                ]
                predictions = [masks for _, _, masks in outcomes]
                pending = PendingJob(results, video, predictions, video_ends, started)
                if index + 1 == len(todo) or all(masks is None for masks in predictions) or self.options.fail_fast:
                    finisher.drain()
                    with self.guard.critical():  # a video's rows are written together, or none of them
                        self._conclude_and_write(pending)
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
                self.ledger.ended_cleanly()
            raise
        finally:
            progress.close()
            with self.guard.hold():  # the concluded jobs' rows are written before the run ends
                finisher.close(raise_error=False)  # an interruption is what the user needs to hear of
        return self.report

    def _conclude_and_write(self, pending: PendingJob) -> None:
        """Score and save a job (a DAVIS video's jobs once it ends), then write the rows. Once the
        run has stopped (a failure found here while the next job ran), later jobs get no row: the
        run ends at the row that stopped it, and a resume runs them."""
        if self.report.stopped:
            return
        video, last = pending.video, len(pending.jobs) - 1
        concluded = []
        for index, (job, predictions) in enumerate(zip(pending.jobs, pending.predictions)):
            concluded += self.scoring.conclude(job, video, predictions, pending.video_ends and index == last)
        pending.settle_wall()
        for done in concluded:
            done.row["overhead_s"] = overhead(done.row)
            self._write(done)
            self._should_stop(done)
        self.ledger.rows_written([(video.video_id, done.obj.object_id, done.spec.name) for done in concluded])

    def _write(self, done: JobResult) -> None:
        """One row to the CSV; called inside the guard's critical section."""
        row = done.row
        if self.traces is not None and done.trace is not None:
            try:  # the records before the row: a row never lacks its records
                self.traces.write(row, done.trace)
            except OSError as exc:
                raise ResultsNotWritable(self.traces.path, exc) from exc
        try:
            self.writer.write(row)
        except OSError as exc:
            raise ResultsNotWritable(self.writer.path, exc) from exc
        self.report.rows.append(row)
        log.info("%s/%s %s: %s %s", row["video_id"], done.obj.object_id, done.spec.name, row["status"], row["error"])

    def _crashed_twice_row(self, planned: PlannedJob, obj: PreparedObject) -> dict[str, Any]:
        row = {**self._row_start(planned, obj), "prompt_frame": obj.prompt_frame, **tracking_columns(planned)}
        log.error("%s %s/%s: %s", planned.spec.name, planned.video.video_id, obj.object_id, CRASHED_TWICE)
        return with_status(row, STATUS_CRASH, CRASHED_TWICE)

    def _row_start(self, planned: PlannedJob, obj: PreparedObject) -> dict[str, Any]:
        return row_start(self.options.run_id, self.options.settings.for_model(planned.spec), planned.spec, planned.video, obj)

    def _should_stop(self, done: JobResult) -> bool:
        row = done.row
        if row["status"] in NOT_FAILED:
            self._consecutive_failures, self._last_failed_job = 0, None
            return False
        if done.input_problem:
            return self.options.fail_fast and self._stop(STOPPED_FAIL_FAST, row)  # bad input is no systematic failure
        if done.job_index != self._last_failed_job:  # a shared job that failed is one failure, however many rows it has
            self._consecutive_failures += 1
        self._last_failed_job = done.job_index
        if self.options.fail_fast:
            return self._stop(STOPPED_FAIL_FAST, row)
        limit = self.options.max_consecutive_failures
        return bool(limit) and self._consecutive_failures >= limit and self._stop(STOPPED_FAILURES, row)

    def _stop(self, why: str, row: dict[str, Any]) -> bool:
        if not self.report.stopped:
            self.report.stopped, self.report.stopped_at = why, row
        return True

    def _predict(self, planned: PlannedJob) -> tuple[list[tuple[dict[str, Any], bool, PackedMasks | None]], dict[str, list] | None]:
        """Run the job: for each of its objects, its row, whether a failure there is the input's
        fault rather than the model's, and its masks on every annotated frame (without masks the
        row is complete, else scoring completes it); and the job's per-frame trace, if it has one."""
        spec, video, objects = planned.spec, planned.video, list(planned.objects)
        rows = [self._row_start(planned, obj) for obj in objects]
        if video.problem:
            return [(with_status(row, STATUS_ERROR, video.problem), True, None) for row in rows], None
        if objects[0].problem:  # such an object has a job of its own
            return [(with_status(rows[0], STATUS_ERROR, objects[0].problem), True, None)], None
        if objects[0].skip_reason:  # and so has this one
            return [(with_status(rows[0], STATUS_SKIPPED, objects[0].skip_reason), True, None)], None
        for row, obj in zip(rows, objects):
            row.update(
                prompt_frame=obj.prompt_frame, prompt_detail=prompt_detail(self.split, spec, video, obj), **tracking_columns(planned)
            )
        try:
            job = make_job(self.split, video, objects)
        except Exception as exc:
            log.error("%s %s: reading the prompt failed\n%s", spec.name, planned.label, traceback.format_exc())
            return [(with_status(row, STATUS_ERROR, f"reading the prompt failed: {one_line(exc)}"), True, None) for row in rows], None
        outcome = self._execute(spec, job, video, objects, rows)
        for row, obj in zip(rows, objects):
            row.update(outcome.columns)  # a shared job's timing, memory and power: the same in each of its rows
            row["warning"] = "; ".join(filter(None, [prompt_warning(self.split, spec, obj), planned.warning, row.get("warning")]))
        if outcome.status:
            log.error("%s %s: %s\n%s", spec.name, planned.label, outcome.reason, outcome.traceback)
            return [(with_status(row, outcome.status, outcome.reason), False, None) for row in rows], outcome.trace
        return [self._annotated(row, video, obj, masks, spec) for row, obj, masks in zip(rows, objects, outcome.masks)], outcome.trace

    def _annotated(
        self, row: dict[str, Any], video: PreparedVideo, obj: PreparedObject, masks: PackedMasks, spec: ModelSpec
    ) -> tuple[dict[str, Any], bool, PackedMasks | None]:
        try:
            return row, False, kept_predictions(obj, masks, (video.height, video.width), kept_frames(self.split, video, [obj]))
        except Exception as exc:
            log.error("%s %s/%s: scoring failed\n%s", spec.name, video.video_id, obj.object_id, traceback.format_exc())
            return with_status(row, STATUS_ERROR, f"scoring failed: {one_line(exc)}"), True, None

    def _execute(
        self, spec: ModelSpec, job: Job, video: PreparedVideo, objects: list[PreparedObject], rows: list[dict[str, Any]]
    ) -> JobOutcome:
        """Run the job; out of memory, run it once more at --oom_retry_imgsz when that is set."""
        settings = self.options.settings.for_model(spec)
        keep = set(kept_frames(self.split, video, objects))
        setup_before = self.executor.setup_total_s
        outcome = self.executor.run_job(spec, job, keep, settings)
        retry = self.options.oom_retry_imgsz
        if outcome.status == STATUS_OOM and retry:
            log.warning("%s %s: %s; retrying at imgsz %d", spec.name, "+".join(o.object_id for o in objects), outcome.reason, retry)
            for row in rows:
                row.update(oom_retry_from_imgsz=settings.imgsz or default_imgsz(spec.family), imgsz=retry)
            outcome = self.executor.run_job(spec, job, keep, replace(settings, imgsz=retry))
        setup = self.executor.setup_total_s - setup_before
        if setup:
            for row in rows:
                row["setup_s"] = setup
        return outcome


def tracking_columns(planned: PlannedJob) -> dict[str, Any]:
    """How the row's object was tracked: in the video's shared job, or with a predictor of its own."""
    return {"tracking": OBJECTS_TOGETHER if planned.together else OBJECTS_SEPARATE, "objects_in_job": len(planned.objects)}
