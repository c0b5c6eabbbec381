"""Official SAM 2 / 2.1 and EdgeTAM checkpoints ({"model": state_dict}) as Hugging Face transformers
model folders (`Sam2VideoModel`, `EdgeTamVideoModel`) that `from_pretrained(folder)` loads.

The names are renamed by the ordered rule tables below, worked out from the two state dicts; the
architecture of each model comes from Meta's configs (configs/sam2*/sam2*_hiera_<size>.yaml,
EdgeTAM's configs/edgetam.yaml), as transformers' own conversion scripts set it.

What the conversion has to know:
- transformers' default `Sam2VideoConfig()` is SAM 2.1 tiny (Hiera-T trunk, SAM 2.1's two
  switches on); `hf_config` still spells out every model, tiny included.
- SAM 2 and SAM 2.1 differ, for conversion, in two switches: 2.1 adds a temporal position encoding
  of the object pointers with its projection (`obj_ptr_tpos_proj`, transformers'
  enable_temporal_pos_encoding_for_object_pointers) and an embedding added to the memory of frames
  where the object is occluded (`no_obj_embed_spatial`, enable_occlusion_spatial_embedding). SAM 2
  has neither key; transformers then uses an identity and no parameter. 2.1's signed temporal
  offsets are what transformers always uses (they equal the unsigned ones when tracking forward).
- EdgeTAM is a SAM 2 (both switches off) with a RepViT-M1 timm backbone (`image_encoder.trunk.body`
  -> `vision_encoder.backbone.timm_model`, the same names inside), two memory-attention layers whose
  feed-forward is named `mlp.up_proj/down_proj`, and a spatial perceiver whose fused key-value
  projection (`to_kv`) transformers splits in two (`k_proj`, `v_proj`: the first half of the rows is k).
- No Meta key is dropped. Meta's four point embeddings (`point_embeddings.{0..3}`, one row each) are
  one (4, 256) table in transformers.
- transformers holds one buffer that the checkpoint lacks: `shared_image_embedding.positional_embedding`,
  a second copy of the prompt encoder's random Fourier matrix (Meta's mask decoder reads the prompt
  encoder's), filled here from that matrix. Its memory attention's RoPE position ids and frequencies
  are not saved but computed from the configuration (memory_attention_rope_feat_sizes), which must
  therefore match the input size: Meta's RoPE recomputes its table for the size it meets.
- Not a conversion matter, but where the two pipelines differ by design: transformers' video model
  always binarizes a clicked frame's mask before encoding it into memory (Meta's
  binarize_mask_from_pts_for_mem_enc, set by apply_postprocessing=True; no switch in transformers),
  and its mask decoder falls back among multi-mask outputs by stability (dynamic_multimask_via_stability,
  a configuration value kept at transformers' default, True, as the conversion scripts keep it). It
  fills no holes. So it computes what Meta's apply_postprocessing=True computes without sam2's
  compiled extension, not what apply_postprocessing=False computes.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import torch
import transformers
from transformers import (
    EdgeTamVideoConfig,
    EdgeTamVisionConfig,
    Sam2HieraDetConfig,
    Sam2ImageProcessor,
    Sam2VideoConfig,
    Sam2VideoProcessor,
    Sam2VideoVideoProcessor,
    Sam2VisionConfig,
    TimmWrapperConfig,
)

from .sizes import BACKBONE_STRIDE, DEFAULT_IMGSZ, check_size

# The benchmark prints its own progress; transformers' bars (loading, saving weights) would interleave with it.
transformers.utils.logging.disable_progress_bar()

HF_MODEL_KEYS = (
    "sam2.1_tiny",
    "sam2.1_small",
    "sam2.1_base_plus",
    "sam2.1_large",
    "sam2_tiny",
    "sam2_small",
    "sam2_base_plus",
    "sam2_large",
    "edgetam",
)
EDGETAM = "edgetam"
SHOWN_KEYS = 5  # how many offending keys an error message names

# ---------------------------------------------------------------------------------------------
# Configurations
# ---------------------------------------------------------------------------------------------

# Meta's Hiera trunk per SAM 2 size (the same in SAM 2 and 2.1), as transformers names its settings.
# Tiny is transformers' default. The heads double per stage from Meta's num_heads (1 for T/S, 2 for
# B+/L); window_spec is Hiera's default (8, 4, 14, 7) except for L.
HIERA = {
    "tiny": {},
    "small": {"blocks_per_stage": [1, 2, 11, 2], "global_attention_blocks": [7, 10, 13]},
    "base_plus": {
        "hidden_size": 112,
        "embed_dim_per_stage": [112, 224, 448, 896],
        "num_attention_heads_per_stage": [2, 4, 8, 16],
        "blocks_per_stage": [2, 3, 16, 3],
        "global_attention_blocks": [12, 16, 20],
        "window_positional_embedding_background_size": [14, 14],
    },
    "large": {
        "hidden_size": 144,
        "embed_dim_per_stage": [144, 288, 576, 1152],
        "num_attention_heads_per_stage": [2, 4, 8, 16],
        "blocks_per_stage": [2, 6, 36, 4],
        "global_attention_blocks": [23, 33, 43],
        "window_positional_embedding_background_size": [7, 7],
        "window_size_per_stage": [8, 4, 16, 8],
    },
}
# EdgeTAM's trunk: timm's RepViT-M1 (named with its ImageNet tag, as EdgeTAM's config does; the
# weights come from the checkpoint), its four stages as features.
REPVIT = "repvit_m1.dist_in1k"
REPVIT_ARGS = {"in_chans": 3, "features_only": True, "out_indices": [0, 1, 2, 3]}
# The strides of the three feature levels the FPN neck keeps (Meta's scalp=1 drops stride 32).
FEATURE_STRIDES = (4, 8, 16)


def split_key(model_key: str) -> tuple[str, str]:
    """(family, size) of a model key: ("sam2.1", "tiny"), ("edgetam", "")."""
    if model_key not in HF_MODEL_KEYS:
        raise ValueError(f"unknown model key {model_key!r}; expected one of {', '.join(HF_MODEL_KEYS)}")
    if model_key == EDGETAM:
        return EDGETAM, ""
    family, size = model_key.split("_", 1)
    return family, size


def hf_config(model_key: str, imgsz: int | None = None) -> Sam2VideoConfig | EdgeTamVideoConfig:
    """The official architecture of that model as a transformers configuration, at input size
    `imgsz` (None: the trained 1024). A size the model cannot take is a UsageError (sizes.py)."""
    family, size = split_key(model_key)
    check_size(family, imgsz)
    if family == EDGETAM:
        vision = EdgeTamVisionConfig(backbone_config=TimmWrapperConfig(architecture=REPVIT, model_args=dict(REPVIT_ARGS)))
        config = EdgeTamVideoConfig(
            vision_config=vision, enable_temporal_pos_encoding_for_object_pointers=False, enable_occlusion_spatial_embedding=False
        )
    else:
        trunk = Sam2HieraDetConfig(**HIERA[size])
        # The neck reads the trunk's stages from the coarsest one.
        vision = Sam2VisionConfig(backbone_config=trunk, backbone_channel_list=trunk.embed_dim_per_stage[::-1])
        is_21 = family == "sam2.1"
        config = Sam2VideoConfig(
            vision_config=vision, enable_temporal_pos_encoding_for_object_pointers=is_21, enable_occlusion_spatial_embedding=is_21
        )
    apply_image_size(config, imgsz or DEFAULT_IMGSZ)
    return config


def apply_image_size(config: Sam2VideoConfig | EdgeTamVideoConfig, imgsz: int) -> None:
    """Set, in place, every setting of a SAM 2 or EdgeTAM video configuration that follows the input
    size: what Meta's hydra overrides (sizes.py) set, and the sizes transformers fixes at build time
    that Meta's modules derive from their input."""
    family = EDGETAM if isinstance(config, EdgeTamVideoConfig) else "sam2"
    check_size(family, imgsz)
    config.image_size = imgsz  # ++model.image_size: the memory encoder's mask size
    config.prompt_encoder_config.image_size = imgsz  # the prompt encoder's coordinate frame and mask-input size
    vision = config.vision_config
    # The feature sizes of the levels the mask decoder and memory read (Meta reads them off the features).
    vision.backbone_feature_sizes = [[imgsz // stride] * 2 for stride in FEATURE_STRIDES]
    if isinstance(vision.backbone_config, Sam2HieraDetConfig):
        vision.backbone_config.image_size = [imgsz, imgsz]  # descriptive: Hiera interpolates its position embedding
    # The memory attention's RoPE grid: self_attention.feat_sizes (SAM 2 and EdgeTAM), and its
    # cross-attention's queries (SAM 2's cross_attention.feat_sizes, EdgeTAM's q_sizes). EdgeTAM's
    # key grid (memory_attention_rope_k_sizes, 16x16) is the perceiver's 2D latents: it stays.
    feat = imgsz // BACKBONE_STRIDE
    config.memory_attention_rope_feat_sizes = [feat, feat]


def hf_processor(model_key: str, imgsz: int | None = None) -> Sam2VideoProcessor:
    """The processor of that model (EdgeTAM's too is SAM 2's): frames resized to imgsz x imgsz and
    normalised with ImageNet's mean and std, as Meta's loader does; prompts scaled to that size."""
    split_key(model_key)
    size = imgsz or DEFAULT_IMGSZ
    square = {"height": size, "width": size}
    # mask_size: the low-resolution masks, a quarter of the input size, as the model outputs them.
    quarter = {"height": size // 4, "width": size // 4}
    return Sam2VideoProcessor(
        image_processor=Sam2ImageProcessor(size=square, mask_size=quarter),
        video_processor=Sam2VideoVideoProcessor(size=square),
        target_size=size,
    )


def model_class(model_key: str) -> type:
    return transformers.EdgeTamVideoModel if split_key(model_key)[0] == EDGETAM else transformers.Sam2VideoModel


# ---------------------------------------------------------------------------------------------
# Names: Meta -> transformers
# ---------------------------------------------------------------------------------------------

Replacement = str | Callable[[re.Match], str]


def indexed(names: dict[int, str]) -> Callable[[re.Match], str]:
    """A replacement for `(prefix).(index).`: the layer of an nn.Sequential / MLP layer list by its
    index (group 2), kept as it is when the index is not listed (then it is reported as unexpected)."""

    def replace(match: re.Match) -> str:
        name = names.get(int(match.group(2)))
        return f"{match.group(1)}.{name}." if name else match.group(0)

    return replace


def downsampler_layer(match: re.Match) -> str:
    """Meta's MaskDownSampler is one nn.Sequential of (conv, LayerNorm2d, GELU) x 4 and a final 1x1
    conv (index 12, for total stride 16 at stride 2); transformers groups each triple as a layer."""
    index = int(match.group(1))
    if index == 12:
        return "memory_encoder.mask_downsampler.final_conv."
    part = {0: "conv", 1: "layer_norm"}.get(index % 3)
    return f"memory_encoder.mask_downsampler.layers.{index // 3}.{part}." if part else match.group(0)


# Top-level modules and parameters: each Meta key must match one of these (the first that matches
# renames it); a key that matches none is not from this family's model.
SAM2_TOP = [
    (r"^image_encoder\.trunk\.", "vision_encoder.backbone."),
    (r"^image_encoder\.neck\.", "vision_encoder.neck."),
    (r"^sam_prompt_encoder\.", "prompt_encoder."),
    (r"^sam_mask_decoder\.", "mask_decoder."),
    (r"^obj_ptr_proj\.", "object_pointer_proj."),
    (r"^obj_ptr_tpos_proj\.", "temporal_positional_encoding_projection_layer."),  # SAM 2.1
    (r"^maskmem_tpos_enc$", "memory_temporal_positional_encoding"),
    (r"^no_mem_embed$", "no_memory_embedding"),
    (r"^no_mem_pos_enc$", "no_memory_positional_encoding"),
    (r"^no_obj_ptr$", "no_object_pointer"),
    (r"^no_obj_embed_spatial$", "occlusion_spatial_embedding_parameter"),  # SAM 2.1
    # Named alike in both; listed so that they count as this model's.
    (r"^(memory_attention|memory_encoder|mask_downsample)\.", r"\1."),
]
EDGETAM_TOP = [
    (r"^image_encoder\.trunk\.body\.", "vision_encoder.backbone.timm_model."),  # timm's own names inside
    (r"^spatial_perceiver\.", "spatial_perceiver."),
    *SAM2_TOP,
]
# Three-layer MLP heads (Meta's MLP: layers.0..2; transformers: proj_in, layers.0, proj_out).
HEADS = (
    r"^((?:mask_decoder\.(?:output_hypernetworks_mlps\.\d+|iou_prediction_head|pred_obj_score_head))|object_pointer_proj)\.layers\.(\d+)\."
)
THREE_LAYERS = {0: "proj_in", 1: "layers.0", 2: "proj_out"}
# Inside the modules, applied in order, each to the name the rules before it left.
SAM2_INSIDE = [
    # Hiera trunk: patch embedding, block norms, the blocks' two-layer MLPs.
    (r"^vision_encoder\.backbone\.patch_embed\.proj\.", "vision_encoder.backbone.patch_embed.projection."),
    (r"^(vision_encoder\.backbone\.blocks\.\d+)\.norm(\d)\.", r"\1.layer_norm\2."),
    (r"^(vision_encoder\.backbone\.blocks\.\d+\.mlp)\.layers\.(\d+)\.", indexed({0: "proj_in", 1: "proj_out"})),
    # FPN neck: the 1x1 convs are bare convs in transformers.
    (r"^(vision_encoder\.neck\.convs\.\d+)\.conv\.", r"\1."),
    # Prompt encoder: Fourier matrix, point embeddings (merged below), mask downscaling
    # nn.Sequential(conv, LayerNorm2d, GELU, conv, LayerNorm2d, GELU, conv).
    (r"^prompt_encoder\.pe_layer\.positional_encoding_gaussian_matrix$", "prompt_encoder.shared_embedding.positional_embedding"),
    (r"^prompt_encoder\.point_embeddings\.(\d+)\.weight$", r"prompt_encoder.point_embed.\1.weight"),
    (
        r"^(prompt_encoder)\.mask_downscaling\.(\d+)\.",
        indexed(
            {0: "mask_embed.conv1", 1: "mask_embed.layer_norm1", 3: "mask_embed.conv2", 4: "mask_embed.layer_norm2", 6: "mask_embed.conv3"}
        ),
    ),
    # Mask decoder's two-way transformer: norms and two-layer MLPs (attention projections below).
    (r"^(mask_decoder\.transformer\.layers\.\d+)\.norm(\d)\.", r"\1.layer_norm\2."),
    (r"^mask_decoder\.transformer\.norm_final_attn\.", "mask_decoder.transformer.layer_norm_final_attn."),
    (r"^(mask_decoder\.transformer\.layers\.\d+\.mlp)\.layers\.(\d+)\.", indexed({0: "proj_in", 1: "proj_out"})),
    # Mask decoder's upscaling nn.Sequential(conv-transpose, LayerNorm2d, GELU, conv-transpose, GELU).
    (r"^(mask_decoder)\.output_upscaling\.(\d+)\.", indexed({0: "upscale_conv1", 1: "upscale_layer_norm", 3: "upscale_conv2"})),
    # Three-layer MLP heads of the mask decoder, and the object-pointer projection.
    (HEADS, indexed(THREE_LAYERS)),
    # Memory attention: norms.
    (r"^(memory_attention\.layers\.\d+)\.norm(\d)\.", r"\1.layer_norm\2."),
    (r"^memory_attention\.norm\.", "memory_attention.layer_norm."),
    # Memory encoder: mask downsampler, feature projection, fuser's ConvNeXt blocks, output conv
    # (before the attention rule below, which would make it o_proj).
    (r"^memory_encoder\.mask_downsampler\.encoder\.(\d+)\.", downsampler_layer),
    (r"^memory_encoder\.pix_feat_proj\.", "memory_encoder.feature_projection."),
    (r"^memory_encoder\.out_proj\.", "memory_encoder.projection."),
    (r"^memory_encoder\.fuser\.", "memory_encoder.memory_fuser."),
    (r"^(memory_encoder\.memory_fuser\.layers\.\d+)\.gamma$", r"\1.scale"),
    (r"^(memory_encoder\.memory_fuser\.layers\.\d+)\.dwconv\.", r"\1.depthwise_conv."),
    (r"^(memory_encoder\.memory_fuser\.layers\.\d+)\.norm\.", r"\1.layer_norm."),
    (r"^(memory_encoder\.memory_fuser\.layers\.\d+)\.pwconv(\d)\.", r"\1.pointwise_conv\2."),
    # Every attention's output projection (mask decoder and memory attention).
    (r"\.out_proj\.", ".o_proj."),
]
PERCEIVER_LAYER = r"^(spatial_perceiver\.layers\.\d+)"
EDGETAM_INSIDE = [
    *SAM2_INSIDE,
    # Memory attention's feed-forward: transformers' EdgeTAM names it as an MLP (SAM 2's keeps linear1/2).
    (r"^(memory_attention\.layers\.\d+)\.linear1\.", r"\1.mlp.up_proj."),
    (r"^(memory_attention\.layers\.\d+)\.linear2\.", r"\1.mlp.down_proj."),
    # Spatial perceiver: latents, norms, the cross- and self-attentions (fused to_kv split below),
    # and their feed-forwards nn.Sequential(LayerNorm, Linear, GELU, Linear).
    (r"^spatial_perceiver\.latents$", "spatial_perceiver.latents_1d"),
    (r"^spatial_perceiver\.norm\.", "spatial_perceiver.layer_norm."),
    (PERCEIVER_LAYER + r"\.attn\.norm_x\.", r"\1.layer_norm_input."),
    (PERCEIVER_LAYER + r"\.attn\.norm_latents\.", r"\1.layer_norm_latents."),
    (PERCEIVER_LAYER + r"\.self_attn\.norm\.", r"\1.layer_norm_self."),
    (PERCEIVER_LAYER + r"\.attn\.", r"\1.cross_attention."),
    (PERCEIVER_LAYER + r"\.self_attn\.", r"\1.self_attention."),
    (PERCEIVER_LAYER + r"\.(cross_attention|self_attention)\.to_(q|kv)\.", r"\1.\2.\3_proj."),
    (PERCEIVER_LAYER + r"\.(cross_attention|self_attention)\.to_out\.", r"\1.\2.o_proj."),
    (PERCEIVER_LAYER + r"\.ff\.(\d+)\.", indexed({0: "mlp.layer_norm", 1: "mlp.up_proj", 3: "mlp.down_proj"})),
    (PERCEIVER_LAYER + r"\.self_ff\.(\d+)\.", indexed({0: "self_mlp.layer_norm", 1: "self_mlp.up_proj", 3: "self_mlp.down_proj"})),
]

Rules = list[tuple[re.Pattern, Replacement]]


def compiled(rules: list[tuple[str, Replacement]]) -> Rules:
    return [(re.compile(pattern), replacement) for pattern, replacement in rules]


RULES = {
    "sam2": (compiled(SAM2_TOP), compiled(SAM2_INSIDE)),
    EDGETAM: (compiled(EDGETAM_TOP), compiled(EDGETAM_INSIDE)),
}


def rename(name: str, top: Rules, inside: Rules) -> str | None:
    """The transformers name of a Meta key, or None when no top-level rule takes it."""
    for pattern, replacement in top:
        if pattern.search(name):
            name = pattern.sub(replacement, name, count=1)
            break
    else:
        return None
    for pattern, replacement in inside:
        name = pattern.sub(replacement, name)
    return name


# ---------------------------------------------------------------------------------------------
# Tensors that are not one-to-one
# ---------------------------------------------------------------------------------------------

KV_PROJ = ".kv_proj."
POINT_EMBED = re.compile(r"^prompt_encoder\.point_embed\.(\d+)\.weight$")
PROMPT_FOURIER = "prompt_encoder.shared_embedding.positional_embedding"
IMAGE_FOURIER = "shared_image_embedding.positional_embedding"


def reshape_tensors(converted: dict[str, torch.Tensor], origin: dict[str, str]) -> None:
    """In place: split EdgeTAM's fused key-value projections, stack the point embeddings into one
    table, and give transformers' image-wide positional embedding its copy of the Fourier matrix."""
    for name in [n for n in converted if KV_PROJ in n]:
        key, value = converted.pop(name).chunk(2, dim=0)  # Meta: k, v = to_kv(x).chunk(2, dim=-1)
        for part, tensor in (("k_proj", key), ("v_proj", value)):
            converted[name.replace(KV_PROJ, f".{part}.")] = tensor.clone()
            origin[name.replace(KV_PROJ, f".{part}.")] = origin[name]
    points = sorted((int(m.group(1)), n) for n in converted if (m := POINT_EMBED.match(n)))
    if points:
        table = "prompt_encoder.point_embed.weight"
        converted[table] = torch.cat([converted.pop(n) for _, n in points], dim=0)
        origin[table] = "sam_prompt_encoder.point_embeddings.*.weight"
    if PROMPT_FOURIER in converted:
        converted[IMAGE_FOURIER] = converted[PROMPT_FOURIER].clone()
        origin[IMAGE_FOURIER] = origin[PROMPT_FOURIER]


@lru_cache(maxsize=None)
def hf_shapes(model_key: str) -> dict[str, tuple[int, ...]]:
    """The state dict's names and shapes of that transformers model (built on the meta device: no memory, no init)."""
    with torch.device("meta"):
        model = model_class(model_key)(hf_config(model_key))
    return {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}


def shown(names: list[str]) -> str:
    more = f" (+{len(names) - SHOWN_KEYS} more)" if len(names) > SHOWN_KEYS else ""
    return ", ".join(names[:SHOWN_KEYS]) + more


def convert_state_dict(model_key: str, state_dict: dict) -> dict:
    """Meta's state dict of that model under transformers' names (the same tensors, reshaped where
    the layouts differ). Keys that are not this model's, or transformers keys left without a value,
    are a ValueError naming the first few."""
    family = EDGETAM if split_key(model_key)[0] == EDGETAM else "sam2"
    top, inside = RULES[family]
    converted: dict[str, torch.Tensor] = {}
    origin: dict[str, str] = {}  # transformers name -> the Meta key it came from
    unmatched = []
    for name, tensor in state_dict.items():
        new = rename(name, top, inside)
        if new is None:
            unmatched.append(name)
            continue
        converted[new] = tensor
        origin[new] = name
    reshape_tensors(converted, origin)
    expected = hf_shapes(model_key)
    unexpected = [origin[n] for n in converted if n not in expected]
    missing = [n for n in expected if n not in converted]
    problems = [
        f"{label}: {shown(names)}"
        for label, names in (
            ("keys that match no rule", unmatched),
            ("keys with no place in the model", unexpected),
            ("model keys missing", missing),
        )
        if names
    ]
    if problems:
        raise ValueError(f"not a state dict of {model_key} ({'; '.join(problems)})")
    return converted


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------

OFFICIAL_FORMAT = 'the official format, a torch.save file of {"model": state_dict} (e.g. sam2.1_hiera_tiny.pt, edgetam.pt)'


def read_official(checkpoint: Path) -> dict:
    """The state dict of an official checkpoint file; anything else is a ValueError naming the file."""
    try:
        loaded = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{checkpoint} cannot be read as a checkpoint ({reason}); expected {OFFICIAL_FORMAT}") from None
    if not isinstance(loaded, dict) or not isinstance(loaded.get("model"), dict):
        raise ValueError(f"{checkpoint} has no 'model' state dict; expected {OFFICIAL_FORMAT}")
    return loaded["model"]


def shape_mismatches(model: torch.nn.Module, converted: dict[str, torch.Tensor]) -> list[str]:
    own = model.state_dict()
    return [f"{n} {tuple(t.shape)} vs {tuple(own[n].shape)}" for n, t in converted.items() if n in own and t.shape != own[n].shape]


def convert_checkpoint(model_key: str, checkpoint: Path, out_dir: Path, imgsz: int | None = None) -> Path:
    """Convert an official checkpoint of that model into a transformers model folder at out_dir
    (model and processor, at input size imgsz; None: 1024) and return out_dir. A file that is not
    that model's official checkpoint is a ValueError naming it and the model key."""
    checkpoint, out_dir = Path(checkpoint), Path(out_dir)
    state_dict = read_official(checkpoint)
    try:
        converted = convert_state_dict(model_key, state_dict)
    except ValueError as exc:
        raise ValueError(f"{checkpoint}: {exc}") from None
    model = model_class(model_key)(hf_config(model_key, imgsz))
    if mismatches := shape_mismatches(model, converted):
        raise ValueError(f"{checkpoint} does not fit {model_key}: tensor shapes differ (checkpoint vs model): {shown(mismatches)}")
    model.load_state_dict(converted, strict=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    hf_processor(model_key, imgsz).save_pretrained(out_dir)
    return out_dir
