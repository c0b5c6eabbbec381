"""Per-frame traces: one record per propagated frame of every row, in a CSV beside the run's.

A record holds the row's key (video, object, model), the frame's index and latency, its model
stages (where they were timed; the rest is what the latency holds beyond them), and the telemetry
at the frame's end: each quantity interpolated linearly between the sampler's readings, held before
the first and after the last, as the row's averages take it (telemetry/readings.py). An object
tracked with others (--objects together) has its own records, the shared job's figures in each,
so that a row's `n_propagated` is always the number of its records.

Crash-safe as the rows are: a row's records are one write, flushed and fsynced before the row
itself, so a killed run leaves complete records (and possibly those of a row it did not write).
`--resume` keeps the records of the rows it keeps, in order, and drops the rest (and a torn last
line), before any job runs. `pandas.read_csv(RUN.csv.traces.csv)` reads the file in one call.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from .files import append_durably, write_atomically
from .results import KEY_COLUMNS
from .telemetry.readings import Reading
from .timing import FRAME_STAGES, FrameLog

TRACED_TELEMETRY = ("power_w", "gpu_clock_mhz", "temp_c", "rss_mb", "device_mem_mb")
FRAME_COLUMNS = ("frame", "latency_ms", *(f"{stage}_ms" for stage in FRAME_STAGES), *TRACED_TELEMETRY)
TRACE_COLUMNS = (*KEY_COLUMNS, *FRAME_COLUMNS)
Key = tuple[str, ...]


def job_trace(log: FrameLog, readings: list[Reading]) -> dict[str, list[Any]]:
    """The job's frames as columns (FRAME_COLUMNS), None where a figure is unknown."""
    count = len(log.frames)
    split, _ = log.split()
    trace: dict[str, list[Any]] = {"frame": list(log.frames), "latency_ms": [1000.0 * s for s in log.latencies_s]}
    for stage in FRAME_STAGES:
        trace[f"{stage}_ms"] = (split[stage] * 1000.0).tolist() if split is not None else [None] * count
    for quantity in TRACED_TELEMETRY:
        known = [(r.t, getattr(r, quantity)) for r in readings if getattr(r, quantity) is not None]
        if known and count:
            times, values = zip(*sorted(known))
            trace[quantity] = np.interp(log.ends, times, values).tolist()
        else:
            trace[quantity] = [None] * count
    return trace


def _cell(value: Any) -> str:
    return "" if value is None else repr(value) if isinstance(value, float) else str(value)


class TraceWriter:
    """Appends each row's records to the traces CSV: one write, flushed and fsynced."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = open(path, "a", newline="", encoding="utf-8")
        try:
            if path.stat().st_size == 0:
                self._append([TRACE_COLUMNS])
        except OSError:
            self._file.close()
            raise

    def write(self, row: dict[str, Any], trace: dict[str, list[Any]]) -> None:
        key = [str(row[column]) for column in KEY_COLUMNS]
        self._append([*key, *(_cell(trace[column][i]) for column in FRAME_COLUMNS)] for i in range(len(trace["frame"])))

    def _append(self, records: Iterable[Iterable[str]]) -> None:
        append_durably(self._file, records)

    def close(self) -> None:
        self._file.close()


def keep_traces_of(path: Path, kept: set[Key]) -> set[Key]:
    """Before a resumed run: the file holds the header and the complete records of the kept rows
    only, in their order (rewritten atomically, where that changes it). Returns the kept rows that
    have records."""
    if not path.exists():
        return set()
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines.pop()  # torn by a kill in the middle of a write
    if not lines or next(csv.reader([lines[0]]), []) != list(TRACE_COLUMNS):
        write_atomically(path, _header())  # not this version's records: none can be told apart
        return set()
    records, found = [], set()
    for line in lines[1:]:
        key = tuple(next(csv.reader([line]))[: len(KEY_COLUMNS)])
        if key in kept:
            records.append(line)
            found.add(key)
    content = lines[0] + "".join(records)
    if content != text:
        write_atomically(path, content)
    return found


def _header() -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(TRACE_COLUMNS)
    return buffer.getvalue()
