"""SA-V training videos: sav_000001.mp4 beside sav_000001_manual.json (and _auto.json), and so on.

The json holds masklets as COCO run-length encodings at 6 fps: annotated frame i is video frame
4*i, and `masklet_first_appeared_frame` counts annotated frames. prepare turns each selected video
into the val/test layout in a cache (--cache_dir): every video frame as a JPEG, and every masklet
as one binary PNG per annotated frame named by its video frame (00452.png). From there on the
run, the scoring, --save_masks and the official evaluator see an ordinary val/test split.

The cache is made once: a stamp per video records the files it came from (path, size, time),
so a re-run reuses it and a changed mp4 or json is converted again. Frames are decoded one at a
time, never the whole video in memory. A video that cannot be converted (a truncated mp4, a json
that disagrees with it) becomes an error row for each of its objects; the others run.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import cv2
from pycocotools import mask as rle_codec

from ..errors import UsageError, os_reason
from ..files import write_atomically
from ..masks import write_mask
from .checks import VideoProblem, listing, select_videos
from .model import ANNOTATIONS_DIR, FRAMES_DIR, PreparedObject, PreparedSplit, PreparedVideo, Selection, shard_text
from .sav import prepare_sav_video

ANNOTATION_STEP = 4  # 24 fps video, masklets at 6 fps
MASKLET_KINDS = {"manual": ("manual",), "auto": ("auto",), "both": ("manual", "auto")}
OPTIONAL_KINDS = {"both": {"auto"}}  # SA-V has auto masklets for most videos, not all
JPEG_QUALITY = 95
CACHE_VERSION = 1
STAMPS_DIR = "sources"
UNKNOWN_OBJECTS = "-"  # the object id of a video's only row when its json cannot be read


def default_cache_dir(root: Path) -> Path:
    return Path("cache") / root.resolve().name


def prepare_training(
    root: Path,
    selection: Selection,
    num_points: int,
    masklets: str = "manual",
    cache_dir: str | Path | None = None,
    say: Callable[[str], None] | None = None,
) -> PreparedSplit:
    """Convert the selected training videos into the cache (or reuse it), then index the cache."""
    cache = Path(cache_dir) if cache_dir else default_cache_dir(root)
    videos = select_videos(root, _list_videos(root), selection)
    say = say or (lambda message: print(message, file=sys.stderr))
    prepared = []
    with _cache_lock(cache, say):
        for video_id in videos:
            problem, object_ids = convert_video(root, video_id, cache, masklets, say)
            if problem:
                object_ids = object_ids[: selection.limit_objects] or [UNKNOWN_OBJECTS]
                objects = [PreparedObject(object_id, [], []) for object_id in object_ids]
                prepared.append(PreparedVideo(video_id, 0, 0, 0, objects, problem))
            else:
                prepared.append(prepare_sav_video(cache, video_id, selection.limit_objects, num_points))
    return PreparedSplit(
        str(cache.resolve()), num_points, prepared, source_dir=str(root.resolve()), masklets=masklets, shard=shard_text(selection.shard)
    )


@contextmanager
def _cache_lock(cache: Path, say: Callable[[str], None]) -> Iterator[None]:
    """One prepare at a time per cache: two converting the same video would mix their frames."""
    try:
        cache.mkdir(parents=True, exist_ok=True)
        handle = open(cache / ".lock", "a")
    except OSError as exc:
        raise UsageError(f"--cache_dir {cache}: cannot create it ({os_reason(exc)}); choose a writable folder") from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"prepare: waiting for another prepare that is filling {cache}")
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _list_videos(root: Path) -> list[str]:
    return sorted(p.stem for p in listing(root) if p.suffix == ".mp4")


@dataclass
class Masklets:
    """One json file's masklets, checked for shape but not yet decoded."""

    kind: str
    path: Path
    frame_count: int
    height: int
    width: int
    rles: list[list[dict[str, Any]]]  # [annotated frame][masklet]
    ids: list[int] = field(default_factory=list)

    def object_id(self, index: int) -> str:
        number = f"{self.ids[index]:03d}"
        return number if self.kind == "manual" else f"{self.kind}_{number}"


def convert_video(root: Path, video_id: str, cache: Path, masklets: str, say: Callable[[str], None]) -> tuple[str, list[str]]:
    """Make (or reuse) the video's frames and masks in the cache. Returns the problem ('' if none)
    and the object ids the json names (empty if it cannot be read)."""
    try:
        annotations = _load_annotations(root, video_id, masklets)
    except VideoProblem as exc:
        _forget(cache, video_id)
        return f"{exc}", []
    object_ids = [a.object_id(j) for a in annotations for j in range(len(a.ids))]
    if not object_ids:
        _forget(cache, video_id)
        return f"{', '.join(str(a.path) for a in annotations)} names no masklet: the video has no object to run", []
    try:
        stamp = _read_stamp(cache, video_id)
        frames = _cached_frames(root / f"{video_id}.mp4", cache, video_id, stamp, say)
        for a in annotations:
            _check_agreement(a, frames)
        _cached_masks(annotations, cache, video_id, stamp)
    except VideoProblem as exc:
        _forget(cache, video_id)
        return f"{exc}", object_ids
    except OSError as exc:
        raise UsageError(
            f"--cache_dir {cache}: cannot write the frames of {video_id} ({os_reason(exc)}); make room or choose another folder"
        ) from None
    return "", object_ids


def _load_annotations(root: Path, video_id: str, masklets: str) -> list[Masklets]:
    found = []
    for kind in MASKLET_KINDS[masklets]:
        path = root / f"{video_id}_{kind}.json"
        if not path.is_file() and kind in OPTIONAL_KINDS.get(masklets, ()):
            continue
        found.append(_load_masklets(path, kind))
    return found


def _load_masklets(path: Path, kind: str) -> Masklets:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise VideoProblem(f"{path} does not exist; SA-V training videos come with their _{kind}.json (or choose --masklets)") from None
    except (OSError, ValueError) as exc:
        raise VideoProblem(f"cannot read {path} as json ({exc}); fetch it again") from None
    try:
        rles = data["masklet"]
        ids = [int(i) for i in data.get("masklet_id", range(data["masklet_num"]))]
        masklets = Masklets(kind, path, int(data["video_frame_count"]), int(data["video_height"]), int(data["video_width"]), rles, ids)
    except (KeyError, TypeError, ValueError) as exc:
        raise VideoProblem(f"{path} is not an SA-V masklet file ({type(exc).__name__}: {exc}); fetch it again") from None
    if not isinstance(rles, list) or not all(isinstance(frame, list) and len(frame) == len(ids) for frame in rles):
        raise VideoProblem(f"{path}: 'masklet' must hold, for every annotated frame, one RLE per masklet ({len(ids)}); fetch it again")
    if ids and not rles:
        raise VideoProblem(f"{path} has masklets but no annotated frame; fetch it again")
    if len(set(ids)) != len(ids) or any(i < 0 for i in ids):
        raise VideoProblem(f"{path}: masklet_id must be distinct numbers from 0, not {ids}; fetch it again")
    return masklets


@dataclass
class Frames:
    count: int
    height: int
    width: int


def _cached_frames(mp4: Path, cache: Path, video_id: str, stamp: dict[str, Any], say: Callable[[str], None]) -> Frames:
    source = _fingerprint(mp4)
    folder = cache / FRAMES_DIR / video_id
    earlier = stamp.get("frames") or {}
    if earlier.get("source") == source and folder.is_dir() and len(list(folder.glob("*.jpg"))) == earlier.get("count"):
        return Frames(earlier["count"], earlier["height"], earlier["width"])
    stamp.clear()  # new frames: the masks are checked against them again
    _remove(folder)
    say(f"prepare: decoding {mp4} into {folder}")
    partial = folder.with_name(f".{video_id}.partial")
    _remove(partial)
    partial.mkdir(parents=True)
    try:
        frames = _decode(mp4, partial)
    except BaseException:
        _remove(partial)
        raise
    partial.rename(folder)
    stamp["frames"] = {"source": source, "count": frames.count, "height": frames.height, "width": frames.width}
    _write_stamp(cache, video_id, stamp)
    return frames


def _decode(mp4: Path, out: Path) -> Frames:
    """Every frame of the mp4 as a JPEG numbered from 0, one frame in memory at a time."""
    if not mp4.is_file():
        raise VideoProblem(f"{mp4} does not exist")
    capture = cv2.VideoCapture(str(mp4))
    try:
        if not capture.isOpened():
            raise VideoProblem(f"cannot open {mp4} as a video (truncated or not an mp4?); fetch it again")
        count, size = 0, (0, 0)
        while True:
            ok, image = capture.read()
            if not ok:
                break
            if count == 0:
                size = image.shape[:2]
            if not cv2.imwrite(str(out / f"{count:05d}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]):
                raise OSError(f"cannot write {out / f'{count:05d}.jpg'}")
            count += 1
    finally:
        capture.release()
    if count == 0:
        raise VideoProblem(f"{mp4} has no frame that can be decoded (truncated?); fetch it again")
    return Frames(count, *size)


def _check_agreement(masklets: Masklets, frames: Frames) -> None:
    """The json must describe the decoded video: frame count, size, and every RLE's size."""
    where = masklets.path
    if masklets.frame_count != frames.count:
        raise VideoProblem(
            f"{where} says the video has {masklets.frame_count} frames, but its mp4 decodes to {frames.count} "
            "(a truncated download?); fetch both files again"
        )
    if (masklets.height, masklets.width) != (frames.height, frames.width):
        raise VideoProblem(
            f"{where} says the video is {masklets.width}x{masklets.height}, but its frames are {frames.width}x{frames.height}"
        )
    last = (len(masklets.rles) - 1) * ANNOTATION_STEP
    if last >= frames.count:
        raise VideoProblem(
            f"{where} has {len(masklets.rles)} annotated frames, up to video frame {last}, but the video has {frames.count} frames"
        )
    for i, frame in enumerate(masklets.rles):
        for j, rle in enumerate(frame):
            at = f"{where}, annotated frame {i} (video frame {i * ANNOTATION_STEP}), masklet {masklets.ids[j]}"
            size = rle.get("size") if isinstance(rle, dict) else None
            if size != [frames.height, frames.width]:
                raise VideoProblem(f"{at}: its RLE has size {size}, but the video is [{frames.height}, {frames.width}] (height, width)")
            # pycocotools decodes runs that fall short of the mask without a word, leaving the rest
            # of it uninitialised: so the runs are added up first.
            if run_length_total(rle.get("counts")) != frames.height * frames.width:
                raise VideoProblem(f"{at}: its RLE does not cover the {frames.height}x{frames.width} mask exactly; fetch the file again")


def run_length_total(counts: Any) -> int | None:
    """The sum of an RLE's runs, None if it is malformed. COCO's compressed string stores each run
    in 5-bit groups, 6 bits to a character from '0' (48), the 0x20 bit meaning that more groups
    follow and the 0x10 bit of the last group the sign; from the third run on, each is stored as
    its difference from the run two before."""
    if isinstance(counts, list):
        return sum(counts) if all(isinstance(c, int) and c >= 0 for c in counts) else None
    if not isinstance(counts, str):
        return None
    runs: list[int] = []
    data, position = counts.encode(), 0
    while position < len(data):
        value, groups, more = 0, 0, True
        while more:
            if position == len(data):
                return None
            code = data[position] - 48
            value |= (code & 0x1F) << (5 * groups)
            more = bool(code & 0x20)
            position, groups = position + 1, groups + 1
            if not more and code & 0x10:
                value |= -1 << (5 * groups)
        if len(runs) > 2:
            value += runs[-2]
        if value < 0:
            return None
        runs.append(value)
    return sum(runs)


def _cached_masks(annotations: list[Masklets], cache: Path, video_id: str, stamp: dict[str, Any]) -> None:
    sources = [_fingerprint(a.path) for a in annotations]
    folder = cache / ANNOTATIONS_DIR / video_id
    if (stamp.get("masks") or {}).get("sources") == sources and folder.is_dir():
        return
    _remove(folder)
    partial = folder.with_name(f".{video_id}.partial")
    _remove(partial)
    partial.mkdir(parents=True)
    try:
        for a in annotations:
            _write_masklets(a, partial)
    except BaseException:
        _remove(partial)
        raise
    partial.rename(folder)
    stamp["masks"] = {"sources": sources}
    _write_stamp(cache, video_id, stamp)


def _write_masklets(masklets: Masklets, out: Path) -> None:
    for j in range(len(masklets.ids)):
        (out / masklets.object_id(j)).mkdir(parents=True)
    for i, frame in enumerate(masklets.rles):
        for j, rle in enumerate(frame):
            try:
                mask = rle_codec.decode(rle)
            except (ValueError, TypeError) as exc:
                raise VideoProblem(
                    f"{masklets.path}, annotated frame {i} (video frame {i * ANNOTATION_STEP}), masklet {masklets.ids[j]}: "
                    f"not a valid RLE ({exc}); fetch the file again"
                ) from None
            write_mask(out / masklets.object_id(j) / f"{i * ANNOTATION_STEP:05d}.png", mask.astype(bool))


def _fingerprint(path: Path) -> dict[str, Any]:
    try:
        info = path.stat()
    except OSError:
        return {"path": str(path.resolve()), "missing": True}
    return {
        "path": str(path.resolve()),
        "size": info.st_size,
        "mtime_ns": info.st_mtime_ns,
        "version": CACHE_VERSION,
        "jpeg_quality": JPEG_QUALITY,
    }


def _stamp_path(cache: Path, video_id: str) -> Path:
    return cache / STAMPS_DIR / f"{video_id}.json"


def _read_stamp(cache: Path, video_id: str) -> dict[str, Any]:
    try:
        stamp = json.loads(_stamp_path(cache, video_id).read_text())
    except (OSError, ValueError):
        return {}
    return stamp if isinstance(stamp, dict) else {}


def _write_stamp(cache: Path, video_id: str, stamp: dict[str, Any]) -> None:
    _stamp_path(cache, video_id).parent.mkdir(parents=True, exist_ok=True)
    write_atomically(_stamp_path(cache, video_id), json.dumps(stamp, indent=1))


def _forget(cache: Path, video_id: str) -> None:
    """Nothing of a video that cannot be converted stays in the cache to be mistaken for it."""
    _stamp_path(cache, video_id).unlink(missing_ok=True)
    _remove(cache / FRAMES_DIR / video_id)
    _remove(cache / ANNOTATIONS_DIR / video_id)


def _remove(folder: Path) -> None:
    if folder.exists():
        shutil.rmtree(folder)
