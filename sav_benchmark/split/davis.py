"""DAVIS 2017: JPEGImages/480p/<video>/<frame>.jpg, Annotations/480p/<video>/<frame>.png, whose
pixel values are object ids (palette PNGs), and ImageSets/2017/val.txt.

The objects of a video are the ids found in its annotations, each prompted on the first frame
where it appears: the same objects the SA-V evaluator scores in its DAVIS mode. Train and val
annotate every frame, so every frame is scored (minus the first and the last, as for SA-V).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import UsageError
from .checks import check_frames, find_prompt, first_appearances, index_annotations, list_videos, select_videos
from .model import (
    DAVIS_ANNOTATIONS_DIR,
    DAVIS_FRAMES_DIR,
    LAYOUT_DAVIS,
    PreparedObject,
    PreparedSplit,
    PreparedVideo,
    Selection,
    check_layout,
    shard_text,
)

LIST_FILES = ("ImageSets/2017/val.txt",)


def prepare_davis(root: Path, selection: Selection, num_points: int) -> PreparedSplit:
    check_layout(root, LAYOUT_DAVIS)
    selected = select_videos(root, list_videos(root, LIST_FILES, DAVIS_ANNOTATIONS_DIR), selection)
    videos = [_prepare_video(root, vid, selection.limit_objects, num_points) for vid in selected]
    return PreparedSplit(str(root.resolve()), num_points, videos, layout=LAYOUT_DAVIS, shard=shard_text(selection.shard))


def _prepare_video(root: Path, video_id: str, limit_objects: int | None, num_points: int) -> PreparedVideo:
    problem, n_frames, size = check_frames(root / DAVIS_FRAMES_DIR / video_id)
    folder = root / DAVIS_ANNOTATIONS_DIR / video_id
    frames, names = index_annotations(folder, f"video {video_id}", n_frames, size)
    first_seen = first_appearances(folder, video_id, frames, names)
    if not first_seen:
        raise UsageError(
            f"video {video_id}: no object in any annotation in {folder}; DAVIS annotations hold object ids 1, 2, ... on background 0"
        )
    objects = []
    for object_id in sorted(first_seen)[:limit_objects]:
        obj = PreparedObject(str(object_id), frames, names)
        find_prompt(obj, [first_seen[object_id]], num_points)
        objects.append(obj)
    height, width = size or (0, 0)
    return PreparedVideo(video_id, n_frames, height, width, objects, problem)
