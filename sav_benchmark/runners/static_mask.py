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
        self._mask: np.ndarray | None = None
        self._n_frames = 0

    def build(self) -> None:
        pass

    def inference_context(self) -> nullcontext:
        return nullcontext()

    def init_video(self, job: Job) -> None:
        self._n_frames = job.n_frames

    def add_prompt(self, job: Job) -> None:
        self._mask = job.prompt_mask.copy()

    def propagate(self, job: Job) -> Iterator[tuple[int, np.ndarray]]:
        last = self._n_frames if job.max_frames is None else min(self._n_frames, job.prompt_frame + job.max_frames)
        for frame in range(job.prompt_frame, last):
            yield frame, self._mask.copy()

    def memory_counters(self) -> NoMemoryCounters:
        return NoMemoryCounters()

    def synchronize(self) -> None:
        pass

    def cleanup(self) -> None:
        self._mask = None
        gc.collect()


RUNNER = StaticMaskRunner
