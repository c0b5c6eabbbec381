"""SAM 2 / 2.1, EdgeTAM and the SAM 3 tracker through Hugging Face transformers' video models
(`Sam2VideoModel`, `EdgeTamVideoModel`, `Sam3TrackerVideoModel`), with the runner protocol.

The model owners' pipeline as transformers gives it: the model's processor decodes nothing (the
frames are read here with Pillow, as RGB), resizes and normalises the frames
(`init_video_session`), turns the prompt into the model's inputs
(`add_inputs_to_inference_session`), and brings the low-resolution mask logits back to the
video's size (`post_process_masks`, one bilinear step). The prompt frame's output is computed when
the prompt is given, as the sam2 package does; propagation then runs from the earliest prompt frame
forward (`propagate_in_video_iterator`).

--stream: the session's frames are a mapping that processes each frame when the model first asks
for it (a few ahead on a thread), with the same processor, so each frame's tensor is the one the
plain path holds; after each frame the non-conditioning outputs that no later frame can read are
dropped (`oldest_output_read`), and a read of a dropped one fails the job instead of changing its
masks. transformers' own streaming mode (`model(session, frame=...)`) is not used: it counts
object pointers as if the video were endless, which changes the masks of videos shorter than the
model's 16-frame pointer window.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np
import torch
from PIL import Image

from ..device import release_memory
from . import ModelSpec
from .base import RANDOM_WEIGHTS_SEED, Job, RunSettings
from .hf_models import hf_processor, load_config, load_model, model_class, random_config
from .stages import TRANSFORMERS_METHODS
from .streaming import NON_COND, ProcessedFrames, WatchedOutputs, fail_if_misread, frame_paths, original_size
from .torch_runner import TorchRunner, frame_output


def read_frame(path: str) -> np.ndarray:
    """A frame as the processor takes it: RGB, height x width x 3, uint8."""
    with Image.open(path) as image:
        return np.array(image.convert("RGB"))


def oldest_output_read(model: Any, frame: int, num_frames: int) -> int:
    """The oldest frame whose non-conditioning output tracking `frame` forward can read, as
    transformers' video models select them (`_gather_memory_frame_outputs`, `_get_object_pointers`):
    the num_maskmem - 1 previous frames (stride 1), and the object pointers of up to
    min(num_frames, max_object_pointers_in_encoder) - 1 previous frames."""
    back = max(model.num_maskmem - 1, min(num_frames, model.config.max_object_pointers_in_encoder) - 1, 0)
    return frame - back


class HfVideoRunner(TorchRunner):
    def __init__(self, spec: ModelSpec, settings: RunSettings) -> None:
        super().__init__(spec, settings)
        self.model = None
        self.processor = None
        self.session = None
        self.frames: ProcessedFrames | None = None
        self.watched: list[WatchedOutputs] = []
        self.video_size: tuple[int, int] | None = None

    def build(self) -> None:
        if self.settings.weights == "checkpoint":
            folder = self.settings.checkpoint_dir / self.spec.checkpoint
            self.model = load_model(self.spec.config, folder, load_config(self.spec.config, folder, self.settings.imgsz))
        else:
            torch.manual_seed(RANDOM_WEIGHTS_SEED)
            self.model = model_class(self.spec.config)(random_config(self.spec.config, self.settings.imgsz))
        self.model.eval().to(self.settings.device)
        self.processor = hf_processor(self.spec.config, self.model.config.image_size)
        self.stage_clock = self._stage_clock_or_why_not(self.model, TRANSFORMERS_METHODS)
        # transformers' models always do what the sam2 package does with apply_postprocessing (docs/backends.md).
        self.columns["postprocessing"] = "on"

    def _process(self, path: str) -> torch.Tensor:
        """One frame as the processor leaves it for the session: 3 x size x size, float32."""
        processed = self.processor.video_processor(videos=[read_frame(path)[None]], return_tensors="pt")
        return processed.pixel_values_videos[0][0]

    def init_video(self, job: Job) -> None:
        paths = frame_paths(str(job.frames_dir))
        self.video_size = original_size(paths[0])
        device = self.settings.device
        if not self.settings.stream:
            self.columns["stream"] = "off"
            video = [read_frame(path) for path in paths]
            # Processed on the CPU, as --stream processes each frame: the same kernels, the same pixels.
            self.session = self.processor.init_video_session(video=video, inference_device=device, processing_device="cpu")
            return
        self.columns["stream"] = "on"
        self.session = self.processor.init_video_session(inference_device=device)
        self.session.video_height, self.session.video_width = self.video_size
        self.frames = ProcessedFrames(paths, self._process)
        self.session.processed_frames = self.frames  # read by index and len(), as the plain path's dict

    def add_prompt(self, job: Job) -> None:
        # Object ids 1..K in the job's order: the model returns its objects in the order they were added.
        for obj_id, prompt in enumerate(job.prompts, start=1):
            if self.spec.prompt == "points":
                points = [[[list(map(float, point)) for point in prompt.points]]]
                inputs = {"input_points": points, "input_labels": [[[1] * len(prompt.points)]]}
            elif self.spec.prompt == "bbox":
                inputs = {"input_boxes": [[list(map(float, prompt.box))]]}
            else:
                inputs = {"input_masks": prompt.mask}
            self.processor.add_inputs_to_inference_session(self.session, frame_idx=prompt.frame, obj_ids=obj_id, **inputs)
            # The object's output on its prompt frame, now, as the sam2 package computes it when a
            # prompt is added (and because the session remembers only the last call's objects as new).
            self.model(inference_session=self.session, frame_idx=prompt.frame)

    def propagate(self, job: Job) -> Iterator[tuple[int, list[np.ndarray]]]:
        if self.frames is not None:
            self._watch()
        outputs = self.model.propagate_in_video_iterator(self.session, start_frame_idx=job.start_frame)
        for count, output in enumerate(outputs, start=1):
            frame = output.frame_idx
            logits = self.processor.post_process_masks(
                [output.pred_masks],
                original_sizes=[list(self.video_size)],
                binarize=False,
                apply_non_overlapping_constraints=self.settings.non_overlap_masks,
            )[0][:, 0]
            result = frame_output(frame, logits, job.keep_scores)
            if self.frames is not None:
                self._frame_done(frame)
            yield result
            if job.max_frames is not None and count >= job.max_frames:
                break

    def _watch(self) -> None:
        for outputs in self.session.output_dict_per_obj.values():
            outputs[NON_COND] = WatchedOutputs(outputs[NON_COND])
            self.watched.append(outputs[NON_COND])

    def _frame_done(self, frame: int) -> None:
        fail_if_misread(self.watched)
        oldest = oldest_output_read(self.model, frame + 1, len(self.frames))
        for outputs in self.watched:
            outputs.drop_before(oldest, frame)

    def cleanup(self) -> None:
        try:
            if self.frames is not None:
                self.frames.close()
            if self.session is not None:
                self.session.reset_inference_session()
        finally:
            if self.stage_clock is not None:
                self.stage_clock.remove()
            self.stage_clock = None
            self.frames = None
            self.watched = []
            self.session = None
            self.processor = None
            self.model = None
            release_memory(self.settings.device, self.settings.cleanup)


RUNNER = HfVideoRunner
