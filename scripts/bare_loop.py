"""The benchmark's job against a bare loop over the sam2 package's own propagation: what the
harness costs the FPS it reports.

One synthetic SA-V video, one object prompted with its mask on frame 0, SAM 2.1 tiny with random
weights (seed 0). In one process, alternated --repeats times: the benchmark's job (the real
`measure.execute_job`, with `--stream` and with `--no-stream`, telemetry as `--telemetry auto`
picks it) and a bare loop: `build_sam2_video_predictor` as the benchmark builds it, `init_state`,
`add_new_mask`, then `propagate_in_video`, each frame's mask read back to the host and the device
synchronised, as the benchmark's loop does. Both FPS figures are frames over the loop's time
(build and init excluded); one run of each comes first, discarded (the process's first use of the
model pays its lazy initialisation). Prints each run, then per mode the median FPS of ours over the median
of the bare loop's: `ratio` (goal: at least 0.98), and what decoding a frame with the package's own
decoder costs: the work that --stream moves from init_state into the loop.

    python scripts/bare_loop.py [--device cpu|cuda] [--imgsz 256] [--frames 40] [--width 854] [--height 480]
        [--repeats 3] [--dtype float32|bfloat16]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from sav_benchmark.device import DTYPES, synchronize  # noqa: E402
from sav_benchmark.measure import execute_job  # noqa: E402
from sav_benchmark.progress import FrameCounter  # noqa: E402
from sav_benchmark.run import make_job  # noqa: E402
from sav_benchmark.runners import MODELS, load_runner_class  # noqa: E402
from sav_benchmark.runners.base import RANDOM_WEIGHTS_SEED, RunSettings  # noqa: E402
from sav_benchmark.runners.sizes import sam2_size_overrides  # noqa: E402
from sav_benchmark.split import prepare_split  # noqa: E402
from sav_benchmark.split.synthetic import make_split  # noqa: E402
from sav_benchmark.telemetry import choose_telemetry  # noqa: E402

MODEL = "sam2.1_tiny_mask"


def bare_fps(spec, settings: RunSettings, job) -> float:
    """The package's own loop, synchronised and read back per frame as the benchmark's is."""
    from sam2.build_sam import build_sam2_video_predictor

    torch.manual_seed(RANDOM_WEIGHTS_SEED)
    predictor = build_sam2_video_predictor(
        spec.config, None, device=settings.device, hydra_overrides_extra=sam2_size_overrides(settings.imgsz), apply_postprocessing=False
    )
    dtype = DTYPES[settings.dtype]
    autocast = torch.autocast(device_type=settings.device, dtype=dtype) if dtype is not None else contextlib.nullcontext()
    with torch.inference_mode(), autocast:
        state = predictor.init_state(str(job.frames_dir))
        prompt = job.prompts[0]
        predictor.add_new_mask(state, prompt.frame, 1, prompt.mask)
        frames = 0
        synchronize(settings.device)
        start = time.perf_counter()
        for _, _, logits in predictor.propagate_in_video(state, start_frame_idx=prompt.frame):
            (logits[:, 0] > 0).cpu().numpy()
            synchronize(settings.device)
            frames += 1
        elapsed = time.perf_counter() - start
    predictor.reset_state(state)
    return frames / elapsed


def decode_ms(frames_dir: Path, image_size: int) -> float:
    """The package's decoder (JPEG to a resized float tensor), per frame, on this thread."""
    from sam2.utils.misc import _load_img_as_tensor

    paths = sorted(frames_dir.glob("*.jpg"))
    start = time.perf_counter()
    for path in paths:
        _load_img_as_tensor(str(path), image_size)
    return 1000 * (time.perf_counter() - start) / len(paths)


def our_fps(spec, settings: RunSettings, job, keep: set[int]) -> float:
    outcome = execute_job(load_runner_class(spec), spec, settings, job, keep, FrameCounter())
    if outcome.status:
        sys.exit(f"the benchmark's job failed: {outcome.reason}\n{outcome.traceback}")
    return outcome.columns["fps"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--imgsz", type=int, default=256)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--width", type=int, default=854)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dtype", default=None, help="autocast dtype (default float32 on cpu, bfloat16 on cuda)")
    args = parser.parse_args()
    dtype = args.dtype or ("float32" if args.device == "cpu" else "bfloat16")
    spec = MODELS[MODEL]
    telemetry, _ = choose_telemetry("auto", 100, args.device, None, False)
    base = RunSettings(args.device, dtype, args.imgsz, "random", REPO / "checkpoints", telemetry)
    with tempfile.TemporaryDirectory() as folder:
        make_split(Path(folder), videos=2, frames=args.frames, width=args.width, height=args.height, objects=1)
        split = prepare_split(Path(folder), video_ids=["synth_001"])  # one object, from frame 0
        video, obj = split.videos[0], split.videos[0].objects[0]
        job = make_job(split, video, [obj])
        keep = set(obj.annotated_frames)
        fps: dict[str, list[float]] = {"stream": [], "no-stream": [], "bare": []}
        size = f"{args.width}x{args.height}"
        print(f"{MODEL}, random weights, {args.imgsz} px, {args.device}, {dtype}, one video of {args.frames} frames ({size})")
        our_fps(spec, base, job, keep), bare_fps(spec, base, job)  # warm-up, discarded: lazy initialisation, kernel selection
        for repeat in range(args.repeats):
            order = ["stream", "no-stream", "bare"]
            for mode in order[repeat % 3 :] + order[: repeat % 3]:  # rotated, so drift hits each
                if mode == "bare":
                    fps[mode].append(bare_fps(spec, base, job))
                else:
                    fps[mode].append(our_fps(spec, dataclasses.replace(base, stream=mode == "stream"), job, keep))
                print(f"  run {repeat + 1}: {mode:9s} {fps[mode][-1]:.3f} FPS", flush=True)
        bare = statistics.median(fps["bare"])
        for mode in ("stream", "no-stream"):
            ours = statistics.median(fps[mode])
            print(f"--{mode}: {ours:.3f} FPS, bare loop {bare:.3f} FPS: ratio {ours / bare:.3f}")
        decoding = decode_ms(job.frames_dir, args.imgsz)
        print(f"decoding a frame: {decoding:.1f} ms, {decoding * bare / 10:.1f}% of a bare-loop frame")
    return 0


if __name__ == "__main__":
    sys.exit(main())
