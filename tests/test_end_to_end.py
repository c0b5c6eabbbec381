"""The whole path through the CLI with the real sam2 predictor: random weights saved as an official
checkpoint file and loaded through the package's own loader, at a small --imgsz on the CPU."""

import csv
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import cli, require
from reference_metrics import object_jf

from sav_benchmark.masks import read_mask
from sav_benchmark.results import COLUMNS
from sav_benchmark.split.synthetic import make_split

require("sam2.build_sam")
pytestmark = pytest.mark.slow

MODELS = ["static_mask", "sam2.1_tiny_points", "sam2.1_tiny_bbox", "sam2.1_tiny_mask"]
IMGSZ = "128"
FRAMES = 17  # annotated 0, 4, 8, 12, 16


def write_checkpoint(folder, extra_key=False, seed=0):
    """A random-weight sam2.1 tiny saved in the official format, {"model": state_dict}."""
    import torch
    from sam2.build_sam import build_sam2_video_predictor

    from sav_benchmark.runners.sizes import sam2_size_overrides

    torch.manual_seed(seed)
    model = build_sam2_video_predictor(
        "configs/sam2.1/sam2.1_hiera_t.yaml", None, device="cpu", hydra_overrides_extra=sam2_size_overrides(int(IMGSZ))
    )
    state = model.state_dict()
    if extra_key:
        state["not_a_weight"] = torch.zeros(1)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({"model": state}, folder / "sam2.1_hiera_tiny.pt")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("e2e")
    split = tmp / "split"
    make_split(split, videos=2, frames=FRAMES, width=160, height=120)
    write_checkpoint(tmp / "ckpt")
    out = tmp / "out" / "run.csv"
    result = cli(
        "--split_dir",
        str(split),
        "--models",
        ",".join(MODELS),
        "--checkpoint_dir",
        str(tmp / "ckpt"),
        "--imgsz",
        IMGSZ,
        "--device",
        "cpu",
        "--output",
        str(out),
        "--save_masks",
        str(tmp / "masks"),
    )
    rows = list(csv.DictReader(out.open())) if out.exists() else []
    return result, split, out, tmp / "masks", rows


def test_run_succeeds_with_one_row_per_video_object_model(run):
    result, _, out, _, rows = run
    assert result.returncode == 0, result.stderr
    assert out.read_text().splitlines()[0] == ",".join(COLUMNS)
    jobs = [(r["video_id"], r["object_id"], r["model"]) for r in rows]
    objects = [("synth_000", "000"), ("synth_000", "001"), ("synth_000", "002"), ("synth_001", "000"), ("synth_001", "001")]
    assert jobs == [(v, o, m) for v, o in objects for m in MODELS]  # video -> object -> model
    assert {r["status"] for r in rows} == {"ok"}
    assert len({r["run_id"] for r in rows}) == 1


def test_rows_record_settings_prompts_and_cpu_memory_as_empty(run):
    rows = run[4]
    for r in rows:
        if r["model"] == "static_mask":
            assert (r["weights"], r["device"], r["dtype"], r["imgsz"]) == ("none", "cpu", "", "")
        else:
            assert (r["weights"], r["device"], r["dtype"], r["imgsz"]) == ("checkpoint", "cpu", "bfloat16", IMGSZ)
        for column in [c for c in COLUMNS if c.endswith("_mb") and c not in ("peak_rss_mb", "peak_sys_mem_mb")]:
            assert r[column] == ""  # the CPU has no device memory counter: empty, never 0
        assert r["telemetry_source"] == "procfs" and float(r["peak_rss_mb"]) > 0
        assert r["avg_power_w"] == r["energy_j"] == ""  # no power source on this CPU
    points = next(r for r in rows if r["model"] == "sam2.1_tiny_points")
    assert list(json.loads(points["prompt_detail"])) == ["points"]
    bbox = next(r for r in rows if r["model"] == "sam2.1_tiny_bbox")
    assert len(json.loads(bbox["prompt_detail"])["box"]) == 4


def test_late_object_is_prompted_and_propagated_from_its_prompt_frame(run):
    late = [r for r in run[4] if (r["video_id"], r["object_id"]) == ("synth_000", "002")]
    for r in late:
        assert (r["prompt_frame"], r["n_frames"], r["n_propagated"]) == ("12", str(FRAMES), str(FRAMES - 12))


def test_timing_columns_agree_with_each_other(run):
    for r in run[4]:
        n = int(r["n_propagated"])
        assert float(r["fps"]) == pytest.approx(n / float(r["propagate_s"]))
        assert float(r["latency_ms_mean"]) == pytest.approx(1000 * float(r["propagate_s"]) / n)
        lat = [float(r[c]) for c in ("latency_ms_p50", "latency_ms_p90", "latency_ms_p99", "latency_ms_max")]
        assert lat == sorted(lat)
        assert float(r["build_s"]) >= 0 and float(r["init_s"]) >= 0 and float(r["prompt_ms"]) >= 0


def test_saved_masks_follow_the_evaluator_layout(run):
    _, split, _, masks, rows = run
    for r in rows:
        gt_dir = split / "Annotations_6fps" / r["video_id"] / r["object_id"]
        pred_dir = masks / r["model"] / r["video_id"] / r["object_id"]
        assert sorted(p.name for p in pred_dir.iterdir()) == sorted(p.name for p in gt_dir.iterdir())
        for png in pred_dir.iterdir():
            import cv2

            image = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)
            assert image.shape == (120, 160) and set(np.unique(image)) <= {0, 255}
            if int(png.stem) < int(r["prompt_frame"]):
                assert not image.any()  # nothing is predicted before the prompt frame


def test_csv_scores_equal_an_independent_scoring_of_the_saved_masks(run):
    _, split, _, masks, rows = run
    for r in rows:
        gt_dir = split / "Annotations_6fps" / r["video_id"] / r["object_id"]
        frames = sorted(p.name for p in gt_dir.iterdir())[1:-1]
        preds = [read_mask(masks / r["model"] / r["video_id"] / r["object_id"] / f) for f in frames]
        gts = [read_mask(gt_dir / f) for f in frames]
        j, f = object_jf(preds, gts)
        assert (float(r["J"]), float(r["F"])) == pytest.approx((j, f), abs=1e-9)
        assert float(r["JF"]) == pytest.approx((j + f) / 2, abs=1e-9)


def test_static_baseline_scores_the_prompt_mask_repeated(run):
    _, split, _, _, rows = run
    r = next(r for r in rows if r["model"] == "static_mask" and r["object_id"] == "000")
    gt_dir = split / "Annotations_6fps" / r["video_id"] / "000"
    prompt = read_mask(gt_dir / "00000.png")
    gts = [read_mask(gt_dir / f"{f:05d}.png") for f in (4, 8, 12)]
    assert float(r["J"]) == pytest.approx(object_jf([prompt] * 3, gts)[0], abs=1e-9)


def test_manifest_summary_and_prepared_files(run):
    result, split, out, _, _ = run
    manifest = json.loads(Path(f"{out}.json").read_text())
    assert manifest["models"] == MODELS and manifest["videos"] == ["synth_000", "synth_001"]
    env = manifest["environment"]
    assert env["torch"] and env["sam2"] and env["python"] and env["device_name"]
    assert manifest["config"]["imgsz"] == int(IMGSZ) and manifest["config"]["autocast_dtype"] == "bfloat16"
    assert manifest["rows"] == 20 and manifest["wall_s"] > 0
    checkpoint = out.parent.parent / "ckpt" / "sam2.1_hiera_tiny.pt"
    assert manifest["checkpoints"] == {
        "sam2.1_hiera_tiny.pt": {
            "path": str(checkpoint),
            "bytes": checkpoint.stat().st_size,
            "sha256": hashlib.sha256(checkpoint.read_bytes()).hexdigest(),
        }
    }
    assert Path(f"{out}.prepared.json").exists()
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["model", "objects", "scored", "J&F", "J", "F", "FPS", "med", "lat", "p90", "ms", "peak", "MB", "overhead"]
    assert [line.split()[0] for line in lines[2:6]] == MODELS
    assert all(line.split()[1:3] == ["5/5", "5"] for line in lines[2:6])
    assert "random" not in result.stdout  # weights came from a checkpoint: no random-weights warning


def test_wall_time_is_the_timed_steps_plus_the_overhead(run):
    """overhead_s = wall_s - build - init - prompt - propagate - setup, per row; the summary shows
    sum(overhead_s) / sum(wall_s) per model; the rows' wall times add up to the run's time."""
    result, _, out, _, rows = run
    for row in rows:
        timed = sum(float(row[k] or 0) for k in ("build_s", "init_s", "propagate_s", "setup_s")) + float(row["prompt_ms"]) / 1000
        assert float(row["overhead_s"]) == pytest.approx(float(row["wall_s"]) - timed, abs=1e-9)
        assert 0 <= float(row["overhead_s"]) < float(row["wall_s"])
    for line in result.stdout.splitlines()[2:6]:
        model = [r for r in rows if r["model"] == line.split()[0]]
        share = sum(float(r["overhead_s"]) for r in model) / sum(float(r["wall_s"]) for r in model)
        assert line.split()[-1] == f"{100 * share:.1f}%"
    manifest = json.loads(Path(f"{out}.json").read_text())
    assert sum(float(r["wall_s"]) for r in rows) <= manifest["wall_s"]


def test_checkpoint_that_does_not_fit_fails_its_rows_not_the_run(tmp_path):
    split = tmp_path / "split"
    make_split(split, videos=1, frames=9, width=64, height=48, objects=1)
    write_checkpoint(tmp_path / "ckpt", extra_key=True)
    out = tmp_path / "o.csv"
    result = cli(
        "--split_dir",
        str(split),
        "--models",
        "sam2.1_tiny_points,static_mask",
        "--checkpoint_dir",
        str(tmp_path / "ckpt"),
        "--imgsz",
        IMGSZ,
        "--device",
        "cpu",
        "--output",
        str(out),
    )
    assert result.returncode == 1
    rows = {r["model"]: r for r in csv.DictReader(out.open())}
    assert rows["sam2.1_tiny_points"]["status"] == "error"
    checkpoint = tmp_path / "ckpt" / "sam2.1_hiera_tiny.pt"
    assert rows["sam2.1_tiny_points"]["error"].startswith(
        f"ValueError: checkpoint {checkpoint} does not fit configs/sam2.1/sam2.1_hiera_t.yaml: "
    )
    assert rows["sam2.1_tiny_points"]["error"].endswith('Unexpected key(s) in state_dict: "not_a_weight".')
    assert rows["sam2.1_tiny_points"]["JF"] == "" and rows["static_mask"]["status"] == "ok"
    assert "Traceback" not in result.stderr and "Traceback" in Path(f"{out}.log").read_text()


def test_random_weights_are_the_same_for_every_job_and_warned_about(tmp_path):
    split = tmp_path / "split"
    make_split(split, videos=1, frames=9, width=64, height=48, objects=1)
    shutil.copytree(split / "Annotations_6fps/synth_000/000", split / "Annotations_6fps/synth_000/002")  # a twin of 000
    result = cli(
        "--split_dir",
        str(split),
        "--models",
        "sam2.1_tiny_mask",
        "--weights",
        "random",
        "--imgsz",
        IMGSZ,
        "--device",
        "cpu",
        "--autocast_dtype",
        "float32",
        "--warmup_frames",
        "2",
        "--output",
        str(tmp_path / "o.csv"),
    )
    assert result.returncode == 0, result.stderr
    assert "warning: rows with --weights random measure speed only; their J&F is meaningless." in result.stdout
    rows = {r["object_id"]: r for r in csv.DictReader((tmp_path / "o.csv").open())}
    assert (rows["000"]["J"], rows["000"]["F"]) == (rows["002"]["J"], rows["002"]["F"])  # same object, same random model
    assert (rows["000"]["weights"], rows["000"]["dtype"]) == ("random", "float32")
    manifest = json.loads((tmp_path / "o.csv.json").read_text())
    assert manifest["warmup_s"]["sam2.1_tiny_mask"][0] > 0 and manifest["config"]["random_weights_seed"] == 0


def test_resume_compares_only_what_changes_the_numbers(tmp_path):
    split = tmp_path / "split"
    make_split(split, videos=3, frames=9, width=64, height=48, objects=1)
    write_checkpoint(tmp_path / "ckpt")
    out = tmp_path / "o.csv"
    base = ["--split_dir", str(split), "--checkpoint_dir", str(tmp_path / "ckpt"), "--device", "cpu", "--output", str(out)]
    assert cli(*base, "--models", "static_mask", "--limit_videos", "1").returncode == 0
    # the earlier run had no torch model, so torch settings have nothing to disagree with
    added = cli(*base, "--models", "static_mask,sam2.1_tiny_points", "--imgsz", "64", "--limit_videos", "2", "--resume")
    assert added.returncode == 0, added.stderr
    other_size = cli(*base, "--models", "sam2.1_tiny_points", "--imgsz", "128", "--resume")
    assert other_size.returncode == 2 and "(imgsz 64 -> 128)" in other_size.stderr
    plain_path = cli(*base, "--models", "sam2.1_tiny_points", "--imgsz", "64", "--no-stream", "--resume")  # its memory figures differ
    assert plain_path.returncode == 2 and "(stream True -> False)" in plain_path.stderr
    write_checkpoint(tmp_path / "ckpt", seed=1)  # the same file name, other weights
    other_weights = cli(*base, "--models", "sam2.1_tiny_points", "--imgsz", "64", "--resume")
    assert other_weights.returncode == 2
    assert "(checkpoint sam2.1_hiera_tiny.pt has other contents (sha256 " in other_weights.stderr
    assert len(list(csv.DictReader(out.open()))) == 2 + 2 * 2  # nothing was added by the refused runs
