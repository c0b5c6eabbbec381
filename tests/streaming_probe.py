"""The raw outputs of every frame of one job through a runner, with --stream and without: what the
identity tests compare bit for bit. Thresholded masks of random weights can be empty on every
frame, and so can the mask logits (a random object-score head can call the object absent, and the
package then writes a constant); the object pointer, object score and memory features each frame
stores still depend on the memory read. Importable by the tests, and runnable where another
`sam2` is importable (EdgeTAM's fork):

    PYTHONPATH=<EdgeTAM checkout>:<this repo> python tests/streaming_probe.py edgetam FRAMES_DIR MASK.png
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from sav_benchmark.runners.base import Job, Prompt, RunSettings


def job_of(frames_dir: Path, prompt_mask: np.ndarray, prompt_frame: int = 0) -> Job:
    n_frames = len(list(frames_dir.glob("*.jpg")))
    return Job(frames_dir, n_frames, [Prompt(prompt_frame, [[8, 8]], [0, 0, 16, 16], prompt_mask)])


def built(runner_class: type, spec, settings: RunSettings, overrides: list[str] = ()):
    """A runner built with `overrides` added to its model's configuration."""
    runner = runner_class(spec, settings)
    base_overrides = runner.size_overrides
    runner.size_overrides = lambda imgsz: [*base_overrides(imgsz), *overrides]
    runner.build()
    return runner


def track(runner, job: Job) -> None:
    """The job through a built runner: init, prompt, every frame."""
    with runner.inference_context():
        runner.init_video(job)
        runner.add_prompt(job)
        for _ in runner.propagate(job):
            pass


def propagated_outputs(
    runner_class: type, spec, settings: RunSettings, job: Job, overrides: list[str] = ()
) -> tuple[list, dict, list[int]]:
    """(per propagated frame, its mask logits, object pointer, object score and memory features in
    one float tensor; the row's columns; the outputs the state kept for one object between frames)."""
    runner = built(runner_class, spec, settings, overrides)
    outputs, kept = [], []
    propagate = runner.predictor.propagate_in_video

    def recording(*args, **kwargs):
        for frame, obj_ids, frame_logits in propagate(*args, **kwargs):
            per_object = runner.state["output_dict_per_obj"][0]
            stored = per_object["cond_frame_outputs"].get(frame) or per_object["non_cond_frame_outputs"][frame]
            values = [frame_logits, *(stored[key] for key in ("obj_ptr", "object_score_logits", "maskmem_features"))]
            outputs.append(torch.cat([value.float().flatten() for value in values]))
            yield frame, obj_ids, frame_logits
            # dict.__len__: a look at all of them would count as a read of what streaming dropped
            kept.append(
                max(dict.__len__(per_object["non_cond_frame_outputs"]) for per_object in runner.state["output_dict_per_obj"].values())
            )

    runner.predictor.propagate_in_video = recording
    try:
        track(runner, job)
    finally:
        runner.cleanup()
    return outputs, dict(runner.row_columns()), kept


def compare_modes(runner_class: type, spec, settings: RunSettings, job: Job, overrides: list[str] = ()) -> dict:
    """Both modes on one job: whether every frame's outputs are the same bits, and what says the
    comparison meant something (frames whose outputs differ from the previous frame's, outputs kept)."""
    plain, plain_columns, plain_kept = propagated_outputs(runner_class, spec, replace(settings, stream=False), job, overrides)
    streamed, streamed_columns, streamed_kept = propagated_outputs(runner_class, spec, replace(settings, stream=True), job, overrides)
    return {
        "frames": len(plain),
        "identical": len(plain) == len(streamed) and all(a.dtype == b.dtype and a.equal(b) for a, b in zip(plain, streamed)),
        "changing_frames": sum(not a.equal(b) for a, b in zip(plain, plain[1:])),
        "columns": [plain_columns, streamed_columns],
        "most_kept": [max(plain_kept), max(streamed_kept)],
    }


def main(argv: list[str]) -> int:
    from sav_benchmark.masks import read_mask
    from sav_benchmark.runners import MODELS, load_runner_class

    model, frames_dir, mask = argv
    spec = MODELS[f"{model}_mask"]
    settings = RunSettings("cpu", "float32", 256, "random", Path("."))
    print(json.dumps(compare_modes(load_runner_class(spec), spec, settings, job_of(Path(frames_dir), read_mask(Path(mask))))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
