"""A small synthetic split in the SA-V val layout, for the demo and the tests.

    python -m sav_benchmark.synthetic --out demo_split [--videos 2] [--frames 25] [--width 320] [--height 240]

Each video has coloured shapes moving over a textured background: JPEGImages_24fps/<video>/<frame>.jpg
for every frame, Annotations_6fps/<video>/<object>/<frame>.png (0/255) on every 4th frame, and
sav_val.txt. The last object of the first video enters only after frame 0 (its earlier masks are
empty), as SA-V objects often do.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .masks import write_mask
from .prepare import ANNOTATIONS_DIR, FRAMES_DIR

ANNOTATION_STEP = 4
COLOURS = [(40, 40, 220), (40, 200, 60), (220, 120, 30), (200, 40, 200)]


@dataclass
class Shape:
    kind: str  # "ellipse" or "rectangle"
    start: tuple[float, float]  # centre (x, y) at frame 0, as fractions of the frame
    velocity: tuple[float, float]  # fraction of the frame per frame
    radius: tuple[float, float]  # half-axes, as fractions of the frame
    first_frame: int = 0

    def mask(self, frame: int, height: int, width: int) -> np.ndarray:
        mask = np.zeros((height, width), np.uint8)
        if frame < self.first_frame:
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
        shapes.append(Shape(
            "ellipse" if k % 2 == 0 else "rectangle",
            (float(rng.uniform(0.2, 0.5)), float(rng.uniform(0.25, 0.75))),
            (float(rng.uniform(0.002, 0.01)), float(rng.uniform(-0.005, 0.005))),
            (float(rng.uniform(0.06, 0.12)), float(rng.uniform(0.08, 0.15))),
        ))  # fmt: skip
    if video_index == 0 and n_frames > 3 * ANNOTATION_STEP:
        # enters between two annotated frames, so its prompt frame is the next annotated one
        shapes[-1].first_frame = 2 * ANNOTATION_STEP + 2
    return shapes


def _background(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    noise = rng.uniform(0, 255, size=(height // 8 + 1, width // 8 + 1, 3)).astype(np.float32)
    texture = cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC)
    ramp = np.linspace(60, 160, width, dtype=np.float32)[None, :, None]
    return np.clip(0.5 * texture + 0.5 * ramp, 0, 255)


def write_video(root: Path, video_id: str, shapes: list[Shape], n_frames: int, height: int, width: int, rng: np.random.Generator) -> None:
    background = _background(height, width, rng)
    frames_dir = root / FRAMES_DIR / video_id
    frames_dir.mkdir(parents=True, exist_ok=True)
    for frame in range(n_frames):
        image = background.copy()
        for shape, colour in zip(shapes, COLOURS * 4):
            image[shape.mask(frame, height, width)] = colour
        cv2.imwrite(str(frames_dir / f"{frame:05d}.jpg"), image.astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 95])
        if frame % ANNOTATION_STEP == 0:
            for obj_index, shape in enumerate(shapes):
                write_mask(root / ANNOTATIONS_DIR / video_id / f"{obj_index:03d}" / f"{frame:05d}.png", shape.mask(frame, height, width))


def make_split(out: Path, videos: int = 2, frames: int = 25, width: int = 320, height: int = 240, objects: int = 2, seed: int = 0) -> list[str]:
    """Write the split under `out`; returns the video ids."""
    rng = np.random.default_rng(seed)
    video_ids = [f"synth_{i:03d}" for i in range(videos)]
    for index, video_id in enumerate(video_ids):
        n_objects = objects + 1 if index == 0 else objects
        write_video(out, video_id, _shapes(index, n_objects, frames, rng), frames, height, width, rng)
    (out / "sav_val.txt").write_text("".join(f"{v}\n" for v in video_ids))
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
    args = parser.parse_args(argv)
    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        print(f"{parser.prog}: error: --out {out} exists and is not empty; choose a new folder", file=sys.stderr)
        return 2
    ids = make_split(out, args.videos, args.frames, args.width, args.height, args.objects, args.seed)
    print(f"wrote {len(ids)} videos to {out}: {', '.join(ids)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
