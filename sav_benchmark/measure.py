"""The timed execution of one job (build, init, prompt, propagate, clean up), the same in the
driver's process and in a worker process.

Timed regions are synchronised with the device and hold only the model's work (and reading each
mask back to the host); nothing else happens inside them.
"""

from __future__ import annotations

import gc
import logging
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import one_line
from .masks import PackedMasks
from .results import STATUS_ERROR, STATUS_OOM
from .runners import ModelSpec
from .runners.base import Job, MemoryCounters, Runner, RunSettings
from .signals import interruption_behind, signals_raised
from .telemetry import Sampler, open_source
from .telemetry.source import ProcfsOnly
from .timing import FrameLog, frame_stage_columns, latency_columns
from .traces import job_trace

log = logging.getLogger("sav_benchmark")
OOM_MESSAGES = ("out of memory", "can't allocate memory", "not enough memory", "nvmapmemalloc")


@dataclass
class JobOutcome:
    """What a job produced: row columns (timings, memory), the kept masks, or why it failed."""

    columns: dict[str, Any] = field(default_factory=dict)
    masks: list[PackedMasks] | None = None  # one per prompt of the job
    status: str = ""  # set only on failure: error, oom, crash
    reason: str = ""
    traceback: str = ""
    trace: dict[str, list] | None = None  # each propagated frame's record (traces.job_trace)


def is_out_of_memory(exc: BaseException) -> bool:
    """CUDA, CPU and Jetson NvMap allocator failures: such a job gets status 'oom'."""
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(message in text for message in OOM_MESSAGES)


def release_device_memory(spec: ModelSpec, settings: RunSettings) -> None:
    """The cleanup protocol once nothing references a predictor any more (torch runners only)."""
    if spec.uses_torch:
        from .device import release_memory

        release_memory(settings.device, settings.cleanup)


def _timed(runner: Runner, step: Callable[[Job], None], job: Job) -> float:
    runner.synchronize()
    start = time.perf_counter()
    step(job)
    runner.synchronize()
    return time.perf_counter() - start


def _propagate_timed(
    runner: Runner, job: Job, keep: set[int], columns: dict[str, Any], progress: Any
) -> tuple[list[PackedMasks], FrameLog]:
    """Per-frame latency: from asking for a frame to its masks (every object's) on the host, device
    synchronised; propagate_s is their sum. Keeping the masks (packing them into bits) is the
    harness's work, between the frames' timers. Where the runner times its model's stages, each
    frame's are read after its synchronisation. Returns each object's kept masks and the frames' log."""
    kept = [PackedMasks() for _ in job.prompts]
    log = FrameLog()
    clock = getattr(runner, "stage_clock", None)  # optional in the protocol: a runner that times its model's stages
    progress.value = 0
    runner.synchronize()
    if clock is not None:
        clock.take()  # what init and the prompt ran is not a frame's
    asked = log.start = time.perf_counter()
    for frame, masks, *scores in runner.propagate(job):
        runner.synchronize()
        end = time.perf_counter()
        log.add(frame, end - asked, end, clock.take() if clock is not None else None)
        if len(masks) != len(kept):  # a runner of the protocol before objects were tracked together yields one array
            raise RuntimeError(
                f"the runner gave {len(masks)} masks for frame {frame} of a job of {len(kept)} objects: yield a list, one per prompt"
            )
        if frame in keep:
            frame_scores = scores[0]() if scores else [None] * len(masks)
            for packed, mask, mask_scores in zip(kept, masks, frame_scores, strict=True):
                packed.add(frame, mask, mask_scores)
        progress.value += 1  # one integer store: what a progress display reads, from another thread or process
        asked = time.perf_counter()
    if clock is not None:
        log.stages_problem = clock.problem
    columns.update(latency_columns(log.latencies_s))
    return kept, log


def _measure(
    runner: Runner, counters: MemoryCounters, sampler: Sampler, job: Job, keep: set[int], columns: dict[str, Any], progress: Any
) -> tuple[list[PackedMasks], FrameLog]:
    """Build, init, prompt and propagate under the timers, sampled in the background from start to
    the last frame; the sampler stops and the runner cleans up on every path."""
    counters.start()
    try:
        with sampler:
            columns["build_s"] = _timed(runner, lambda _: runner.build(), job)
            with runner.inference_context():
                columns["init_s"] = _timed(runner, runner.init_video, job)
                columns["prompt_ms"] = 1000.0 * _timed(runner, runner.add_prompt, job)
                return _propagate_timed(runner, job, keep, columns, progress)
    finally:
        counters.record_peak()  # a failed job's peak tells how far it got
        runner.cleanup()


def _raise_interruption_behind(exc: Exception, raised_before: int) -> None:
    """A signal that arrived during the job and surfaced as another error ends the run as the
    interruption it was, rather than failing the job."""
    interrupted = interruption_behind(exc, raised_before)
    if interrupted is not None:
        raise interrupted from exc


def freeze_long_lived_objects() -> None:
    """The cleanup protocol's gc.collect scans every object the collector tracks: with torch and a
    model's packages loaded that is about 100 ms a call, paid by every job. Once a job has run
    and been cleaned up without error, and its runner is gone (no traceback or runner holds a
    predictor), what is left is the process's long-lived state (modules, caches); it is moved out
    of the collector's sight, and later collections scan only what later jobs create (under a
    millisecond). Done once, by whoever called execute_job, after it returned."""
    if not gc.get_freeze_count():
        gc.collect()
        gc.freeze()


def execute_job(runner_class: type, spec: ModelSpec, settings: RunSettings, job: Job, keep: set[int], progress: Any) -> JobOutcome:
    """Run one job with a fresh predictor; every failure becomes the outcome's status and reason.

    `progress` has an int `value` that counts the frames propagated so far.
    """
    outcome = JobOutcome()
    runner: Runner = runner_class(spec, settings)
    counters = runner.memory_counters()
    sampler = job_sampler(settings)
    frame_log = None
    graphs_before = _graphs_compiled(settings)
    raised_before = signals_raised()
    try:
        outcome.masks, frame_log = _measure(runner, counters, sampler, job, keep, outcome.columns, progress)
    except Exception as exc:
        _raise_interruption_behind(exc, raised_before)
        outcome.status = STATUS_OOM if is_out_of_memory(exc) else STATUS_ERROR
        outcome.reason, outcome.traceback = one_line(exc), traceback.format_exc()
    if outcome.status:
        # The traceback held the predictor's frames through the runner's cleanup; only now is it gone.
        try:
            release_device_memory(spec, settings)
        except Exception as exc:  # a device too broken for it fails the next job, not this row
            outcome.traceback += f"\nreleasing device memory failed: {one_line(exc)}"
    row_columns = getattr(runner, "row_columns", None)  # optional in the protocol: plugins may lack it
    if row_columns is not None:
        outcome.columns.update(row_columns())
    if frame_log is not None:
        stage_cells, stage_warning = frame_stage_columns(frame_log)
        outcome.columns.update(stage_cells)
        if stage_warning:
            outcome.columns["warning"] = "; ".join(filter(None, [outcome.columns.get("warning"), stage_warning]))
    if settings.compile:
        compiled = _graphs_compiled(settings) - graphs_before
        outcome.columns["compiled_graphs"] = compiled
        if compiled:
            log.warning("%s: torch.compile compiled %d graphs inside the timers; this job's times include compilation", spec.name, compiled)
    counters.record_after_cleanup()
    outcome.columns.update(counters.reading.columns())
    try:
        outcome.columns.update(sampler.columns(frame_log.window() if frame_log else None, outcome.columns.get("n_propagated", 0)))
    except Exception as exc:  # telemetry costs its own cells, never the job's row
        log.warning("telemetry: its figures were lost: %s", one_line(exc))
    if frame_log is not None and settings.traces:
        try:
            outcome.trace = job_trace(frame_log, list(sampler.readings))
        except Exception as exc:  # the traces cost their own records, never the job's row
            log.warning("traces: this job's records were lost: %s", one_line(exc))
    return outcome


def _graphs_compiled(settings: RunSettings) -> int:
    if not settings.compile:
        return 0
    from .device import graphs_compiled

    return graphs_compiled()


def job_sampler(settings: RunSettings) -> Sampler:
    """The job's sampler. A source that the driver could open but this process cannot (a sensor
    gone since) leaves the process's own figures, and says so in the row's telemetry_source."""
    config = settings.telemetry
    try:
        source = open_source(config)
    except Exception as exc:  # TelemetryUnavailable, or a binding's own error
        log.warning("telemetry: %s cannot run in this process (%s); only the process's figures are recorded", config.source, one_line(exc))
        source = ProcfsOnly()
    return Sampler(source, config.interval_ms)


def execute_warmup(runner_class: type, spec: ModelSpec, settings: RunSettings, job: Job) -> float | str:
    """Run the model on the job's first frames and discard the figures; returns the time or why it failed."""
    runner: Runner = runner_class(spec, settings)
    start = time.perf_counter()
    raised_before = signals_raised()
    try:
        runner.build()
        with runner.inference_context():
            runner.init_video(job)
            runner.add_prompt(job)
            for _ in runner.propagate(job):
                pass
        return time.perf_counter() - start
    except Exception as exc:  # the measured jobs report the failure in their rows
        _raise_interruption_behind(exc, raised_before)
        return f"failed: {one_line(exc)}"
    finally:
        runner.cleanup()
