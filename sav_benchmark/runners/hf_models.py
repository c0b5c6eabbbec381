"""transformers' video models by the registry's model key: their classes, configurations (random
weights, or a local model folder), input sizes and processors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import transformers

from .hf_convert import apply_image_size, hf_config
from .hf_convert import hf_processor as sam2_processor
from .hf_convert import model_class as sam2_model_class
from .sizes import DEFAULT_IMGSZ, default_imgsz

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
    """The configuration of a local transformers model folder (checked before the run to be of this
    model's type: availability.model_folder_problem), checked to be this model's architecture, at
    the size the run asks for (--imgsz, else the model's own), whatever size the folder was saved at."""
    config = transformers.AutoConfig.from_pretrained(str(folder))
    if getattr(config, "tracker_config", None) is not None:  # SAM 3's whole video model: its tracker's part
        config = config.tracker_config
    if key == SAM3_TRACKER:
        config.image_size = imgsz or default_imgsz("hf-sam3")  # the setter sets every size that follows it
        return config
    problem = architecture_problem(key, config)
    if problem:
        raise ValueError(f"model folder {folder} is not {key}: {problem}; put the {key} model's folder there (docs/backends.md)")
    apply_image_size(config, imgsz or DEFAULT_IMGSZ)
    return config


# What tells the SAM 2 models apart: the trunk's shape, and SAM 2.1's two additions.
ARCHITECTURE = (
    ("vision_config", "backbone_config", "blocks_per_stage"),
    ("vision_config", "backbone_config", "embed_dim_per_stage"),
    ("vision_config", "backbone_config", "global_attention_blocks"),
    ("enable_temporal_pos_encoding_for_object_pointers",),
    ("enable_occlusion_spatial_embedding",),
)


def architecture_problem(key: str, config: Any) -> str:
    """How the configuration differs from the model's official architecture ('' when it does not)."""
    expected = hf_config(key)
    for path in ARCHITECTURE if key != "edgetam" else ARCHITECTURE[3:]:
        found, wanted = _field(config, path), _field(expected, path)
        if found != wanted:
            return f"its {'.'.join(path)} is {found}, {key}'s is {wanted}"
    return ""


def _field(config: Any, path: tuple[str, ...]) -> Any:
    for name in path:
        config = getattr(config, name, None)
    return list(config) if isinstance(config, (list, tuple)) else config


def load_model(key: str, folder: Path, config: Any) -> Any:
    """The model of a folder, in float32 (as --weights random builds it; autocast decides the rest),
    every weight of the model found in the folder with its shape (transformers would fill a missing
    one with random values and go on)."""
    model, info = model_class(key).from_pretrained(str(folder), config=config, dtype=torch.float32, output_loading_info=True)
    missing = [*info.get("missing_keys", []), *(str(m) for m in info.get("mismatched_keys", []))]
    if missing:
        shown = ", ".join(sorted(map(str, missing))[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise ValueError(f"model folder {folder} lacks weights of {key} or has them in other shapes: {shown}")
    return model


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
