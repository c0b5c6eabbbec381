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
- frame by frame (`--lockstep` rounds): the runner under `--stream`, under `--no-stream` (each with
  the job's telemetry sampler running and its kept masks packed between frames, as the harness
  does) and the bare loop, one frame of each in turn (rotated), each frame timed as the benchmark
  times it (from asking for the frame to its masks on the host, the device synchronised). The
  ratio is the median over frames of the bare loop's frame time over ours. A shared machine's load
  changes over seconds, so this cancels it where whole runs cannot. Under `--stream` the decoding
  a frame queues is waited for inside that frame's time: none of it falls into another loop's
  frame (the benchmark lets it overlap the next frame: this charges it a frame early, not twice).
  Also printed: init_state and the prompt with the loop, in all, ours over the bare loop's: where
  decoding was moved, not added, that is near 1.

Last, what decoding a frame costs: --stream's own loader (StreamedFrames, one frame after the
other) and the package's decoder step by step (Pillow's JPEG decode, its resize, the floats).

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
from typing import Any, Callable, Iterator

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from sav_benchmark.device import DTYPES, synchronize  # noqa: E402
from sav_benchmark.masks import PackedMasks  # noqa: E402
from sav_benchmark.measure import execute_job, job_sampler  # noqa: E402
from sav_benchmark.progress import FrameCounter  # noqa: E402
from sav_benchmark.run import make_job  # noqa: E402
from sav_benchmark.runners import MODELS, load_runner_class  # noqa: E402
from sav_benchmark.runners.base import RANDOM_WEIGHTS_SEED, RunSettings  # noqa: E402
from sav_benchmark.runners.sizes import sam2_size_overrides  # noqa: E402
from sav_benchmark.runners.streaming import DECODER, StreamedFrames, frame_paths, normalisation  # noqa: E402
from sav_benchmark.split import prepare_split  # noqa: E402
from sav_benchmark.split.synthetic import make_split  # noqa: E402
from sav_benchmark.telemetry import choose_telemetry  # noqa: E402

MODEL = "sam2.1_tiny_mask"
MODES = ("stream", "no-stream")


def bare_predictor(spec, settings: RunSettings):
    from sam2.build_sam import build_sam2_video_predictor

    torch.manual_seed(RANDOM_WEIGHTS_SEED)
    return build_sam2_video_predictor(
        spec.config, None, device=settings.device, hydra_overrides_extra=sam2_size_overrides(settings.imgsz), apply_postprocessing=False
    )


def autocast_for(settings: RunSettings) -> contextlib.AbstractContextManager:
    dtype = DTYPES[settings.dtype]
    return torch.autocast(device_type=settings.device, dtype=dtype) if dtype is not None else contextlib.nullcontext()


@dataclasses.dataclass
class Loop:
    """A loop ready to step: what its init_state and prompt took, its frames, and what is done
    after each frame's time has stopped."""

    setup_s: float
    frames: Iterator[Any]
    after: Callable[[Any], None] = lambda item: None


def open_bare_loop(predictor, settings: RunSettings, job, stack: contextlib.ExitStack) -> Loop:
    """init_state and the prompt, then the package's own loop, each frame's mask read back to the
    host and the device synchronised, as the benchmark's loop does. The stack closes the loop and
    resets the state."""
    stack.enter_context(torch.inference_mode())
    stack.enter_context(autocast_for(settings))
    start = time.perf_counter()
    state = predictor.init_state(str(job.frames_dir))
    prompt = job.prompts[0]
    predictor.add_new_mask(state, prompt.frame, 1, prompt.mask)
    synchronize(settings.device)
    setup_s = time.perf_counter() - start
    stack.callback(predictor.reset_state, state)

    def frames() -> Iterator[int]:
        for frame, _, logits in predictor.propagate_in_video(state, start_frame_idx=prompt.frame):
            (logits[:, 0] > 0).cpu().numpy()
            synchronize(settings.device)
            yield frame

    loop = frames()
    stack.callback(loop.close)  # before the reset: the paused generator holds the state
    return Loop(setup_s, loop)


def bare_fps(spec, settings: RunSettings, job) -> float:
    predictor = bare_predictor(spec, settings)
    with contextlib.ExitStack() as stack:
        loop = open_bare_loop(predictor, settings, job, stack)
        start = time.perf_counter()
        frames = sum(1 for _ in loop.frames)
        elapsed = time.perf_counter() - start
    return frames / elapsed


def our_fps(spec, settings: RunSettings, job, keep: set[int]) -> float:
    outcome = execute_job(load_runner_class(spec), spec, settings, job, keep, FrameCounter())
    if outcome.status:
        sys.exit(f"the benchmark's job failed: {outcome.reason}\n{outcome.traceback}")
    return outcome.columns["fps"]


def built_runner(spec, settings: RunSettings, stack: contextlib.ExitStack):
    runner = load_runner_class(spec)(spec, settings)
    runner.build()
    stack.callback(runner.cleanup)
    return runner


def open_our_loop(runner, job, keep: set[int], stack: contextlib.ExitStack) -> Loop:
    """The runner as the harness drives it: its inference context, the job's telemetry sampler,
    init and prompt; then its frames, each ending with the device synchronised (and under --stream
    the read-ahead it queued decoded), and its kept masks packed after the frame's time."""
    stack.enter_context(runner.inference_context())
    stack.enter_context(job_sampler(runner.settings))
    start = time.perf_counter()
    runner.init_video(job)
    runner.add_prompt(job)
    runner.synchronize()
    setup_s = time.perf_counter() - start
    kept = PackedMasks()

    def frames() -> Iterator[tuple[int, list[np.ndarray]]]:
        for frame, masks, *_ in runner.propagate(job):
            runner.synchronize()
            if runner.stream is not None:
                runner.stream.frames.wait_for_read_ahead()
            yield frame, masks

    def pack(item: tuple[int, list[np.ndarray]]) -> None:
        frame, masks = item
        if frame in keep:
            kept.add(frame, masks[0])

    loop = frames()
    stack.callback(loop.close)  # before the runner's cleanup: the paused generator holds its state
    return Loop(setup_s, loop, pack)


@dataclasses.dataclass
class Lockstep:
    ratios: dict[str, float]  # per mode: the median over frames of the bare loop's frame time over ours
    in_all: dict[str, float]  # per mode: the bare loop's init, prompt and frames over ours
    frames: int
    bare_frame_s: float  # the bare loop's median frame time


def lockstep(spec, base: RunSettings, job, keep: set[int], rounds: int, warm_frames: int = 3) -> Lockstep:
    ratios: dict[str, list[float]] = {mode: [] for mode in MODES}
    totals = dict.fromkeys((*MODES, "bare"), 0.0)
    bare_times = []
    for _ in range(rounds):
        with contextlib.ExitStack() as stack:  # built first, outside inference mode, as the harness builds
            runners = {mode: built_runner(spec, dataclasses.replace(base, stream=mode == "stream"), stack) for mode in MODES}
            predictor = bare_predictor(spec, base)
            loops = {mode: open_our_loop(runner, job, keep, stack) for mode, runner in runners.items()}
            loops["bare"] = open_bare_loop(predictor, base, job, stack)
            for name, loop in loops.items():
                totals[name] += loop.setup_s
            for index, times in enumerate(frames_in_turn(loops, base.device)):
                for name, seconds in times.items():
                    totals[name] += seconds
                if index >= warm_frames:
                    bare_times.append(times["bare"])
                    for mode in MODES:
                        ratios[mode].append(times["bare"] / times[mode])
    return Lockstep(
        {mode: float(np.median(found)) for mode, found in ratios.items()},
        {mode: totals["bare"] / totals[mode] for mode in MODES},
        len(bare_times),
        float(np.median(bare_times)),
    )


def frames_in_turn(loops: dict[str, Loop], device: str) -> Iterator[dict[str, float]]:
    """One frame of each loop in turn, the order rotated each frame; each frame's time. Ends with
    the shortest loop (they are the same video)."""
    names = list(loops)
    for index in itertools.count():
        times = {}
        for name in names[index % len(names) :] + names[: index % len(names)]:
            synchronize(device)  # the previous loop's work is not this one's
            start = time.perf_counter()
            item = next(loops[name].frames, None)
            if item is None:
                return
            times[name] = time.perf_counter() - start
            loops[name].after(item)
        yield times


def streamed_decode_ms(frames_dir: Path, image_size: int) -> float:
    """--stream's own loader, per frame: StreamedFrames asked for each frame in turn (its read-ahead
    thread decoding, the frame normalised as the package's loader leaves it)."""
    from sam2.utils import misc

    mean, std = normalisation(misc.load_video_frames)
    frames = StreamedFrames(frame_paths(str(frames_dir)), image_size, getattr(misc, DECODER), mean, std)
    try:
        start = time.perf_counter()
        for index in range(len(frames)):
            frames[index]
        return 1000 * (time.perf_counter() - start) / len(frames)
    finally:
        frames.close()


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
        for mode in MODES:
            ours = statistics.median(fps[mode])
            print(f"--{mode}: {ours:.3f} FPS, bare loop {bare:.3f} FPS: ratio {ours / bare:.3f}")
        bare_frame_ms = 1000 / bare
        if args.lockstep:
            found = lockstep(spec, base, job, keep, args.lockstep)
            for mode in MODES:
                what = f"{found.frames} frames, median of the bare loop's frame time over ours"
                print(f"frame by frame, --{mode}: {what}: ratio {found.ratios[mode]:.3f}")
            for mode in MODES:
                print(f"init_state, prompt and frames in all, --{mode}: the bare loop's time over ours: ratio {found.in_all[mode]:.3f}")
            bare_frame_ms = 1000 * found.bare_frame_s
        streamed = streamed_decode_ms(job.frames_dir, args.imgsz)
        steps = decode_steps_ms(job.frames_dir, args.imgsz)
        print(
            f"decoding a frame: {streamed:.1f} ms by --stream's loader, {100 * streamed / bare_frame_ms:.1f}% of a bare-loop frame "
            f"({bare_frame_ms:.0f} ms); the package's decoder {steps['in all']:.1f} ms: JPEG decode {steps['JPEG decode']:.1f}, "
            f"resize {steps['JPEG decode and resize'] - steps['JPEG decode']:.1f}, "
            f"floats {steps['in all'] - steps['JPEG decode and resize']:.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
