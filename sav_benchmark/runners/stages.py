"""Where a frame's time goes: the model's own methods timed, stage by stage, without changing its code.

The four stages of SAM 2's (and EdgeTAM's) tracking step are methods of the model (SAM2Base):

- image_encoder: `forward_image`, the backbone and neck on the frame;
- memory_attention: `_prepare_memory_conditioned_features`, the frame's features conditioned on memory;
- mask_decoder: `_forward_sam_heads`, the prompt encoder and the mask decoder (and the object pointer);
- memory_encoder: `_encode_new_memory`, the frame's prediction encoded into memory.

Each is wrapped on the predictor instance (the class is left alone) by a function that marks its
start and end: CUDA events recorded on the current stream (read only after the frame's own
synchronisation, so the pipeline is not disturbed), or the host clock on the CPU. What the frame's
latency holds beyond the four is the rest: host transfer, state bookkeeping, Python. A predictor
that lacks one of the methods, or one that calls a timed method inside another (the split would
count that time twice), gets no split at all, and its rows say why.
"""

from __future__ import annotations

import functools
import time
from typing import Any, Callable

from ..timing import MODEL_STAGES

METHODS = {
    "image_encoder": "forward_image",
    "memory_attention": "_prepare_memory_conditioned_features",
    "mask_decoder": "_forward_sam_heads",
    "memory_encoder": "_encode_new_memory",
}
# The same stages in transformers' video models (Sam2VideoModel, EdgeTamVideoModel, Sam3TrackerVideoModel).
TRANSFORMERS_METHODS = {
    "image_encoder": "get_image_features",
    "memory_attention": "_prepare_memory_conditioned_features",
    "mask_decoder": "_single_frame_forward",
    "memory_encoder": "_encode_new_memory",
}


def _stages(methods: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """The row's stages, each by its method."""
    return tuple((stage, methods[stage]) for stage in MODEL_STAGES)


def stages_problem(model: Any, methods: dict[str, str] = METHODS) -> str:
    """Why the stages of this model cannot be timed ('' when they can)."""
    missing = [method for _, method in _stages(methods) if not callable(getattr(type(model), method, None))]
    return f"it has no {', '.join(missing)}" if missing else ""


class StageClock:
    """Times the model's stages while it is installed; `take()` gives each stage's seconds since the last take."""

    def __init__(self, model: Any, device: str, methods: dict[str, str] = METHODS) -> None:
        self.model = model
        self._stages = _stages(methods)
        self.problem = ""
        self._cuda = device.startswith("cuda")
        self._marks: list[tuple[str, Any, Any]] = []
        self._open: str | None = None
        for stage, method in self._stages:
            setattr(model, method, self._timed(stage, method, getattr(model, method)))

    def _timed(self, stage: str, method: str, original: Callable) -> Callable:
        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if self._open is not None:  # nested: its time is inside the open stage's already
                if not self.problem:
                    self.problem = f"{method} ran inside {self._open}"
                return original(*args, **kwargs)
            self._open = method
            start = self._mark()
            try:
                return original(*args, **kwargs)
            finally:
                self._marks.append((stage, start, self._mark()))
                self._open = None

        return timed

    def _mark(self) -> Any:
        if not self._cuda:
            return time.perf_counter()
        import torch

        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def take(self) -> dict[str, float]:
        """Each stage's seconds since the last take (0.0 for a stage that did not run). On CUDA,
        call it after the device is synchronised: the events are read then."""
        seconds = dict.fromkeys(MODEL_STAGES, 0.0)
        for stage, start, end in self._marks:
            seconds[stage] += start.elapsed_time(end) / 1000.0 if self._cuda else end - start
        self._marks.clear()
        return seconds

    def remove(self) -> None:
        """The model's own methods again (the wrappers were attributes of the instance)."""
        for _, method in self._stages:
            self.model.__dict__.pop(method, None)
        self._marks.clear()
