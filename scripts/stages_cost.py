"""What timing the model's stages (--stages on, the default) costs the FPS: the runner with the
stage clock and without it, stepped one frame each in turn (bare_loop.py's frame-by-frame
measurement, which cancels a shared machine's load), each frame timed as the benchmark times it.

Prints the median over frames of the frame time without stages over the time with them (1.000:
no cost), and the stages' median split of a frame.

    python scripts/stages_cost.py [--device cpu|cuda] [--imgsz 256] [--frames 40] [--rounds 2] [--no-stream]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import sys
import tempfile
from pathlib import Path

import numpy as np
from bare_loop import MODEL, REPO, built_runner, frames_in_turn, open_our_loop

from sav_benchmark.run import make_job
from sav_benchmark.runners import MODELS
from sav_benchmark.runners.base import RunSettings
from sav_benchmark.split import prepare_split
from sav_benchmark.split.synthetic import make_split
from sav_benchmark.telemetry import choose_telemetry
from sav_benchmark.timing import MODEL_STAGES


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--imgsz", type=int, default=256)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--stream", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()
    dtype = "float32" if args.device == "cpu" else "bfloat16"
    telemetry, _ = choose_telemetry("auto", 100, args.device, None, False)
    base = RunSettings(args.device, dtype, args.imgsz, "random", REPO / "checkpoints", telemetry, stream=args.stream)
    spec = MODELS[MODEL]
    ratios, stages = [], {stage: [] for stage in MODEL_STAGES}
    with tempfile.TemporaryDirectory() as folder:
        make_split(Path(folder), videos=2, frames=args.frames, width=854, height=480, objects=1)
        split = prepare_split(Path(folder), video_ids=["synth_001"])
        video, obj = split.videos[0], split.videos[0].objects[0]
        job, keep = make_job(split, video, [obj]), set(obj.annotated_frames)
        stream = "--stream" if args.stream else "--no-stream"
        print(f"{MODEL}, random weights, {args.imgsz} px, {args.device}, {dtype}, {stream}, one video of {args.frames} frames (854x480)")
        for _ in range(args.rounds):
            with contextlib.ExitStack() as stack:
                runners = {on: built_runner(spec, dataclasses.replace(base, stages=on), stack) for on in (True, False)}
                loops = {on: open_our_loop(runner, job, keep, stack) for on, runner in runners.items()}
                clock = runners[True].stage_clock
                clock.take()
                for index, times in enumerate(frames_in_turn(loops, args.device)):
                    split_of_frame = clock.take()
                    if index >= 3:  # the first frames warm up
                        ratios.append(times[False] / times[True])
                        for stage in MODEL_STAGES:
                            stages[stage].append(1000 * split_of_frame[stage])
    print(f"--stages on against off: {len(ratios)} frames, median of the frame time without over with: ratio {np.median(ratios):.3f}")
    print("stages' medians per frame: " + ", ".join(f"{stage} {np.median(ms):.1f} ms" for stage, ms in stages.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
