"""Continuing a run: the lock on its files, what is already in its CSV, and whether new settings
may add rows to it."""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
from pathlib import Path
from typing import IO, Any, Callable

from .errors import UsageError, os_reason
from .runners.sizes import DEFAULT_IMGSZ
from .results import ALL_STATUSES, COLUMNS, NOT_FAILED, lock_path, manifest_path, write_atomically

# Settings that change the numbers: rows made with other values cannot share a CSV. The first
# group matters whatever the models; the second only where both runs had torch models.
ALWAYS_COMPARED = ("num_points", "do_not_skip_first_and_last_frame")
TORCH_COMPARED = ("imgsz", "autocast_dtype", "weights", "device", "stream")

Key = tuple[str, str, str]


def row_key(row: dict[str, Any]) -> Key:
    return row["video_id"], row["object_id"], row["model"]


def lock_output(output: Path) -> IO[str]:
    """Hold a lock on the run's files until this process ends (kill -9 included, the kernel frees it)."""
    path = lock_path(output)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a")
    except OSError as exc:
        raise UsageError(f"--output {output}: cannot create it ({os_reason(exc)}); choose a writable path") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise UsageError(f"--output {output}: another run is writing it (it holds {path}); wait for it to end, or choose another --output") from None
    return handle


def read_rows(output: Path) -> tuple[list[dict[str, str]], str]:
    """The complete rows of a result CSV, repairing it first if a crash left half a row at its end.

    Returns the rows and a warning ('' when nothing was repaired). Anything else that is not a row
    of this benchmark is a UsageError naming its line.
    """
    try:
        data = output.read_bytes()
    except OSError as exc:
        raise UsageError(f"--resume: cannot read {output} ({exc.strerror or exc})") from None
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
    try:
        reader = csv.DictReader(io.StringIO(data.decode("utf-8")))
        if reader.fieldnames != COLUMNS:
            raise UsageError(f"--resume: {output} was written with other columns than this version's; start a new --output")
        rows = list(reader)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise UsageError(f"--resume: {output} is not a result CSV ({exc}); start a new --output") from None
    for line, row in enumerate(rows, start=2):
        if None in row or None in row.values() or not all(row_key(row)) or row["status"] not in ALL_STATUSES:
            raise UsageError(f"--resume: line {line} of {output} is not a row of this benchmark; delete that line, then resume")
    return rows, warning


def _sessions(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    return [manifest, *manifest.get("resumed", [])]


def check_comparable(output: Path, config: dict[str, Any], checkpoints: dict[str, Any], force: bool) -> dict[str, Any]:
    """The earlier run's manifest, after refusing settings that would make its rows incomparable."""
    path = manifest_path(output)
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"--resume: cannot read the manifest {path} of the earlier run ({exc}); start a new --output") from None
    if not isinstance(manifest, dict) or "run_id" not in manifest or not isinstance(manifest.get("config"), dict):
        raise UsageError(f"--resume: {path} is not the manifest of a run; start a new --output")
    differences = []
    for session in _sessions(manifest):  # the rows of every earlier session must stay comparable
        earlier = session.get("config", {})
        differences += [_difference(name, earlier.get(name), config.get(name)) for name in ALWAYS_COMPARED]
        if earlier.get("uses_torch") and config.get("uses_torch"):
            differences += [_difference("imgsz", earlier.get("imgsz") or DEFAULT_IMGSZ, config.get("imgsz") or DEFAULT_IMGSZ)]
            differences += [_difference(name, earlier.get(name), config.get(name)) for name in TORCH_COMPARED[1:]]
        for name, digest in (session.get("checkpoints") or {}).items():
            if name in checkpoints and digest.get("sha256") != checkpoints[name]["sha256"]:
                differences.append(f"checkpoint {name} has other contents (sha256 {digest.get('sha256', '?')[:12]}... -> {checkpoints[name]['sha256'][:12]}...)")
    differences = list(dict.fromkeys(d for d in differences if d))
    if differences and not force:
        raise UsageError(
            f"--resume: settings differ from the earlier run's ({'; '.join(differences)}); its rows would not be "
            "comparable. Use the same settings, a new --output, or --force"
        )
    return manifest


def _difference(name: str, earlier: Any, now: Any) -> str:
    return "" if earlier == now else f"{name} {earlier!r} -> {now!r}"


def keys_to_skip(rows: list[dict[str, str]], retry_failed: bool) -> set[Key]:
    """Jobs already done: every row's key, except failed ones when they are to be retried."""
    return {row_key(r) for r in rows if r["status"] in NOT_FAILED or not retry_failed}


def partial_groups(rows: list[dict[str, str]], objects: dict[str, set[str]]) -> set[tuple[str, str]]:
    """(video, model) pairs with rows for some of the video's objects but not all."""
    found: dict[tuple[str, str], set[str]] = {}
    for row in rows:
        found.setdefault((row["video_id"], row["model"]), set()).add(row["object_id"])
    return {group for group, done in found.items() if group[0] in objects and not objects[group[0]] <= done}


def drop_rows(output: Path, rows: list[dict[str, str]], keep: Callable[[dict[str, str]], bool]) -> list[dict[str, str]]:
    """Rewrite the CSV with only the rows to keep (atomically), so that a job run again has one row:
    the failed ones for --retry_failed."""
    kept = [r for r in rows if keep(r)]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(kept)
    write_atomically(output, buffer.getvalue())
    return kept
