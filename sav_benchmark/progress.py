"""Progress on a terminal: the whole run (jobs, with ETA) and the current job (frames).

The frame count is read from a counter that the propagation loop bumps (in this process or in a
worker's shared memory); a thread here redraws, so the timed loop never draws anything itself.
"""

from __future__ import annotations

import sys
import threading
from typing import Callable

from tqdm import tqdm

REFRESH_S = 0.25


class FrameCounter:
    """The in-process counterpart of a worker's shared counter: one int, bumped once per frame."""

    def __init__(self) -> None:
        self.value = 0


class Progress:
    def __init__(self, total_jobs: int, enabled: bool, frames_done: Callable[[], int]) -> None:
        self.enabled = enabled
        self._frames_done = frames_done
        self.jobs = tqdm(total=total_jobs, unit="job", position=0, disable=not enabled, file=sys.stderr, dynamic_ncols=True)
        self.frames = tqdm(total=0, unit="frame", position=1, leave=False, disable=not enabled, file=sys.stderr, dynamic_ncols=True)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._redraw, daemon=True)
        if enabled:
            self._thread.start()

    def _redraw(self) -> None:
        while not self._stop.wait(REFRESH_S):
            self.frames.n = self._frames_done()
            self.frames.refresh()

    def start_job(self, description: str, n_frames: int) -> None:
        self.jobs.set_description(description)
        self.frames.reset(total=n_frames)

    def end_job(self) -> None:
        self.jobs.update()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.frames.close()
        self.jobs.close()
