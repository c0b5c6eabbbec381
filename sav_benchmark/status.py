"""`status RUN.csv`: how far a run got, for a look over ssh in the morning. It reads the run's
files and changes none of them.

- whether the run's process is alive: it holds the lock on `RUN.csv.lock` while it runs (the
  kernel frees it when the process dies, kill -9 included), so a lock that can be taken is a run
  that is not running;
- jobs done of all (rows in the CSV against every (video, object, model) of its prepared split),
  failures by status with their reasons, an ETA from the rows' wall times while it runs;
- how it ended: finished, stopped early (and why), or killed (its manifest has no end);
- the exact command that continues it, when it is not running and not finished cleanly.

Exit code 0 when the run finished cleanly (every job has a row, none failed), 1 otherwise.
"""

from __future__ import annotations

import fcntl
import json
import shlex
import statistics
from collections import Counter
from pathlib import Path
from typing import Any

from .errors import UsageError
from .results import NOT_FAILED, lock_path, manifest_path, prepared_path
from .resume import read_result_file, resume_arguments

TOP_REASONS = 3  # per failed status


def is_running(output: Path) -> bool:
    """Whether a process holds the run's lock, found by trying to take it (and letting it go)."""
    try:
        handle = open(lock_path(output))
    except OSError:
        return False  # no lock file: no run holds it
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def status_text(output: Path) -> tuple[str, bool]:
    """The status, and whether the run finished cleanly."""
    running = is_running(output)
    if not output.is_file():
        if running:  # preparing its split: no CSV yet
            return f"{output}: running (its process holds the lock); no row yet: it is preparing its split", False
        raise UsageError(f"status: {output} is not a file; give the CSV of a run (its --output)")
    manifest = _manifest(output)
    last = (manifest.get("resumed") or [manifest])[-1] if manifest else {}
    models = list(last.get("models") or [])
    objects = _objects_in_split(output, manifest)
    rows = [row for row in read_result_file(output).rows if not models or row["model"] in models]
    total = objects * len(models) if objects is not None and models else None
    failed = [row for row in rows if row["status"] not in NOT_FAILED]
    done = len({(r["video_id"], r["object_id"], r["model"]) for r in rows})
    state, ended = _state(manifest, running)
    complete = total is not None and done >= total
    lines = [f"{output}: {state}"]
    share = f" ({100 * done / total:.0f}%)" if total else ""
    lines.append(f"jobs: {done} of {total if total is not None else '?'} have a row{share}; {len(failed)} failed")
    lines += _failures(failed)
    if running and total is not None:
        lines.append(_eta(rows, objects, models))
    clean = not running and ended and complete and not failed
    command, shard = last.get("command"), str(manifest.get("shard") or "")
    if not running and not clean and command:
        where = last.get("cwd")
        prefix = f"cd {shlex.quote(where)} && " if where and Path(where).resolve() != Path.cwd().resolve() else ""
        if not complete:
            lines.append(f"continue it with:\n  {prefix}{resume_arguments(command, output, shard=shard)}")
        if failed:
            lines.append(f"run its failed jobs again with:\n  {prefix}{resume_arguments(command, output, True, shard)}")
    return "\n".join(lines), clean


def _manifest(output: Path) -> dict[str, Any] | None:
    try:
        return json.loads(manifest_path(output).read_text())
    except (OSError, ValueError):
        return None


def _objects_in_split(output: Path, manifest: dict[str, Any] | None) -> int | None:
    """How many (video, object) the run's prepared split has (each has a row per model): from the
    prepared manifest beside the CSV, or the one the run named (relative to where it ran). The
    split's own folder need not be there."""
    candidates = [prepared_path(output)]
    named = (manifest or {}).get("prepared")
    if named:
        candidates += [Path(named), Path((manifest or {}).get("cwd") or output.parent) / named]
    for candidate in candidates:
        try:
            videos = json.loads(candidate.read_text())["videos"]
            return sum(len(video["objects"]) for video in videos)
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return None


def _state(manifest: dict[str, Any] | None, running: bool) -> tuple[str, bool]:
    """What the run is doing or how its last session ended, and whether it ended by itself."""
    if running:
        return "running (its process holds the lock)", False
    if manifest is None:
        return "not running; it has no manifest (it stopped before its first job)", False
    last = (manifest.get("resumed") or [manifest])[-1]
    if not last.get("finished_utc"):
        return "not running, and its last session did not end: it was killed (kill -9, power, the OOM killer)", False
    stopped = last.get("stopped") or ""
    if stopped:
        return f"not running: its last session stopped early ({stopped}) at {last['finished_utc']}", False
    return f"finished at {last['finished_utc']}", True


def _failures(failed: list[dict[str, str]]) -> list[str]:
    lines = []
    for status, count in Counter(row["status"] for row in failed).most_common():
        reasons = Counter(row["error"] for row in failed if row["status"] == status).most_common(TOP_REASONS)
        lines.append(f"  {status}: {count}")
        lines += [f"    {times} x {reason or '(no reason)'}" for reason, times in reasons]
    return lines


def _eta(rows: list[dict[str, str]], objects: int, models: list[str]) -> str:
    """Each model's jobs left times the median wall time of its jobs so far; a model with none yet
    makes the figure a lower bound."""
    seconds, left, unknown = 0.0, 0, []
    for model in models:
        mine = [row for row in rows if row["model"] == model]
        # a shared job's rows each hold the whole job's wall time: an object's share of it
        walls = [float(row["wall_s"]) / float(row.get("objects_in_job") or 1) for row in mine if row.get("wall_s")]
        model_left = objects - len({(r["video_id"], r["object_id"]) for r in mine})
        left += max(model_left, 0)
        if model_left > 0 and not walls:
            unknown.append(model)
        elif model_left > 0:
            seconds += model_left * statistics.median(walls)
    if left == 0:
        return "ETA: the last rows are being written"
    eta = f"ETA: {_duration(seconds)} for {left} job{'' if left == 1 else 's'} left (each model's median wall_s so far)"
    return eta + (f", and more: no job of {', '.join(unknown)} has finished yet" if unknown else "")


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    hours, minutes = divmod(minutes, 60)
    return f"about {hours} h {minutes:02d} min" if hours else f"about {minutes} min" if minutes else "under a minute"


def status_command(csv_path: str) -> int:
    text, clean = status_text(Path(csv_path))
    print(text)
    return 0 if clean else 1
