"""Where jobs run: in the driver's own process, or each model in a persistent worker process.

With workers, a job that kills its process (segfault, CUDA context error, allocator assert, the
OOM killer) costs that job a `crash` row; the worker is replaced and the run goes on.
"""

from __future__ import annotations

import multiprocessing
import re
import shutil
import signal
import tempfile
import time
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

from .measure import JobOutcome, execute_job, execute_warmup, release_device_memory
from .progress import FrameCounter
from .results import STATUS_CRASH
from .runners import ModelSpec, load_runner_class
from .runners.base import Job, RunSettings
from .worker import unpack_masks, worker_main

TAIL_LINES = 20


class InProcessExecutor:
    """Jobs run in this process: simplest, and best for debugging."""

    def __init__(self, specs: list[ModelSpec], settings: RunSettings) -> None:
        self.settings = settings  # for the cleanup between videos; each job brings its own
        self.runner_classes = {spec.name: load_runner_class(spec) for spec in specs}
        self.startup_s: dict[str, list[float]] = {}
        self._progress = FrameCounter()

    def frames_done(self) -> int:
        return self._progress.value

    def run_job(self, spec: ModelSpec, job: Job, keep: set[int], settings: RunSettings) -> JobOutcome:
        return execute_job(self.runner_classes[spec.name], spec, settings, job, keep, self._progress)

    def warm_up(self, spec: ModelSpec, job: Job, settings: RunSettings) -> float | str:
        return execute_warmup(self.runner_classes[spec.name], spec, settings, job)

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
    def __init__(self, reason: str, tail: str) -> None:
        super().__init__(reason)
        self.reason, self.tail = reason, tail


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "did not exit"
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else f"signal {-code}"
        return f"killed by {name}" + (" (the out-of-memory killer sends this)" if -code == signal.SIGKILL else "")
    return f"exit code {code}"


ERROR_WORDS = re.compile(r"error|assert|fatal|abort|killed|exception", re.IGNORECASE)


def _key_line(tail: str) -> str:
    """The line of a dead worker's output that says most: the last one naming an error."""
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    if not lines:
        return "it printed nothing"
    named = [line for line in lines if ERROR_WORDS.search(line)]
    return f"its output says: {named[-1] if named else ' | '.join(lines[-2:])}"


class _Worker:
    def __init__(self, context: Any, spec: ModelSpec, stderr_path: Path) -> None:
        self.stderr_path = stderr_path
        self.conn, child = context.Pipe()
        self.progress = context.Value("i", 0, lock=False)  # frames of the current job, for the display
        start = time.perf_counter()
        self.process = context.Process(target=worker_main, args=(child, spec, str(stderr_path), self.progress), daemon=True)
        self.process.start()
        child.close()
        kind, payload = self._receive()
        if kind != "ready":
            self.process.join(5)
            raise WorkerDied(f"worker could not load {spec.name}: {payload}", self._tail())
        self.startup_s = time.perf_counter() - start

    def call(self, kind: str, payload: Any) -> Any:
        self.conn.send((kind, payload))
        reply_kind, reply = self._receive()
        return reply

    def _receive(self) -> tuple[str, Any]:
        ready = wait([self.conn, self.process.sentinel])
        if self.conn in ready:
            try:
                return self.conn.recv()
            except (EOFError, OSError):
                pass
        self.process.join(5)
        tail = self._tail()
        raise WorkerDied(f"worker died ({_describe_exit(self.process.exitcode)}); {_key_line(tail)}"[:500], tail)

    def _tail(self) -> str:
        try:
            lines = self.stderr_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-TAIL_LINES:])

    def stop(self, abandon: bool) -> None:
        if self.process.is_alive() and not abandon:
            try:
                self.conn.send(("stop", None))
                self.process.join(30)
            except (OSError, BrokenPipeError):
                pass
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(10)
        self.conn.close()


class ProcessExecutor:
    """Each model in its own persistent worker process, started when its first job comes."""

    def __init__(self, specs: list[ModelSpec], settings: RunSettings) -> None:
        self._context = multiprocessing.get_context("spawn")
        self._workers: dict[str, _Worker] = {}
        self._active: _Worker | None = None
        self._stderr_dir = Path(tempfile.mkdtemp(prefix="sav-benchmark-workers-"))
        self.startup_s: dict[str, list[float]] = {}

    def _worker(self, spec: ModelSpec) -> _Worker:
        worker = self._workers.get(spec.name)
        if worker is None or not worker.process.is_alive():
            path = self._stderr_dir / f"{spec.name}.{len(self.startup_s.get(spec.name, []))}.stderr"
            worker = _Worker(self._context, spec, path)
            self._workers[spec.name] = worker
            self.startup_s.setdefault(spec.name, []).append(worker.startup_s)
        return worker

    def frames_done(self) -> int:
        active = self._active
        return active.progress.value if active is not None else 0

    def run_job(self, spec: ModelSpec, job: Job, keep: set[int], settings: RunSettings) -> JobOutcome:
        try:
            self._active = self._worker(spec)
            self._active.progress.value = 0
            outcome = self._active.call("job", (job, keep, settings))
        except WorkerDied as exc:
            self._workers.pop(spec.name, None)
            return JobOutcome(status=STATUS_CRASH, reason=exc.reason, traceback=exc.tail)
        if outcome.status:
            # After some errors (an allocator assert, a CUDA error) the process's CUDA context is
            # unusable although the process lives on: the next job gets a fresh worker.
            self._workers.pop(spec.name).stop(abandon=False)
        outcome.masks = unpack_masks(outcome.masks)
        return outcome

    def warm_up(self, spec: ModelSpec, job: Job, settings: RunSettings) -> float | str:
        try:
            return self._worker(spec).call("warmup", (job, settings))
        except WorkerDied as exc:
            self._workers.pop(spec.name, None)
            return f"failed: {exc.reason}"

    def between_videos(self, specs: list[ModelSpec]) -> None:
        pass  # each worker runs the cleanup protocol after every job

    def close(self, abandon: bool = False) -> None:
        """Stop the workers; abandon=True ends a job in flight at once (its process's exit frees it all)."""
        for worker in self._workers.values():
            worker.stop(abandon)
        self._workers.clear()
        shutil.rmtree(self._stderr_dir, ignore_errors=True)


def make_executor(isolation: str, specs: list[ModelSpec], settings: RunSettings) -> InProcessExecutor | ProcessExecutor:
    return ProcessExecutor(specs, settings) if isolation == "process" else InProcessExecutor(specs, settings)

