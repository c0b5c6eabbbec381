"""The benchmark's job against a bare loop over the sam2 package's own propagation: what the
harness costs the FPS it reports.

One synthetic SA-V video, one object prompted with its mask on frame 0, SAM 2.1 tiny with random
weights (seed 0). Two measurements, each printing a `ratio` per mode (ours over the bare loop;
goal: at least 0.98):

- whole jobs, alternated --repeats times in one process: the benchmark's job (the real
  `measure.execute_job`, with `--stream` and with `--no-stream`, telemetry as `--telemetry auto`
  picks it) and a bare loop: `build_sam2_video_predictor` as the benchmark builds it, `init_state`,
  `add_new_mask`, then `propagate_in_video`, each frame's mask read back to the host and the
  device synchronised, as the benchmark's loop does. FPS is frames over the loop's time (build and
  init excluded); one run of each comes first, discarded (lazy initialisation). The ratio is the
  median FPS of ours over the bare loop's.
- frame by frame (`--lockstep` rounds): the runner under `--stream`, under `--no-stream` and the
  bare loop, one frame of each in turn (rotated), each frame timed as the benchmark times it; the
  ratio is the median over frames of the bare loop's frame time over ours. A shared machine's
  load changes over seconds, so this cancels it where whole runs cannot. Under `--stream` the
  read-ahead a frame queued is waited for inside that frame's time, so that none of the decoding
  falls into another loop's frame.

Last, what the package's decoder costs per frame (the work that --stream moves from init_state into
the loop), step by step: Pillow's JPEG decode, its resize, the conversion to floats.

    python scripts/bare_loop.py [--device cpu|cuda] [--imgsz 256] [--frames 40] [--width 854] [--height 480]
        [--repeats 3] [--lockstep 2] [--dtype float32|bfloat16]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import itertools
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

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


def bare_predictor(spec, settings: RunSettings):
    from sam2.build_sam import build_sam2_video_predictor

    torch.manual_seed(RANDOM_WEIGHTS_SEED)
    return build_sam2_video_predictor(
        spec.config, None, device=settings.device, hydra_overrides_extra=sam2_size_overrides(settings.imgsz), apply_postprocessing=False
    )


def autocast_for(settings: RunSettings) -> contextlib.AbstractContextManager:
    dtype = DTYPES[settings.dtype]
    return torch.autocast(device_type=settings.device, dtype=dtype) if dtype is not None else contextlib.nullcontext()


def start_bare_loop(predictor, settings: RunSettings, job) -> Iterator[int]:
    """init_state and the prompt, then the package's own loop as a generator of frame indices, each
    frame's mask read back to the host and the device synchronised, as the benchmark's loop does."""
    state = predictor.init_state(str(job.frames_dir))
    prompt = job.prompts[0]
    predictor.add_new_mask(state, prompt.frame, 1, prompt.mask)

    def frames() -> Iterator[int]:
        for frame, _, logits in predictor.propagate_in_video(state, start_frame_idx=prompt.frame):
            (logits[:, 0] > 0).cpu().numpy()
            synchronize(settings.device)
            yield frame
        predictor.reset_state(state)

    return frames()


def bare_fps(spec, settings: RunSettings, job) -> float:
    predictor = bare_predictor(spec, settings)
    with torch.inference_mode(), autocast_for(settings):
        loop = start_bare_loop(predictor, settings, job)
        synchronize(settings.device)
        start = time.perf_counter()
        frames = sum(1 for _ in loop)
        elapsed = time.perf_counter() - start
    return frames / elapsed


def our_fps(spec, settings: RunSettings, job, keep: set[int]) -> float:
    outcome = execute_job(load_runner_class(spec), spec, settings, job, keep, FrameCounter())
    if outcome.status:
        sys.exit(f"the benchmark's job failed: {outcome.reason}\n{outcome.traceback}")
    return outcome.columns["fps"]


def start_our_loop(spec, settings: RunSettings, job, stack: contextlib.ExitStack) -> Iterator[int]:
    """The runner as the benchmark drives it (build, init, prompt), then its frames, each timed as
    the benchmark times one: the runner's frame and the device synchronised; under --stream, also
    the decoding of whatever that frame queued."""
    runner = load_runner_class(spec)(spec, settings)
    runner.build()
    stack.callback(runner.cleanup)
    stack.enter_context(runner.inference_context())
    runner.init_video(job)
    runner.add_prompt(job)

    def frames() -> Iterator[int]:
        for frame, *_ in runner.propagate(job):
            runner.synchronize()
            if runner.stream is not None:
                runner.stream.frames.wait_for_read_ahead()
            yield frame

    return frames()


def lockstep_ratios(spec, base: RunSettings, job, rounds: int, warm_frames: int = 3) -> tuple[dict[str, float], int]:
    """Per mode, the median over frames of the bare loop's frame time over ours, the three loops
    stepped one frame each in turn; and how many frames that is."""
    ratios: dict[str, list[float]] = {"stream": [], "no-stream": []}
    for _ in range(rounds):
        with contextlib.ExitStack() as stack, torch.inference_mode():
            loops: dict[str, Iterator[int]] = {
                mode: start_our_loop(spec, dataclasses.replace(base, stream=mode == "stream"), job, stack) for mode in ratios
            }
            stack.enter_context(autocast_for(base))
            loops["bare"] = start_bare_loop(bare_predictor(spec, base), base, job)
            for index, times in enumerate(_frames_in_turn(loops, base.device)):
                if index >= warm_frames:
                    for mode in ratios:
                        ratios[mode].append(times["bare"] / times[mode])
    return {mode: float(np.median(found)) for mode, found in ratios.items()}, len(ratios["stream"])


def _frames_in_turn(loops: dict[str, Iterator[int]], device: str) -> Iterator[dict[str, float]]:
    """One frame of each loop in turn, the order rotated each frame; each frame's time."""
    names = list(loops)
    for index in itertools.count():
        times = {}
        for name in names[index % len(names) :] + names[: index % len(names)]:
            synchronize(device)
            start = time.perf_counter()
            if next(loops[name], None) is None:
                return
            times[name] = time.perf_counter() - start
        yield times


def decode_steps_ms(frames_dir: Path, image_size: int) -> dict[str, float]:
    """The package's decoder (sam2.utils.misc._load_img_as_tensor), per frame, on this thread: in
    all, and its steps as it takes them."""
    from sam2.utils.misc import _load_img_as_tensor

    paths = [str(path) for path in sorted(frames_dir.glob("*.jpg"))]
    steps: dict[str, Callable[[str], object]] = {
        "in all": lambda path: _load_img_as_tensor(path, image_size),
        "JPEG decode": lambda path: Image.open(path).convert("RGB"),
        "JPEG decode and resize": lambda path: np.array(Image.open(path).convert("RGB").resize((image_size, image_size))),
    }
    found = {}
    for step, work in steps.items():
        start = time.perf_counter()
        for path in paths:
            work(path)
        found[step] = 1000 * (time.perf_counter() - start) / len(paths)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--imgsz", type=int, default=256)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--width", type=int, default=854)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--repeats", type=int, default=3, help="whole jobs of each, alternated")
    parser.add_argument("--lockstep", type=int, default=2, help="rounds of the frame-by-frame measurement (0: none)")
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
        if args.lockstep:
            ratios, frames = lockstep_ratios(spec, base, job, args.lockstep)
            for mode, ratio in ratios.items():
                print(f"frame by frame, --{mode}: {frames} frames, median of the bare loop's frame time over ours: ratio {ratio:.3f}")
        steps = decode_steps_ms(job.frames_dir, args.imgsz)
        resize = steps["JPEG decode and resize"] - steps["JPEG decode"]
        print(
            f"decoding a frame: {steps['in all']:.1f} ms, {steps['in all'] * bare / 10:.1f}% of a bare-loop frame "
            f"(JPEG decode {steps['JPEG decode']:.1f} ms, resize {resize:.1f} ms, "
            f"conversion to floats {steps['in all'] - steps['JPEG decode and resize']:.1f} ms)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
