"""The transformers backend (hf_* models) through the CLI: model folders saved with save_pretrained
(or converted from an official checkpoint) and loaded with from_pretrained, at small sizes on the CPU."""

import json
import shutil

import numpy as np
import pytest
from checkpoints import write_checkpoint
from conftest import assert_usage_error, cli, require, rows_of

from sav_benchmark.masks import read_mask
from sav_benchmark.split.synthetic import make_split

require("transformers")
require("sam2.build_sam")

SCORE_HEAD = "mask_decoder.pred_obj_score_head.proj_out"  # fixed at "object present", as tests/checkpoints.py does
MODELS = "sam2.1_tiny_points,hf_sam2.1_tiny_points,hf_edgetam_points,hf_sam3_tracker_points"
SIZES = ("--imgsz", "256", "--imgsz_for", "hf_sam3_tracker=336")


def small_sam3_tracker():
    """The SAM 3 tracker with a small ViT (2 layers of 64): the default's 32 layers of 1024 take seconds a frame here."""
    import transformers

    backbone = transformers.Sam3ViTConfig(
        hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2, global_attn_indexes=[1]
    )
    config = transformers.Sam3TrackerVideoConfig(vision_config=transformers.Sam3VisionConfig(backbone_config=backbone))
    config.image_size = 336
    return transformers.Sam3TrackerVideoModel(config)


def save_present(model, folder):
    """save_pretrained with the object-score head fixed at "present", so that masks are not all empty."""
    import torch

    with torch.no_grad():
        getattr(model, SCORE_HEAD.split(".")[0]).pred_obj_score_head.proj_out.weight.zero_()
        getattr(model, SCORE_HEAD.split(".")[0]).pred_obj_score_head.proj_out.bias.fill_(20.0)
    model.save_pretrained(folder)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """An official sam2.1 tiny checkpoint, its conversion, and EdgeTAM's and the SAM 3 tracker's folders."""
    import torch
    import transformers

    from sav_benchmark.runners.hf_convert import convert_checkpoint, hf_config

    folder = tmp_path_factory.mktemp("checkpoints")
    official = write_checkpoint(folder / "sam2.1_hiera_tiny.pt", imgsz=256)
    convert_checkpoint("sam2.1_tiny", official, folder / "sam2.1-hiera-tiny", imgsz=256)
    torch.manual_seed(0)
    save_present(transformers.EdgeTamVideoModel(hf_config("edgetam", 256)), folder / "EdgeTAM-hf")
    save_present(small_sam3_tracker(), folder / "sam3")
    return folder


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    made = tmp_path_factory.mktemp("split")
    make_split(made, videos=1, frames=9, width=96, height=72)
    return made


def run(split, checkpoints, out, *extra, models=MODELS):
    sizes = SIZES if "hf_sam3_tracker" in models else SIZES[:2]
    return cli(
        "--split_dir", split, "--models", models, "--checkpoint_dir", checkpoints, *sizes, "--device", "cpu", "--output", out, *extra
    )


@pytest.mark.slow
def test_one_run_holds_both_backends_edgetam_and_the_sam3_tracker(split, checkpoints, tmp_path):
    out = tmp_path / "run.csv"
    result = run(split, checkpoints, out)
    assert result.returncode == 0, result.stderr
    rows = rows_of(out)
    assert {row["status"] for row in rows} == {"ok"}
    assert sorted({row["model"] for row in rows}) == sorted(MODELS.split(","))
    assert {row["model"]: row["imgsz"] for row in rows} == {
        "sam2.1_tiny_points": "256",
        "hf_sam2.1_tiny_points": "256",
        "hf_edgetam_points": "256",
        "hf_sam3_tracker_points": "336",
    }
    assert {row["stream"] for row in rows} == {"on"}
    assert all(float(row["stage_image_encoder_ms_mean"]) > 0 for row in rows)  # transformers' stages are timed too
    manifest = json.loads(out.with_name("run.csv.json").read_text())
    folder = manifest["checkpoints"]["sam3"]
    assert set(folder["files"]) == {"config.json", "model.safetensors"} and len(folder["sha256"]) == 64
    assert manifest["environment"]["transformers"] == __import__("transformers").__version__


@pytest.mark.slow
def test_streaming_changes_no_mask_of_a_transformers_model(split, checkpoints, tmp_path):
    masks = {}
    for mode in ("--stream", "--no-stream"):
        out = tmp_path / mode.strip("-")
        result = run(split, checkpoints, out / "run.csv", mode, "--save_masks", out / "masks", models="hf_sam2.1_tiny_points")
        assert result.returncode == 0, result.stderr
        masks[mode] = {p.relative_to(out / "masks"): read_mask(p) for p in sorted((out / "masks").rglob("*.png"))}
    assert masks["--stream"].keys() == masks["--no-stream"].keys() and masks["--stream"]
    assert any(mask.any() for mask in masks["--stream"].values())  # the object score head keeps objects present
    for name, mask in masks["--stream"].items():
        assert np.array_equal(mask, masks["--no-stream"][name]), name


def test_models_says_what_each_transformers_model_needs(tmp_path):
    result = cli("models", "--checkpoint_dir", tmp_path)
    lines = {line.split()[0]: line for line in result.stdout.splitlines()}
    assert lines["hf_edgetam_points"].split(None, 1)[1] == (
        f"cannot run  unknown               model folder {tmp_path / 'EdgeTAM-hf'} not found (or it has no config.json); fetch it with "
        "scripts/download_checkpoints.sh, convert an official checkpoint with the convert command, or use --weights random "
        "for a speed-only run"
    )
    random = {line.split()[0]: line for line in cli("models", "--weights", "random").stdout.splitlines()}
    assert "ready       unknown               transformers (" in random["hf_sam3_tracker_bbox"] and random["hf_sam3_tracker_bbox"].endswith(
        "Sam3TrackerVideoModel"
    )


def test_a_folder_that_is_not_a_transformers_model_is_refused(split, tmp_path):
    (tmp_path / "EdgeTAM-hf").mkdir()
    (tmp_path / "EdgeTAM-hf" / "edgetam.pt").write_bytes(b"not a folder of transformers")
    result = cli("--split_dir", split, "--models", "hf_edgetam_points", "--checkpoint_dir", tmp_path, "--output", tmp_path / "r.csv")
    assert_usage_error(
        result,
        f"hf_edgetam_points cannot run here: model folder {tmp_path / 'EdgeTAM-hf'} not found (or it has no config.json); fetch it with "
        "scripts/download_checkpoints.sh, convert an official checkpoint with the convert command, or use --weights random for a "
        "speed-only run",
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["EdgeTAM-hf"]


def test_a_folder_of_another_model_is_refused(split, checkpoints, tmp_path):
    shutil.copytree(checkpoints / "sam3", tmp_path / "EdgeTAM-hf")
    result = cli("--split_dir", split, "--models", "hf_edgetam_bbox", "--checkpoint_dir", tmp_path, "--output", tmp_path / "r.csv")
    assert_usage_error(
        result,
        f"hf_edgetam_bbox cannot run here: {tmp_path / 'EdgeTAM-hf'} holds a sam3_tracker_video model, not edgetam_video; put that "
        "model's folder there (docs/backends.md names each folder)",
    )


def test_sizes_a_model_cannot_take_are_refused(split, tmp_path):
    args = ("--split_dir", split, "--weights", "random", "--output", tmp_path / "r.csv")
    assert_usage_error(
        cli(*args, "--models", "hf_sam2.1_tiny_points,hf_sam3_tracker_mask", "--imgsz", "256"),
        "--imgsz 256: the SAM 3 tracker needs a multiple of 336 (its ViT tiles 24x24 windows of 14-pixel patches), e.g. 336 "
        "or 672; give it its own with --imgsz_for hf_sam3_tracker=336",
    )
    assert_usage_error(
        cli(*args, "--models", "hf_sam2.1_tiny_points", "--imgsz_for", "hf_sam3_trackr=336"),
        "--imgsz_for hf_sam3_trackr=336: --models runs no hf_sam3_trackr model; give one of hf_sam2.1_tiny",
    )
    assert_usage_error(
        cli(*args, "--models", "hf_sam3_tracker_points", "--imgsz_for", "hf_sam3_trackr=336"),
        "--imgsz_for hf_sam3_trackr=336: --models runs no hf_sam3_trackr model; did you mean hf_sam3_tracker? give one of hf_sam3_tracker",
    )
    assert not list(tmp_path.iterdir())


def test_convert_writes_the_folder_that_the_hf_models_read(tmp_path):
    official = write_checkpoint(tmp_path / "sam2.1_hiera_tiny.pt", imgsz=256)
    result = cli("convert", "sam2.1_tiny", official, "--imgsz", "256")
    folder = tmp_path / "sam2.1-hiera-tiny"
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == f"jetson_benchmark.py: {official} converted for hf_sam2.1_tiny_*: {folder}\n"
    assert json.loads((folder / "config.json").read_text())["model_type"] == "sam2_video"
    listed = cli("models", "--checkpoint_dir", tmp_path).stdout.splitlines()
    assert "ready" in next(line for line in listed if line.startswith("hf_sam2.1_tiny_mask "))
    assert_usage_error(
        cli("convert", "sam2.1_tiny", official, "--imgsz", "256"),
        f"convert: --out {folder} exists already; choose another folder, or add --force to replace it",
    )


def test_convert_refuses_what_it_cannot_convert(tmp_path):
    assert_usage_error(
        cli("convert", "sam2.1_tiy", tmp_path / "x.pt"),
        "convert: no model sam2.1_tiy; did you mean sam2.1_tiny? give one of sam2.1_tiny, sam2.1_small, sam2.1_base_plus, "
        "sam2.1_large, sam2_tiny, sam2_small, sam2_base_plus, sam2_large, edgetam",
    )
    assert_usage_error(
        cli("convert", "edgetam", tmp_path / "edgetam.pt"),
        f"convert: checkpoint {tmp_path / 'edgetam.pt'} not found; fetch it with scripts/download_checkpoints.sh",
    )
    not_a_checkpoint = tmp_path / "sam2.1_hiera_tiny.pt"
    not_a_checkpoint.write_bytes(b"not a checkpoint")
    result = cli("convert", "sam2.1_tiny", not_a_checkpoint)
    assert (result.returncode, result.stdout, result.stderr.count("\n")) == (2, "", 1)
    assert result.stderr.startswith(f"jetson_benchmark.py: error: convert: {not_a_checkpoint} cannot be read as a checkpoint")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sam2.1_hiera_tiny.pt"]  # nothing written


@pytest.mark.slow
def test_transformers_edgetam_tracks_objects_together(split, checkpoints, tmp_path):
    """Unlike EdgeTAM's own predictor (github.com/facebookresearch/EdgeTAM/issues/15), transformers'
    EdgeTamVideoModel tracks several objects in one state, each with the masks it has alone."""
    masks = {}
    for objects in ("together", "separate"):
        out = tmp_path / objects
        result = run(split, checkpoints, out / "run.csv", "--objects", objects, "--save_masks", out / "masks", models="hf_edgetam_points")
        assert result.returncode == 0, result.stderr
        rows = rows_of(out / "run.csv")
        assert {row["status"] for row in rows} == {"ok"}
        masks[objects] = {p.relative_to(out / "masks"): read_mask(p) for p in sorted((out / "masks").rglob("*.png"))}
        if objects == "together":
            assert max(int(row["objects_in_job"]) for row in rows) >= 2
    assert masks["together"].keys() == masks["separate"].keys() and masks["together"]
    for name, mask in masks["together"].items():
        assert np.array_equal(mask, masks["separate"][name]), name


@pytest.mark.slow
def test_streaming_drops_what_no_later_frame_reads_and_fails_if_it_drops_more(checkpoints, tmp_path, monkeypatch):
    """On a video longer than the 16-frame pointer window, --stream drops outputs, the masks stay
    the plain path's, and keeping one frame fewer fails the job instead of changing them."""
    from sav_benchmark.run import make_job
    from sav_benchmark.runners import MODELS, hf_video
    from sav_benchmark.runners.base import RunSettings
    from sav_benchmark.runners.streaming import StreamingFailed
    from sav_benchmark.split import prepare_split

    make_split(tmp_path / "long", videos=1, frames=24, width=96, height=72)
    split = prepare_split(tmp_path / "long", limit_objects=1)
    job = make_job(split, split.videos[0], split.videos[0].objects)

    def track(stream):
        settings = RunSettings("cpu", "float32", 256, "checkpoint", checkpoints, stream=stream, stages=False)
        runner = hf_video.HfVideoRunner(MODELS["hf_sam2.1_tiny_points"], settings)
        runner.build()
        try:
            with runner.inference_context():
                runner.init_video(job)
                runner.add_prompt(job)
                masks = {frame: found[0] for frame, found, *_ in runner.propagate(job)}
                return masks, set().union(*(outputs.dropped for outputs in runner.watched))
        finally:
            runner.cleanup()

    streamed, dropped = track(True)
    plain, _ = track(False)
    assert dropped and len(streamed) == 24 - job.start_frame
    assert streamed.keys() == plain.keys() and all(np.array_equal(streamed[f], plain[f]) for f in plain)
    assert any(mask.any() for mask in plain.values())
    original = hf_video.oldest_output_read
    monkeypatch.setattr(hf_video, "oldest_output_read", lambda model, frame, frames: original(model, frame, frames) + 1)
    with pytest.raises(StreamingFailed, match="--stream dropped the memory of frame"):
        track(True)


def test_a_folder_whose_weights_are_missing_or_cut_short_is_refused(split, checkpoints, tmp_path):
    folder = tmp_path / "EdgeTAM-hf"
    folder.mkdir()
    shutil.copy(checkpoints / "EdgeTAM-hf" / "config.json", folder)
    args = ("--split_dir", split, "--models", "hf_edgetam_points", "--checkpoint_dir", tmp_path, "--output", tmp_path / "r.csv")
    fetch = "fetch the folder again with scripts/download_checkpoints.sh"
    assert_usage_error(
        cli(*args),
        f"hf_edgetam_points cannot run here: model folder {folder} has no weights (model.safetensors or "
        f"model.safetensors.index.json); {fetch}",
    )
    (folder / "model.safetensors").write_bytes((checkpoints / "EdgeTAM-hf" / "model.safetensors").read_bytes()[:4])
    assert_usage_error(
        cli(*args),
        f"hf_edgetam_points cannot run here: {folder / 'model.safetensors'} is not a safetensors file (its header does not parse); {fetch}",
    )


def test_a_folder_of_another_size_or_version_or_without_every_weight_fails_its_jobs(split, checkpoints, tmp_path):
    """transformers would load such a folder, filling what is missing with random values; the jobs say what is wrong."""
    from safetensors.torch import load_file, save_file

    shutil.copytree(checkpoints / "sam2.1-hiera-tiny", tmp_path / "sam2-hiera-tiny")  # SAM 2.1 where SAM 2 belongs
    shutil.copytree(checkpoints / "sam2.1-hiera-tiny", tmp_path / "sam2.1-hiera-tiny")
    weights = tmp_path / "sam2.1-hiera-tiny" / "model.safetensors"
    state = load_file(weights)
    del state["mask_decoder.conv_s0.bias"]
    save_file(state, weights, metadata={"format": "pt"})
    out = tmp_path / "run.csv"
    models = "hf_sam2_tiny_points,hf_sam2.1_tiny_points"
    result = cli("--split_dir", split, "--models", models, "--checkpoint_dir", tmp_path, "--imgsz", "256", "--output", out)
    assert result.returncode == 1
    reasons = {row["model"]: row["error"] for row in rows_of(out)}
    assert reasons == {
        "hf_sam2_tiny_points": f"ValueError: model folder {tmp_path / 'sam2-hiera-tiny'} is not sam2_tiny: its "
        "enable_temporal_pos_encoding_for_object_pointers is True, sam2_tiny's is False; put the sam2_tiny model's folder there "
        "(docs/backends.md)",
        "hf_sam2.1_tiny_points": f"ValueError: model folder {tmp_path / 'sam2.1-hiera-tiny'} lacks weights of sam2.1_tiny or "
        "has them in other shapes: mask_decoder.conv_s0.bias",
    }
