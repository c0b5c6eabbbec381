"""Phase 1: index an SA-V split, check it, select videos and objects, derive their prompts.

The result is a prepared manifest (JSON) that the run phase reads, so that every problem with
the input is found before any model is built.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2

from .errors import UsageError
from .masks import png_size, read_mask
from .results import write_atomically
from .prompts import click_points, tight_box

FRAMES_DIR = "JPEGImages_24fps"
ANNOTATIONS_DIR = "Annotations_6fps"
LIST_FILES = ("sav_val.txt", "sav_test.txt")
FORMAT = "sav-benchmark-prepared/1"
DEMO_HINT = "make a demo split with: python -m sav_benchmark.synthetic --out DIR"


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
    split_dir: str
    num_points: int
    videos: list[PreparedVideo]

    def frames_dir(self, video: PreparedVideo) -> Path:
        return Path(self.split_dir) / FRAMES_DIR / video.video_id

    def mask_path(self, video: PreparedVideo, obj: PreparedObject, frame: int) -> Path:
        return Path(self.split_dir) / ANNOTATIONS_DIR / video.video_id / obj.object_id / obj.mask_file(frame)

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
            videos = [
                PreparedVideo(**{**v, "objects": [PreparedObject(**o) for o in v["objects"]]})
                for v in data.pop("videos")
            ]
            split = cls(videos=videos, **data)
        except (KeyError, TypeError, AttributeError) as exc:
            raise UsageError(f"--prepared {path} is damaged ({type(exc).__name__}: {exc}); make a new one with: jetson_benchmark.py prepare") from None
        _check_layout(Path(split.split_dir))
        return split


def prepare_split(
    split_dir: str | Path,
    video_ids: list[str] | None = None,
    limit_videos: int | None = None,
    limit_objects: int | None = None,
    num_points: int = 1,
) -> PreparedSplit:
    """Index, check and select an SA-V val/test split; raise UsageError on any bad input."""
    root = Path(split_dir)
    _check_layout(root)
    selected = _select_videos(root, _list_videos(root), video_ids, limit_videos)
    videos = [_prepare_video(root, vid, limit_objects, num_points) for vid in selected]
    return PreparedSplit(str(root.resolve()), num_points, videos)


def _check_layout(root: Path) -> None:
    if not root.is_dir():
        raise UsageError(f"--split_dir {root} does not exist; give the folder of an SA-V split ({DEMO_HINT})")
    for sub in (FRAMES_DIR, ANNOTATIONS_DIR):
        if not (root / sub).is_dir():
            raise UsageError(
                f"--split_dir {root} has no {sub}/ folder; an SA-V val/test split holds "
                f"{FRAMES_DIR}/ and {ANNOTATIONS_DIR}/ ({DEMO_HINT})"
            )


def _list_videos(root: Path) -> list[str]:
    """Videos in the split's list file order when it has one, else every annotated video, sorted."""
    for name in LIST_FILES:
        list_file = root / name
        if list_file.is_file():
            try:
                lines = list_file.read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as exc:
                raise UsageError(f"{list_file}: cannot read it as a list of video ids ({exc})") from None
            videos = [line.strip() for line in lines if line.strip()]
            for vid in videos:
                if not (root / ANNOTATIONS_DIR / vid).is_dir():
                    raise UsageError(f"{list_file} lists video {vid}, but {root / ANNOTATIONS_DIR / vid} does not exist")
            break
    else:
        videos = sorted(p.name for p in _listing(root / ANNOTATIONS_DIR) if p.is_dir())
    if not videos:
        raise UsageError(f"--split_dir {root} holds no videos: {root / ANNOTATIONS_DIR} is empty ({DEMO_HINT})")
    return videos


def _listing(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except OSError as exc:
        raise UsageError(f"cannot list {folder} ({exc.strerror or exc}); check its permissions") from None


def _select_videos(root: Path, videos: list[str], video_ids: list[str] | None, limit: int | None) -> list[str]:
    if video_ids:
        for vid in video_ids:
            if vid not in videos:
                close = difflib.get_close_matches(vid, videos, n=1)
                hint = f"did you mean {close[0]}? " if close else ""
                raise UsageError(f"--video_ids: {vid} is not in the split {root}; {hint}(it has {len(videos)} videos)")
        videos = [v for v in videos if v in video_ids]
    return videos[:limit] if limit is not None else videos


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


def _frame_files(frames_dir: Path, video_id: str) -> list[Path]:
    """The JPEG frames in order, checking that they are numbered 0..n-1 as the predictor expects."""
    if not frames_dir.is_dir():
        raise VideoProblem(f"frame folder {frames_dir} does not exist")
    try:
        files = [p for p in frames_dir.iterdir() if p.suffix.lower() in (".jpg", ".jpeg")]
    except OSError as exc:
        raise VideoProblem(f"cannot list {frames_dir} ({exc.strerror or exc})") from None
    if not files:
        raise VideoProblem(f"no .jpg frames in {frames_dir}")
    if not all(p.stem.isdigit() for p in files):
        raise VideoProblem(f"frame names in {frames_dir} must be frame numbers (00000.jpg, 00001.jpg, ...)")
    files.sort(key=lambda p: int(p.stem))
    numbers = [int(p.stem) for p in files]
    if numbers != list(range(len(numbers))):
        missing = sorted(set(range(numbers[-1] + 1)) - set(numbers))[:3]
        raise VideoProblem(f"frames in {frames_dir} are not numbered 0..{len(numbers) - 1} without gaps (missing e.g. {missing})")
    for path in files:
        problem = _jpeg_problem(path)
        if problem:
            raise VideoProblem(f"frame {path} {problem}")
    return files


def _frame_size(first: Path) -> tuple[int, int]:
    image = cv2.imread(str(first))
    if image is None:
        raise VideoProblem(f"cannot decode frame {first}")
    return image.shape[0], image.shape[1]


def _prepare_video(root: Path, video_id: str, limit_objects: int | None, num_points: int) -> PreparedVideo:
    problem, n_frames, size = "", 0, None
    try:
        frames = _frame_files(root / FRAMES_DIR / video_id, video_id)
        n_frames, size = len(frames), _frame_size(frames[0])
    except VideoProblem as exc:
        problem = f"{exc}; fix the video's frames or leave it out (--video_ids)"
    object_dirs = sorted(p for p in _listing(root / ANNOTATIONS_DIR / video_id) if p.is_dir())
    if not object_dirs:
        raise UsageError(f"video {video_id}: no object folders in {root / ANNOTATIONS_DIR / video_id}")
    if limit_objects is not None:
        object_dirs = object_dirs[:limit_objects]
    objects = [_prepare_object(obj_dir, video_id, n_frames, size, num_points) for obj_dir in object_dirs]
    height, width = size or (0, 0)
    return PreparedVideo(video_id, n_frames, height, width, objects, problem)


def _prepare_object(obj_dir: Path, video_id: str, n_frames: int, frame_size: tuple[int, int] | None, num_points: int) -> PreparedObject:
    """Index one object's masks. Its video's frames are checked already: with a problem there,
    n_frames is 0 and frame_size None, and only what the masks say alone is checked."""
    where = f"video {video_id}, object {obj_dir.name}"
    files = sorted((p for p in _listing(obj_dir) if p.suffix.lower() == ".png"), key=lambda p: p.stem)
    if not files:
        raise UsageError(f"{where}: no .png masks in {obj_dir}")
    frames = []
    for path in files:
        if not path.stem.isdigit() or (frame_size is not None and int(path.stem) >= n_frames):
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
        frames.append(int(path.stem))
    order = sorted(range(len(frames)), key=frames.__getitem__)
    obj = PreparedObject(obj_dir.name, [frames[i] for i in order], [files[i].name for i in order])
    for frame, name in zip(obj.annotated_frames, obj.annotation_files):
        try:
            mask = read_mask(obj_dir / name, require_binary=True)
        except (OSError, ValueError) as exc:
            raise UsageError(f"{where}, frame {frame}: {exc}") from None
        if mask.any():
            obj.prompt_frame, obj.points, obj.box = frame, click_points(mask, num_points), tight_box(mask)
            break
    else:
        obj.skip_reason = "object never appears in the ground truth"
    return obj
