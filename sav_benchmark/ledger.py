"""The job ledger of in-process runs (FILE.current): the job in progress, and per job without a row
yet, how often the run died during it.

With jobs in the driver's own process, a model that crashes (a segfault) ends the whole run, and a
resume would start with the same job again: a job during which the run died twice is not run a
third time but gets a crash row. (Once could be a kill -9.) Deaths are kept until the job's row is
written, as DAVIS holds a video's rows until its last job. A run that ends by a signal it handled,
or a full disk, did not die: it clears the job in progress.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from .files import write_atomically
from .results import ResultsNotWritable

Key = tuple[str, str, str]  # (video, object, model)


class JobLedger:
    """Kept in a file when `path` is given (in-process runs); otherwise every call does nothing."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()  # the driver and the finisher both update it

    def starting(self, key: Key) -> bool:
        """The job starts; True when the run died in it twice already, so that it must not run."""
        with self._lock:
            state = self._read()
            if state is None:
                return False
            if state["in_progress"]:
                died = "/".join(state["in_progress"])
                state["deaths"][died] = state["deaths"].get(died, 0) + 1
            state["in_progress"] = None if state["deaths"].get("/".join(key), 0) >= 2 else list(key)
            self._save(state)
            return state["in_progress"] is None

    def ended(self) -> None:
        """The job in progress is over (whatever its outcome): it counts no death."""
        with self._lock:
            state = self._read()
            if state is not None:
                state["in_progress"] = None
                self._save(state)

    def ended_cleanly(self) -> None:
        """The run ends by a signal it handled or a full disk: the job in progress did not kill
        it. (Any other way out, such as a library's SystemExit, may be the job's doing: it stays
        in progress, and dying in it twice gives it a crash row.)"""
        try:
            self.ended()
        except ResultsNotWritable:  # the disk refuses: the run is ending with that error anyway
            pass

    def rows_written(self, keys: list[Key]) -> None:
        with self._lock:
            state = self._read()
            if state is not None:
                for key in keys:
                    state["deaths"].pop("/".join(key), None)
                self._save(state)

    def _read(self) -> dict[str, Any] | None:
        """{"in_progress": key or None, "deaths": {"video/object/model": count}}; None when not kept."""
        if self.path is None:
            return None
        try:
            state = json.loads(self.path.read_text())
            if isinstance(state.get("deaths"), dict) and isinstance(state.get("in_progress"), (list, type(None))):
                return state
        except (OSError, ValueError, AttributeError):
            pass
        return {"in_progress": None, "deaths": {}}

    def _save(self, state: dict[str, Any]) -> None:
        try:
            if state["in_progress"] or state["deaths"]:
                write_atomically(self.path, json.dumps(state))
            else:
                self.path.unlink(missing_ok=True)
        except OSError as exc:
            raise ResultsNotWritable(self.path, exc) from exc
