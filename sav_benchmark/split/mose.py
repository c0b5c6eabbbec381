"""MOSE and MOSEv2: JPEGImages/<video>/<frame>.jpg (00000.jpg, ...) and Annotations/<video>/<frame>.png,
palette maps of object ids, as DAVIS without its 480p/ level. MOSEv2 adds meta_train.json or
meta_valid.json, `{"videos": {"<video>": {"length": N, "height": H, "width": W, "objects": {"1": {}, ...}}}}`,
whose objects its scorer scores.

Train splits annotate every frame and are scored here: MOSEv2 by its scorer's rules
(metrics_mosev2: J with +1 smoothing, the size-adaptive boundary measure and J&F-dot, the
disappearance and reappearance scores), MOSE v1 by the SA-V evaluator's rules for label maps (as
DAVIS; sam2's training README scores MOSE with that evaluator, and MOSE v1's own server code is not
public). Val and test splits annotate only the first frame, with every target: their ground truth
is the challenge server's, so their rows are `no_score`, and the masks of every frame are saved and
zipped as the server takes them (`<video>/<frame>.png` at the zip's root).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .checks import (
    MOSEV2_META_FILES,
    check_named_frames,
    find_prompt,
    first_appearances,
    index_named_annotations,
    list_videos,
    select_videos,
)
from .model import (
    LAYOUT_MOSE,
    PLAIN_ANNOTATIONS_DIR,
    PLAIN_FRAMES_DIR,
    PROTOCOL_MOSEV2,
    PROTOCOL_SAV,
    PROTOCOL_SERVER,
    PreparedObject,
    PreparedSplit,
    PreparedVideo,
    Selection,
    check_layout,
    shard_text,
)


def prepare_mose(root: Path, selection: Selection, num_points: int) -> PreparedSplit:
    check_layout(root, LAYOUT_MOSE)
    meta_path, meta = _read_meta(root)
    selected = select_videos(root, list_videos(root, (), PLAIN_ANNOTATIONS_DIR), selection)
    videos = [_prepare_video(root, vid, meta_path, meta, selection.limit_objects, num_points) for vid in selected]
    if all(_first_frame_only(video) for video in videos):
        protocol = PROTOCOL_SERVER
    else:
        protocol = PROTOCOL_MOSEV2 if meta_path else PROTOCOL_SAV
    return PreparedSplit(str(root.resolve()), num_points, videos, layout=LAYOUT_MOSE, shard=shard_text(selection.shard), protocol=protocol)


def _first_frame_only(video: PreparedVideo) -> bool:
    """A val/test video: its only annotation is its first frame's."""
    return all(obj.annotated_frames == [0] for obj in video.objects) and video.n_frames != 1


def _read_meta(root: Path) -> tuple[Path | None, dict[str, list[str]]]:
    """MOSEv2's meta file, if the split has one: each video's object ids."""
    present = [root / name for name in MOSEV2_META_FILES if (root / name).is_file()]
    if not present:
        return None, {}
    if len(present) > 1:
        raise UsageError(f"--split_dir {root} holds {' and '.join(p.name for p in present)}; a MOSEv2 split folder holds one meta file")
    path = present[0]
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UsageError(f"{path}: cannot read it as JSON ({exc}); MOSEv2's meta file maps videos to their objects") from None
    videos = data.get("videos") if isinstance(data, dict) else None
    if not isinstance(videos, dict):
        raise UsageError(f'{path}: no "videos" mapping; MOSEv2\'s meta file is {{"videos": {{"<video>": {{"objects": {{"1": ...}}}}}}}}')
    if not any(isinstance(entry, dict) and "length" in entry for entry in videos.values()):
        return None, {}  # MOSE v1's meta files share the names, not MOSEv2's schema: scored as MOSE v1
    return path, {str(video): _object_ids(path, str(video), entry) for video, entry in videos.items()}


def _object_ids(path: Path, video: str, entry: Any) -> list[str]:
    objects = entry.get("objects") if isinstance(entry, dict) else None
    if not isinstance(objects, dict):
        raise UsageError(f'{path}: video {video} has no "objects" mapping; give each video its object ids')
    for object_id in objects:
        if not str(object_id).isdigit() or not 0 < int(object_id) < 256:
            raise UsageError(f"{path}: video {video}, object {object_id}: an object id is a label-map value 1..255")
    return [str(int(object_id)) for object_id in objects]


def _prepare_video(
    root: Path, video_id: str, meta_path: Path | None, meta: dict[str, list[str]], limit_objects: int | None, num_points: int
) -> PreparedVideo:
    problem, names, size = check_named_frames(root / PLAIN_FRAMES_DIR / video_id, contiguous=False)
    folder = root / PLAIN_ANNOTATIONS_DIR / video_id
    frames, files = index_named_annotations(folder, f"video {video_id}", names, size)
    if meta_path and video_id not in meta:
        raise UsageError(f"video {video_id} of {folder.parent} is not in {meta_path}; add it, or remove its folder")
    if meta_path and not problem and frames != [0] and len(frames) != len(names):
        annotated = set(frames)
        missing = next(name for i, name in enumerate(names) if i not in annotated)
        problem = f"frame {missing} has no annotation in {folder}; MOSEv2's scorer scores every frame of a train video"
    first_seen = first_appearances(folder, video_id, frames, files)
    if meta_path:
        unknown = sorted(set(first_seen) - {int(k) for k in meta[video_id]})
        if unknown:
            raise UsageError(
                f"video {video_id}: object id {unknown[0]} of its annotations is not among its objects in {meta_path.name}; "
                "add it to the meta or fix the annotation"
            )
        object_ids = [int(k) for k in meta[video_id]]
    else:
        object_ids = sorted(first_seen)
    if not object_ids:
        raise UsageError(f"video {video_id}: no object in any annotation in {folder}; MOSE annotations hold object ids 1, 2, ... on 0")
    objects = []
    for object_id in object_ids[:limit_objects]:
        obj = PreparedObject(str(object_id), frames, files)
        find_prompt(obj, [first_seen[object_id]] if object_id in first_seen else [], num_points)
        objects.append(obj)
    height, width = size or (0, 0)
    return PreparedVideo(video_id, len(names), height, width, objects, problem, frame_names=names)
