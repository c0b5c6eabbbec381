"""The checks every layout shares: listing and selecting videos, a video's frames (names, numbering,
JPEG markers, every frame's size), its annotation files, and where each object is prompted."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Iterable

import cv2
import numpy as np
from PIL import Image

from ..errors import UsageError
from ..masks import png_size, read_ids
from .model import (
    DEMO_HINT,
    FOLDERS,
    FRAME_SUFFIXES,
    LAYOUT_DAVIS,
    LAYOUT_LVOS,
    LAYOUT_MOSE,
    LAYOUT_NAMES,
    LAYOUT_SAV,
    LAYOUT_SAV_TRAIN,
    LAYOUTS_HINT,
    PLAIN_ANNOTATIONS_DIR,
    PLAIN_FRAMES_DIR,
    PreparedObject,
    Selection,
    require_folder,
)
from .prompts import click_points, tight_box

LVOS_META_FILES = ("valid_meta.json", "train_meta.json", "test_meta.json")  # <set>_meta.json, as LVOS's toolkit names them
MOSEV2_META_FILES = ("meta_train.json", "meta_valid.json")
LVOS_NAME_DIGITS = 8  # 00000001.jpg; MOSE names frames with 5 digits


def detect_layout(root: Path) -> str:
    """The layout by its folders (and, for LVOS, its meta file); a folder that holds two is refused."""
    require_folder(root)
    found = []
    if (root / FOLDERS[LAYOUT_SAV][0]).is_dir() or (root / FOLDERS[LAYOUT_SAV][1]).is_dir():
        found.append(LAYOUT_SAV)
    if (root / FOLDERS[LAYOUT_DAVIS][0]).is_dir() or (root / FOLDERS[LAYOUT_DAVIS][1]).is_dir():
        found.append(LAYOUT_DAVIS)
    elif (root / PLAIN_FRAMES_DIR).is_dir() or (root / PLAIN_ANNOTATIONS_DIR).is_dir():
        found.append(LAYOUT_LVOS if any((root / name).is_file() for name in LVOS_META_FILES) else _mose_or_lvos_without_meta(root))
    if len(found) > 1:
        raise UsageError(
            f"--split_dir {root} holds both {LAYOUT_NAMES[found[0]]} and {LAYOUT_NAMES[found[1]]}; give a folder with one split"
        )
    if found:
        return found[0]  # a missing half is reported by check_layout
    if any(p.suffix == ".mp4" for p in listing(root)):
        return LAYOUT_SAV_TRAIN
    raise UsageError(f"--split_dir {root} holds no split: {LAYOUTS_HINT} ({DEMO_HINT})")


def _mose_or_lvos_without_meta(root: Path) -> str:
    """MOSE, unless its frames are named as LVOS names them (8 digits): an LVOS split without its
    meta file, which decides the frames LVOS scores, is refused rather than scored by other rules."""
    videos = sorted(p for p in listing(root / PLAIN_ANNOTATIONS_DIR) if p.is_dir()) if (root / PLAIN_ANNOTATIONS_DIR).is_dir() else []
    names = sorted(p.stem for p in listing(videos[0]) if p.suffix == ".png") if videos else []
    if names and len(names[0]) == LVOS_NAME_DIGITS and names[0].isdigit():
        raise UsageError(
            f"--split_dir {root} looks like an LVOS split (frames named with {LVOS_NAME_DIGITS} digits, e.g. "
            f"{videos[0].name}/{names[0]}.png) but holds none of {', '.join(LVOS_META_FILES)}; put the split's meta file beside "
            "JPEGImages/ and Annotations/"
        )
    return LAYOUT_MOSE


def list_videos(root: Path, list_files: tuple[str, ...], annotations_dir: str) -> list[str]:
    """Videos in the split's list file order when it has one, else every annotated video, sorted."""
    for name in list_files:
        list_file = root / name
        if list_file.is_file():
            try:
                lines = list_file.read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as exc:
                raise UsageError(f"{list_file}: cannot read it as a list of video ids ({exc})") from None
            videos = [line.strip() for line in lines if line.strip()]
            for vid in videos:
                if not (root / annotations_dir / vid).is_dir():
                    raise UsageError(f"{list_file} lists video {vid}, but {root / annotations_dir / vid} does not exist")
            break
    else:
        videos = sorted(p.name for p in listing(root / annotations_dir) if p.is_dir())
    if not videos:
        raise UsageError(f"--split_dir {root} holds no videos: {root / annotations_dir} is empty ({DEMO_HINT})")
    return videos


def listing(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except OSError as exc:
        raise UsageError(f"cannot list {folder} ({exc.strerror or exc}); check its permissions") from None


def select_videos(root: Path, videos: list[str], selection: Selection) -> list[str]:
    """--video_ids, then --limit_videos, then --shard: every K-th of the N parts takes every N-th
    video from the K-th on, so the parts are disjoint, cover the selection and are nearly equal."""
    if selection.video_ids:
        for vid in selection.video_ids:
            if vid not in videos:
                close = difflib.get_close_matches(vid, videos, n=1)
                hint = f"did you mean {close[0]}? " if close else ""
                raise UsageError(f"--video_ids: {vid} is not in the split {root}; {hint}(it has {len(videos)} videos)")
        videos = [v for v in videos if v in selection.video_ids]
    if selection.limit_videos is not None:
        videos = videos[: selection.limit_videos]
    if selection.shard:
        k, n = selection.shard
        videos = videos[k - 1 :: n]
        if not videos:
            raise UsageError(
                f"--shard {k}/{n}: this part has no video (the selection has fewer than {k}); use at most as many parts as videos"
            )
    return videos


class VideoProblem(Exception):
    """Something wrong with one video's frames: its jobs fail with this reason, the others run."""


JPEG_START, JPEG_END = b"\xff\xd8", b"\xff\xd9"
JPEG_TAIL = 64  # some encoders pad after the end marker


def _jpeg_problem(path: Path) -> str:
    """A cheap integrity check (start and end markers): catches truncated and non-JPEG files."""
    try:
        with open(path, "rb") as f:
            head = f.read(2)
            f.seek(0, 2)
            f.seek(max(0, f.tell() - JPEG_TAIL))
            tail = f.read()
    except OSError as exc:
        return f"cannot read it ({exc.strerror or exc})"
    if head != JPEG_START:
        return "is not a JPEG file"
    if JPEG_END not in tail:
        return "is truncated (no JPEG end marker)"
    return ""


class NumberingProblem(ValueError):
    """Files of a folder that do not name its frames one to one."""


def numbered(files: list[Path]) -> list[tuple[int, Path]]:
    """(frame number, file) in frame order. A name must be ASCII digits (int() would take '²' or
    '٤' too), and two files must not name one frame (4.png beside 00004.png)."""
    by_number: dict[int, Path] = {}
    for path in sorted(files):
        if not (path.stem.isascii() and path.stem.isdigit()):
            raise NumberingProblem(f"{path} is not named by a frame number in ASCII digits (00000{path.suffix}, 00001{path.suffix}, ...)")
        number = int(path.stem)
        if number in by_number:
            raise NumberingProblem(f"{by_number[number]} and {path} both name frame {number}; keep one of them")
        by_number[number] = path
    return sorted(by_number.items())


def frame_files(frames_dir: Path, contiguous: bool = True) -> list[Path]:
    """The JPEG frames in order of their numbers (the predictor's loader order), checking that they
    are numbered 0..n-1 unless the layout numbers them otherwise (LVOS: 1, 6, 11, ...)."""
    if not frames_dir.is_dir():
        raise VideoProblem(f"frame folder {frames_dir} does not exist")
    try:
        files = [p for p in frames_dir.iterdir() if p.suffix in FRAME_SUFFIXES]
    except OSError as exc:
        raise VideoProblem(f"cannot list {frames_dir} ({exc.strerror or exc})") from None
    if not files:
        raise VideoProblem(f"no .jpg frames in {frames_dir}")
    try:
        frames = numbered(files)
    except NumberingProblem as exc:
        raise VideoProblem(f"frame {exc}") from None
    numbers = [number for number, _ in frames]
    if contiguous and numbers != list(range(len(numbers))):
        present = set(numbers)  # the first gaps lie below len(numbers) + 3, however large a number is
        missing = [n for n in range(min(len(numbers) + 3, numbers[-1])) if n not in present][:3]
        raise VideoProblem(f"frames in {frames_dir} are not numbered 0..{len(numbers) - 1} without gaps (missing e.g. {missing})")
    for _, path in frames:
        problem = _jpeg_problem(path)
        if problem:
            raise VideoProblem(f"frame {path} {problem}")
    return [path for _, path in frames]


def header_size(path: Path) -> tuple[int, int]:
    """(height, width) from a frame's header, as the predictor's loader (Pillow) reads it, without
    decoding it."""
    try:
        with Image.open(path) as image:
            width, height = image.size
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise VideoProblem(f"cannot read the size of frame {path} ({exc})") from None
    return height, width


def frame_size(frames: list[Path]) -> tuple[int, int]:
    """The video's frame size: every frame's header must give the first frame's, and the first
    frame must decode."""
    if cv2.imread(str(frames[0])) is None:
        raise VideoProblem(f"cannot decode frame {frames[0]}")
    size = header_size(frames[0])
    for path in frames[1:]:
        other = header_size(path)
        if other != size:
            raise VideoProblem(
                f"frame {path} is {other[1]}x{other[0]} but frame {frames[0].name} is {size[1]}x{size[0]}; every frame of a video must "
                "have one size"
            )
    return size


def check_frames(frames_dir: Path) -> tuple[str, int, tuple[int, int] | None]:
    """(problem, frame count, (height, width)): with a problem, 0 and None."""
    problem, names, size = check_named_frames(frames_dir, contiguous=True)
    return problem, len(names), size


def check_named_frames(frames_dir: Path, contiguous: bool) -> tuple[str, list[str], tuple[int, int] | None]:
    """(problem, each frame's name without suffix in order, (height, width)): with a problem, [] and None."""
    try:
        frames = frame_files(frames_dir, contiguous)
        return "", [path.stem for path in frames], frame_size(frames)
    except VideoProblem as exc:
        return f"{exc}; fix the video's frames or leave it out (--video_ids)", [], None


def find_prompt(obj: PreparedObject, masks: Iterable[tuple[int, np.ndarray]], num_points: int) -> None:
    """Prompt the object on the first of its (frame, mask) pairs where the mask is not empty."""
    for frame, mask in masks:
        if mask.any():
            obj.prompt_frame, obj.points, obj.box = frame, click_points(mask, num_points), tight_box(mask)
            return
    obj.skip_reason = "object never appears in the ground truth"


def index_annotations(folder: Path, where: str, n_frames: int, frame_size: tuple[int, int] | None) -> tuple[list[int], list[str]]:
    """The annotated frames and their PNG names, in frame order, for frames numbered 0..n-1."""
    return index_named_annotations(folder, where, [str(i) for i in range(n_frames)], frame_size)


def index_named_annotations(
    folder: Path, where: str, frame_names: list[str], frame_size: tuple[int, int] | None
) -> tuple[list[int], list[str]]:
    """The annotated frames (their positions in the video) and their PNG names, in frame order:
    each mask must name one of the video's frames by its number (LVOS numbers them 1, 6, 11, ...).
    The video's frames are checked already: with a problem there, frame_size is None, only what the
    masks say alone is checked, and their own numbers are returned."""
    files = [p for p in listing(folder) if p.suffix.lower() == ".png"]
    if not files:
        raise UsageError(f"{where}: no .png masks in {folder}")
    try:
        masks = numbered(files)
    except NumberingProblem as exc:
        raise UsageError(f"{where}: mask {exc}") from None
    positions = {int(name): i for i, name in enumerate(frame_names)}
    for number, path in masks:
        if frame_size is not None and number not in positions:
            raise UsageError(f"{where}: mask {path} names no frame of the video (it has frames {_numbers_text(frame_names)})")
        try:
            size = png_size(path)
        except (OSError, ValueError) as exc:
            raise UsageError(f"{where}: {exc}") from None
        if frame_size is not None and size != frame_size:
            raise UsageError(
                f"{where}, frame {path.stem}: mask {path} is {size[1]}x{size[0]} but the video's frames are "
                f"{frame_size[1]}x{frame_size[0]}; ground truth must be at frame resolution"
            )
    if frame_size is None:
        return [number for number, _ in masks], [path.name for _, path in masks]
    return [positions[number] for number, _ in masks], [path.name for _, path in masks]


def _numbers_text(frame_names: list[str]) -> str:
    numbers = [int(name) for name in frame_names]
    if numbers == list(range(len(numbers))):
        return f"0..{len(numbers) - 1}"
    return f"{numbers[0]}, {numbers[1]}, ... {numbers[-1]}" if len(numbers) > 2 else ", ".join(map(str, numbers))


def first_appearances(folder: Path, video_id: str, frames: list[int], names: list[str]) -> dict[int, tuple[int, np.ndarray]]:
    """Each object id found, with the first frame where it appears and its mask there."""
    first_seen: dict[int, tuple[int, np.ndarray]] = {}
    for frame, name in zip(frames, names):
        try:
            ids = read_ids(folder / name)
        except (OSError, ValueError) as exc:
            raise UsageError(f"video {video_id}, frame {frame}: {exc}") from None
        present = np.flatnonzero(np.bincount(ids.ravel(), minlength=256)[1:]) + 1
        for object_id in present:
            if int(object_id) not in first_seen:
                first_seen[int(object_id)] = (frame, ids == object_id)
    return first_seen
