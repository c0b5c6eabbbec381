"""Random-weight checkpoints in the official format, {"model": state_dict}, whose objects stay
present: the object-score head is fixed at "present" (zero weights, a large bias). Random weights
otherwise say "no object" after the prompt frame, every mask is empty, and any two pipelines agree."""

import subprocess
import sys
from pathlib import Path

from conftest import environment

from sav_benchmark.runners.sizes import SIZE_OVERRIDES

SAM21_TINY = "configs/sam2.1/sam2.1_hiera_t.yaml"
EDGETAM = "configs/edgetam.yaml"
SCORE_HEAD = "sam_mask_decoder.pred_obj_score_head.layers.2"
# Run where the model's own `sam2` is importable: the installed one, or EdgeTAM's checkout.
BUILD = f"""
import sys, torch
config, family, imgsz, path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
from sav_benchmark.runners.edgetam import _backbone_without_download
from sav_benchmark.runners.sizes import SIZE_OVERRIDES
if family == "edgetam":
    _backbone_without_download()
from sam2.build_sam import build_sam2_video_predictor
torch.manual_seed(0)
state = build_sam2_video_predictor(config, None, device="cpu", hydra_overrides_extra=SIZE_OVERRIDES[family](imgsz)).state_dict()
state["{SCORE_HEAD}.weight"].zero_()
state["{SCORE_HEAD}.bias"].fill_(20.0)
torch.save({{"model": state}}, path)
"""


def write_checkpoint(path: Path, config: str = SAM21_TINY, family: str = "sam2.1", imgsz: int = 128, repo: str | None = None) -> Path:
    """The checkpoint file at `path`; with `repo`, built by that checkout's sam2 (EdgeTAM's fork)."""
    assert family in SIZE_OVERRIDES
    path.parent.mkdir(parents=True, exist_ok=True)
    made = subprocess.run(
        [sys.executable, "-c", BUILD, config, family, str(imgsz), str(path)],
        capture_output=True,
        text=True,
        env=environment(pythonpath=(repo,) if repo else ()),
        timeout=600,
    )
    assert made.returncode == 0, made.stderr
    return path
