"""Where jobs run: in the driver's own process, or each model in a persistent worker process.

With workers, a job that kills its process (segfault, CUDA context error, allocator assert, the
OOM killer) or hangs costs that job one row (`crash`, `timeout`); the worker is replaced, the new
one warmed up like the first, and the run goes on.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import shutil
import signal
import tempfile
import time
from contextlib import contextmanager
from dataclasses import replace
from multiprocessing import resource_tracker
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any, Iterator

from .measure import JobOutcome, execute_job, execute_warmup, freeze_long_lived_objects, release_device_memory
from .progress import FrameCounter
from .results import STATUS_CRASH, STATUS_TIMEOUT
from .runners import ModelSpec, load_runner_class
from .runners.base import Job, RunSettings
from .worker import worker_main

# Enough for a fatal error's stack dump of every thread (the telemetry sampler's included).
TAIL_LINES = 100
STARTUP_TIMEOUT_S = 600.0
# A job that takes longer than this is taken as hung (with --job_timeout_s 0, the default).
AUTO_TIMEOUT_BASE_S, AUTO_TIMEOUT_PER_FRAME_S = 600.0, 10.0
COMPILE_TIMEOUT_S = 3600.0  # a compiling warm-up's extra allowance: max-autotune can take long on a Jetson
ERROR_WORDS = re.compile(r"error|assert|fatal|abort|killed|exception", re.IGNORECASE)


def job_timeout(job: Job, configured_s: float) -> float:
    """--job_timeout_s, or by default 600 s plus 10 s for each frame of each object tracked."""
    if configured_s > 0:
        return configured_s
    frames = job.max_frames or (job.n_frames - job.start_frame)
    return AUTO_TIMEOUT_BASE_S + AUTO_TIMEOUT_PER_FRAME_S * frames * len(job.prompts)


def warmup_of(spec: ModelSpec, warmup: Job | None) -> Job | None:
    """The model's warm-up job: a model that tracks objects only one at a time (EdgeTAM) warms up
    on the first of the shared job's objects."""
    if warmup is not None and spec.together_problem and len(warmup.prompts) > 1:
        return replace(warmup, prompts=warmup.prompts[:1])
    return warmup


class InProcessExecutor:
    """Jobs run in this process: simplest, and best for debugging; no timeout can be enforced."""

    def __init__(self, specs: list[ModelSpec], settings: RunSettings, warmup: Job | None = None) -> None:
        self.settings = settings  # for the cleanup between videos; each job brings its own
        self.runner_classes = {spec.name: load_runner_class(spec) for spec in specs}
        self.startup_s: dict[str, list[float]] = {}
        self.warmup_s: dict[str, list[float | str]] = {}
        self.setup_total_s = 0.0  # warm-ups so far: a job's share of it is no overhead
        self._warmup = warmup
        self._progress = FrameCounter()

    def frames_done(self) -> int:
        return self._progress.value

    def run_job(self, spec: ModelSpec, job: Job, keep: set[int], settings: RunSettings) -> JobOutcome:
        if self._warmup is not None and spec.name not in self.warmup_s:
            start = time.perf_counter()
            warmup = warmup_of(spec, self._warmup)
            self.warmup_s[spec.name] = [execute_warmup(self.runner_classes[spec.name], spec, self.settings.for_model(spec), warmup)]
            self.setup_total_s += time.perf_counter() - start
        outcome = execute_job(self.runner_classes[spec.name], spec, settings, job, keep, self._progress)
        if not outcome.status and spec.uses_torch:
            freeze_long_lived_objects()
        return outcome

    def between_videos(self, specs: list[ModelSpec]) -> None:
        """The cleanup protocol once more after a video; a broken device fails the next job instead."""
        torch_specs = [spec for spec in specs if spec.uses_torch]
        if torch_specs:
            try:
                release_device_memory(torch_specs[0], self.settings)
            except Exception:
                pass

    def close(self, abandon: bool = False) -> None:
        pass


class WorkerDied(Exception):
    def __init__(self, status: str, reason: str, tail: str) -> None:
        super().__init__(reason)
        self.status, self.reason, self.tail = status, reason, tail


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "did not exit"
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else f"signal {-code}"
        return f"killed by {name}" + (" (the out-of-memory killer sends this)" if -code == signal.SIGKILL else "")
    return f"exit code {code}"


def _key_line(tail: str) -> str:
    """The line of a dead worker's output that says most: the last one naming an error (stack
    frames aside: their file names may contain such words)."""
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    if not lines:
        return "it printed nothing"
    named = [line for line in lines if ERROR_WORDS.search(line) and not line.startswith('File "')]
    return f"its output says: {named[-1] if named else ' | '.join(lines[-2:])}"


@contextmanager
def _stderr_into(path: Path) -> Iterator[None]:
    """This process's standard error goes to the file while a worker is started, so that the
    worker inherits it: what the worker prints before it takes its output in hand (multiprocessing's
    bootstrap complaining that the driver died while starting it) goes to its file, not the terminal."""
    saved = os.dup(2)
    target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(target, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(target)


class _Worker:
    def __init__(self, context: Any, spec: ModelSpec, stderr_path: Path, import_path: str | None) -> None:
        self.stderr_path = stderr_path
        self._offset = 0
        self.conn, child = context.Pipe()
        self.progress = context.Value("i", 0, lock=False)  # frames of the current job, for the display
        start = time.perf_counter()
        self.process = context.Process(
            target=worker_main, args=(child, spec, str(stderr_path), self.progress, os.getpid(), import_path), daemon=True
        )
        resource_tracker.ensure_running()  # it unblocks SIGINT after starting itself: start it first
        self._start_deaf_to_ctrl_c()
        child.close()
        kind, payload = self._receive(STARTUP_TIMEOUT_S)
        if kind != "ready":
            self.stop(abandon=True)
            raise WorkerDied(STATUS_CRASH, f"worker could not load {spec.name}: {payload}", self._tail())
        self.startup_s = time.perf_counter() - start

    def call(self, kind: str, payload: Any, timeout_s: float) -> Any:
        self._offset = self._stderr_size()
        try:
            self.conn.send((kind, payload))
        except OSError:
            # it died meanwhile: _receive says how
            pass
        return self._receive(timeout_s)[1]

    def _stderr_size(self) -> int:
        try:
            return self.stderr_path.stat().st_size
        except OSError:
            return 0

    def _receive(self, timeout_s: float) -> tuple[str, Any]:
        ready = wait([self.conn, self.process.sentinel], timeout_s)
        if self.conn in ready:
            try:
                return self.conn.recv()
            except (EOFError, OSError):
                pass
        if not ready:
            self.stop(abandon=True)
            raise WorkerDied(
                STATUS_TIMEOUT, f"no answer after {timeout_s:.0f} s: the worker was killed; {_key_line(self._tail())}", self._tail()
            )
        self.process.join(5)
        tail = self._tail()
        code = self.process.exitcode
        self.stop(abandon=True)
        raise WorkerDied(STATUS_CRASH, f"worker died ({_describe_exit(code)}); {_key_line(tail)}"[:500], tail)

    def _start_deaf_to_ctrl_c(self) -> None:
        """Start the process so that a Ctrl-C (sent to the whole process group) neither reaches it
        nor cuts its start in half, and still reaches the driver.

        The child inherits SIGINT blocked across fork and exec, and stays deaf to it until
        worker_main ignores it (discarding one that came meanwhile) and unblocks it. In the driver
        a Ctrl-C during the start is only recorded, then raised again once the child has all it
        needs: an exception halfway through would leave it reading a half-written start message.
        (Setting SIG_IGN here instead would discard a Ctrl-C already pending for the driver.)
        """
        caught: list[int] = []
        previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            with _stderr_into(self.stderr_path):
                self.process.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # a Ctrl-C held back now runs the recorder
            signal.signal(signal.SIGINT, previous)
        if caught:
            signal.raise_signal(signal.SIGINT)  # to the driver's own handler, now the child is started

    def _tail(self) -> str:
        """The end of what the worker printed since the current call began."""
        try:
            with open(self.stderr_path, "rb") as f:
                f.seek(self._offset)
                lines = f.read().decode(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-TAIL_LINES:])

    def stop(self, abandon: bool) -> None:
        if self.process.is_alive() and not abandon:
            try:
                self.conn.send(("stop", None))
                self.process.join(30)
            except OSError:
                pass
        for end in (self.process.terminate, self.process.kill):
            if self.process.is_alive():
                end()
                self.process.join(10)
        self.conn.close()


class ProcessExecutor:
    """Each model in its own persistent worker process, started (and warmed up) when needed."""

    def __init__(
        self,
        specs: list[ModelSpec],
        settings: RunSettings,
        warmup: Job | None = None,
        job_timeout_s: float = 0,
        import_paths: dict[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self._import_paths = import_paths or {}
        self._context = multiprocessing.get_context("spawn")
        self._workers: dict[str, _Worker] = {}
        self._active: _Worker | None = None
        self._warmup = warmup
        self._job_timeout_s = job_timeout_s
        self._starts = 0
        self._stderr_dir = Path(tempfile.mkdtemp(prefix="sav-benchmark-workers-"))
        self.startup_s: dict[str, list[float]] = {}
        self.warmup_s: dict[str, list[float | str]] = {}
        self.setup_total_s = 0.0  # worker starts and warm-ups so far: a job's share of it is no overhead

    def _worker(self, spec: ModelSpec) -> _Worker:
        worker = self._workers.get(spec.name)
        if worker is not None and worker.process.is_alive():
            return worker
        start = time.perf_counter()
        try:
            return self._start_worker(spec)
        finally:
            self.setup_total_s += time.perf_counter() - start

    def _start_worker(self, spec: ModelSpec) -> _Worker:
        self._starts += 1
        worker = _Worker(self._context, spec, self._stderr_dir / f"{spec.name}.{self._starts}.stderr", self._import_paths.get(spec.name))
        self._workers[spec.name] = worker
        self.startup_s.setdefault(spec.name, []).append(worker.startup_s)
        warmup_job = warmup_of(spec, self._warmup)
        if warmup_job is not None:  # every new process starts cold: warm it before it is timed
            compiling_s = COMPILE_TIMEOUT_S if self.settings.compile else 0.0
            settings = self.settings.for_model(spec)
            warmup = worker.call("warmup", (warmup_job, settings), job_timeout(warmup_job, self._job_timeout_s) + compiling_s)
            self.warmup_s.setdefault(spec.name, []).append(warmup)
        return worker

    def frames_done(self) -> int:
        active = self._active
        return active.progress.value if active is not None else 0

    def run_job(self, spec: ModelSpec, job: Job, keep: set[int], settings: RunSettings) -> JobOutcome:
        try:
            self._active = self._worker(spec)
            self._active.progress.value = 0
            outcome = self._active.call("job", (job, keep, settings), job_timeout(job, self._job_timeout_s))
        except WorkerDied as exc:
            self._workers.pop(spec.name, None)
            return JobOutcome(status=exc.status, reason=exc.reason, traceback=exc.tail)
        if outcome.status:
            # After some errors (an allocator assert, a CUDA error) the process's CUDA context is
            # unusable although the process lives on: the next job gets a fresh worker.
            self._workers.pop(spec.name).stop(abandon=False)
        return outcome

    def between_videos(self, specs: list[ModelSpec]) -> None:
        """Nothing to do: each worker runs the cleanup protocol after every job."""

    def close(self, abandon: bool = False) -> None:
        """Stop the workers; abandon=True ends a job in flight at once (its process's exit frees it all)."""
        for worker in self._workers.values():
            worker.stop(abandon)
        self._workers.clear()
        shutil.rmtree(self._stderr_dir, ignore_errors=True)


class RoutingExecutor:
    """Models that need a process of their own (an EdgeTAM checkout) go to workers; the rest run here."""

    def __init__(self, in_process: InProcessExecutor, workers: ProcessExecutor, routed: set[str]) -> None:
        self._in_process, self._workers, self._routed = in_process, workers, routed
        self.startup_s = workers.startup_s
        self.warmup_s: dict[str, list[float | str]] = {}
        self._current: InProcessExecutor | ProcessExecutor = in_process

    def _for(self, spec: ModelSpec) -> InProcessExecutor | ProcessExecutor:
        self._current = self._workers if spec.name in self._routed else self._in_process
        return self._current

    def frames_done(self) -> int:
        return self._current.frames_done()

    @property
    def setup_total_s(self) -> float:
        return self._in_process.setup_total_s + self._workers.setup_total_s

    def run_job(self, spec: ModelSpec, job: Job, keep: set[int], settings: RunSettings) -> JobOutcome:
        outcome = self._for(spec).run_job(spec, job, keep, settings)
        self.warmup_s = {**self._in_process.warmup_s, **self._workers.warmup_s}
        return outcome

    def between_videos(self, specs: list[ModelSpec]) -> None:
        self._in_process.between_videos([s for s in specs if s.name not in self._routed])

    def close(self, abandon: bool = False) -> None:
        self._workers.close(abandon)


Executor = InProcessExecutor | ProcessExecutor | RoutingExecutor


def make_executor(
    isolation: str,
    specs: list[ModelSpec],
    settings: RunSettings,
    warmup: Job | None,
    job_timeout_s: float,
    import_paths: dict[str, str] | None = None,
) -> Executor:
    """Process isolation runs every model in a worker; without it, models with an import path of
    their own still get one, since their package cannot share this interpreter."""
    import_paths = import_paths or {}
    if isolation == "process":
        return ProcessExecutor(specs, settings, warmup, job_timeout_s, import_paths)
    routed = [spec for spec in specs if spec.name in import_paths]
    if not routed:
        return InProcessExecutor(specs, settings, warmup)
    local = InProcessExecutor([spec for spec in specs if spec.name not in import_paths], settings, warmup)
    return RoutingExecutor(local, ProcessExecutor(routed, settings, warmup, job_timeout_s, import_paths), {s.name for s in routed})
