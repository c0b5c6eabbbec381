"""The converter from official SAM 2 / 2.1 and EdgeTAM checkpoints to transformers model folders,
checked against the owners' own models: from one random-weight official checkpoint, Meta's sam2
package (or EdgeTAM's fork) computes the expected image features and mask logits, and the converted
folder, loaded with transformers' from_pretrained, must compute the same.

Tolerance: ATOL = 1e-4 on values of order 0.1-5 (features, positional encodings, mask logits, object
pointers). Both sides run the same float32 operations, arranged differently, so they may differ by
rounding. Measured: features 0 (EdgeTAM up to 4e-7), SAM 2.1 logits and pointers up to 3e-7, EdgeTAM's
tracked frames up to 1.3e-5 (both sides store memories in bfloat16, where a rounding difference can
cross a step). The wrong mappings tried (two norms, two MLP layers or k and v swapped, a global-
attention block moved) moved values by 1e-2 to 1.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from checkpoints import EDGETAM, SAM21_TINY, SCORE_HEAD, write_checkpoint
from conftest import ROOT, environment
from PIL import Image

transformers = pytest.importorskip("transformers")

from sav_benchmark.errors import UsageError  # noqa: E402  (after the skip above)
from sav_benchmark.runners import hf_convert  # noqa: E402
from sav_benchmark.runners.sizes import sam2_size_overrides  # noqa: E402

IMGSZ = 256  # the smallest size EdgeTAM takes; small enough for a CPU
FRAMES = 3  # a prompt frame and two tracked ones: the memory path (encoder, attention, perceiver) runs
POINT = (100.0, 120.0)  # x, y in pixels of the IMGSZ x IMGSZ frames
ATOL = 1e-4  # see the module docstring
SAM2_CONFIGS = {
    f"{family}_{size}": f"configs/{family}/{family}_hiera_{short}.yaml"
    for family in ("sam2.1", "sam2")
    for size, short in (("tiny", "t"), ("small", "s"), ("base_plus", "b+"), ("large", "l"))
}

# Run where the model's own `sam2` is importable (Meta's, or EdgeTAM's fork first on the path):
# the owners' features for one image, and their mask logits at video resolution for a point on
# frame 0 and then tracked through the video. transformers always binarizes a clicked frame's mask
# before encoding it into memory (Meta's binarize_mask_from_pts_for_mem_enc, which Meta's
# apply_postprocessing=True sets); that one switch is set here, the rest of that option (hole
# filling, dynamic multimask, which a single point never reaches) stays off. The object pointers are
# read from the predictor's stored outputs, as transformers' are from its session.
OWNER_RUN = """
import sys, torch
config, family, imgsz, checkpoint, frames, image, out, x, y = sys.argv[1:10]
from sav_benchmark.runners.edgetam import _backbone_without_download
from sav_benchmark.runners.sizes import SIZE_OVERRIDES
if family == "edgetam":
    _backbone_without_download()
from sam2.build_sam import build_sam2_video_predictor
overrides = SIZE_OVERRIDES[family](int(imgsz)) + ["++model.binarize_mask_from_pts_for_mem_enc=true"]
predictor = build_sam2_video_predictor(config, checkpoint, device="cpu", hydra_overrides_extra=overrides, apply_postprocessing=False)
with torch.inference_mode():
    backbone = predictor.forward_image(torch.load(image))
    state = predictor.init_state(frames)
    _, _, prompted = predictor.add_new_points_or_box(state, frame_idx=0, obj_id=1, points=[[float(x), float(y)]], labels=[1])
    tracked = [masks for _, _, masks in predictor.propagate_in_video(state)]
stored = state["output_dict_per_obj"][0]
pointers = [stored["cond_frame_outputs" if index == 0 else "non_cond_frame_outputs"][index]["obj_ptr"] for index in range(len(tracked))]
maps = {"features": backbone["backbone_fpn"], "positions": backbone["vision_pos_enc"]}
torch.save({**maps, "prompted": prompted, "tracked": tracked, "pointers": pointers}, out)
"""


def meta_sam2():
    return pytest.importorskip("sam2.build_sam", reason="Meta's sam2 package is not installed")


def meta_state_dict(model_key: str) -> dict:
    """The state dict of Meta's own model for that key, random weights, built in this process."""
    return meta_sam2().build_sam2_video_predictor(SAM2_CONFIGS[model_key], None, device="cpu").state_dict()


def vary(state: dict) -> dict:
    """The state dict with every constant tensor (LayerNorm and BatchNorm weights and statistics,
    zero biases, zero position embeddings, layer scales) made random around its value: at their
    initial values, two such tensors swapped by a wrong name mapping would compute the same.
    The object-score head keeps its fixed "present" (checkpoints.py)."""
    generator = torch.Generator().manual_seed(3)
    varied = {}
    for name, tensor in state.items():
        if tensor.is_floating_point() and tensor.numel() > 1 and bool((tensor == tensor.flatten()[0]).all()) and SCORE_HEAD not in name:
            tensor = tensor + 0.1 * torch.randn(tensor.shape, generator=generator)
        varied[name] = tensor
    return varied


def assert_close(what: str, expected: torch.Tensor, got: torch.Tensor) -> None:
    assert expected.shape == got.shape, f"{what}: shape {tuple(got.shape)}, Meta's {tuple(expected.shape)}"
    assert expected.std() > 0, f"{what}: Meta's values are constant, the comparison would say nothing"
    diff = (expected.float() - got.float()).abs().max().item()
    assert diff <= ATOL, f"{what}: max abs diff {diff:.3g} > {ATOL}"


def write_frames(folder: Path) -> list[np.ndarray]:
    """A video of IMGSZ x IMGSZ JPEG frames (at the input size, neither pipeline's resize changes a
    pixel), as the RGB arrays the transformers processor takes."""
    folder.mkdir()
    base = np.random.default_rng(0).integers(0, 256, (IMGSZ, IMGSZ, 3), dtype=np.uint8)
    frames = []
    for index in range(FRAMES):
        path = folder / f"{index:05d}.jpg"
        Image.fromarray(np.roll(base, 8 * index, axis=1)).save(path, quality=95)
        with Image.open(path) as image:
            frames.append(np.asarray(image.convert("RGB")))
    return frames


def owner_outputs(tmp_path: Path, config: str, family: str, checkpoint: Path, frames: Path, image: Path, repo: str | None) -> dict:
    out = tmp_path / "owner.pt"
    run = subprocess.run(
        [sys.executable, "-c", OWNER_RUN, config, family, str(IMGSZ), str(checkpoint), str(frames), str(image), str(out), *map(str, POINT)],
        capture_output=True,
        text=True,
        env=environment(pythonpath=(repo,) if repo else (ROOT,)),
        cwd=ROOT,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr
    return torch.load(out, weights_only=True)


def video_logits(processor, output) -> torch.Tensor:
    return processor.post_process_masks([output.pred_masks], original_sizes=[[IMGSZ, IMGSZ]], binarize=False)[0]


def transformers_outputs(model, processor, frames: list[np.ndarray], image: torch.Tensor) -> dict:
    """The same as OWNER_RUN, through transformers' own API."""
    with torch.inference_mode():
        vision = model.get_image_features(image)
        session = processor.init_video_session(video=frames, inference_device="cpu")
        processor.add_inputs_to_inference_session(session, frame_idx=0, obj_ids=1, input_points=[[[list(POINT)]]], input_labels=[[[1]]])
        prompted = video_logits(processor, model(inference_session=session, frame_idx=0))
        tracked = [video_logits(processor, output) for output in model.propagate_in_video_iterator(session)]
    stored = session.output_dict_per_obj[0]
    pointers = [
        stored["cond_frame_outputs" if index == 0 else "non_cond_frame_outputs"][index]["object_pointer"] for index in range(len(tracked))
    ]
    return {
        "features": vision.fpn_hidden_states,
        "positions": vision.fpn_position_encoding,
        "prompted": prompted,
        "tracked": tracked,
        "pointers": pointers,
    }


def assert_same_as_owner(tmp_path: Path, model_key: str, model_class, config: str, family: str, repo: str | None = None) -> None:
    checkpoint = write_checkpoint(tmp_path / "official.pt", config, family, IMGSZ, repo)
    torch.save({"model": vary(torch.load(checkpoint, weights_only=True)["model"])}, checkpoint)
    folder = hf_convert.convert_checkpoint(model_key, checkpoint, tmp_path / "hf", imgsz=IMGSZ)
    frames = write_frames(tmp_path / "frames")
    image = torch.randn(1, 3, IMGSZ, IMGSZ, generator=torch.Generator().manual_seed(1))
    torch.save(image, tmp_path / "image.pt")
    expected = owner_outputs(tmp_path, config, family, checkpoint, tmp_path / "frames", tmp_path / "image.pt", repo)

    model = model_class.from_pretrained(folder).eval()
    processor = transformers.Sam2VideoProcessor.from_pretrained(folder)
    got = transformers_outputs(model, processor, frames, image)

    for kind in ("features", "positions"):
        assert len(got[kind]) == len(expected[kind]) == 3
        for level, (theirs, ours) in enumerate(zip(expected[kind], got[kind])):
            # Meta's are NxCxHxW maps, transformers' the flattened HWxNxC sequences
            assert_close(f"{kind} level {level}", theirs.flatten(2).permute(2, 0, 1), ours)
    assert_close("prompted frame's mask logits", expected["prompted"], got["prompted"])
    # Each frame's object pointer, from both pipelines' stored outputs: the pointer projection's own
    # check (the tracked masks depend on the pointers only weakly). transformers keeps one more
    # dimension of size 1 (1 x 1 x 256 against Meta's 1 x 256).
    for index, (theirs, ours) in enumerate(zip(expected["pointers"], got["pointers"], strict=True)):
        assert ours.numel() == theirs.numel()
        assert_close(f"frame {index}'s object pointer", theirs, ours.reshape(theirs.shape))
    assert len(got["tracked"]) == len(expected["tracked"]) == FRAMES
    for index, (theirs, ours) in enumerate(zip(expected["tracked"], got["tracked"])):
        assert_close(f"frame {index}'s tracked mask logits", theirs, ours)


@pytest.mark.slow
def test_sam21_tiny_computes_what_metas_model_computes(tmp_path):
    meta_sam2()
    assert_same_as_owner(tmp_path, "sam2.1_tiny", transformers.Sam2VideoModel, SAM21_TINY, "sam2.1")


@pytest.mark.slow
def test_edgetam_computes_what_the_forks_model_computes(tmp_path):
    repo = os.environ.get("EDGETAM_REPO")
    if not repo:
        pytest.skip("set EDGETAM_REPO to a checkout of github.com/facebookresearch/EdgeTAM (timm installed) to check EdgeTAM")
    assert (Path(repo) / "sam2" / "configs" / "edgetam.yaml").is_file(), f"EDGETAM_REPO={repo} is not an EdgeTAM checkout"
    assert_same_as_owner(tmp_path, "edgetam", transformers.EdgeTamVideoModel, EDGETAM, "edgetam", repo)


@pytest.mark.parametrize("model_key", list(SAM2_CONFIGS))
def test_every_parameter_of_every_sam2_model_comes_from_metas_checkpoint(model_key):
    """Every transformers parameter and buffer is filled, with the shape of the model's own
    architecture (strict load), from Meta's state dict of that model; nothing is left over."""
    converted = hf_convert.convert_state_dict(model_key, meta_state_dict(model_key))
    with torch.device("meta"):  # shapes only: no memory, no initialisation
        model = hf_convert.model_class(model_key)(hf_convert.hf_config(model_key))
    model.load_state_dict(converted, strict=True, assign=True)


@pytest.mark.slow
@pytest.mark.parametrize("model_key", ["sam2.1_small", "sam2.1_base_plus", "sam2.1_large"])
def test_every_hiera_trunk_computes_metas_features(model_key):
    """The settings a strict load cannot see (attention heads, windows, global blocks) for the
    other trunks (tiny: above; SAM 2 shares SAM 2.1's trunks): the same features as Meta's model."""
    build = meta_sam2().build_sam2_video_predictor
    meta = build(SAM2_CONFIGS[model_key], None, device="cpu", hydra_overrides_extra=sam2_size_overrides(IMGSZ)).eval()
    meta.load_state_dict(vary(meta.state_dict()))
    model = hf_convert.model_class(model_key)(hf_convert.hf_config(model_key, IMGSZ)).eval()
    model.load_state_dict(hf_convert.convert_state_dict(model_key, meta.state_dict()), strict=True)
    image = torch.randn(1, 3, IMGSZ, IMGSZ, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        expected = meta.forward_image(image)["backbone_fpn"]
        got = model.get_image_features(image).fpn_hidden_states
    for level, (theirs, ours) in enumerate(zip(expected, got, strict=True)):
        assert_close(f"{model_key} features level {level}", theirs.flatten(2).permute(2, 0, 1), ours)


def test_transformers_default_configuration_is_sam21_tiny():
    assert transformers.Sam2VideoConfig().to_dict() == hf_convert.hf_config("sam2.1_tiny").to_dict()


@pytest.mark.parametrize("model_key", ["sam2_small", "edgetam"])
def test_the_processor_resizes_frames_as_metas_loader_does(model_key, tmp_path):
    """Meta's loader resizes every frame to image_size x image_size; so does the saved processor."""
    hf_convert.hf_processor(model_key, 512).save_pretrained(tmp_path)
    processor = transformers.Sam2VideoProcessor.from_pretrained(tmp_path)
    frame = np.zeros((200, 300, 3), dtype=np.uint8)
    session = processor.init_video_session(video=[frame], inference_device="cpu")
    assert tuple(session.get_frame(0).shape) == (3, 512, 512)
    assert processor.target_size == 512


def test_a_size_the_model_cannot_take_is_refused():
    with pytest.raises(UsageError, match="--imgsz 384: EdgeTAM needs a multiple of 256"):
        hf_convert.hf_config("edgetam", 384)


def test_an_unknown_model_key_is_refused():
    with pytest.raises(ValueError, match=r"unknown model key 'sam2.1_huge'; expected one of sam2.1_tiny, "):
        hf_convert.hf_config("sam2.1_huge")


def test_a_file_without_a_model_state_dict_is_refused_naming_it_and_the_format(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"state_dict": {}}, path)
    with pytest.raises(ValueError) as refused:
        hf_convert.convert_checkpoint("sam2.1_tiny", path, tmp_path / "out")
    assert str(refused.value) == (
        f"{path} has no 'model' state dict; expected the official format, a torch.save file of "
        '{"model": state_dict} (e.g. sam2.1_hiera_tiny.pt, edgetam.pt)'
    )
    path.write_text("not a checkpoint")
    with pytest.raises(ValueError, match=f"^{path} cannot be read as a checkpoint .*expected the official format"):
        hf_convert.convert_checkpoint("sam2.1_tiny", path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def refusal(model_key: str, state_dict: dict) -> str:
    with pytest.raises(ValueError) as refused:
        hf_convert.convert_state_dict(model_key, state_dict)
    message = str(refused.value)
    assert "\n" not in message
    return message


def test_another_sizes_checkpoint_is_refused_naming_the_keys():
    message = refusal("sam2.1_tiny", meta_state_dict("sam2.1_small"))
    assert message.startswith(
        "not a state dict of sam2.1_tiny (keys with no place in the model: image_encoder.trunk.blocks.12.norm1.weight, "
    )


def test_sam2_and_sam21_checkpoints_are_told_apart():
    # SAM 2.1 has the occlusion embedding and the object pointers' temporal projection; SAM 2 has neither.
    message = refusal("sam2_tiny", meta_state_dict("sam2.1_tiny"))
    assert message == (
        "not a state dict of sam2_tiny (keys with no place in the model: no_obj_embed_spatial, "
        "obj_ptr_tpos_proj.weight, obj_ptr_tpos_proj.bias)"
    )
    message = refusal("sam2.1_tiny", meta_state_dict("sam2_tiny"))
    assert message == (
        "not a state dict of sam2.1_tiny (model keys missing: occlusion_spatial_embedding_parameter, "
        "temporal_positional_encoding_projection_layer.weight, temporal_positional_encoding_projection_layer.bias)"
    )


def test_keys_of_another_model_family_match_no_rule():
    foreign = {**meta_state_dict("sam2.1_tiny"), "spatial_perceiver.latents": torch.zeros(256, 64), "backbone.conv1.weight": torch.zeros(1)}
    assert (
        refusal("sam2.1_tiny", foreign)
        == "not a state dict of sam2.1_tiny (keys that match no rule: spatial_perceiver.latents, backbone.conv1.weight)"
    )


def test_a_tensor_of_another_shape_is_refused_naming_checkpoint_and_model_key(tmp_path):
    state = {**meta_state_dict("sam2.1_tiny"), "no_obj_ptr": torch.zeros(1, 128)}
    path = tmp_path / "sam2.1_hiera_tiny.pt"
    torch.save({"model": state}, path)
    with pytest.raises(ValueError) as refused:
        hf_convert.convert_checkpoint("sam2.1_tiny", path, tmp_path / "out")
    assert str(refused.value) == (
        f"{path} does not fit sam2.1_tiny: tensor shapes differ (checkpoint vs model): no_object_pointer (1, 128) vs (1, 256)"
    )
