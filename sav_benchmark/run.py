"""Phase 2: for each video, each object, each model: run the job, score it, write its row.

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
from typing import Any, Iterator

from .errors import one_line
from .executors import Executor, InProcessExecutor
from .finisher import Finisher, PendingJob
from .ledger import JobLedger
from .masks import PackedMasks
from .measure import JobOutcome
from .progress import Progress
from .results import NOT_FAILED, STATUS_CRASH, STATUS_ERROR, STATUS_OOM, STATUS_SKIPPED, ResultsNotWritable, ResultWriter
from .rows import CRASHED_TWICE, JobResult, prompt_detail, prompt_warning, row_start, with_status
from .runners import ModelSpec
from .runners.base import Job, RunSettings
from .runners.sizes import DEFAULT_IMGSZ
from .scoring import JobScoring, annotated_predictions
from .signals import Interrupted, SignalGuard, interruption_behind, signals_raised
from .split import LAYOUT_DAVIS, PreparedObject, PreparedSplit, PreparedVideo
from .timing import overhead

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


@dataclass
class RunReport:
    rows: list[dict[str, Any]] = field(default_factory=list)
    stopped: str = ""  # why the run ended early, if it did
    stopped_at: dict[str, Any] = field(default_factory=dict)  # the failed row that ended it


def make_job(split: PreparedSplit, video: PreparedVideo, obj: PreparedObject, max_frames: int | None = None) -> Job:
    mask = split.read_truth(video, obj, obj.prompt_frame)
    keep_scores = split.layout == LAYOUT_DAVIS  # its label maps resolve overlaps by score
    return Job(split.frames_dir(video), video.n_frames, obj.prompt_frame, obj.points, obj.box, mask, max_frames, keep_scores)


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
        scoring: JobScoring | None = None,
    ) -> None:
        self.split = split
        self.specs = specs
        self.options = options
        self.writer = writer
        self.executor = executor or InProcessExecutor(specs, options.settings)
        self.guard = guard or SignalGuard()
        self.scoring = scoring or JobScoring(split, options.skip_first_and_last, options.save_masks)
        self.ledger = JobLedger(options.current_job_file)
        self.report = RunReport()
        self._consecutive_failures = 0

    def jobs(self) -> Iterator[tuple[PreparedVideo, PreparedObject, ModelSpec]]:
        """Every job still to run, in video -> object -> model order."""
        for video in self.split.videos:
            for obj in video.objects:
                for spec in self.specs:
                    if (video.video_id, obj.object_id, spec.name) not in self.options.done:
                        yield video, obj, spec

    def run(self, show_progress: bool = False) -> RunReport:
        """Predict each job here; score, save and write it on the finisher's thread while the next
        job runs. The last job, and any job without masks to score, is concluded here once the
        finisher is idle, so that rows stay in order and a failure stops the run at once."""
        todo = list(self.jobs())
        progress = Progress(len(todo), show_progress, self.executor.frames_done)
        finisher = Finisher(self._conclude_and_write)
        raised_before = signals_raised()
        try:
            started = time.perf_counter()
            for index, (video, obj, spec) in enumerate(todo):
                if self.report.stopped:
                    break
                progress.start_job(f"{video.video_id}/{obj.object_id} {spec.name}", video.n_frames - (obj.prompt_frame or 0))
                if self.ledger.starting((video.video_id, obj.object_id, spec.name)):
                    row, input_problem, predictions = self._crashed_twice_row(spec, video, obj), False, None
                else:
                    row, input_problem, predictions = self._predict(spec, video, obj)
                    self.ledger.ended()
                video_ends = index + 1 == len(todo) or todo[index + 1][0] is not video
                pending = PendingJob(JobResult(row, input_problem, spec, obj), video, predictions, video_ends, started)
                if index + 1 == len(todo) or predictions is None or self.options.fail_fast:
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
        video = pending.video
        concluded = self.scoring.conclude(pending.job, video, pending.predictions, pending.video_ends)
        pending.settle_wall()
        for done in concluded:
            done.row["overhead_s"] = overhead(done.row)
            self._write(done)
            self._should_stop(done.row, done.input_problem)
        self.ledger.rows_written([(video.video_id, done.obj.object_id, done.spec.name) for done in concluded])

    def _write(self, done: JobResult) -> None:
        """One row to the CSV; called inside the guard's critical section."""
        row = done.row
        try:
            self.writer.write(row)
        except OSError as exc:
            raise ResultsNotWritable(self.writer.path, exc) from exc
        self.report.rows.append(row)
        log.info("%s/%s %s: %s %s", row["video_id"], done.obj.object_id, done.spec.name, row["status"], row["error"])

    def _crashed_twice_row(self, spec: ModelSpec, video: PreparedVideo, obj: PreparedObject) -> dict[str, Any]:
        row = {**row_start(self.options.run_id, self.options.settings, spec, video, obj), "prompt_frame": obj.prompt_frame}
        log.error("%s %s/%s: %s", spec.name, video.video_id, obj.object_id, CRASHED_TWICE)
        return with_status(row, STATUS_CRASH, CRASHED_TWICE)

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

    def _predict(self, spec: ModelSpec, video: PreparedVideo, obj: PreparedObject) -> tuple[dict[str, Any], bool, PackedMasks | None]:
        """Run the job: its row, whether a failure there is the input's fault rather than the model's,
        and its masks on every annotated frame. Without masks the row is complete, else scoring completes it."""
        row = row_start(self.options.run_id, self.options.settings, spec, video, obj)
        if video.problem:
            return with_status(row, STATUS_ERROR, video.problem), True, None
        if obj.skip_reason:
            return with_status(row, STATUS_SKIPPED, obj.skip_reason), True, None
        row["prompt_frame"] = obj.prompt_frame
        row["prompt_detail"] = prompt_detail(self.split, spec, video, obj)
        try:
            job = make_job(self.split, video, obj)
        except Exception as exc:
            log.error("%s %s/%s: reading the prompt failed\n%s", spec.name, video.video_id, obj.object_id, traceback.format_exc())
            return with_status(row, STATUS_ERROR, f"reading the prompt failed: {one_line(exc)}"), True, None
        outcome = self._execute(spec, job, obj, row)
        row.update(outcome.columns)
        row["warning"] = "; ".join(filter(None, [prompt_warning(self.split, spec, obj), row.get("warning")]))
        if outcome.status:
            log.error("%s %s/%s: %s\n%s", spec.name, video.video_id, obj.object_id, outcome.reason, outcome.traceback)
            return with_status(row, outcome.status, outcome.reason), False, None
        try:
            return row, False, annotated_predictions(obj, outcome.masks, (video.height, video.width))
        except Exception as exc:
            log.error("%s %s/%s: scoring failed\n%s", spec.name, video.video_id, obj.object_id, traceback.format_exc())
            return with_status(row, STATUS_ERROR, f"scoring failed: {one_line(exc)}"), True, None

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
