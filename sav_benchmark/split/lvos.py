"""LVOS v2: JPEGImages/<video>/<frame>.jpg and Annotations/<video>/<frame>.png (palette maps of object
ids), frames named by their number in the 30 fps source (00000001, 00000006, ...: only every 5th
exists, at 6 fps), and <set>_meta.json naming each video's objects with the frame range that LVOS's
toolkit scores them on:

    {"videos": {"<video>": {"objects": {"1": {"frame_range": {"start": 1, "end": 96, "frame_nums": 20}}}}}}

Videos are the meta's, in sorted order; objects the meta's, in its order. Each object is prompted on
the first frame of its range where its annotation shows it (objects appear late, leave and come
back); every frame is predicted, and scored as the toolkit scores it (metrics_lvos). The valid and
train splits annotate every frame from an object's first appearance; the test split only first
appearances: its rows are scored by the challenge server, not here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UsageError
from ..masks import read_ids
from ..metrics_lvos import FRAME_STEP, UNSEEN_VIDEOS_V2, scored_frames
from .checks import LVOS_META_FILES, check_named_frames, find_prompt, index_named_annotations, select_videos
from .model import (
    LAYOUT_LVOS,
    PLAIN_ANNOTATIONS_DIR,
    PLAIN_FRAMES_DIR,
    PROTOCOL_LVOS,
    PROTOCOL_SERVER,
    PreparedObject,
    PreparedSplit,
    PreparedVideo,
    Selection,
    check_layout,
    shard_text,
)

SERVER_SET = "test_meta.json"
UNSEEN_LIST_FILE = "unseen_videos.txt"  # its annotations are first appearances only
FRAME_RANGE_KEYS = ("start", "end", "frame_nums")


def prepare_lvos(root: Path, selection: Selection, num_points: int) -> PreparedSplit:
    check_layout(root, LAYOUT_LVOS)
    meta_path = _meta_path(root)
    meta = read_meta(meta_path)
    selected = select_videos(root, sorted(meta), selection)
    protocol = PROTOCOL_SERVER if meta_path.name == SERVER_SET else PROTOCOL_LVOS
    videos = [_prepare_video(root, meta_path, vid, meta[vid], selection.limit_objects, num_points, protocol) for vid in selected]
    unseen = set(_unseen_list(root))
    return PreparedSplit(
        str(root.resolve()),
        num_points,
        videos,
        layout=LAYOUT_LVOS,
        shard=shard_text(selection.shard),
        protocol=protocol,
        unseen_videos=[vid for vid in selected if vid in unseen],
    )


def _unseen_list(root: Path) -> tuple[str, ...]:
    """The videos whose categories are unseen in training: the split's unseen_videos.txt (as LVOS's
    toolkit reads it, one name a line), else LVOS v2's list."""
    path = root / UNSEEN_LIST_FILE
    if not path.is_file():
        return UNSEEN_VIDEOS_V2
    try:
        return tuple(line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read it as a list of video names ({exc})") from None


def _meta_path(root: Path) -> Path:
    present = [root / name for name in LVOS_META_FILES if (root / name).is_file()]
    if len(present) > 1:
        raise UsageError(f"--split_dir {root} holds {' and '.join(p.name for p in present)}; an LVOS split folder holds one meta file")
    return present[0]


def read_meta(path: Path) -> dict[str, list[tuple[str, list[int]]]]:
    """Each video's objects, in the meta's order, with their [start, end, frame_nums]."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UsageError(f"{path}: cannot read it as JSON ({exc}); LVOS's meta file maps videos to objects and frame ranges") from None
    videos = data.get("videos") if isinstance(data, dict) else None
    if not isinstance(videos, dict) or not videos:
        raise UsageError(f'{path}: no "videos" mapping; LVOS\'s meta file is {{"videos": {{"<video>": {{"objects": {{...}}}}}}}}')
    return {str(video): _objects(path, str(video), entry) for video, entry in videos.items()}


def _objects(path: Path, video: str, entry: Any) -> list[tuple[str, list[int]]]:
    objects = entry.get("objects") if isinstance(entry, dict) else None
    if not isinstance(objects, dict) or not objects:
        raise UsageError(f'{path}: video {video} has no "objects" mapping; give each video its objects and their frame ranges')
    listed = []
    for object_id, info in objects.items():
        where = f"{path}: video {video}, object {object_id}"
        if not str(object_id).isdigit() or not 0 < int(object_id) < 256:
            raise UsageError(f"{where}: an object id is a label-map value 1..255")
        frame_range = info.get("frame_range") if isinstance(info, dict) else None
        try:
            values = [int(frame_range[key]) for key in FRAME_RANGE_KEYS]
        except (TypeError, KeyError, ValueError):
            raise UsageError(f'{where}: "frame_range" must hold integers start, end and frame_nums') from None
        listed.append((str(int(object_id)), values))
    return listed


def _prepare_video(
    root: Path,
    meta_path: Path,
    video_id: str,
    objects: list[tuple[str, list[int]]],
    limit_objects: int | None,
    num_points: int,
    protocol: str,
) -> PreparedVideo:
    problem, names, size = check_named_frames(root / PLAIN_FRAMES_DIR / video_id, contiguous=False)
    folder = root / PLAIN_ANNOTATIONS_DIR / video_id
    if not folder.is_dir():
        raise UsageError(f"{meta_path} lists video {video_id}, but {folder} does not exist")
    frames, files = index_named_annotations(folder, f"video {video_id}", names, size)
    numbers = [int(name) for name in names]
    prepared = [PreparedObject(object_id, frames, files, frame_range=frame_range) for object_id, frame_range in objects[:limit_objects]]
    for obj in prepared:
        if not problem and protocol == PROTOCOL_LVOS:
            obj.problem = _range_problem(meta_path, video_id, obj, numbers, frames)
    if problem and not names:  # the frames are unusable: the video's rows fail with the reason, unprompted
        return PreparedVideo(video_id, 0, 0, 0, prepared, problem)
    first_shown = _first_shown(folder, video_id, meta_path, [o for o, _ in objects], prepared, numbers)
    for obj in prepared:
        find_prompt(obj, first_shown.get(obj.object_id, []), num_points)
    height, width = size or (0, 0)
    return PreparedVideo(video_id, len(names), height, width, prepared, problem, frame_names=names)


def _range_problem(meta_path: Path, video_id: str, obj: PreparedObject, numbers: list[int], annotated: list[int]) -> str:
    """Why the toolkit could not score the object on this video (its jobs then fail with it): a
    frame range it crashes on, or a scored frame the video or its annotations lack."""
    start, end, frame_nums = obj.frame_range
    try:
        scored = scored_frames(start, end, frame_nums, video=video_id, obj=obj.object_id)
    except ValueError as exc:
        return f"{exc}; fix {meta_path.name}"
    positions = {number: i for i, number in enumerate(numbers)}
    annotated_numbers = {numbers[i] for i in annotated}
    if start not in positions:
        return f"object {obj.object_id}: its frame_range starts at {start}, which is no frame of the video; fix {meta_path.name}"
    for _, number in scored:
        if number not in positions:
            return (
                f"object {obj.object_id}: frame {number} of its frame_range (start {start}, end {end}, every {FRAME_STEP}th) is no "
                f"frame of the video ({numbers[0]}..{numbers[-1]}); fix {meta_path.name}"
            )
        if number not in annotated_numbers:
            return f"object {obj.object_id}: frame {number} of its frame_range has no annotation; LVOS scores every frame of the range"
    return ""


def _first_shown(
    folder: Path, video_id: str, meta_path: Path, known: list[str], objects: list[PreparedObject], numbers: list[int]
) -> dict[str, list[tuple[int, np.ndarray]]]:
    """Each object's (frame, mask) on the first annotated frame from its range's start where it
    shows, reading each label map once; every id in the annotations must be an object of the meta
    (the toolkit would score no other)."""
    allowed = np.zeros(256, bool)
    allowed[[0, *(int(k) for k in known)]] = True
    shown: dict[str, list[tuple[int, np.ndarray]]] = {}
    frames, files = (objects[0].annotated_frames, objects[0].annotation_files) if objects else ([], [])
    for frame, name in zip(frames, files):
        ids = _read(folder / name, video_id, numbers[frame])
        present = np.flatnonzero(np.bincount(ids.ravel(), minlength=256))
        unknown = [int(i) for i in present if not allowed[i]]
        if unknown:
            raise UsageError(
                f"video {video_id}, annotation {folder / name}: object id {unknown[0]} is not an object of the video in {meta_path.name}; "
                "add it to the meta's objects or fix the annotation"
            )
        for obj in objects:
            if obj.object_id not in shown and numbers[frame] >= obj.frame_range[0] and int(obj.object_id) in present:
                shown[obj.object_id] = [(frame, ids == int(obj.object_id))]
    return shown


def _read(path: Path, video_id: str, frame: int) -> np.ndarray:
    try:
        return read_ids(path)
    except (OSError, ValueError) as exc:
        raise UsageError(f"video {video_id}, frame {frame}: {exc}") from None
