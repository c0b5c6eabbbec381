"""The runner protocol: build a predictor, run one job (init, prompt, propagate), clean up.

The driver times each step the same way for every runner, so a runner only does the work.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterator, Protocol

import numpy as np

from ..memory import MemoryReading
from ..telemetry import TelemetryConfig

# --weights random draws the same weights for every job and run, so that such runs repeat.
RANDOM_WEIGHTS_SEED = 0


class NoMemoryCounters:
    """Counters of a runner that holds nothing on a device: every reading stays None."""

    def __init__(self) -> None:
        self.reading = MemoryReading()

    def start(self) -> None:
        pass

    def record_peak(self) -> None:
        pass

    def record_after_cleanup(self) -> None:
        pass


class MemoryCounters(Protocol):
    reading: MemoryReading

    def start(self) -> None:
        """Reset the peak counters and read the memory in use before the job."""

    def record_peak(self) -> None:
        """Read the peak since start()."""

    def record_after_cleanup(self) -> None:
        """Read the memory still in use after the cleanup protocol."""


@dataclass(frozen=True)
class RunSettings:
    device: str
    dtype: str
    imgsz: int | None
    weights: str
    checkpoint_dir: Path
    telemetry: TelemetryConfig = TelemetryConfig()
    compile: bool = False  # the package's full-model compilation (vos_optimized)
    stream: bool = True  # frames decoded on demand and spent tracker outputs dropped (runners/streaming.py)
    # The package's interactive post-processing of masks; off, as the model owners' VOS evaluation
    # (tools/vos_inference.py builds with apply_postprocessing=False).
    postprocessing: bool = False
    # Label maps of objects tracked together: the predictor gives a pixel that several objects
    # claim to the highest-scoring one, as tools/vos_inference.py builds it for DAVIS output.
    non_overlap_masks: bool = False
    cleanup: str = "full"  # the cleanup protocol after each job (device.release_memory); other levels only to measure it
    stages: bool = True  # each frame's model stages timed (runners/stages.py)
    traces: bool = True  # each frame's record kept for the traces file (traces.py)
    imgsz_for: tuple[tuple[str, int], ...] = ()  # (model, input size) where a model has its own (--imgsz_for)

    def for_model(self, spec: Any) -> RunSettings:
        """The settings of one model's jobs: its own --imgsz_for size, else --imgsz."""
        own = dict(self.imgsz_for).get(model_of(spec))
        return self if own is None else replace(self, imgsz=own)


def model_of(spec: Any) -> str:
    """The model part of a model name, without its prompt kind: hf_sam3_tracker of hf_sam3_tracker_points."""
    return spec.name.removesuffix(f"_{spec.prompt}")


@dataclass
class Prompt:
    """One object's prompt on its frame, in each kind a model may take."""

    frame: int
    points: list[list[int]]
    box: list[int]
    mask: np.ndarray


@dataclass
class Job:
    """The objects of one video that one predictor tracks in one state: one object (--objects
    separate), or those prompted on the video's first prompt frame (--objects together).
    Propagation starts on the earliest prompt frame."""

    frames_dir: Path
    n_frames: int
    prompts: list[Prompt]
    max_frames: int | None = None  # set for warm-up runs
    # DAVIS label maps give a pixel that several objects claim to the highest-scoring one, as
    # the model owners' evaluation does: the job keeps its masks' scores too.
    keep_scores: bool = False

    @property
    def start_frame(self) -> int:
        return min(prompt.frame for prompt in self.prompts)


class Runner(Protocol):
    def build(self) -> None:
        """Construct the predictor and load its weights."""

    def inference_context(self) -> AbstractContextManager:
        """The context every call of a job runs in (inference mode, autocast)."""

    def init_video(self, job: Job) -> None:
        """Load the video's frames and make a fresh tracking state."""

    def add_prompt(self, job: Job) -> None:
        """Give each of the job's objects its prompt, of the runner's kind, on its frame."""

    def propagate(self, job: Job) -> Iterator[tuple[int, list[np.ndarray]]]:
        """Yield (frame index, one boolean mask on the host per prompt, in the job's order) from the
        start frame to the last frame. With job.keep_scores a runner whose masks come from scores
        may yield a third item: a function, called after the frame's timer stops, that returns each
        mask's scores (logits) at its True pixels in row-major order, float32. Without it every
        pixel of a mask scores the same."""

    def memory_counters(self) -> MemoryCounters:
        """The device's memory counters for one job."""

    def synchronize(self) -> None:
        """Wait for queued device work, so that a clock read measures finished work."""

    def cleanup(self) -> None:
        """Drop the predictor, its state and device tensors, and release device memory."""

    # Optional: row_columns() -> dict of the job's own row cells (stream, warning), read after cleanup.
