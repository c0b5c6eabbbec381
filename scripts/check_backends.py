"""The same weights through the model owners' package (Meta's sam2, or EdgeTAM's fork of it) and
through transformers: do the two implementations give the same masks, and what do they cost?

An official checkpoint (--checkpoint; by default a random-weight one made here, its object-score
head fixed at "present" so that masks are not all empty) is converted to a transformers model folder
(the `convert` command's code), and every object of the split is tracked by both backends' runners,
as the benchmark runs them, for each prompt kind; each backend tracks in a process of its own (EdgeTAM's
fork and Meta's sam2 share a module name). Per variant and prompt it prints: the frames compared, the
mean IoU of the two backends' masks, the frames whose masks differ in any pixel, and the largest
difference of their mask logits on the prompt frame (low resolution, as the models output them).

The variants: as the benchmark runs the two (each its own frames; the owners' package as their VOS
evaluation, without post-processing); with the same frames (transformers tracks the frames of the
owners' loader); and with the switches made equal too. transformers' models always do what the sam2
package does only with apply_postprocessing=True: masks from clicks binarised for the memory encoder,
and a single-mask output replaced by the most stable of the multimask outputs when it is unstable
(the package's hole filling needs its compiled extension, absent here).

Then each backend's FPS (median over its rows) and peak resident memory, from benchmark runs of the
same split, alternated --rounds times.

    python scripts/check_backends.py --split_dir demo_split --imgsz 256
    python scripts/check_backends.py --model edgetam --edgetam_repo ~/EdgeTAM --split_dir demo_split --imgsz 256
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

# model key -> (the owners' config, the official checkpoint's file name, the transformers folder's name)
MODELS = {
    "sam2.1_tiny": ("configs/sam2.1/sam2.1_hiera_t.yaml", "sam2.1_hiera_tiny.pt", "sam2.1-hiera-tiny"),
    "edgetam": ("configs/edgetam.yaml", "edgetam.pt", "EdgeTAM-hf"),
}
SCORE_HEAD = "sam_mask_decoder.pred_obj_score_head.layers.2"
# name -> (transformers tracks the owners' frames, the owners' package runs with apply_postprocessing)
VARIANTS = {"as-run": (False, False), "same-frames": (True, False), "same-switches": (True, True)}


def random_checkpoint(model: str, path: Path, imgsz: int) -> None:
    """A random-weight official checkpoint of the model, objects kept present (in the owners' process)."""
    import torch
    from sam2.build_sam import build_sam2_video_predictor

    from sav_benchmark.runners.base import RANDOM_WEIGHTS_SEED
    from sav_benchmark.runners.edgetam import _backbone_without_download
    from sav_benchmark.runners.sizes import SIZE_OVERRIDES

    if model == "edgetam":
        _backbone_without_download()
    torch.manual_seed(RANDOM_WEIGHTS_SEED)
    overrides = SIZE_OVERRIDES["edgetam" if model == "edgetam" else "sam2.1"](imgsz)
    state = build_sam2_video_predictor(MODELS[model][0], None, device="cpu", hydra_overrides_extra=overrides).state_dict()
    state[f"{SCORE_HEAD}.weight"].zero_()
    state[f"{SCORE_HEAD}.bias"].fill_(20.0)
    torch.save({"model": state}, path)


def prompt_logits(runner, frame: int) -> np.ndarray:
    """The first object's low-resolution mask logits on its prompt frame, as the model output them."""
    if hasattr(runner, "session"):
        outputs = runner.session.output_dict_per_obj[0]["cond_frame_outputs"]
    else:  # the sam2 package keeps it apart until propagation consolidates it
        outputs = runner.state["temp_output_dict_per_obj"][0]["cond_frame_outputs"]
    return outputs[frame]["pred_masks"].float().cpu().numpy().reshape(-1)


def owners_frame(image_size: int):
    """A frame as the owners' loader makes it (Pillow's bicubic resize of the uint8 frame, then
    ImageNet's normalisation), for the transformers runner to track instead of its processor's frames."""
    import torch
    from sam2.utils.misc import _load_img_as_tensor

    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)

    def frame(path: str) -> torch.Tensor:
        return (_load_img_as_tensor(path, image_size)[0].float() - mean) / std

    return frame


def track_all(args: argparse.Namespace) -> None:
    """The worker: every object of the split tracked by one backend; masks and prompt-frame logits to --out."""
    from dataclasses import replace

    from sav_benchmark.run import make_job
    from sav_benchmark.runners import MODELS as REGISTRY
    from sav_benchmark.runners import load_runner_class
    from sav_benchmark.runners.base import RunSettings
    from sav_benchmark.split import prepare_split

    settings = RunSettings(args.device, args.autocast_dtype, args.imgsz, "checkpoint", args.checkpoints, stages=False, traces=False)
    settings = replace(settings, postprocessing=args.postprocessing)
    spec = REGISTRY[args.worker]
    split = prepare_split(args.split_dir, limit_videos=args.limit_videos)
    found = {}
    for video in split.videos:
        for obj in video.objects:
            job = make_job(split, video, [obj])
            runner = load_runner_class(spec)(spec, settings)
            runner.build()
            if args.owners_frames:
                runner._process = owners_frame(args.imgsz)  # the transformers runner reads its frames through _process
            try:
                with runner.inference_context():
                    runner.init_video(job)
                    runner.add_prompt(job)
                    found[f"{video.video_id}/{obj.object_id}/logits"] = prompt_logits(runner, job.start_frame)
                    for frame, masks, *_ in runner.propagate(job):
                        found[f"{video.video_id}/{obj.object_id}/{frame}"] = masks[0]
            finally:
                runner.cleanup()
    np.savez_compressed(args.out, **found)


def in_worker(model_name: str, args: argparse.Namespace, checkpoints: Path, out: Path, owners_frames=False, postprocessing=False) -> dict:
    command = [sys.executable, __file__, "--worker", model_name, "--checkpoints", str(checkpoints), "--out", str(out)]
    command += ["--split_dir", str(args.split_dir), "--imgsz", str(args.imgsz), "--autocast_dtype", args.autocast_dtype]
    command += ["--device", args.device] + (["--limit_videos", str(args.limit_videos)] if args.limit_videos else [])
    command += ["--owners_frames"] * owners_frames + ["--postprocessing"] * postprocessing
    subprocess.run(command, check=True, env=environment(args))
    with np.load(out) as found:
        return dict(found)


def environment(args: argparse.Namespace) -> dict[str, str]:
    """EdgeTAM's checkout first on the import path, where its fork is the `sam2` to import."""
    if not args.edgetam_repo:
        return dict(os.environ)
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(args.edgetam_repo), str(REPO)]), "HF_HUB_OFFLINE": "1"}


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def compare(owners: dict, theirs: dict) -> dict[str, float]:
    assert owners.keys() == theirs.keys(), "the backends tracked other frames"
    frames = [key for key in owners if not key.endswith("/logits")]
    ious = [iou(owners[key], theirs[key]) for key in frames]
    logits = [float(np.abs(owners[key] - theirs[key]).max()) for key in owners if key.endswith("/logits")]
    differ = sum(not np.array_equal(owners[key], theirs[key]) for key in frames)
    return {"frames": len(frames), "mean_iou": statistics.fmean(ious), "differ": differ, "logit": max(logits)}


def benchmark(model: str, checkpoints: Path, args: argparse.Namespace, out: Path) -> list[dict[str, str]]:
    command = [sys.executable, str(REPO / "jetson_benchmark.py"), "--split_dir", str(args.split_dir), "--models", model]
    command += ["--checkpoint_dir", str(checkpoints), "--imgsz", str(args.imgsz), "--device", args.device, "--quiet"]
    command += ["--autocast_dtype", args.autocast_dtype, "--output", str(out)]
    command += ["--edgetam_repo", str(args.edgetam_repo)] if args.edgetam_repo and not model.startswith("hf_") else []
    subprocess.run(command, check=True, capture_output=True)
    with open(out, newline="") as f:
        return list(csv.DictReader(f))


STAGES = ("image_encoder", "memory_attention", "mask_decoder", "memory_encoder", "rest")


def speed(checkpoints: Path, args: argparse.Namespace, work: Path) -> dict[str, dict[str, float]]:
    """Per backend: the median FPS of its rows, its process's peak RSS, and each stage's median ms."""
    models = (f"{args.model}_points", f"hf_{args.model}_points")
    rows: dict[str, list[dict[str, str]]] = {m: [] for m in models}
    for round_ in range(args.rounds):
        for model in models if round_ % 2 == 0 else models[::-1]:  # alternated: the machine's load falls on both
            found = benchmark(model, checkpoints, args, work / f"{model}.{round_}.csv")
            rows[model] += [row for row in found if row["status"] == "ok"]
    figures = {}
    for model, done in rows.items():
        figures[model] = {
            "fps": statistics.median(float(row["fps"]) for row in done),
            "rss": max(float(row["peak_rss_mb"]) for row in done),
        }
        figures[model].update({stage: statistics.median(float(row[f"stage_{stage}_ms_p50"]) for row in done) for stage in STAGES})
    return figures


def prepare_weights(args: argparse.Namespace, checkpoints: Path) -> None:
    """The official checkpoint (given, or random made in the owners' process) and its conversion."""
    config, file_name, folder = MODELS[args.model]
    official = checkpoints / file_name
    if args.checkpoint:
        official.symlink_to(args.checkpoint.resolve())
    else:
        made = [sys.executable, __file__, "--random_checkpoint", str(official), "--model", args.model, "--imgsz", str(args.imgsz)]
        subprocess.run(made, check=True, env=environment(args))
    from sav_benchmark.runners.hf_convert import convert_checkpoint

    convert_checkpoint(args.model, official, checkpoints / folder, args.imgsz)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="sam2.1_tiny", choices=tuple(MODELS))
    parser.add_argument("--edgetam_repo", type=Path, help="a checkout of github.com/facebookresearch/EdgeTAM (for --model edgetam)")
    parser.add_argument("--split_dir", type=Path, default=REPO / "demo_split")
    parser.add_argument("--imgsz", type=int, default=256)
    parser.add_argument("--checkpoint", type=Path, help="the model's official checkpoint (default: random weights made here)")
    parser.add_argument("--autocast_dtype", default="float32", choices=("float32", "bfloat16"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--prompts", default="points,bbox,mask", help="the prompt kinds to compare ('': none, speed only)")
    parser.add_argument("--limit_videos", type=int)
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"which comparisons, of {', '.join(VARIANTS)}")
    parser.add_argument("--rounds", type=int, default=2, help="benchmark runs of each backend for FPS and memory (0: none)")
    parser.add_argument("--json", type=Path, help="also write the parity figures here")
    # The script's own processes:
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--random_checkpoint", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--checkpoints", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--owners_frames", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--postprocessing", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.model == "edgetam" and not args.worker and not args.random_checkpoint and not args.edgetam_repo:
        parser.error("--model edgetam needs --edgetam_repo, a checkout of github.com/facebookresearch/EdgeTAM")
    return args


def main() -> int:
    args = parse_args()
    if args.random_checkpoint:
        random_checkpoint(args.model, args.random_checkpoint, args.imgsz)
        return 0
    if args.worker:
        track_all(args)
        return 0
    owners = "EdgeTAM's sam2 fork" if args.model == "edgetam" else "the sam2 package"
    figures = []
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        checkpoints = work / "checkpoints"
        checkpoints.mkdir()
        prepare_weights(args, checkpoints)
        print(f"{owners} vs transformers, {args.model}, --imgsz {args.imgsz}, {args.autocast_dtype}, {args.device}, {args.split_dir}")
        print(f"{'variant':<55}  prompt  frames  mean IoU  frames that differ  max |logit diff| on the prompt frame")
        for owners_frames, postprocessing in (VARIANTS[name] for name in args.variants.split(",")):
            for prompt in filter(None, args.prompts.split(",")):
                theirs = in_worker(f"hf_{args.model}_{prompt}", args, checkpoints, work / "hf.npz", owners_frames)
                ours = in_worker(f"{args.model}_{prompt}", args, checkpoints, work / "owners.npz", postprocessing=postprocessing)
                found = compare(ours, theirs)
                frames = "the owners'" if owners_frames else "transformers'"
                variant = f"{frames} frames, owners' post-processing {'on' if postprocessing else 'off'}"
                figures.append({"variant": variant, "prompt": prompt, **found})
                line = f"{variant:<55}  {prompt:<6}  {found['frames']:>6}  {found['mean_iou']:.6f}"
                print(f"{line}  {found['differ']:>17}  {found['logit']:.3g}")
        if args.json:
            args.json.write_text(json.dumps(figures, indent=1))
        if args.rounds:
            print(f"\n({args.rounds} runs of each backend, alternated; stages: median ms of a frame, p50 of each row)")
            print(f"{'backend':<22}  {'FPS (median of rows)':>20}  {'peak RSS MB':>11}  " + "  ".join(f"{stage:>16}" for stage in STAGES))
            for model, measured in speed(checkpoints, args, work).items():
                stages = "  ".join(f"{measured[stage]:>16.1f}" for stage in STAGES)
                print(f"{model:<22}  {measured['fps']:>20.2f}  {measured['rss']:>11.0f}  {stages}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
