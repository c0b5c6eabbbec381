"""LVOS v2 and MOSE / MOSEv2 splits through the CLI: detection, preparation, their scoring rules,
the masks saved in their layouts, the challenge-server zip, and bad input per layout.

The expected scores are computed here from the saved label maps and the ground truth by the rules
written out directly (tests/reference_metrics.py's per-pixel J and F), not by the package's code.
With LVOS_EVAL (a checkout of LingyiHongfd/lvos-evaluation, run by LVOS_PYTHON, which needs numpy<2)
and MOSE_API (a checkout of henghuiding/MOSE-api, run by MOSE_API_PYTHON, which needs scikit-image),
the official evaluators score the saved masks, and their tables must equal the run's.
"""

import json
import math
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import USAGE_ERROR, assert_usage_error, cli, rows_of
from reference_metrics import jf

from sav_benchmark.masks import read_ids
from sav_benchmark.metrics_lvos import write_csvs
from sav_benchmark.split.synthetic import make_split

FRAMES = 20  # the first video's first object is away on frames 6..8, its third object enters at frame 10
MODELS = "static_mask,sam2.1_tiny_points"  # the baseline, and the real predictor with random weights
MODEL_FLAGS = ("--weights", "random", "--device", "cpu", "--imgsz", "128")


def run_split(tmp: Path, layout: str, models: str = "static_mask", *extra: str):
    split = tmp / layout
    if not split.exists():
        make_split(split, videos=2, frames=FRAMES, width=64, height=48, layout=layout)
    out = tmp / f"{layout}-{models}.csv"
    result = cli("--split_dir", split, "--models", models, "--output", out, "--save_masks", tmp / f"{layout}-masks", *extra)
    assert result.returncode == 0, result.stderr
    return split, rows_of(out), tmp / f"{layout}-masks", result


@pytest.fixture(scope="module")
def lvos(tmp_path_factory):
    return run_split(tmp_path_factory.mktemp("lvos"), "lvos", MODELS, *MODEL_FLAGS)


@pytest.fixture(scope="module")
def mosev2(tmp_path_factory):
    return run_split(tmp_path_factory.mktemp("mosev2"), "mosev2", MODELS, *MODEL_FLAGS)


def lvos_expected(split: Path, masks: Path, video: str, object_id: str) -> tuple[float, float, float]:
    """J, F and V in percent by LVOS's rules, written out: the window range(start, end, 5) without
    its first candidate and candidate frame_nums - 1, frame_nums - 2 slots from zero."""
    meta = json.loads((split / "valid_meta.json").read_text())["videos"][video]["objects"][object_id]["frame_range"]
    start, end, n = meta["start"], meta["end"], meta["frame_nums"]
    j, f = np.zeros(n - 2), np.zeros(n - 2)
    for k, number in enumerate(range(start, end, 5)):
        if k in (0, n - 1):
            continue
        name = f"{number:08d}.png"
        gt = read_ids(split / "Annotations" / video / name) == int(object_id)
        pred = read_ids(masks / video / name) == int(object_id)
        j[k - 1], f[k - 1] = jf(pred, gt)
    frame_jf = (j + f) / 2
    variance = np.sum((frame_jf.mean() - frame_jf) ** 2) / len(frame_jf)
    return 100 * j.mean(), 100 * f.mean(), 100 * math.sqrt(round(variance, 4))


def test_lvos_rows_follow_its_toolkit_rules_on_the_saved_label_maps(lvos):
    split, rows, masks, _ = lvos
    objects = [("synth_000", "1"), ("synth_000", "2"), ("synth_000", "3"), ("synth_001", "1"), ("synth_001", "2")]
    expected = [(*obj, model, "ok", "lvos") for obj in objects for model in MODELS.split(",")]
    assert [(r["video_id"], r["object_id"], r["model"], r["status"], r["protocol"]) for r in rows] == expected
    for row in rows:
        want = lvos_expected(split, masks / row["model"], row["video_id"], row["object_id"])
        assert [float(row[c]) for c in ("J", "F", "V")] == pytest.approx(want, abs=1e-9), row["object_id"]
    late = next(r for r in rows if (r["video_id"], r["object_id"], r["model"]) == ("synth_000", "3", "sam2.1_tiny_points"))
    assert late["prompt_frame"] == "10" and late["n_eval_frames"] == "8"  # its 10 frames from 00000051, less the first and last


def test_lvos_masks_are_saved_for_every_frame_under_its_names(lvos):
    split, _, masks, _ = lvos
    for video in ("synth_000", "synth_001"):
        frames = sorted(p.stem for p in (split / "JPEGImages" / video).iterdir())
        assert frames[:3] == ["00000001", "00000006", "00000011"]
        for model in MODELS.split(","):
            assert sorted(p.stem for p in (masks / model / video).iterdir()) == frames


def test_lvos_summary_is_its_toolkit_global_table_with_seen_and_unseen(lvos):
    split, rows, masks, result = lvos
    table = result.stdout.split("LVOS v2, as its toolkit's global_results")[1].splitlines()
    header, values = table[1].split(), table[3].split()
    assert header[:4] == ["model", "objects", "J&F-Mean", "J-Mean"] and values[:2] == ["static_mask", "5/5"]
    seen = [lvos_expected(split, masks / "static_mask", "synth_000", o) for o in ("1", "2", "3")]
    unseen = [lvos_expected(split, masks / "static_mask", "synth_001", o) for o in ("1", "2")]
    j_seen, j_unseen = np.mean([s[0] for s in seen]) / 100, np.mean([u[0] for u in unseen]) / 100
    f_seen, f_unseen = np.mean([s[1] for s in seen]) / 100, np.mean([u[1] for u in unseen]) / 100
    assert values[2] == f"{(j_seen + f_seen + j_unseen + f_unseen) / 4:.3f}"
    assert values[3:6] == [f"{(j_seen + j_unseen) / 2:.3f}", f"{j_seen:.3f}", f"{j_unseen:.3f}"]
    assert "warning: some objects have no score here" not in result.stdout


def test_mosev2_rows_use_its_smoothed_j_and_its_boundary_measures(mosev2):
    split, rows, masks, result = mosev2
    assert {r["protocol"] for r in rows} == {"mosev2"} and {r["status"] for r in rows} == {"ok"}
    for row in rows:
        j = []
        for frame in range(1, FRAMES - 1):  # the video's frames but its first and last
            name = f"{frame:05d}.png"
            gt = read_ids(split / "Annotations" / row["video_id"] / name) == int(row["object_id"])
            pred = read_ids(masks / row["model"] / row["video_id"] / name) == int(row["object_id"])
            union = np.count_nonzero(gt | pred)
            j.append(1.0 if union == 0 else (np.count_nonzero(gt & pred) + 1) / (union + 1))
        assert float(row["J"]) == pytest.approx(100 * np.mean(j), abs=1e-9)
        assert float(row["JF_dot"]) == pytest.approx((float(row["J"]) + float(row["F_dot"])) / 2, abs=1e-9)
    away = next(r for r in rows if (r["video_id"], r["object_id"], r["model"]) == ("synth_000", "1", "static_mask"))
    assert away["JF_dot_disappear"] != "" and away["JF_dot_reappear"] != ""  # it leaves and comes back
    assert "MOSEv2, as its scorer's scores.txt" in result.stdout


def test_mose_v1_rows_equal_evaluate_on_the_saved_label_maps(tmp_path):
    split, rows, masks, _ = run_split(tmp_path, "mose")
    assert {r["protocol"] for r in rows} == {"sav"}
    result = cli("evaluate", "--gt_root", split / "Annotations", "--pred_root", masks / "static_mask", "-q")
    assert result.returncode == 0, result.stderr
    table = (masks / "static_mask" / "results.csv").read_text().splitlines()[2:]
    scored = {(line.split(",")[0].strip(), str(int(line.split(",")[1]))): line.split(", ")[2:] for line in table}
    for row in rows:
        assert scored[(row["video_id"], row["object_id"])] == [f"{float(row[c]):.1f}" for c in ("J", "F")]


def test_mose_val_runs_unscored_and_zips_every_frame_for_the_server(tmp_path):
    split, rows, masks, result = run_split(tmp_path, "mose-val")
    assert {(r["status"], r["protocol"]) for r in rows} == {("no_score", "server")}
    assert "challenge server" in rows[0]["error"] and (rows[0]["J"], rows[0]["F"]) == ("", "")
    with zipfile.ZipFile(masks / "static_mask.zip") as archive:
        names = sorted(archive.namelist())
    assert names == sorted(f"{v}/{i:05d}.png" for v in ("synth_000", "synth_001") for i in range(FRAMES))
    assert f"for the challenge server: {masks / 'static_mask.zip'}" in result.stdout


def test_mose_val_without_save_masks_is_refused_before_any_work(tmp_path):
    make_split(tmp_path / "split", videos=1, frames=5, width=32, height=24, layout="mose-val")
    out = tmp_path / "out" / "r.csv"
    result = cli("--split_dir", tmp_path / "split", "--models", "static_mask", "--output", out)
    assert_usage_error(
        result,
        f"--split_dir {(tmp_path / 'split').resolve()} is a val/test split: only its first frames are annotated, and its challenge "
        "server scores the masks; give --save_masks DIR, then submit DIR/<model>.zip",
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "layout, damage, message",
    [
        ("lvos", lambda s: (s / "valid_meta.json").unlink(), "looks like an LVOS split (frames named with 8 digits"),
        ("lvos", lambda s: edit_meta(s, lambda m: m["videos"]["synth_000"]["objects"].pop("3")), "object id 3 is not an object of"),
        ("lvos", lambda s: (s / "valid_meta.json").write_text("{not json"), "cannot read it as JSON"),
        ("lvos", lambda s: edit_meta(s, lambda m: m["videos"]["synth_000"]["objects"]["1"].pop("frame_range")), "must hold integers"),
        ("lvos", lambda s: (s / "train_meta.json").write_text("{}"), "holds valid_meta.json and train_meta.json"),
        ("mosev2", lambda s: json_edit(s / "meta_train.json", lambda m: m["videos"].pop("synth_001")), "video synth_001 of"),
        (
            "mosev2",
            lambda s: json_edit(s / "meta_train.json", lambda m: m["videos"]["synth_000"]["objects"].pop("2")),
            "object id 2 of its",
        ),
        ("mosev2", lambda s: (s / "meta_valid.json").write_text("{}"), "holds meta_train.json and meta_valid.json"),
    ],
)
def test_bad_input_of_each_layout_is_refused_in_one_line(tmp_path, layout, damage, message):
    split = tmp_path / "split"
    make_split(split, videos=2, frames=12, width=32, height=24, layout=layout)
    damage(split)
    result = cli("--split_dir", split, "--models", "static_mask", "--output", tmp_path / "r.csv")
    assert (result.returncode, result.stdout, len(result.stderr.splitlines())) == (2, "", 1), result.stderr
    assert result.stderr.startswith(USAGE_ERROR) and message in result.stderr
    assert not (tmp_path / "r.csv").exists()


def edit_meta(split: Path, change) -> None:
    meta = json.loads((split / "valid_meta.json").read_text())
    change(meta)
    (split / "valid_meta.json").write_text(json.dumps(meta))


@pytest.mark.parametrize(
    "frame_range, problem",
    [
        ({"end": 71, "frame_nums": 14}, "frame 61 of its frame_range (start 1, end 71, every 5th) is no frame of the video (1..56)"),
        ({"start": 3}, "its frame_range starts at 3, which is no frame of the video"),
        ({"frame_nums": 5}, "end 56 gives 11 frames (range(start, end, 5)), more than frame_nums 5"),
    ],
)
def test_a_bad_frame_range_fails_that_objects_rows_only(tmp_path, frame_range, problem):
    split = tmp_path / "split"
    make_split(split, videos=2, frames=12, width=32, height=24, layout="lvos")
    edit_meta(split, lambda m: m["videos"]["synth_001"]["objects"]["1"]["frame_range"].update(frame_range))
    result = cli("--split_dir", split, "--models", "static_mask", "--output", tmp_path / "r.csv")
    rows = rows_of(tmp_path / "r.csv")
    assert result.returncode == 1
    statuses = [(r["video_id"], r["object_id"], r["status"]) for r in rows]
    assert statuses == [("synth_000", "1", "ok"), ("synth_000", "2", "ok"), ("synth_000", "3", "ok"), ("synth_001", "1", "error")] + [
        ("synth_001", "2", "ok")
    ]
    assert problem in rows[3]["error"] and "fix valid_meta.json" in rows[3]["error"]


def test_an_lvos_object_its_toolkit_scores_as_nan_has_no_score(tmp_path):
    split = tmp_path / "split"
    make_split(split, videos=2, frames=12, width=32, height=24, layout="lvos")
    edit_meta(split, lambda m: m["videos"]["synth_001"]["objects"]["1"]["frame_range"].update(end=6, frame_nums=2))
    result = cli("--split_dir", split, "--models", "static_mask", "--output", tmp_path / "r.csv")
    assert result.returncode == 0, result.stderr
    row = rows_of(tmp_path / "r.csv")[3]
    assert (row["object_id"], row["status"], row["J"], row["V"]) == ("1", "no_score", "", "")
    assert "frame_nums 2" in row["error"]


def json_edit(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def test_a_folder_with_two_layouts_or_none_is_refused_naming_them(tmp_path):
    (tmp_path / "both" / "JPEGImages_24fps").mkdir(parents=True)
    (tmp_path / "both" / "JPEGImages").mkdir()
    result = cli("--split_dir", tmp_path / "both", "--models", "static_mask", "--output", tmp_path / "r.csv")
    assert_usage_error(
        result, f"--split_dir {tmp_path / 'both'} holds both an SA-V val/test split and a MOSE split; give a folder with one split"
    )
    (tmp_path / "none").mkdir()
    result = cli("--split_dir", tmp_path / "none", "--models", "static_mask", "--output", tmp_path / "r.csv")
    assert result.returncode == 2 and "LVOS v2 (JPEGImages/, Annotations/ and valid_meta.json" in result.stderr
    assert "MOSE / MOSEv2 (JPEGImages/, Annotations/" in result.stderr


# Against the official evaluators, on the run's saved masks.

LVOS_EVAL, LVOS_PYTHON = os.environ.get("LVOS_EVAL"), os.environ.get("LVOS_PYTHON", sys.executable)
MOSE_API, MOSE_API_PYTHON = os.environ.get("MOSE_API"), os.environ.get("MOSE_API_PYTHON", sys.executable)


@pytest.mark.skipif(not LVOS_EVAL, reason="set LVOS_EVAL to a checkout of lvos-evaluation (and LVOS_PYTHON to a Python with numpy<2)")
def test_lvos_toolkit_scores_the_saved_masks_as_the_run_does(lvos, tmp_path):
    split, rows, masks, _ = lvos
    work = tmp_path / "work"  # the toolkit reads ./unseen_videos.txt and ./unsupervised_videos.txt
    shutil.copytree(LVOS_EVAL, work)
    shutil.copy(split / "unseen_videos.txt", work / "unseen_videos.txt")
    for model in MODELS.split(","):
        results = tmp_path / "results" / model
        shutil.copytree(masks / model, results)
        command = [LVOS_PYTHON, "evaluation_method.py", "--lvos_path", str(split), "--results_path", str(results), "--mp_nums", "1"]
        done = subprocess.run(command, cwd=work, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0 and (results / "global_results-valid.csv").is_file(), done.stdout + done.stderr
        mine = tmp_path / "mine" / model
        mine.mkdir(parents=True)
        objects = [(r["video_id"], float(r["J"]) / 100, float(r["F"]) / 100, float(r["V"]) / 100) for r in rows if r["model"] == model]
        write_csvs(mine, objects, ["synth_001"])
        for name in ("global_results-valid.csv", "per-sequence_results-valid.csv"):
            assert (mine / name).read_text() == (results / name).read_text(), (model, name)


@pytest.mark.skipif(not MOSE_API, reason="set MOSE_API to a checkout of MOSE-api (and MOSE_API_PYTHON to a Python with scikit-image)")
def test_mosev2_scorer_scores_the_saved_masks_as_the_run_does(mosev2, tmp_path):
    split, rows, masks, result = mosev2
    tools = Path(MOSE_API) / "MOSEv2" / "sam2_rcms" / "tools"
    official = {"J&F_new": "JF_dot", "J": "J", "F_new": "F_dot", "disappear_J&F_new": "JF_dot_disappear"}
    official.update({"reappear_J&F_new": "JF_dot_reappear", "F": "F", "J&F": "JF"})
    summary = result.stdout.split("MOSEv2, as its scorer's scores.txt")[1].splitlines()[3:]
    for line, model in zip(summary, MODELS.split(",")):
        out = tmp_path / model
        command = [MOSE_API_PYTHON, "score.py", "--meta", str(split / "meta_train.json"), "--ann", str(split / "Annotations")]
        done = subprocess.run([*command, "--pred", str(masks / model), "--output", str(out)], cwd=tools, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
        per_object = json.loads((out / "metrics.json").read_text())
        for row in (r for r in rows if r["model"] == model):
            theirs = per_object[f"{row['video_id']}_{row['object_id']}"]
            assert {k: None if row[c] == "" else round(float(row[c]), 2) for k, c in official.items()} == theirs, (model, row["object_id"])
        scores = dict(line.split(": ", 1) for line in (out / "scores.txt").read_text().splitlines() if ": " in line)
        assert line.split() == [model, "5/5", *(f"{float(scores[key]):.2f}" for key in official)]


def test_the_sav_frames_flag_is_refused_where_another_protocol_fixes_the_frames(tmp_path):
    split = tmp_path / "split"
    make_split(split, videos=1, frames=6, width=32, height=24, layout="mosev2")
    result = cli("--split_dir", split, "--models", "static_mask", "--output", tmp_path / "r.csv", "--do_not_skip_first_and_last_frame")
    assert_usage_error(
        result,
        f"--do_not_skip_first_and_last_frame changes the SA-V evaluator's frames; {split.resolve()} is scored by mosev2's rules, "
        "which fix their own frames: leave the flag out",
    )


def test_a_zip_is_written_only_for_a_run_of_the_whole_split(tmp_path):
    split = tmp_path / "split"
    make_split(split, videos=2, frames=5, width=32, height=24, layout="mose-val")
    result = cli(
        "--split_dir",
        split,
        "--models",
        "static_mask",
        "--output",
        tmp_path / "r.csv",
        "--save_masks",
        tmp_path / "m",
        "--limit_videos",
        "1",
    )
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "m" / "static_mask.zip").exists() and "challenge server:" not in result.stdout
    assert "warning: static_mask: no zip for the challenge server (--limit_videos ran part of the split" in result.stderr


def test_a_mosev2_train_video_without_every_annotation_fails_its_rows_before_running(tmp_path):
    split = tmp_path / "split"
    make_split(split, videos=2, frames=6, width=32, height=24, layout="mosev2")
    (split / "Annotations" / "synth_001" / "00003.png").unlink()
    result = cli("--split_dir", split, "--models", "static_mask", "--output", tmp_path / "r.csv")
    rows = rows_of(tmp_path / "r.csv")
    assert result.returncode == 1
    assert {(r["video_id"], r["status"]) for r in rows} == {("synth_000", "ok"), ("synth_001", "error")}
    assert "frame 00003 has no annotation" in rows[-1]["error"] and rows[-1]["prompt_frame"] == ""


def test_a_mose_meta_without_mosev2s_schema_is_scored_as_mose_v1(tmp_path):
    split = tmp_path / "split"
    make_split(split, videos=1, frames=6, width=32, height=24, layout="mose")
    (split / "meta_train.json").write_text(json.dumps({"videos": {"synth_000": {"objects": {"1": {"first_frame_exhaustive_anno": True}}}}}))
    result = cli("--split_dir", split, "--models", "static_mask", "--output", tmp_path / "r.csv")
    assert result.returncode == 0, result.stderr
    assert {r["protocol"] for r in rows_of(tmp_path / "r.csv")} == {"sav"}


def test_the_lvos_test_split_zips_its_label_maps_under_annotations(tmp_path):
    split = tmp_path / "split"
    make_split(split, videos=1, frames=4, width=32, height=24, layout="lvos")
    (split / "valid_meta.json").rename(split / "test_meta.json")
    result = cli("--split_dir", split, "--models", "static_mask", "--output", tmp_path / "r.csv", "--save_masks", tmp_path / "m")
    assert result.returncode == 0, result.stderr
    assert {r["protocol"] for r in rows_of(tmp_path / "r.csv")} == {"server"}
    with zipfile.ZipFile(tmp_path / "m" / "static_mask.zip") as archive:
        assert sorted(archive.namelist()) == [f"Annotations/synth_000/{1 + 5 * i:08d}.png" for i in range(4)]


def test_compare_warns_when_two_runs_were_scored_by_different_rules(tmp_path):
    runs = []
    for layout in ("mose", "mosev2"):
        make_split(tmp_path / layout, videos=1, frames=6, width=32, height=24, layout=layout)
        assert cli("--split_dir", tmp_path / layout, "--models", "static_mask", "--output", tmp_path / f"{layout}.csv").returncode == 0
        runs.append(tmp_path / f"{layout}.csv")
    result = cli("compare", *runs)
    assert "warning: protocol differs: sav in the reference, mosev2 here" in result.stdout + result.stderr
