"""transformers' video models by the registry's model key: their classes, configurations (random
weights, or a local model folder), input sizes and processors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import transformers

from .hf_convert import apply_image_size, hf_config
from .hf_convert import hf_processor as sam2_processor
from .hf_convert import model_class as sam2_model_class

SAM3_TRACKER = "sam3_tracker"


def model_class(key: str) -> type:
    return transformers.Sam3TrackerVideoModel if key == SAM3_TRACKER else sam2_model_class(key)


def random_config(key: str, imgsz: int | None) -> Any:
    """The model's architecture at that input size, for --weights random."""
    if key == SAM3_TRACKER:
        config = transformers.Sam3TrackerVideoConfig()
        if imgsz is not None:
            config.image_size = imgsz  # the setter sets every size that follows it
        return config
    return hf_config(key, imgsz)


def load_config(key: str, folder: Path, imgsz: int | None) -> Any:
    """The configuration of a local transformers model folder (checked before the run to be this
    model's: availability.model_folder_problem), at that input size."""
    config = transformers.AutoConfig.from_pretrained(str(folder))
    if getattr(config, "tracker_config", None) is not None:  # SAM 3's whole video model: its tracker's part
        config = config.tracker_config
    if imgsz is not None:
        if key == SAM3_TRACKER:
            config.image_size = imgsz  # the setter sets every size that follows it
        else:
            apply_image_size(config, imgsz)
    return config


def hf_processor(key: str, image_size: int) -> Any:
    """The model's processor at its input size: frames resized to image_size x image_size and
    normalised as the model owners' processor does, prompts scaled to that size."""
    if key != SAM3_TRACKER:
        return sam2_processor(key, image_size)
    size = {"height": image_size, "width": image_size}
    # SAM 3 normalises with 0.5 for mean and std (its image processor's), SAM 2 and EdgeTAM with ImageNet's.
    normalisation = {"image_mean": transformers.Sam3ImageProcessor.image_mean, "image_std": transformers.Sam3ImageProcessor.image_std}
    return transformers.Sam3TrackerVideoProcessor(
        image_processor=transformers.Sam3ImageProcessor(size=size, mask_size={"height": image_size // 4, "width": image_size // 4}),
        video_processor=transformers.Sam2VideoVideoProcessor(size=size, **normalisation),
        target_size=image_size,
    )
