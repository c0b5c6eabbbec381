"""The prepared split: what phase 1 hands to the run (videos, objects, prompts, problems), the
layouts it reads, and its file format (the prepared manifest, JSON).

Every layout (SA-V val/test, SA-V train through its cache, DAVIS 2017, LVOS v2, MOSE / MOSEv2) ends
up as a PreparedSplit. Frames are counted by position in the video (0, 1, 2, ...); LVOS names its
frames by their number in the 30 fps source (00000001, 00000006, ...), kept in `frame_names`.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np

from .. import PROG
from ..errors import UsageError
from ..files import write_atomically
from ..masks import read_ids, read_mask
from .shards import is_automatic, scheduler_shard

FRAMES_DIR = "JPEGImages_24fps"
ANNOTATIONS_DIR = "Annotations_6fps"
LIST_FILES = ("sav_val.txt", "sav_test.txt")
DAVIS_FRAMES_DIR = "JPEGImages/480p"
DAVIS_ANNOTATIONS_DIR = "Annotations/480p"
PLAIN_FRAMES_DIR, PLAIN_ANNOTATIONS_DIR = "JPEGImages", "Annotations"  # LVOS and MOSE
LAYOUT_SAV, LAYOUT_DAVIS, LAYOUT_SAV_TRAIN, LAYOUT_LVOS, LAYOUT_MOSE = "sav", "davis", "sav-train", "lvos", "mose"
FOLDERS = {
    LAYOUT_SAV: (FRAMES_DIR, ANNOTATIONS_DIR),
    LAYOUT_DAVIS: (DAVIS_FRAMES_DIR, DAVIS_ANNOTATIONS_DIR),
    LAYOUT_LVOS: (PLAIN_FRAMES_DIR, PLAIN_ANNOTATIONS_DIR),
    LAYOUT_MOSE: (PLAIN_FRAMES_DIR, PLAIN_ANNOTATIONS_DIR),
}
LAYOUT_NAMES = {
    LAYOUT_SAV: "an SA-V val/test split",
    LAYOUT_DAVIS: "a DAVIS 2017 split",
    LAYOUT_LVOS: "an LVOS v2 split",
    LAYOUT_MOSE: "a MOSE split",
}
LABEL_MAP_LAYOUTS = (LAYOUT_DAVIS, LAYOUT_LVOS, LAYOUT_MOSE)  # one PNG of object ids per frame
EVERY_FRAME_LAYOUTS = (LAYOUT_LVOS, LAYOUT_MOSE)  # their evaluators read a prediction of every frame
# Which rules score a row: the SA-V evaluator's (SA-V, DAVIS, MOSE v1), LVOS v2's toolkit, MOSEv2's
# scorer, or none here (val/test splits whose ground truth only the challenge server holds).
PROTOCOL_SAV, PROTOCOL_LVOS, PROTOCOL_MOSEV2, PROTOCOL_SERVER = "sav", "lvos", "mosev2", "server"
MASKLET_CHOICES = ("manual", "auto", "both")  # SA-V train: which json files name the objects
FORMAT = "sav-benchmark-prepared/1"
DEMO_HINT = "make a demo split with: python -m sav_benchmark.synthetic --out DIR"
# The files of a frame folder that the sam2 package's loader takes as frames, exactly (not ".Jpg").
FRAME_SUFFIXES = (".jpg", ".jpeg", ".JPG", ".JPEG")
LAYOUTS_HINT = (
    "a split is SA-V val/test (JPEGImages_24fps/, Annotations_6fps/), SA-V train (sav_*.mp4 with "
    "sav_*_manual.json), DAVIS 2017 (JPEGImages/480p/, Annotations/480p/), LVOS v2 (JPEGImages/, Annotations/ and "
    "valid_meta.json, train_meta.json or test_meta.json) or MOSE / MOSEv2 (JPEGImages/, Annotations/, for MOSEv2 also "
    "meta_train.json or meta_valid.json)"
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
    frame_range: list[int] = field(default_factory=list)  # LVOS: the meta's start, end and frame_nums
    problem: str = ""  # why its jobs cannot run (its own input, where the video's is fine): its rows fail with it

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
    frame_names: list[str] = field(default_factory=list)  # LVOS, MOSE: every frame's file name without suffix, in order


@dataclass
class PreparedSplit:
    split_dir: str  # what the run reads: for SA-V train, the cache that prepare filled
    num_points: int
    videos: list[PreparedVideo]
    layout: str = LAYOUT_SAV  # sav: one binary PNG per object and frame; davis: one index PNG per frame
    source_dir: str = ""  # SA-V train: the folder of mp4 and json files the cache was made from
    masklets: str = ""  # SA-V train: manual, auto or both
    shard: str = ""  # "K/N" when this is one of N parts of the selection
    protocol: str = PROTOCOL_SAV  # the rules that score its rows (see PROTOCOL_*)
    unseen_videos: list[str] = field(default_factory=list)  # LVOS: its videos of categories unseen in training

    @property
    def label_maps(self) -> bool:
        """Whether the ground truth, and the saved predictions, are one map of object ids per frame."""
        return self.layout in LABEL_MAP_LAYOUTS

    @property
    def every_frame(self) -> bool:
        """Whether the split's evaluator reads a prediction of every frame (not only the annotated ones)."""
        return self.layout in EVERY_FRAME_LAYOUTS

    def frames_dir(self, video: PreparedVideo) -> Path:
        return Path(self.split_dir) / FOLDERS[self.layout][0] / video.video_id

    def truth_path(self, video: PreparedVideo, obj: PreparedObject, frame: int) -> Path:
        folder = Path(self.split_dir) / FOLDERS[self.layout][1] / video.video_id
        if self.label_maps:
            return folder / obj.mask_file(frame)
        return folder / obj.object_id / obj.mask_file(frame)

    def read_truth(self, video: PreparedVideo, obj: PreparedObject, frame: int) -> np.ndarray:
        """The object's ground-truth mask on an annotated frame."""
        path = self.truth_path(video, obj, frame)
        if self.label_maps:
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
            raise UsageError(f"--prepared {path}: cannot read it ({exc}); make one with: {PROG} prepare") from None
        if not isinstance(data, dict) or data.pop("format", None) != FORMAT:
            raise UsageError(f"--prepared {path} is not a prepared manifest ({FORMAT}); make one with: {PROG} prepare")
        try:
            videos = [PreparedVideo(**{**v, "objects": [PreparedObject(**o) for o in v["objects"]]}) for v in data.pop("videos")]
            split = cls(videos=videos, **data)
        except (KeyError, TypeError, AttributeError) as exc:
            raise UsageError(f"--prepared {path} is damaged ({type(exc).__name__}: {exc}); make a new one with: {PROG} prepare") from None
        if split.layout not in FOLDERS:
            raise UsageError(f"--prepared {path} has an unknown layout {split.layout!r}; make a new one with: {PROG} prepare")
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


def parse_shard(text: str, environ: Mapping[str, str] | None = None) -> tuple[int, int]:
    """K/N with 1 <= K <= N, for --shard; `auto` and `auto/N` read K/N (a Shard, with its source)
    from the array job this runs in, in environ (default: this process's; see shards)."""
    if is_automatic(text):
        return scheduler_shard(text, os.environ if environ is None else environ)
    k, _, n = text.partition("/")
    if not (k.isdigit() and n.isdigit() and 1 <= int(k) <= int(n)):
        raise ValueError(f"--shard must be K/N with 1 <= K <= N (1/2 and 2/2 split a run in two), not {text}")
    return int(k), int(n)


def shard_text(shard: tuple[int, int] | None) -> str:
    return f"{shard[0]}/{shard[1]}" if shard else ""


def require_folder(root: Path) -> None:
    if root.exists() and not root.is_dir():
        raise UsageError(f"--split_dir {root} is a file, not a folder; give the folder of an SA-V split ({DEMO_HINT})")
    if not root.is_dir():
        raise UsageError(f"--split_dir {root} does not exist; give the folder of an SA-V split ({DEMO_HINT})")


def check_layout(root: Path, layout: str) -> None:
    require_folder(root)
    for sub in FOLDERS[layout]:
        if not (root / sub).is_dir():
            frames, annotations = FOLDERS[layout]
            raise UsageError(
                f"--split_dir {root} has no {sub}/ folder; {LAYOUT_NAMES[layout]} holds {frames}/ and {annotations}/ ({DEMO_HINT})"
            )
