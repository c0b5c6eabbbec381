"""Continuing a run: what is already in its CSV, and whether the new settings may add to it."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

from .errors import UsageError
from .results import COLUMNS, NOT_FAILED, manifest_path

# Settings that change the numbers: rows made with other values cannot share a CSV.
COMPARABLE_SETTINGS = ("imgsz", "autocast_dtype", "weights", "device", "num_points", "do_not_skip_first_and_last_frame")

Key = tuple[str, str, str]


def row_key(row: dict[str, Any]) -> Key:
    return row["video_id"], row["object_id"], row["model"]


def read_rows(output: Path) -> tuple[list[dict[str, str]], str]:
    """The complete rows of a result CSV, repairing it first if a crash left half a row at its end.

    Returns the rows and a warning ('' when nothing was repaired).
    """
    data = output.read_bytes()
    warning = ""
    if data and not data.endswith(b"\n"):
        keep = data.rfind(b"\n") + 1
        with open(output, "r+b") as f:
            f.truncate(keep)
            os.fsync(f.fileno())
        warning = f"dropped a partial last line of {output} ({len(data) - keep} bytes) left by an interrupted run"
        data = data[:keep]
    if not data:
        return [], warning
    reader = csv.DictReader(io.StringIO(data.decode("utf-8")))
    if reader.fieldnames != COLUMNS:
        raise UsageError(f"--resume: {output} was written with other columns than this version's; start a new --output")
    return list(reader), warning


def check_comparable(output: Path, config: dict[str, Any], force: bool) -> dict[str, Any]:
    """The earlier run's manifest, after refusing settings that would make its rows incomparable."""
    path = manifest_path(output)
    try:
        manifest = json.loads(path.read_text())
        earlier = manifest["config"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"--resume: cannot read the manifest {path} of the earlier run ({exc}); start a new --output") from None
    differences = [f"{name} {earlier.get(name)!r} -> {config.get(name)!r}" for name in COMPARABLE_SETTINGS if earlier.get(name) != config.get(name)]
    if differences and not force:
        raise UsageError(f"--resume: settings differ from the earlier run's ({'; '.join(differences)}); its rows would not be comparable. Use the same settings, a new --output, or --force")
    return manifest


def keys_to_skip(rows: list[dict[str, str]], retry_failed: bool) -> set[Key]:
    """Jobs already done: every row's key, except failed ones when they are to be retried."""
    return {row_key(r) for r in rows if r["status"] in NOT_FAILED or not retry_failed}


def drop_failed_rows(output: Path, rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """Rewrite the CSV without its failed rows (atomically), so that a retried job has one row."""
    kept = [r for r in rows if r["status"] in NOT_FAILED]
    tmp = output.with_name(output.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(kept)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, output)
    return kept
