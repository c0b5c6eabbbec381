"""Baseline: the prompt-frame mask repeated on every later frame. No model, no torch: a lower bound."""

from __future__ import annotations

import gc
from contextlib import nullcontext
from typing import Iterator

import numpy as np

from . import ModelSpec
from .base import Job, NoMemoryCounters, RunSettings


class StaticMaskRunner:
    def __init__(self, spec: ModelSpec, settings: RunSettings) -> None:
        self._masks: list[np.ndarray] = []
        self._n_frames = 0

    def build(self) -> None:
        pass

    def inference_context(self) -> nullcontext:
        return nullcontext()

    def init_video(self, job: Job) -> None:
        self._n_frames = job.n_frames

    def add_prompt(self, job: Job) -> None:
        self._masks = [prompt.mask.copy() for prompt in job.prompts]

    def propagate(self, job: Job) -> Iterator[tuple[int, list[np.ndarray]]]:
        start = job.start_frame
        last = self._n_frames if job.max_frames is None else min(self._n_frames, start + job.max_frames)
        for frame in range(start, last):
            # an object prompted later than the job's start has nothing yet
            yield frame, [mask.copy() if frame >= prompt.frame else np.zeros_like(mask) for mask, prompt in zip(self._masks, job.prompts)]

    def memory_counters(self) -> NoMemoryCounters:
        return NoMemoryCounters()

    def synchronize(self) -> None:
        pass

    def cleanup(self) -> None:
        self._masks = []
        gc.collect()


RUNNER = StaticMaskRunner
