"""Model input sizes (--imgsz): the config settings that must follow it, or why a size is refused.

Imports neither torch nor a model package, so the driver checks sizes before any work.
"""

from __future__ import annotations

from ..errors import UsageError

DEFAULT_IMGSZ = 1024  # what the SAM 2 and EdgeTAM configs use when --imgsz is not given
# The largest --imgsz accepted: twice the trained size. The memory attention's cost grows with the
# fourth power of the size (frame tokens times memory tokens), so far larger sizes only exhaust memory.
MAX_IMGSZ = 2048
BACKBONE_STRIDE = 16  # the memory attention runs on stride-16 features
# SAM 2's Hiera tiles an 8x8 window embedding over its stride-4 features: steps of 32.
SAM2_STEP = 32
# EdgeTAM's perceiver pools the stride-16 memory features into a 16x16 grid of windows: steps of 256.
EDGETAM_STEP = 256


def sam2_size_overrides(imgsz: int | None) -> list[str]:
    """Hydra overrides that set a SAM 2 model's input size and every setting that depends on it."""
    if imgsz is None:
        return []
    if imgsz % SAM2_STEP or imgsz < 2 * SAM2_STEP:
        raise UsageError(f"--imgsz {imgsz}: SAM 2 needs a multiple of {SAM2_STEP} of at least {2 * SAM2_STEP} (e.g. 256, 512, 1024)")
    feat = imgsz // BACKBONE_STRIDE
    return [
        f"++model.image_size={imgsz}",
        f"++model.memory_attention.layer.self_attention.feat_sizes=[{feat},{feat}]",
        f"++model.memory_attention.layer.cross_attention.feat_sizes=[{feat},{feat}]",
    ]


def edgetam_size_overrides(imgsz: int | None) -> list[str]:
    """EdgeTAM's: its self-attention's RoPE grid and its cross-attention's query grid follow the
    size; the key grid (16x16, the perceiver's 2D latents) does not, which is what needs steps of 256."""
    if imgsz is None:
        return []
    if imgsz % EDGETAM_STEP:
        raise UsageError(
            f"--imgsz {imgsz}: EdgeTAM needs a multiple of {EDGETAM_STEP} (its perceiver pools the stride-16 memory "
            "features into a 16x16 grid), e.g. 512 or 1024"
        )
    feat = imgsz // BACKBONE_STRIDE
    return [
        f"++model.image_size={imgsz}",
        f"++model.memory_attention.layer.self_attention.feat_sizes=[{feat},{feat}]",
        f"++model.memory_attention.layer.cross_attention.q_sizes=[{feat},{feat}]",
    ]


SAM3_STEP = 336  # the SAM 3 tracker's ViT tiles 24x24 windows of 14-pixel patches over the frame (trained at 1008)


def sam3_tracker_size(imgsz: int | None) -> list[str]:
    """The SAM 3 tracker takes multiples of 336 (transformers' configuration sets the rest from it)."""
    if imgsz is not None and imgsz % SAM3_STEP:
        raise UsageError(
            f"--imgsz {imgsz}: the SAM 3 tracker needs a multiple of {SAM3_STEP} (its ViT tiles 24x24 windows of 14-pixel "
            f"patches), e.g. 336 or 672; give it its own with --imgsz_for hf_sam3_tracker={SAM3_STEP}"
        )
    return []


def default_imgsz(family: str) -> int:
    """The input size a model family's configuration has when --imgsz is not given."""
    return 3 * SAM3_STEP if family == "hf-sam3" else DEFAULT_IMGSZ


SIZE_OVERRIDES = {"sam2": sam2_size_overrides, "sam2.1": sam2_size_overrides, "edgetam": edgetam_size_overrides}
# transformers' implementations take the sizes their sam2-package twins take.
SIZE_CHECKS = {
    **SIZE_OVERRIDES,
    "hf-sam2": sam2_size_overrides,
    "hf-sam2.1": sam2_size_overrides,
    "hf-edgetam": edgetam_size_overrides,
    "hf-sam3": sam3_tracker_size,
}


def check_size(family: str, imgsz: int | None) -> None:
    """Refuse, before any work, a size that a model family cannot take."""
    if family in SIZE_CHECKS:
        SIZE_CHECKS[family](imgsz)
