"""A job's row on its way to the CSV: the columns every row has, the prompt it was given, and its
status once the job is over."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .runners import ModelSpec
from .runners.base import RunSettings
from .runners.sizes import default_imgsz
from .split import PreparedObject, PreparedSplit, PreparedVideo

CRASHED_TWICE = "the run died twice during this job, so it was not run again (with --isolation process a crash costs only its row)"


@dataclass(frozen=True)
class JobResult:
    """A job that ran (or could not): its row, with a status once scored."""

    row: dict[str, Any]
    input_problem: bool  # a failure that is the input's fault (a corrupt frame), not the model's
    spec: ModelSpec
    obj: PreparedObject
    job_index: int = 0  # which job of the run made it: the objects of a shared job have the same
    trace: dict[str, list] | None = None  # the job's per-frame records (traces.py), written before the row


def row_start(run_id: str, settings: RunSettings, spec: ModelSpec, video: PreparedVideo, obj: PreparedObject) -> dict[str, Any]:
    """The columns every row of a job has, whatever becomes of it."""
    return {
        "run_id": run_id,
        "video_id": video.video_id,
        "object_id": obj.object_id,
        "model": spec.name,
        "prompt": spec.prompt,
        "n_frames": video.n_frames or None,
        **settings_columns(settings, spec),
    }


def settings_columns(settings: RunSettings, spec: ModelSpec) -> dict[str, Any]:
    if not spec.uses_torch:
        return {"weights": "none", "device": "cpu"}
    return {
        "weights": settings.weights,
        "device": settings.device,
        "dtype": settings.dtype,
        "imgsz": settings.imgsz or default_imgsz(spec.family),
        "postprocessing": "on" if settings.postprocessing else "off",
    }


def prompt_detail(split: PreparedSplit, spec: ModelSpec, video: PreparedVideo, obj: PreparedObject) -> str:
    """The exact prompt, as JSON: the clicks, the box, or where the prompt mask is."""
    if spec.prompt == "points":
        return json.dumps({"points": obj.points})
    if spec.prompt == "bbox":
        return json.dumps({"box": obj.box})
    where = split.truth_path(video, obj, obj.prompt_frame).relative_to(split.split_dir)
    return json.dumps({"mask": str(where), "object_id": obj.object_id})


def prompt_warning(split: PreparedSplit, spec: ModelSpec, obj: PreparedObject) -> str:
    """A click prompt with fewer clicks than --num_points asked (the mask has fewer pixels)."""
    clicks, asked = len(obj.points), split.num_points
    if spec.prompt != "points" or clicks >= asked:
        return ""
    return f"{clicks} of the {asked} clicks of --num_points: the prompt mask has only {clicks} pixels"


def with_status(row: dict[str, Any], status: str, error: str) -> dict[str, Any]:
    """The row, with its status, its reason ('' when none) and the time it got them."""
    row["status"] = status
    row["error"] = error
    row["timestamp_utc"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return row
