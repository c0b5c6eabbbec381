"""The finisher: a thread that scores, saves and writes the jobs the driver hands it, while the
driver runs the next job, so that this work is not on the timed path of any job."""

from __future__ import annotations

import os
import queue
import threading
import time
from dataclasses import dataclass
from typing import Callable

from .masks import PackedMasks
from .rows import JobResult
from .split import PreparedVideo

NICENESS = 10  # the finisher yields the CPU to the timed work


@dataclass
class PendingJob:
    """A predicted job on its way to its rows (one per object): what scoring needs, and when the job started."""

    jobs: list[JobResult]
    video: PreparedVideo
    predictions: list[PackedMasks | None]  # each object's, None where its row is complete (it failed)
    video_ends: bool
    started: float
    handed_over: float | None = None

    def hand_over(self) -> float:
        """The driver moves on to the next job: this job's wall time ends here, and its scoring
        and saving overlap the next job. Returns the moment, where the next job's time starts."""
        self.handed_over = time.perf_counter()
        for job in self.jobs:
            job.row["wall_s"] = self.handed_over - self.started
        return self.handed_over

    def settle_wall(self) -> None:
        """Concluded by the driver itself: its wall time runs until its row is written, now."""
        if self.handed_over is None:
            now = time.perf_counter()
            for job in self.jobs:
                job.row["wall_s"] = now - self.started


class Finisher:
    """Runs `conclude` on the jobs handed to it, on a thread of its own, in order, at most one
    waiting. A failure there (a results file that cannot be written) is raised in the driver at
    its next call."""

    def __init__(self, conclude: Callable[[PendingJob], None]) -> None:
        self._conclude = conclude
        self._tasks: queue.Queue[PendingJob | None] = queue.Queue(maxsize=1)
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
                    self._conclude(task)
            except BaseException as exc:  # handed to the driver
                self._error = exc
            finally:
                self._tasks.task_done()

    def submit(self, task: PendingJob) -> None:
        self._raise_error()
        self._tasks.put(task)

    def drain(self) -> None:
        """Wait until every submitted job is concluded."""
        self._tasks.join()
        self._raise_error()

    def close(self, raise_error: bool = True) -> None:
        """Conclude what was submitted and end the thread; closing again does nothing."""
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
    """Linux gives each thread a nice value: the finisher's yields to the timed work."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICENESS)
    except (AttributeError, OSError):
        pass
