"""SAM 2 and SAM 2.1 through the official `sam2` package's video predictor."""

from __future__ import annotations

import contextlib
import importlib
import io
import warnings
from typing import Iterator

import numpy as np
import torch
from sam2.build_sam import build_sam2_video_predictor

from ..device import release_memory
from . import ModelSpec
from .base import RANDOM_WEIGHTS_SEED, Job, RunSettings
from .sizes import sam2_size_overrides
from .streaming import Stream, streaming_problem
from .torch_runner import TorchRunner, frame_output

# Without its compiled extension the package skips hole filling and says so on every frame;
# the manifest records whether the extension is present instead.
warnings.filterwarnings("ignore", message=r"cannot import name '_C'", category=UserWarning)


class Sam2Runner(TorchRunner):
    def __init__(self, spec: ModelSpec, settings: RunSettings) -> None:
        super().__init__(spec, settings)
        self.predictor = None
        self.state = None
        self.stream: Stream | None = None

    def build(self) -> None:
        checkpoint = None
        if self.settings.weights == "checkpoint":
            checkpoint = str(self.settings.checkpoint_dir / self.spec.checkpoint)
        else:
            torch.manual_seed(RANDOM_WEIGHTS_SEED)
        compiling = {"vos_optimized": True} if self.settings.compile else {}
        try:
            # The compiling predictor prints a line per build; the driver's output is its own.
            with contextlib.redirect_stdout(io.StringIO()):
                self.predictor = build_sam2_video_predictor(
                    self.spec.config,
                    checkpoint,
                    device=self.settings.device,
                    hydra_overrides_extra=self.overrides(),
                    apply_postprocessing=self.settings.postprocessing,
                    **compiling,
                )
        except KeyError as exc:
            if checkpoint and exc.args == ("model",):
                raise ValueError(f"checkpoint {checkpoint} has no 'model' entry; the official format is {{'model': state_dict}}") from exc
            raise
        except RuntimeError as exc:
            if checkpoint and "state_dict" in str(exc):  # torch names the keys that do not fit
                raise ValueError(f"checkpoint {checkpoint} does not fit {self.spec.config}: {exc}") from exc
            raise
        self.stage_clock = self._stage_clock_or_why_not(self.predictor)

    def overrides(self) -> list[str]:
        """The config's overrides: the input size, and for objects that share label maps, the
        non-overlap rule of the model owners' DAVIS evaluation."""
        extra = ["++model.non_overlap_masks=true"] if self.settings.non_overlap_masks else []
        return [*self.size_overrides(self.settings.imgsz), *extra]

    def size_overrides(self, imgsz: int | None) -> list[str]:
        return sam2_size_overrides(imgsz)

    def init_video(self, job: Job) -> None:
        self.stream = self._stream_or_why_not()
        if self.stream is None:
            self.state = self.predictor.init_state(str(job.frames_dir))
            return
        with self.stream.frames_on_demand():
            self.state = self.predictor.init_state(str(job.frames_dir))

    def _stream_or_why_not(self) -> Stream | None:
        """A Stream for this job under --stream; else None, and with --stream the row says why."""
        if not self.settings.stream:
            self.columns["stream"] = "off"
            return None
        problem = streaming_problem(self.predictor)
        if problem:
            self.columns["stream"] = "off"
            self._warn(f"--stream does not fit this predictor ({problem}); the job ran without it")
            return None
        self.columns["stream"] = "on"
        return Stream(self.predictor)

    def add_prompt(self, job: Job) -> None:
        # Object ids 1..K in the job's order: the predictor returns its objects in the order they were added.
        for obj_id, prompt in enumerate(job.prompts, start=1):
            if self.spec.prompt == "points":
                points = np.asarray(prompt.points, dtype=np.float32)
                labels = np.ones(len(points), dtype=np.int32)
                self.predictor.add_new_points_or_box(self.state, prompt.frame, obj_id, points=points, labels=labels)
            elif self.spec.prompt == "bbox":
                box = np.asarray(prompt.box, dtype=np.float32)
                self.predictor.add_new_points_or_box(self.state, prompt.frame, obj_id, box=box)
            else:
                self.predictor.add_new_mask(self.state, prompt.frame, obj_id, prompt.mask)

    def propagate(self, job: Job) -> Iterator[tuple[int, list[np.ndarray]]]:
        if self.stream is not None:
            self.stream.watch(self.state)
        frames = self.predictor.propagate_in_video(self.state, start_frame_idx=job.start_frame)
        for count, (frame, _, mask_logits) in enumerate(frames, start=1):
            output = frame_output(frame, mask_logits[:, 0], job.keep_scores)
            if self.stream is not None:
                self.stream.frame_done(frame, self.state["num_frames"])
            yield output
            if job.max_frames is not None and count >= job.max_frames:
                break

    def cleanup(self) -> None:
        try:
            if self.stream is not None:
                self.stream.close()
            if self.predictor is not None and self.state is not None:
                self.predictor.reset_state(self.state)
        finally:
            if self.stage_clock is not None:
                self.stage_clock.remove()
            self.stage_clock = None
            self.stream = None
            self.state = None
            self.predictor = None
            release_memory(self.settings.device, self.settings.cleanup)


def _silence_progress_bars() -> None:
    """The package draws a progress bar per init and propagate call; the driver shows one per run."""
    for name in ("sam2.sam2_video_predictor", "sam2.utils.misc"):
        module = importlib.import_module(name)
        if hasattr(module, "tqdm"):
            module.tqdm = _no_progress_bar


def _no_progress_bar(iterable=None, *args, **kwargs):
    return iterable


_silence_progress_bars()


def has_compiled_extension() -> bool:
    """Whether the package's `_C` extension (hole filling in post-processing) is importable."""
    try:
        from sam2 import _C  # noqa: F401
    except ImportError:
        return False
    return True


RUNNER = Sam2Runner
