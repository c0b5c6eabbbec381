"""Post-processing as the model owners' evaluation runs it: by default every predictor is built
with apply_postprocessing=False (sam2's tools/vos_inference.py does so: "we don't apply such
post-processing in the SAM 2 model evaluation"); --postprocessing builds with the package's
defaults. The masks the CLI saves are compared with a predictor built here, directly through the
sam2 package, for click, box and mask prompts.

The checkpoint keeps its objects present (tests/checkpoints.py), and each comparison asserts that
most compared masks have foreground: two pipelines that both predict nothing agree whatever they do."""

import json

import numpy as np
import pytest
from checkpoints import SAM21_TINY as CONFIG
from checkpoints import write_checkpoint
from conftest import cli, require, rows_of

from sav_benchmark.masks import read_mask
from sav_benchmark.runners.sizes import sam2_size_overrides

require("sam2.build_sam")
pytestmark = pytest.mark.slow

IMGSZ = 128
MODELS = ("sam2.1_tiny_points", "sam2.1_tiny_bbox", "sam2.1_tiny_mask")


@pytest.fixture(scope="module")
def runs(tmp_path_factory, synthetic_split):
    split = synthetic_split(videos=1, frames=9, width=160, height=120, objects=1)  # one object from frame 0, one entering late
    folder = tmp_path_factory.mktemp("postprocessing")
    checkpoint = write_checkpoint(folder / "ckpt" / "sam2.1_hiera_tiny.pt", imgsz=IMGSZ)
    common = ["--split_dir", split, "--models", ",".join(MODELS), "--checkpoint_dir", checkpoint.parent, "--imgsz", IMGSZ]
    common += ["--device", "cpu", "--autocast_dtype", "float32"]
    made = {}
    for postprocessing, flags in ((False, []), (True, ["--postprocessing"])):
        out, masks = folder / f"{postprocessing}.csv", folder / f"masks_{postprocessing}"
        result = cli(*common, *flags, "--output", out, "--save_masks", masks)
        assert result.returncode == 0, result.stderr
        made[postprocessing] = (rows_of(out), masks)
    return split, checkpoint, made


@pytest.fixture(scope="module")
def predictors(runs):
    """apply_postprocessing -> a predictor built here from the same checkpoint file."""
    from sam2.build_sam import build_sam2_video_predictor

    checkpoint, overrides = str(runs[1]), sam2_size_overrides(IMGSZ)
    return {
        setting: build_sam2_video_predictor(CONFIG, checkpoint, device="cpu", hydra_overrides_extra=overrides, apply_postprocessing=setting)
        for setting in (False, True)
    }


def reference_masks(predictor, split, row):
    """The job's masks from the predictor, prompted as the row says, propagated forward from the prompt's frame."""
    import torch

    prompt, frame = json.loads(row["prompt_detail"]), int(row["prompt_frame"])
    masks = {}
    with torch.inference_mode():
        state = predictor.init_state(str(split / "JPEGImages_24fps" / row["video_id"]))
        if "points" in prompt:
            points = np.asarray(prompt["points"], np.float32)
            predictor.add_new_points_or_box(state, frame, 1, points=points, labels=np.ones(len(points), np.int32))
        elif "box" in prompt:
            predictor.add_new_points_or_box(state, frame, 1, box=np.asarray(prompt["box"], np.float32))
        else:
            predictor.add_new_mask(state, frame, 1, read_mask(split / prompt["mask"]))
        for index, _, logits in predictor.propagate_in_video(state, start_frame_idx=frame):
            masks[index] = (logits[0, 0] > 0).numpy()
    return masks


@pytest.mark.parametrize("model", MODELS)
def test_the_default_is_the_evaluation_protocol_and_the_flag_the_package_defaults(runs, predictors, model):
    split, _, made = runs
    differing = 0
    for postprocessing in (False, True):
        rows, saved = made[postprocessing]
        assert {r["postprocessing"] for r in rows} == {"on" if postprocessing else "off"}
        for row in [r for r in rows if r["model"] == model]:
            assert row["status"] in ("ok", "no_score"), row["error"]
            expected = reference_masks(predictors[postprocessing], split, row)
            other = reference_masks(predictors[not postprocessing], split, row)
            saved_masks = {int(f.stem): read_mask(f) for f in (saved / model / row["video_id"] / row["object_id"]).glob("*.png")}
            before_the_prompt = [frame for frame in saved_masks if frame not in expected]
            assert not any(saved_masks.pop(frame).any() for frame in before_the_prompt)  # nothing is predicted there
            assert saved_masks
            with_foreground = 0
            for frame, mask in saved_masks.items():
                assert np.array_equal(mask, expected[frame]), f"{row['object_id']} frame {frame}: not the predictor's mask"
                with_foreground += bool(mask.any())
                differing += not np.array_equal(mask, other[frame])
            assert with_foreground > len(saved_masks) / 2, "most masks are empty: the comparison would prove nothing"
    assert differing, "post-processing changed no mask here: the test cannot tell the two settings apart"
