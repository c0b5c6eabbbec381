"""The row schema, the CSV writer (one durable append per row) and the run manifest."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from .files import append_durably, write_atomically
from .memory import MEMORY_COLUMNS
from .metrics import SCORE_COLUMNS
from .telemetry.readings import TELEMETRY_COLUMNS
from .timing import FRAME_STAGE_COLUMNS, LATENCY_COLUMNS, STAGE_COLUMNS

# The CSV's columns, in their order: the job's own (who, with what settings, what became of it, how
# many frames), then each measurement's, as its producer declares them. A column's kind (text or
# number) is declared below; a new column goes into its producer's list, and the tests check that
# every producer writes only columns of this schema.
JOB_COLUMNS = ("run_id", "timestamp_utc", "video_id", "object_id", "model", "prompt", "prompt_detail")
SETTINGS_COLUMNS = ("weights", "device", "dtype", "imgsz", "stream", "postprocessing", "tracking", "objects_in_job", "oom_retry_from_imgsz")
OUTCOME_COLUMNS = ("status", "error", "warning")
FRAME_COLUMNS = ("n_frames", "prompt_frame", "n_propagated", "n_eval_frames")
# Which evaluator's rules scored the row (the split's: sav, lvos, mosev2), and the measures only
# some of them report: LVOS's V (the deviation of J&F over the frames), MOSEv2's boundary measure
# with its size-adaptive tolerance (F_dot, J&F_dot) and J&F_dot over disappearances and reappearances.
PROTOCOL_COLUMN = "protocol"
PROTOCOL_SCORE_COLUMNS = ("V", "F_dot", "JF_dot", "JF_dot_disappear", "JF_dot_reappear")
COLUMNS = [
    *JOB_COLUMNS,
    *SETTINGS_COLUMNS,
    *OUTCOME_COLUMNS,
    *FRAME_COLUMNS,
    PROTOCOL_COLUMN,
    *SCORE_COLUMNS,
    *PROTOCOL_SCORE_COLUMNS,
    *LATENCY_COLUMNS,
    *STAGE_COLUMNS,
    *FRAME_STAGE_COLUMNS,
    *MEMORY_COLUMNS,
    *TELEMETRY_COLUMNS,
]


def _ran(row: dict[str, str]) -> bool:
    return bool(row.get("prompt_frame"))  # set once a job got as far as its prompt


# The columns added to the schema since, oldest first: what a row of a CSV begun before each holds
# there, and what that says. Those runs built every predictor with the package's post-processing
# (the baseline has no predictor), and before that, tracked each object with a predictor of its own.
LATER_COLUMNS: list[tuple[dict[str, Any], str]] = [
    ({"postprocessing": lambda row: "" if row.get("weights") == "none" else "on"}, "its rows ran with post-processing on"),
    (
        {"tracking": lambda row: "separate" if _ran(row) else "", "objects_in_job": lambda row: "1" if _ran(row) else ""},
        "its rows tracked each object separately",
    ),
    ({column: lambda row: "" for column in FRAME_STAGE_COLUMNS}, "its rows have no stage times"),
    (
        {
            PROTOCOL_COLUMN: lambda row: "sav" if row.get("status") in ("ok", "no_score") else "",
            **{column: lambda row: "" for column in PROTOCOL_SCORE_COLUMNS},
        },
        "its rows were scored by the SA-V evaluator's rules",
    ),
]


def earlier_headers() -> dict[tuple[str, ...], int]:
    """The header of a CSV begun by an earlier version -> how many LATER_COLUMNS groups it lacks."""
    headers = {}
    for first_missing in range(len(LATER_COLUMNS)):
        missing = {column for added, _ in LATER_COLUMNS[first_missing:] for column in added}
        headers[tuple(column for column in COLUMNS if column not in missing)] = len(LATER_COLUMNS) - first_missing
    return headers


STATUS_OK, STATUS_NO_SCORE, STATUS_SKIPPED = "ok", "no_score", "skipped"
STATUS_ERROR, STATUS_OOM, STATUS_CRASH, STATUS_TIMEOUT = "error", "oom", "crash", "timeout"
NOT_FAILED = (STATUS_OK, STATUS_NO_SCORE, STATUS_SKIPPED)
ALL_STATUSES = (*NOT_FAILED, STATUS_ERROR, STATUS_OOM, STATUS_CRASH, STATUS_TIMEOUT)
KEY_COLUMNS = ("video_id", "object_id", "model")
# Every other column holds a number or is empty (unknown).
TEXT_COLUMNS = frozenset(
    {
        "run_id",
        "timestamp_utc",
        "video_id",
        "object_id",
        "model",
        "prompt",
        "prompt_detail",
        "weights",
        "device",
        "dtype",
        "stream",
        "postprocessing",
        "tracking",
        "status",
        "error",
        "warning",
        "telemetry_source",
        "throttled",
        PROTOCOL_COLUMN,
    }
)
BOOLEAN_CELLS = ("", "True", "False")
PERCENT_COLUMNS = ("J", "F", "JF", *PROTOCOL_SCORE_COLUMNS)
SIGNED_COLUMNS = ("overhead_s", "temp_max_c")  # the only numbers that may be below zero
NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")  # as this module writes them: no inf, nan or 1_000


def cell_problem(column: str, cell: str) -> str:
    """Why a CSV cell cannot be what its column holds ('' when it can): numbers are plain and
    finite, percentages within 0..100, nothing else but two columns below zero; keys and the
    status are there; throttled is True, False or empty. Columns outside the schema are not judged."""
    if column in KEY_COLUMNS and not cell:
        return "is empty; every row names its video, object and model"
    if column == "status" and cell not in ALL_STATUSES:
        return f"{cell!r} is not a status ({', '.join(ALL_STATUSES)})"
    if column == "throttled" and cell not in BOOLEAN_CELLS:
        return f"{cell!r} is not True, False or empty"
    if column in TEXT_COLUMNS or column not in COLUMNS or cell == "":
        return ""
    if not NUMBER.fullmatch(cell):
        return (
            f"{cell!r} is not a number"
            if cell.lower().lstrip("+-") not in ("inf", "infinity", "nan")
            else f"{cell!r} is not a finite number"
        )
    value = float(cell)
    if not math.isfinite(value):
        return f"{cell!r} is not a finite number"
    if column in PERCENT_COLUMNS and not 0.0 <= value <= 100.0:
        return f"{cell} is not a percentage (0 to 100)"
    if value < 0 and column not in SIGNED_COLUMNS:
        return f"{cell} is below zero"
    return ""


def row_problem(row: dict[str, str]) -> str:
    """The first cell of a row read back that this benchmark cannot have written ('' if none)."""
    for column, cell in row.items():
        problem = cell_problem(column, cell)
        if problem:
            return f"column {column}: {problem}"
    return ""


def _cell(value: Any) -> str:
    """Empty for unknown values (never 0); floats at full precision."""
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if value != value else repr(value)
    return str(value)


class ResultsNotWritable(Exception):
    """The run cannot record its progress (a full disk, a lost mount): it stops; --resume redoes that job."""

    def __init__(self, path: Path, cause: OSError) -> None:
        super().__init__(f"cannot write to {path} ({cause.strerror or cause})")


class ResultWriter:
    """Appends rows to a CSV; each row is one write, flushed and fsynced before the next job."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(path, "a", newline="", encoding="utf-8")
        try:
            if path.stat().st_size == 0:
                self._append(COLUMNS)
        except OSError:
            self._file.close()
            raise

    def write(self, row: dict[str, Any]) -> None:
        unknown = set(row) - set(COLUMNS)
        if unknown:
            raise KeyError(f"row has columns outside the schema: {sorted(unknown)}")
        self._append([_cell(row.get(c)) for c in COLUMNS])

    def _append(self, cells: list[str]) -> None:
        append_durably(self._file, [cells])

    def close(self) -> None:
        self._file.close()


def side_file(output: Path, suffix: str) -> Path:
    """A file that belongs to a result CSV: its name plus a suffix, so it can never be the CSV itself."""
    return output.with_name(output.name + suffix)


def manifest_path(output: Path) -> Path:
    return side_file(output, ".json")


def prepared_path(output: Path) -> Path:
    return side_file(output, ".prepared.json")


def log_path(output: Path) -> Path:
    return side_file(output, ".log")


def lock_path(output: Path) -> Path:
    return side_file(output, ".lock")


def traces_path(output: Path) -> Path:
    """Each propagated frame's record (traces.py)."""
    return side_file(output, ".traces.csv")


def current_job_path(output: Path) -> Path:
    return side_file(output, ".current")


def run_files(output: Path) -> list[Path]:
    """Every file a run writes beside its CSV, the CSV first."""
    return [output, manifest_path(output), prepared_path(output), log_path(output), current_job_path(output), traces_path(output)]


def write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    """Write atomically, so that a crash leaves the previous version rather than half a file."""
    write_atomically(path, json.dumps(manifest, indent=2, default=str))
