"""What the runners of torch models share (the sam2 package's and transformers'): the settings,
the row's own cells and warnings, inference mode with autocast, the device's counters and clock,
the stage clock, and a frame's yield. Imports no model package."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import torch

from ..device import DTYPES, MemoryCounters, synchronize
from . import ModelSpec
from .base import RunSettings
from .stages import METHODS, StageClock, stages_problem

log = logging.getLogger("sav_benchmark")
_warned: set[tuple[str, str]] = set()


class TorchRunner:
    def __init__(self, spec: ModelSpec, settings: RunSettings) -> None:
        self.spec = spec
        self.settings = settings
        self.stage_clock: StageClock | None = None
        self.columns: dict[str, Any] = {}

    def _stage_clock_or_why_not(self, model: Any, methods: dict[str, str] = METHODS) -> StageClock | None:
        """A clock on the model's stages under --stages on; else None, and where it cannot time
        them the row says why (never a wrong split)."""
        if not self.settings.stages:
            return None
        problem = stages_problem(model, methods)
        if problem:
            self._warn(f"stage times left out: {problem}")
            return None
        return StageClock(model, self.settings.device, methods)

    def _warn(self, warning: str) -> None:
        """Every row of the job says it; the log once per model."""
        self.columns["warning"] = "; ".join(filter(None, [self.columns.get("warning"), warning]))
        if (self.spec.name, warning) not in _warned:
            _warned.add((self.spec.name, warning))
            log.warning("%s: %s", self.spec.name, warning)

    def inference_context(self) -> contextlib.ExitStack:
        stack = contextlib.ExitStack()
        stack.enter_context(torch.inference_mode())
        dtype = DTYPES[self.settings.dtype]
        if dtype is not None:
            stack.enter_context(torch.autocast(device_type=self.settings.device, dtype=dtype))
        return stack

    def memory_counters(self) -> MemoryCounters:
        return MemoryCounters(self.settings.device)

    def synchronize(self) -> None:
        synchronize(self.settings.device)

    def row_columns(self) -> dict[str, Any]:
        return self.columns


def frame_output(frame: int, logits: torch.Tensor, keep_scores: bool) -> tuple:
    """What propagate yields for a frame from its objects' mask logits (objects x height x width, at
    the video's size): the masks on the host, and with keep_scores a function the harness calls
    after the frame's timer for each mask's scores at its pixels."""
    # Reading the masks back to the host is part of the frame's cost: an application needs them.
    masks = list((logits > 0).cpu().numpy())
    if not keep_scores:
        return frame, masks
    return frame, masks, lambda: [scores[mask] for scores, mask in zip(logits.float().cpu().numpy(), masks)]
