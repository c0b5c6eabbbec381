"""Phase 1: index a split, check it, select videos and objects, derive their prompts.

The result is a prepared manifest (JSON) that the run phase reads, so that every problem with
the input is found before any model is built. This module reads SA-V val/test and holds what
every layout shares; `davis` reads DAVIS 2017, and `sav_train` turns SA-V training videos into
the val/test layout in a cache.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import cv2
import numpy as np
from PIL import Image

from .errors import UsageError
from .masks import png_size, read_ids, read_mask
from .prompts import click_points, tight_box
from .results import write_atomically
from .runners.base import FRAME_SUFFIXES

FRAMES_DIR = "JPEGImages_24fps"
ANNOTATIONS_DIR = "Annotations_6fps"
LIST_FILES = ("sav_val.txt", "sav_test.txt")
DAVIS_FRAMES_DIR = "JPEGImages/480p"
DAVIS_ANNOTATIONS_DIR = "Annotations/480p"
LAYOUT_SAV, LAYOUT_DAVIS, LAYOUT_SAV_TRAIN = "sav", "davis", "sav-train"
FOLDERS = {LAYOUT_SAV: (FRAMES_DIR, ANNOTATIONS_DIR), LAYOUT_DAVIS: (DAVIS_FRAMES_DIR, DAVIS_ANNOTATIONS_DIR)}
MASKLET_CHOICES = ("manual", "auto", "both")  # SA-V train: which json files name the objects
FORMAT = "sav-benchmark-prepared/1"
DEMO_HINT = "make a demo split with: python -m sav_benchmark.synthetic --out DIR"
LAYOUTS_HINT = (
    "a split is SA-V val/test (JPEGImages_24fps/, Annotations_6fps/), SA-V train (sav_*.mp4 with "
    "sav_*_manual.json) or DAVIS 2017 (JPEGImages/480p/, Annotations/480p/)"
)


@dataclass
class PreparedObject:
    object_id: str
    annotated_frames: list[int]
    annotation_files: list[str]
    prompt_frame: int | None = None
    points: list[list[int]] = field(default_factory=list)
    box: list[int] = field(default_factory=list)
    skip_reason: str = ""

    def mask_file(self, frame: int) -> str:
        return self.annotation_files[self.annotated_frames.index(frame)]


@dataclass
class PreparedVideo:
    video_id: str
    n_frames: int
    height: int
    width: int
    objects: list[PreparedObject]
    problem: str = ""  # why none of its jobs can run; each then gets a row with this reason


@dataclass
class PreparedSplit:
    split_dir: str  # what the run reads: for SA-V train, the cache that prepare filled
    num_points: int
    videos: list[PreparedVideo]
    layout: str = LAYOUT_SAV  # sav: one binary PNG per object and frame; davis: one index PNG per frame
    source_dir: str = ""  # SA-V train: the folder of mp4 and json files the cache was made from
    masklets: str = ""  # SA-V train: manual, auto or both
    shard: str = ""  # "K/N" when this is one of N parts of the selection

    def frames_dir(self, video: PreparedVideo) -> Path:
        return Path(self.split_dir) / FOLDERS[self.layout][0] / video.video_id

    def truth_path(self, video: PreparedVideo, obj: PreparedObject, frame: int) -> Path:
        folder = Path(self.split_dir) / FOLDERS[self.layout][1] / video.video_id
        if self.layout == LAYOUT_DAVIS:
            return folder / obj.mask_file(frame)
        return folder / obj.object_id / obj.mask_file(frame)

    def read_truth(self, video: PreparedVideo, obj: PreparedObject, frame: int) -> np.ndarray:
        """The object's ground-truth mask on an annotated frame."""
        path = self.truth_path(video, obj, frame)
        if self.layout == LAYOUT_DAVIS:
            return read_ids(path) == int(obj.object_id)
        return read_mask(path, require_binary=True)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, json.dumps({"format": FORMAT, **asdict(self)}, indent=1))

    @classmethod
    def load(cls, path: Path) -> "PreparedSplit":
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise UsageError(f"--prepared {path}: cannot read it ({exc}); make one with: jetson_benchmark.py prepare") from None
        if not isinstance(data, dict) or data.pop("format", None) != FORMAT:
            raise UsageError(f"--prepared {path} is not a prepared manifest ({FORMAT}); make one with: jetson_benchmark.py prepare")
        try:
            videos = [PreparedVideo(**{**v, "objects": [PreparedObject(**o) for o in v["objects"]]}) for v in data.pop("videos")]
            split = cls(videos=videos, **data)
        except (KeyError, TypeError, AttributeError) as exc:
            raise UsageError(
                f"--prepared {path} is damaged ({type(exc).__name__}: {exc}); make a new one with: jetson_benchmark.py prepare"
            ) from None
        if split.layout not in FOLDERS:
            raise UsageError(f"--prepared {path} has an unknown layout {split.layout!r}; make a new one with: jetson_benchmark.py prepare")
        check_layout(Path(split.split_dir), split.layout)
        return split


def is_prepared_manifest(path: Path) -> bool:
    """Whether the file is a prepared manifest (which `prepare` may write again)."""
    try:
        with open(path, "rb") as f:
            return f'"format": "{FORMAT}"'.encode() in f.read(200)
    except OSError:
        return False


@dataclass
class Selection:
    """Which videos and objects of a split to run: the flags shared by `run` and `prepare`."""

    video_ids: list[str] | None = None
    limit_videos: int | None = None
    limit_objects: int | None = None
    shard: tuple[int, int] | None = None  # (K, N): the K-th of N parts, counting from 1


def parse_shard(text: str) -> tuple[int, int]:
    """K/N with 1 <= K <= N, for --shard."""
    k, _, n = text.partition("/")
    if not (k.isdigit() and n.isdigit() and 1 <= int(k) <= int(n)):
        raise ValueError(f"--shard must be K/N with 1 <= K <= N (1/2 and 2/2 split a run in two), not {text}")
    return int(k), int(n)


def prepare_split(
    split_dir: str | Path,
    video_ids: list[str] | None = None,
    limit_videos: int | None = None,
    limit_objects: int | None = None,
    num_points: int = 1,
    shard: tuple[int, int] | None = None,
    masklets: str = "manual",
    cache_dir: str | Path | None = None,
) -> PreparedSplit:
    """Index, check and select a split of any layout; raise UsageError on any bad input.

    masklets and cache_dir concern SA-V training videos only (see `sav_train`)."""
    # Imported here: those modules build on this one's classes.
    from .davis import prepare_davis
    from .sav_train import prepare_training

    root = Path(split_dir)
    selection = Selection(video_ids, limit_videos, limit_objects, shard)
    layout = detect_layout(root)
    if layout == LAYOUT_DAVIS:
        return prepare_davis(root, selection, num_points)
    if layout == LAYOUT_SAV_TRAIN:
        return prepare_training(root, selection, num_points, masklets, cache_dir)
    check_layout(root, LAYOUT_SAV)
    selected = select_videos(root, list_videos(root, LIST_FILES, ANNOTATIONS_DIR), selection)
    videos = [prepare_sav_video(root, vid, limit_objects, num_points) for vid in selected]
    return PreparedSplit(str(root.resolve()), num_points, videos, shard=shard_text(shard))


def shard_text(shard: tuple[int, int] | None) -> str:
    return f"{shard[0]}/{shard[1]}" if shard else ""


def require_folder(root: Path) -> None:
    if root.exists() and not root.is_dir():
        raise UsageError(f"--split_dir {root} is a file, not a folder; give the folder of an SA-V split ({DEMO_HINT})")
    if not root.is_dir():
        raise UsageError(f"--split_dir {root} does not exist; give the folder of an SA-V split ({DEMO_HINT})")


def detect_layout(root: Path) -> str:
    require_folder(root)
    for layout, folders in FOLDERS.items():
        if any((root / sub).is_dir() for sub in folders):
            return layout  # a missing half is reported by check_layout
    if any(p.suffix == ".mp4" for p in listing(root)):
        return LAYOUT_SAV_TRAIN
    raise UsageError(f"--split_dir {root} holds no split: {LAYOUTS_HINT} ({DEMO_HINT})")


def check_layout(root: Path, layout: str) -> None:
    require_folder(root)
    for sub in FOLDERS[layout]:
        if not (root / sub).is_dir():
            frames, annotations = FOLDERS[layout]
            kind = "a DAVIS 2017 split" if layout == LAYOUT_DAVIS else "an SA-V val/test split"
            raise UsageError(f"--split_dir {root} has no {sub}/ folder; {kind} holds {frames}/ and {annotations}/ ({DEMO_HINT})")


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


def frame_files(frames_dir: Path) -> list[Path]:
    """The JPEG frames in order, checking that they are numbered 0..n-1 as the predictor expects."""
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
    if numbers != list(range(len(numbers))):
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
    try:
        frames = frame_files(frames_dir)
        return "", len(frames), frame_size(frames)
    except VideoProblem as exc:
        return f"{exc}; fix the video's frames or leave it out (--video_ids)", 0, None


def find_prompt(obj: PreparedObject, masks: Iterable[tuple[int, np.ndarray]], num_points: int) -> None:
    """Prompt the object on the first of its (frame, mask) pairs where the mask is not empty."""
    for frame, mask in masks:
        if mask.any():
            obj.prompt_frame, obj.points, obj.box = frame, click_points(mask, num_points), tight_box(mask)
            return
    obj.skip_reason = "object never appears in the ground truth"


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


def index_annotations(folder: Path, where: str, n_frames: int, frame_size: tuple[int, int] | None) -> tuple[list[int], list[str]]:
    """The annotated frames and their PNG names, in frame order. The video's frames are checked
    already: with a problem there, n_frames is 0 and frame_size None, and only what the masks say
    alone is checked."""
    files = [p for p in listing(folder) if p.suffix.lower() == ".png"]
    if not files:
        raise UsageError(f"{where}: no .png masks in {folder}")
    try:
        masks = numbered(files)
    except NumberingProblem as exc:
        raise UsageError(f"{where}: mask {exc}") from None
    for number, path in masks:
        if frame_size is not None and number >= n_frames:
            raise UsageError(f"{where}: mask {path} names no frame of the video (it has frames 0..{n_frames - 1})")
        try:
            size = png_size(path)
        except (OSError, ValueError) as exc:
            raise UsageError(f"{where}: {exc}") from None
        if frame_size is not None and size != frame_size:
            raise UsageError(
                f"{where}, frame {path.stem}: mask {path} is {size[1]}x{size[0]} but the video's frames are "
                f"{frame_size[1]}x{frame_size[0]}; ground truth must be at frame resolution"
            )
    return [number for number, _ in masks], [path.name for _, path in masks]


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
