"""EdgeTAM beside SAM 2: discovery, the models listing, sizes, routing to a worker of its own.

CI cannot install EdgeTAM. The layouts below are stand-ins (empty files where the two packages
put theirs) for discovery; the integration test at the end runs the real EdgeTAM when EDGETAM_REPO
points to a checkout of github.com/facebookresearch/EdgeTAM.
"""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, cli, environment

from sav_benchmark.errors import UsageError
from sav_benchmark.executors import RoutingExecutor, make_executor
from sav_benchmark.run import make_job
from sav_benchmark.runners import ModelSpec, register
from sav_benchmark.runners.base import RunSettings
from sav_benchmark.runners.sizes import edgetam_size_overrides
from sav_benchmark.split import prepare_split
from sav_benchmark.split.synthetic import make_split


def stand_in_fork(folder: Path) -> Path:
    """The shape of EdgeTAM's `sam2` module: a package that ships configs/edgetam.yaml."""
    (folder / "sam2" / "configs").mkdir(parents=True)
    (folder / "sam2" / "__init__.py").write_text("")
    (folder / "sam2" / "configs" / "edgetam.yaml").write_text("")
    return folder


def models_lines(result):
    assert result.returncode == 0, result.stderr
    return {line.split()[0]: line for line in result.stdout.splitlines()}


def test_models_explains_why_edgetam_cannot_run_without_a_checkout():
    lines = models_lines(cli("models", "--weights", "random"))
    assert lines["edgetam_points"] == (
        "edgetam_points             cannot run  unknown               EdgeTAM is not importable here "
        "(the importable sam2 is Meta's package); "
        "give --edgetam_repo PATH, a checkout of github.com/facebookresearch/EdgeTAM"
    )
    assert lines["sam2.1_tiny_points"].split()[1] == "ready"


def test_models_with_a_checkout_runs_edgetam_in_its_own_worker(tmp_path):
    checkout = stand_in_fork(tmp_path / "EdgeTAM")
    lines = models_lines(cli("models", "--weights", "random", "--edgetam_repo", str(checkout)))
    assert (
        lines["edgetam_bbox"]
        == f"edgetam_bbox               ready       modified              EdgeTAM checkout {checkout}, in a worker process of its own"
    )
    lines = models_lines(cli("models", "--weights", "random", "--edgetam_repo", str(tmp_path)))
    assert lines["edgetam_mask"].endswith(
        f"--edgetam_repo {tmp_path} is not an EdgeTAM checkout (it has no sam2/configs/edgetam.yaml); clone "
        "github.com/facebookresearch/EdgeTAM"
    )


def test_when_the_importable_sam2_is_the_fork(tmp_path):
    fork = stand_in_fork(tmp_path / "site")
    lines = models_lines(cli("models", "--weights", "random", pythonpath=(fork,)))
    assert lines["edgetam_points"] == f"edgetam_points             ready       modified              EdgeTAM's sam2 fork ({fork / 'sam2'})"
    assert lines["sam2.1_tiny_points"].endswith(
        f"cannot run  unknown               the importable sam2 ({fork / 'sam2'}) is EdgeTAM's fork, not Meta's package; "
        "install Meta's sam2 (scripts/install.sh) and give EdgeTAM as a checkout with --edgetam_repo"
    )


def test_missing_checkpoint_is_named(tmp_path):
    lines = models_lines(cli("models", "--checkpoint_dir", str(tmp_path), "--edgetam_repo", str(stand_in_fork(tmp_path / "E"))))
    assert lines["edgetam_points"].endswith(
        f"checkpoint {tmp_path / 'edgetam.pt'} not found; fetch it with scripts/download_checkpoints.sh, "
        "point --checkpoint_dir at its folder, or use --weights random for a speed-only run"
    )


def test_a_run_with_edgetam_but_no_source_stops_before_any_work(tmp_path):
    make_split(tmp_path / "s", videos=1, frames=5, width=64, height=48, objects=1)
    result = cli(
        "--split_dir",
        str(tmp_path / "s"),
        "--models",
        "sam2.1_tiny_points,edgetam_points",
        "--weights",
        "random",
        "--output",
        str(tmp_path / "o.csv"),
    )
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        "jetson_benchmark.py: error: edgetam_points cannot run here: EdgeTAM is not importable here (the importable sam2 "
        "is Meta's package); give --edgetam_repo PATH, a checkout of github.com/facebookresearch/EdgeTAM\n"
    )
    assert not (tmp_path / "o.csv").exists()


def test_edgetam_sizes():
    assert edgetam_size_overrides(512) == [
        "++model.image_size=512",
        "++model.memory_attention.layer.self_attention.feat_sizes=[32,32]",
        "++model.memory_attention.layer.cross_attention.q_sizes=[32,32]",
    ]
    assert edgetam_size_overrides(None) == []
    with pytest.raises(UsageError, match=r"--imgsz 384: EdgeTAM needs a multiple of 256"):
        edgetam_size_overrides(384)


def test_imgsz_is_refused_per_family(tmp_path):
    make_split(tmp_path / "s", videos=1, frames=5, width=64, height=48, objects=1)
    result = cli(
        "--split_dir",
        str(tmp_path / "s"),
        "--models",
        "sam2.1_tiny_points,edgetam_points",
        "--weights",
        "random",
        "--imgsz",
        "384",
        "--edgetam_repo",
        str(stand_in_fork(tmp_path / "E")),
        "--output",
        str(tmp_path / "o.csv"),
    )
    assert result.returncode == 2 and "EdgeTAM needs a multiple of 256" in result.stderr  # 384 suits SAM 2, not EdgeTAM


def test_a_model_with_an_import_path_runs_in_a_worker_even_without_isolation(tmp_path):
    """The routing that keeps EdgeTAM's sam2 away from Meta's, with a runner found only in a stand-in checkout."""
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (checkout / "only_in_checkout.py").write_text("from sav_benchmark.runners.static_mask import StaticMaskRunner as RUNNER\n")
    spec = ModelSpec("only_in_checkout", "mask", "only_in_checkout", "test", uses_torch=False)
    register(spec)
    make_split(tmp_path / "s", videos=1, frames=9, width=64, height=48, objects=1)
    split = prepare_split(tmp_path / "s")
    static = ModelSpec("static_mask", "mask", "sav_benchmark.runners.static_mask", "static", uses_torch=False)
    settings = RunSettings("cpu", "float32", None, "random", tmp_path)
    executor = make_executor("none", [static, spec], settings, None, 0, {"only_in_checkout": str(checkout)})
    try:
        assert isinstance(executor, RoutingExecutor)
        video, obj = split.videos[0], split.videos[0].objects[0]
        job = make_job(split, video, [obj])
        for model in (static, spec):
            outcome = executor.run_job(model, job, set(obj.annotated_frames), settings)
            assert outcome.status == "" and sorted(outcome.masks[0]) == obj.annotated_frames
        assert "only_in_checkout" not in sys.modules  # it was imported in the worker alone
        assert len(executor.startup_s["only_in_checkout"]) == 1 and "static_mask" not in executor.startup_s
    finally:
        executor.close()


EDGETAM_REPO = os.environ.get("EDGETAM_REPO")


@pytest.mark.skipif(
    not EDGETAM_REPO, reason="set EDGETAM_REPO to a checkout of github.com/facebookresearch/EdgeTAM to run it (with timm installed)"
)
def test_edgetam_and_sam2_in_one_run_with_no_network(tmp_path):
    make_split(tmp_path / "s", videos=2, frames=9, width=160, height=120, objects=1)
    checkpoints = tmp_path / "ckpt"
    checkpoints.mkdir()
    # a random-weight EdgeTAM saved in the official format, built where EdgeTAM's sam2 is importable
    build = (
        "import torch; from sav_benchmark.runners.edgetam import _backbone_without_download; _backbone_without_download(); "
        "from sam2.build_sam import build_sam2_video_predictor as b; torch.manual_seed(0); "
        "m = b('configs/edgetam.yaml', None, device='cpu', hydra_overrides_extra=['++model.image_size=512']); "
        f"torch.save({{'model': m.state_dict()}}, {str(checkpoints / 'edgetam.pt')!r})"
    )
    env = environment(pythonpath=(EDGETAM_REPO,))
    made = subprocess.run([sys.executable, "-c", build], capture_output=True, text=True, env=env, timeout=600)
    assert made.returncode == 0, made.stderr
    out = tmp_path / "o.csv"
    result = cli(
        "--split_dir",
        str(tmp_path / "s"),
        "--models",
        "edgetam_points,edgetam_bbox,sam2.1_tiny_points",
        "--imgsz",
        "512",
        "--device",
        "cpu",
        "--checkpoint_dir",
        str(checkpoints),
        "--weights",
        "checkpoint",
        "--edgetam_repo",
        EDGETAM_REPO,
        "--limit_objects",
        "1",
        "--output",
        str(out),
    )
    assert result.returncode == 2 and "sam2.1_tiny_points cannot run here: checkpoint" in result.stderr  # only edgetam.pt was written
    result = cli(
        "--split_dir",
        str(tmp_path / "s"),
        "--models",
        "edgetam_points,edgetam_bbox",
        "--imgsz",
        "512",
        "--device",
        "cpu",
        "--checkpoint_dir",
        str(checkpoints),
        "--edgetam_repo",
        EDGETAM_REPO,
        "--limit_objects",
        "1",
        "--output",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    result = cli(
        "--split_dir",
        str(tmp_path / "s"),
        "--models",
        "edgetam_points,edgetam_bbox,sam2.1_tiny_points",
        "--imgsz",
        "512",
        "--device",
        "cpu",
        "--weights",
        "random",
        "--edgetam_repo",
        EDGETAM_REPO,
        "--limit_objects",
        "1",
        "--output",
        str(tmp_path / "r.csv"),
    )
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader((tmp_path / "r.csv").open())) + list(csv.DictReader(out.open()))
    assert {(r["model"], r["status"], r["stream"]) for r in rows} == {
        ("edgetam_points", "ok", "on"),
        ("edgetam_bbox", "ok", "on"),
        ("sam2.1_tiny_points", "ok", "on"),
    }
    assert "model instantiated" not in result.stdout  # EdgeTAM's own prints stay in its worker's log


@pytest.mark.skipif(
    not EDGETAM_REPO, reason="set EDGETAM_REPO to a checkout of github.com/facebookresearch/EdgeTAM to run it (with timm installed)"
)
def test_edgetam_streams_with_the_masks_of_its_own_path(tmp_path):
    """EdgeTAM's older predictor (all objects' outputs kept together too) streams; on a video longer
    than its memory reaches back, the masks equal those of --no-stream bit for bit."""
    make_split(tmp_path / "s", videos=1, frames=41, width=160, height=120, objects=1)
    masks = {}
    for mode, stream in (("--stream", "on"), ("--no-stream", "off")):
        out = tmp_path / f"{mode[2:]}.csv"
        result = cli(
            "--split_dir",
            str(tmp_path / "s"),
            "--models",
            "edgetam_mask",
            "--imgsz",
            "256",
            "--device",
            "cpu",
            "--weights",
            "random",
            "--edgetam_repo",
            EDGETAM_REPO,
            mode,
            "--output",
            str(out),
            "--save_masks",
            str(tmp_path / mode[2:]),
        )
        assert result.returncode == 0, result.stderr
        assert [(r["status"], r["stream"], r["warning"]) for r in csv.DictReader(out.open())] == [
            ("ok", stream, "")
        ] * 2  # two objects, one late
        masks[mode] = {p.relative_to(tmp_path / mode[2:]): p.read_bytes() for p in (tmp_path / mode[2:]).rglob("*.png")}
    assert len(masks["--stream"]) == 2 * 11 and masks["--stream"] == masks["--no-stream"]  # frames 0, 4, ..., 40


@pytest.mark.skipif(
    not EDGETAM_REPO, reason="set EDGETAM_REPO to a checkout of github.com/facebookresearch/EdgeTAM to run it (with timm installed)"
)
def test_edgetam_streams_with_the_outputs_of_its_own_path(tmp_path):
    """Random EdgeTAM weights leave its masks empty after the prompt frame, so the files above match
    trivially: the raw outputs of every frame are compared too, in a process where the fork is `sam2`."""
    make_split(tmp_path / "s", videos=1, frames=33, width=160, height=120, objects=1)
    frames = tmp_path / "s" / "JPEGImages_24fps" / "synth_000"
    mask = tmp_path / "s" / "Annotations_6fps" / "synth_000" / "000" / "00000.png"
    env = environment(pythonpath=(EDGETAM_REPO, ROOT / "tests"))
    probe = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "streaming_probe.py"), "edgetam", str(frames), str(mask)],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert probe.returncode == 0, probe.stderr
    result = json.loads(probe.stdout.splitlines()[-1])
    assert result["identical"] and result["frames"] == 33 and result["changing_frames"] == 32
    assert result["columns"] == [{"stream": "off"}, {"stream": "on"}] and result["most_kept"] == [32, 15]
