#!/usr/bin/env python3
"""Check a run's saved masks against the model owners' own VOS inference, frame by frame.

Runs `tools/vos_inference.py` from a checkout of the public sam2 repository (or of EdgeTAM's,
which ships the same script) on an SA-V layout split with the same checkpoint file, then compares
its PNGs with the benchmark's --save_masks on every frame the benchmark saved. Nothing of the
reference is copied here: its own script runs, from the checkout, with the checkout's `sam2`
package first on the import path. Two things are added to its build call, and only to it: the
device (the script builds on CUDA), and, for an --imgsz other than the model's own, the same size
overrides the benchmark passes (sav_benchmark/runners/sizes.py); and EdgeTAM's backbone is built
without timm's ImageNet download, as the benchmark builds it (the checkpoint replaces those weights).

--reference_mode says how the run tracked its objects (its --objects). separate (default): each
object with a predictor of its own, from its first mask, as the script's separate mode
(--track_object_appearing_later_in_video). together: the objects of the first frame in one state,
as the script's default mode, and objects that start later each on their own, as its separate
mode: the script runs in both modes and each object is compared with the mode that tracked it.
The script's default mode prompts every object on frame 0 (an SA-V object absent there with an
empty mask; with DAVIS label maps it tracks only the first frame's objects): give it a split whose
videos have their first objects on frame 0, and with DAVIS no later ones. SA-V stores one PNG per object (the script runs with
--per_obj_png_file, and the masks are compared as booleans); DAVIS stores label maps (compared
id by id, overlaps resolved by score on both sides).

The script's autocast is CUDA-only: on a CPU it runs in float32, so run the benchmark with
--autocast_dtype float32 there; on CUDA both use bfloat16.

    python jetson_benchmark.py --split_dir SPLIT --models sam2.1_tiny_mask --checkpoint_dir CKPT \\
        --imgsz 256 --device cpu --autocast_dtype float32 --output run.csv --save_masks MASKS
    python scripts/check_against_reference.py --repo ~/sam2 --checkpoint CKPT/sam2.1_hiera_tiny.pt \\
        --config configs/sam2.1/sam2.1_hiera_t.yaml --split_dir SPLIT --masks MASKS/sam2.1_tiny_mask --imgsz 256

Prints frames compared, frames that differ, pixels that differ and how many compared frames have
foreground (a comparison of empty masks proves nothing); exits 1 if any frame differs or a frame
the benchmark saved has no reference mask.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sav_benchmark.masks import read_ids, read_mask  # noqa: E402
from sav_benchmark.runners.sizes import SIZE_OVERRIDES  # noqa: E402

# Run in a child process: the checkout's sam2 first on the path, its builder given the device and
# the size overrides, then the checkout's tools/vos_inference.py as its own __main__.
DRIVER = """
import json, runpy, sys
repo, device, overrides, argv = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4:]
sys.path.insert(0, repo)
import sam2.build_sam as build_sam
build = build_sam.build_sam2_video_predictor
def build_here(*args, hydra_overrides_extra=(), **kwargs):
    kwargs["device"] = device
    return build(*args, hydra_overrides_extra=[*hydra_overrides_extra, *overrides], **kwargs)
build_sam.build_sam2_video_predictor = build_here
try:  # EdgeTAM's backbone: timm would download ImageNet weights that the checkpoint replaces anyway
    import sam2.modeling.backbones.timm as backbone
    create = backbone.create_model
    backbone.create_model = lambda *args, **kwargs: create(*args, **{**kwargs, "pretrained": False})
except ImportError:
    pass
sys.argv = [repo + "/tools/vos_inference.py", *argv]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def refuse(message: str) -> None:
    """Bad input: one line, exit code 2, before any work."""
    print(f"{Path(__file__).name}: error: {message}", file=sys.stderr)
    sys.exit(2)


LAYOUTS = {  # frames, annotations, whether one PNG per object
    "sav": ("JPEGImages_24fps", "Annotations_6fps", True),
    "davis": ("JPEGImages/480p", "Annotations/480p", False),
}


def layout_of(split_dir: Path) -> str:
    for name, (frames, truth, _) in LAYOUTS.items():
        if (split_dir / frames).is_dir() and (split_dir / truth).is_dir():
            return name
    refuse(f"--split_dir {split_dir}: neither the SA-V layout (JPEGImages_24fps/, Annotations_6fps/) nor DAVIS (JPEGImages/480p/)")


def run_reference(args: argparse.Namespace, videos: list[str], out: Path, layout: str, separate: bool) -> Path:
    """The script's masks of the videos, in its separate mode or its default one: out/masks."""
    frames, truth, per_object = LAYOUTS[layout]
    out.mkdir()
    video_list = out / "videos.txt"
    video_list.write_text("".join(f"{v}\n" for v in videos))
    argv = [
        "--sam2_cfg", args.config,
        "--sam2_checkpoint", str(args.checkpoint.resolve()),
        "--base_video_dir", str((args.split_dir / frames).resolve()),
        "--input_mask_dir", str((args.split_dir / truth).resolve()),
        "--video_list_file", str(video_list),
        "--output_mask_dir", str(out / "masks"),
    ]  # fmt: skip
    if per_object:
        argv.append("--per_obj_png_file")
    if separate:
        argv.append("--track_object_appearing_later_in_video")
    if args.postprocessing:
        argv.append("--apply_postprocessing")
    overrides = SIZE_OVERRIDES[args.family](args.imgsz) if args.imgsz else []
    env = {**os.environ, "PYTHONPATH": str(args.repo.resolve())}
    command = [args.python, "-c", DRIVER, str(args.repo.resolve()), args.device, json.dumps(overrides), *argv]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=out)
    if done.returncode:
        sys.exit(f"tools/vos_inference.py failed (exit code {done.returncode}):\n{done.stderr[-4000:]}")
    return out / "masks"


def first_frame_objects(truth: Path) -> set[str]:
    """An SA-V video's objects whose first mask is on the video's first annotated frame with any
    (the benchmark's --objects together tracks them in one state)."""
    first = {}
    for folder in sorted(p for p in truth.iterdir() if p.is_dir()):
        first[folder.name] = next((i for i, png in enumerate(sorted(folder.glob("*.png"))) if read_mask(png).any()), None)
    start = min((index for index in first.values() if index is not None), default=None)
    return {name for name, index in first.items() if index == start}


def reference_masks(args: argparse.Namespace, videos: list[str], work: Path, layout: str) -> Path:
    """The folder of the reference's masks, as the run tracked its objects."""
    if args.reference_mode == "separate":
        return run_reference(args, videos, work / "separate", layout, separate=True)
    together = run_reference(args, videos, work / "together", layout, separate=False)
    if not LAYOUTS[layout][2]:
        return together
    separate = run_reference(args, videos, work / "separate", layout, separate=True)
    for video in videos:  # objects that start later: as the separate mode tracked them
        shared = first_frame_objects(args.split_dir / LAYOUTS[layout][1] / video)
        for folder in (separate / video).iterdir():
            if folder.name not in shared:
                shutil.rmtree(together / video / folder.name, ignore_errors=True)
                shutil.copytree(folder, together / video / folder.name)
    return together


def compare(ours: Path, reference: Path, read) -> dict[str, int]:
    counts = {"frames compared": 0, "frames that differ": 0, "pixels that differ": 0, "with foreground": 0, "missing": 0}
    for path in sorted(ours.rglob("*.png")):
        theirs = reference / path.relative_to(ours)
        if not theirs.exists():
            counts["missing"] += 1
            print(f"no reference mask for {path.relative_to(ours)}")
            continue
        mine, expected = read(path), read(theirs)
        counts["frames compared"] += 1
        counts["with foreground"] += bool(mine.any() or expected.any())
        differing = int(np.count_nonzero(mine != expected)) if mine.shape == expected.shape else mine.size
        if differing:
            counts["frames that differ"] += 1
            counts["pixels that differ"] += differing
            print(f"differs: {path.relative_to(ours)} ({differing} pixels)")
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", required=True, type=Path, help="a checkout of github.com/facebookresearch/sam2 (or EdgeTAM)")
    parser.add_argument("--checkpoint", required=True, type=Path, help="the checkpoint file the benchmark loaded")
    parser.add_argument("--config", required=True, help="the model's config, as the package names it (configs/sam2.1/sam2.1_hiera_t.yaml)")
    parser.add_argument("--split_dir", required=True, type=Path, help="the SA-V layout split the benchmark ran on")
    parser.add_argument("--masks", required=True, type=Path, help="the benchmark's --save_masks folder of this model (MASKS/<model>)")
    parser.add_argument("--imgsz", type=int, help="as given to the benchmark (default: the model's own)")
    parser.add_argument("--family", choices=sorted(SIZE_OVERRIDES), default="sam2.1", help="the size overrides' family (default sam2.1)")
    parser.add_argument("--device", default="cpu", help="cpu (compare with --autocast_dtype float32) or cuda (bfloat16); default cpu")
    parser.add_argument("--reference_mode", choices=("separate", "together"), default="separate",
                        help="as the run's --objects: separate (default), or together")  # fmt: skip
    parser.add_argument("--postprocessing", action="store_true", help="as given to the benchmark: the script's --apply_postprocessing")
    parser.add_argument("--python", default=sys.executable, help="the interpreter to run the script with")
    args = parser.parse_args()
    if not (args.repo / "tools" / "vos_inference.py").is_file():
        refuse(f"--repo {args.repo}: no tools/vos_inference.py there; give a checkout of the sam2 or EdgeTAM repository")
    if not args.checkpoint.is_file():
        refuse(f"--checkpoint {args.checkpoint}: no such file; give the checkpoint file the benchmark loaded")
    videos = sorted(p.name for p in args.masks.iterdir() if p.is_dir()) if args.masks.is_dir() else []
    if not videos:
        refuse(f"--masks {args.masks}: no video folders; give the run's --save_masks folder of one model (MASKS/<model>)")
    layout = layout_of(args.split_dir)
    with tempfile.TemporaryDirectory() as folder:
        reference = reference_masks(args, videos, Path(folder), layout)
        counts = compare(args.masks, reference, read_mask if LAYOUTS[layout][2] else read_ids)
    mode = (
        "separate (--track_object_appearing_later_in_video)"
        if args.reference_mode == "separate"
        else "together (its default mode; later objects: its separate mode)"
    )
    print(f"reference: {args.repo / 'tools' / 'vos_inference.py'}, {mode}, {layout} layout, {len(videos)} videos")
    print(", ".join(f"{name}: {count}" for name, count in counts.items()))
    return 1 if counts["frames that differ"] or counts["missing"] or not counts["frames compared"] else 0


if __name__ == "__main__":
    sys.exit(main())
