"""A small synthetic split, for the demo and the tests.

    python -m sav_benchmark.synthetic --out demo_split [--videos 2] [--frames 25] [--width 320] [--height 240]
                                      [--layout sav|sav-train|davis]

Each video has coloured shapes moving over a textured background. The SA-V val layout (default):
JPEGImages_24fps/<video>/<frame>.jpg for every frame, Annotations_6fps/<video>/<object>/<frame>.png
(0/255) on every 4th frame, and sav_val.txt. sav-train: <video>.mp4 with <video>_manual.json (COCO
RLE masklets on every 4th frame). davis: JPEGImages/480p/<video>/<frame>.jpg, Annotations/480p/
<video>/<frame>.png (palette ids 1, 2, ...; a later object covers an earlier one) on every frame,
and ImageSets/2017/val.txt. lvos: LVOS v2's valid layout (JPEGImages/, Annotations/ on frames
00000001, 00000006, ..., valid_meta.json with each object's frame range); mose: MOSE's train layout
(JPEGImages/, Annotations/ on every frame); mosev2: the same with meta_train.json; mose-val: only
frame 00000 annotated. The last object of the first video enters only after frame 0 (its earlier
masks are empty), as SA-V objects often do, and its first object leaves the view for three frames a
third of the way in (in the longer videos).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np

from ..masks import write_ids, write_mask
from .model import (
    ANNOTATIONS_DIR,
    DAVIS_ANNOTATIONS_DIR,
    DAVIS_FRAMES_DIR,
    FRAMES_DIR,
    LAYOUT_DAVIS,
    LAYOUT_LVOS,
    LAYOUT_MOSE,
    LAYOUT_SAV,
    LAYOUT_SAV_TRAIN,
    PLAIN_ANNOTATIONS_DIR,
    PLAIN_FRAMES_DIR,
)

ANNOTATION_STEP = 4
LVOS_STEP = 5  # LVOS keeps every 5th frame of its 30 fps sources, named by their number
COLOURS = [(40, 40, 220), (40, 200, 60), (220, 120, 30), (200, 40, 200)]


@dataclass
class Shape:
    kind: str  # "ellipse" or "rectangle"
    start: tuple[float, float]  # centre (x, y) at frame 0, as fractions of the frame
    velocity: tuple[float, float]  # fraction of the frame per frame
    radius: tuple[float, float]  # half-axes, as fractions of the frame
    first_frame: int = 0
    away: tuple[int, int] = (0, 0)  # frames [a, b) where it has left the view (and comes back after)

    def mask(self, frame: int, height: int, width: int) -> np.ndarray:
        mask = np.zeros((height, width), np.uint8)
        if frame < self.first_frame or self.away[0] <= frame < self.away[1]:
            return mask.astype(bool)
        cx = (self.start[0] + self.velocity[0] * frame) * width
        cy = (self.start[1] + self.velocity[1] * frame) * height
        rx, ry = self.radius[0] * width, self.radius[1] * height
        if self.kind == "ellipse":
            cv2.ellipse(mask, (round(cx), round(cy)), (round(rx), round(ry)), 0, 0, 360, 1, -1)
        else:
            cv2.rectangle(mask, (round(cx - rx), round(cy - ry)), (round(cx + rx), round(cy + ry)), 1, -1)
        return mask.astype(bool)


def _shapes(video_index: int, n_objects: int, n_frames: int, rng: np.random.Generator) -> list[Shape]:
    shapes = []
    for k in range(n_objects):
        shapes.append(
            Shape(
                "ellipse" if k % 2 == 0 else "rectangle",
                (float(rng.uniform(0.2, 0.5)), float(rng.uniform(0.25, 0.75))),
                (float(rng.uniform(0.002, 0.01)), float(rng.uniform(-0.005, 0.005))),
                (float(rng.uniform(0.06, 0.12)), float(rng.uniform(0.08, 0.15))),
            )
        )
    if video_index == 0 and n_frames > 3 * ANNOTATION_STEP:
        # enters between two annotated frames, so its prompt frame is the next annotated one
        shapes[-1].first_frame = 2 * ANNOTATION_STEP + 2
    if video_index == 0 and n_frames > 12:
        shapes[0].away = (n_frames // 3, n_frames // 3 + 3)  # leaves and comes back
    return shapes


def _background(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    noise = rng.uniform(0, 255, size=(height // 8 + 1, width // 8 + 1, 3)).astype(np.float32)
    texture = cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC)
    ramp = np.linspace(60, 160, width, dtype=np.float32)[None, :, None]
    return np.clip(0.5 * texture + 0.5 * ramp, 0, 255)


def _frames(
    shapes: list[Shape], n_frames: int, height: int, width: int, rng: np.random.Generator
) -> Iterator[tuple[int, np.ndarray, list[np.ndarray]]]:
    """(frame, image, one mask per shape) for every frame."""
    background = _background(height, width, rng)
    for frame in range(n_frames):
        image = background.copy()
        masks = [shape.mask(frame, height, width) for shape in shapes]
        for mask, colour in zip(masks, COLOURS * 4):
            image[mask] = colour
        yield frame, image.astype(np.uint8), masks


def write_video(root: Path, video_id: str, shapes: list[Shape], n_frames: int, height: int, width: int, rng: np.random.Generator) -> None:
    frames_dir = root / FRAMES_DIR / video_id
    frames_dir.mkdir(parents=True, exist_ok=True)
    for frame, image, masks in _frames(shapes, n_frames, height, width, rng):
        cv2.imwrite(str(frames_dir / f"{frame:05d}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 95])
        if frame % ANNOTATION_STEP == 0:
            for obj_index, mask in enumerate(masks):
                write_mask(root / ANNOTATIONS_DIR / video_id / f"{obj_index:03d}" / f"{frame:05d}.png", mask)


def write_training_video(
    root: Path, video_id: str, shapes: list[Shape], n_frames: int, height: int, width: int, rng: np.random.Generator
) -> None:
    """<video>.mp4 and <video>_manual.json, as SA-V ships its training videos."""
    root.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(root / f"{video_id}.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 24, (width, height))
    masklets, first = [], [None] * len(shapes)  # first: the annotated frame each masklet appears on
    for frame, image, masks in _frames(shapes, n_frames, height, width, rng):
        writer.write(image)
        if frame % ANNOTATION_STEP == 0:
            masklets.append([_rle(mask) for mask in masks])
            first = [f if f is not None or not mask.any() else len(masklets) - 1 for f, mask in zip(first, masks)]
    writer.release()
    annotation = {
        "video_id": video_id,
        "video_frame_count": float(n_frames),
        "video_height": float(height),
        "video_width": float(width),
        "masklet": masklets,
        "masklet_id": list(range(len(shapes))),
        "masklet_first_appeared_frame": [float(f or 0) for f in first],
        "masklet_type": ["manual"] * len(shapes),
        "masklet_num": len(shapes),
    }
    (root / f"{video_id}_manual.json").write_text(json.dumps(annotation))


def _rle(mask: np.ndarray) -> dict[str, object]:
    from pycocotools import mask as rle_codec

    encoded = rle_codec.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": encoded["size"], "counts": encoded["counts"].decode()}


def write_davis_video(
    root: Path, video_id: str, shapes: list[Shape], n_frames: int, height: int, width: int, rng: np.random.Generator
) -> None:
    """Frames and one palette PNG of object ids (1, 2, ...) per frame, as DAVIS 2017 stores them."""
    frames_dir = root / DAVIS_FRAMES_DIR / video_id
    frames_dir.mkdir(parents=True, exist_ok=True)
    for frame, image, masks in _frames(shapes, n_frames, height, width, rng):
        cv2.imwrite(str(frames_dir / f"{frame:05d}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 95])
        ids = np.zeros((height, width), np.uint8)
        for object_id, mask in enumerate(masks, start=1):
            ids[mask] = object_id
        write_ids(root / DAVIS_ANNOTATIONS_DIR / video_id / f"{frame:05d}.png", ids)


def _write_label_maps(
    root: Path,
    video_id: str,
    shapes: list[Shape],
    names: list[str],
    annotated: Callable[[int, list[np.ndarray]], bool],
    rng: np.random.Generator,
    size: tuple[int, int],
) -> list[list[int]]:
    """JPEGImages/<video>/<name>.jpg for every frame, Annotations/<video>/<name>.png (ids 1, 2, ...;
    a later object covers an earlier one) where `annotated` says; returns the frames (positions)
    where each object shows."""
    height, width = size
    shown: list[list[int]] = [[] for _ in shapes]
    for frame, image, masks in _frames(shapes, len(names), height, width, rng):
        path = root / PLAIN_FRAMES_DIR / video_id / f"{names[frame]}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 95])
        ids = np.zeros((height, width), np.uint8)
        for object_id, mask in enumerate(masks, start=1):
            ids[mask] = object_id
        for object_id in np.unique(ids)[1:]:
            shown[object_id - 1].append(frame)
        if annotated(frame, masks):
            write_ids(root / PLAIN_ANNOTATIONS_DIR / video_id / f"{names[frame]}.png", ids)
    return shown


def write_lvos_video(
    root: Path, video_id: str, shapes: list[Shape], n_frames: int, height: int, width: int, rng: np.random.Generator
) -> dict:
    """LVOS v2's valid layout: frames 00000001, 00000006, ... (every 5th of a 30 fps source),
    annotated from the first object's appearance on; returns the video's meta entry."""
    names = [f"{1 + LVOS_STEP * i:08d}" for i in range(n_frames)]
    first = min(shape.first_frame for shape in shapes)
    shown = _write_label_maps(root, video_id, shapes, names, lambda frame, masks: frame >= first, rng, (height, width))
    objects = {}
    for object_id, frames in enumerate(shown, start=1):
        if frames:
            start, last = 1 + LVOS_STEP * frames[0], 1 + LVOS_STEP * frames[-1]
            objects[str(object_id)] = {"frame_range": {"start": start, "end": last, "frame_nums": frames[-1] - frames[0] + 1}}
    return {"objects": objects}


def write_mose_video(
    root: Path, video_id: str, shapes: list[Shape], n_frames: int, height: int, width: int, rng: np.random.Generator
) -> dict:
    """MOSE's train layout (every frame annotated); returns the video's MOSEv2 meta entry."""
    names = [f"{i:05d}" for i in range(n_frames)]
    shown = _write_label_maps(root, video_id, shapes, names, lambda frame, masks: True, rng, (height, width))
    objects = {str(object_id): {} for object_id, frames in enumerate(shown, start=1) if frames}
    return {"length": n_frames, "height": height, "width": width, "objects": objects}


def write_mose_val_video(
    root: Path, video_id: str, shapes: list[Shape], n_frames: int, height: int, width: int, rng: np.random.Generator
) -> None:
    """MOSE's val layout: only the first frame annotated, with every target on it."""
    for shape in shapes:
        shape.first_frame, shape.away = 0, (0, 0)
    names = [f"{i:05d}" for i in range(n_frames)]
    _write_label_maps(root, video_id, shapes, names, lambda frame, masks: frame == 0, rng, (height, width))


LAYOUT_MOSEV2, LAYOUT_MOSE_VAL = "mosev2", "mose-val"  # synthetic variants of the mose layout
WRITERS: dict[str, Callable] = {
    LAYOUT_SAV: write_video,
    LAYOUT_SAV_TRAIN: write_training_video,
    LAYOUT_DAVIS: write_davis_video,
    LAYOUT_LVOS: write_lvos_video,
    LAYOUT_MOSE: write_mose_video,
    LAYOUT_MOSEV2: write_mose_video,
    LAYOUT_MOSE_VAL: write_mose_val_video,
}
LIST_FILES = {LAYOUT_SAV: "sav_val.txt", LAYOUT_DAVIS: "ImageSets/2017/val.txt"}
META_FILES = {LAYOUT_LVOS: "valid_meta.json", LAYOUT_MOSEV2: "meta_train.json"}


def make_split(
    out: Path,
    videos: int = 2,
    frames: int = 25,
    width: int = 320,
    height: int = 240,
    objects: int = 2,
    seed: int = 0,
    layout: str = LAYOUT_SAV,
) -> list[str]:
    """Write the split under `out`; returns the video ids."""
    rng = np.random.default_rng(seed)
    prefix = "sav_" if layout == LAYOUT_SAV_TRAIN else "synth_"
    video_ids = [f"{prefix}{i:06d}" if layout == LAYOUT_SAV_TRAIN else f"{prefix}{i:03d}" for i in range(videos)]
    meta = {}
    for index, video_id in enumerate(video_ids):
        n_objects = objects + 1 if index == 0 else objects
        meta[video_id] = WRITERS[layout](out, video_id, _shapes(index, n_objects, frames, rng), frames, height, width, rng)
    if layout in META_FILES:
        (out / META_FILES[layout]).write_text(json.dumps({"videos": meta}, indent=1))
    if layout == LAYOUT_LVOS and videos > 1:  # LVOS reports seen and unseen videos apart: the last is "unseen"
        (out / "unseen_videos.txt").write_text(f"{video_ids[-1]}\n")
    if layout in LIST_FILES:
        (out / LIST_FILES[layout]).parent.mkdir(parents=True, exist_ok=True)
        (out / LIST_FILES[layout]).write_text("".join(f"{v}\n" for v in video_ids))
    return video_ids


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sav_benchmark.synthetic", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="folder to create the split in")
    parser.add_argument("--videos", type=int, default=2)
    parser.add_argument("--frames", type=int, default=25, help="frames per video at 24 fps (annotated every 4th)")
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--objects", type=int, default=2, help="objects per video (the first video gets one more, entering late)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--layout",
        choices=tuple(WRITERS),
        default=LAYOUT_SAV,
        help="sav (val/test, default), sav-train (mp4 + RLE json), davis, lvos (valid), mose (train), mosev2 (train + meta) or mose-val",
    )
    args = parser.parse_args(argv)
    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        print(f"{parser.prog}: error: --out {out} exists and is not empty; choose a new folder", file=sys.stderr)
        return 2
    ids = make_split(out, args.videos, args.frames, args.width, args.height, args.objects, args.seed, args.layout)
    print(f"wrote {len(ids)} videos to {out}: {', '.join(ids)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
