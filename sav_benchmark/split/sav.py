"""SA-V val/test: JPEGImages_24fps/<video>/<frame>.jpg, Annotations_6fps/<video>/<object>/<frame>.png
(one binary PNG per object, every 4th frame), and sav_val.txt or sav_test.txt listing the videos."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import UsageError
from ..masks import read_mask
from .checks import check_frames, find_prompt, index_annotations, list_videos, listing, select_videos
from .model import (
    ANNOTATIONS_DIR,
    FRAMES_DIR,
    LAYOUT_SAV,
    LIST_FILES,
    PreparedObject,
    PreparedSplit,
    PreparedVideo,
    Selection,
    check_layout,
    shard_text,
)


def prepare_sav(root: Path, selection: Selection, num_points: int) -> PreparedSplit:
    check_layout(root, LAYOUT_SAV)
    selected = select_videos(root, list_videos(root, LIST_FILES, ANNOTATIONS_DIR), selection)
    videos = [prepare_sav_video(root, vid, selection.limit_objects, num_points) for vid in selected]
    return PreparedSplit(str(root.resolve()), num_points, videos, shard=shard_text(selection.shard))


def prepare_sav_video(root: Path, video_id: str, limit_objects: int | None, num_points: int) -> PreparedVideo:
    """One video of an SA-V val/test layout (root may be a cache made from training videos)."""
    problem, n_frames, size = check_frames(root / FRAMES_DIR / video_id)
    object_dirs = sorted(p for p in listing(root / ANNOTATIONS_DIR / video_id) if p.is_dir())
    if not object_dirs:
        raise UsageError(f"video {video_id}: no object folders in {root / ANNOTATIONS_DIR / video_id}")
    if limit_objects is not None:
        object_dirs = object_dirs[:limit_objects]
    objects = [_prepare_object(obj_dir, video_id, n_frames, size, num_points) for obj_dir in object_dirs]
    height, width = size or (0, 0)
    return PreparedVideo(video_id, n_frames, height, width, objects, problem)


def _prepare_object(obj_dir: Path, video_id: str, n_frames: int, frame_size: tuple[int, int] | None, num_points: int) -> PreparedObject:
    where = f"video {video_id}, object {obj_dir.name}"
    obj = PreparedObject(obj_dir.name, *index_annotations(obj_dir, where, n_frames, frame_size))
    find_prompt(obj, _binary_masks(obj_dir, obj, where), num_points)
    return obj


def _binary_masks(obj_dir: Path, obj: PreparedObject, where: str) -> Iterator[tuple[int, np.ndarray]]:
    for frame, name in zip(obj.annotated_frames, obj.annotation_files):
        try:
            yield frame, read_mask(obj_dir / name, require_binary=True)
        except (OSError, ValueError) as exc:
            raise UsageError(f"{where}, frame {frame}: {exc}") from None
