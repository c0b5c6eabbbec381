"""`evaluate`: the official SA-V evaluator's output, line for line, with numbers from the plain
per-pixel reference; its failures as one line each. Run in a subprocess, as a user runs it."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, USAGE_ERROR, assert_usage_error, cli
from reference_metrics import jf, object_jf

from sav_benchmark.masks import write_ids, write_mask

SKIPPING = "We are *SKIPPING* the evaluation of the first and the last frame (standard for semi-supervised video object segmentation).\n"
NOT_SKIPPING = (
    "We are *NOT SKIPPING* the evaluation of the first and the last frame (*NOT STANDARD* for semi-supervised video object segmentation).\n"
)
H, W = 24, 32


def evaluate(*args):
    return cli("evaluate", *args)


def rect(rows, cols):
    m = np.zeros((H, W), bool)
    m[rows[0] : rows[1], cols[0] : cols[1]] = True
    return m


EMPTY = np.zeros((H, W), bool)


def sav_objects():
    """(video, object) -> (ground truths, predictions) on frames 0, 4, ..., 20."""
    moving = [rect((2 + i, 12 + i), (3, 15)) for i in range(6)]
    return {
        ("sav_000001", "000"): (moving, [rect((2 + i, 12 + i), (4, 15 + i % 2)) for i in range(6)]),
        ("sav_000001", "001"): (
            [EMPTY, EMPTY, rect((5, 9), (20, 30)), rect((5, 9), (20, 30)), rect((6, 9), (20, 31)), EMPTY],
            [EMPTY, rect((0, 3), (0, 3)), EMPTY, rect((5, 10), (21, 30)), rect((6, 9), (20, 31)), EMPTY],
        ),
        ("sav_000002", "000"): ([rect((10, 20), (10, 20))] * 6, [rect((0, 24), (0, 32))] * 6),
    }


def write_sav(root, objects, writer=write_mask):
    for (video, obj), (gts, preds) in objects.items():
        for i, (gt, pred) in enumerate(zip(gts, preds)):
            writer(root / "gt" / video / obj / f"{4 * i:05d}.png", gt)
            writer(root / "pred" / video / obj / f"{4 * i:05d}.png", pred)
    return root / "gt", root / "pred"


def expected_table(rows):
    """results.csv as the official evaluator writes it, from (video, object, J, F) in percent."""
    width = max([len(video) for video, *_ in rows] + [len("Global score")])
    gj = sum(r[2] for r in rows) / len(rows)
    gf = sum(r[3] for r in rows) / len(rows)
    text = f"{'sequence':<{width}},{'obj':>3}, {'J&F':>4}, {'J':>4}, {'F':>4}\n"
    text += f"{'Global score':<{width}},{'':>3}, {(gj + gf) / 2:.1f}, {gj:.1f}, {gf:.1f}\n"
    for video, obj, j, f in rows:
        text += f"{video:<{width}},{obj:03}, {(j + f) / 2:>4.1f}, {j:>4.1f}, {f:>4.1f}\n"
    return text, ((gj + gf) / 2, gj, gf)


def expected_stdout(gt, videos, table, scores, pred, preamble=SKIPPING):
    return (
        preamble
        + f"In dataset {gt}, we are evaluating on {len(videos)} videos: {videos}\n"
        + table.replace(",", " ")
        + f"\nSummary:\nGlobal score: J&F: {scores[0]:.1f} J: {scores[1]:.1f} F: {scores[2]:.1f}\nTIME\n"
        + f"Saving the results to {pred}/results.csv\n"
    )


def without_time(stdout):
    return re.sub(r"Time taken: [0-9.]+s", "TIME", stdout)


def sav_reference(objects, skip=True):
    rows = []
    for (video, obj), (gts, preds) in objects.items():
        frames = slice(1, -1) if skip else slice(None)
        j, f = object_jf(preds[frames], gts[frames])
        rows.append((video, obj, j, f))
    return rows


@pytest.mark.parametrize("processes", [1, 2])
def test_sav_layout_prints_and_saves_the_official_table(tmp_path, processes):
    objects = sav_objects()
    gt, pred = write_sav(tmp_path, objects)
    table, scores = expected_table(sav_reference(objects))
    result = evaluate("--gt_root", gt, "--pred_root", pred, "-n", processes)
    assert (result.returncode, result.stderr) == (0, "")
    assert without_time(result.stdout) == expected_stdout(gt, ["sav_000001", "sav_000002"], table, scores, pred)
    assert (pred / "results.csv").read_text() == table


def test_the_scripts_reference_evaluator_agrees_with_the_per_pixel_reference(tmp_path):
    """scripts/reference_evaluator.py, which scripts/evaluate_speed.py times and compares with
    evaluate, against tests/reference_metrics.py's loops: two independent readings of the spec."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from reference_evaluator import evaluate_folders
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    rng = np.random.default_rng(0)
    noise = [rng.random((H, W)) < 0.3 for _ in range(12)]  # diagonal neighbours and masks at every edge
    objects = {**sav_objects(), ("sav_000003", "000"): (noise[:6], noise[6:])}
    gt, pred = write_sav(tmp_path, objects)
    expected = {(video, obj): (pytest.approx(j), pytest.approx(f)) for video, obj, j, f in sav_reference(objects)}
    assert evaluate_folders(gt, pred) == expected


def test_not_skipping_first_and_last_and_quiet(tmp_path):
    objects = sav_objects()
    gt, pred = write_sav(tmp_path, objects)
    table, scores = expected_table(sav_reference(objects, skip=False))
    result = evaluate("--gt_root", gt, "--pred_root", pred, "--do_not_skip_first_and_last_frame")
    assert without_time(result.stdout) == expected_stdout(gt, ["sav_000001", "sav_000002"], table, scores, pred, NOT_SKIPPING)
    quiet = evaluate("--gt_root", gt, "--pred_root", pred, "-q")
    assert (quiet.returncode, quiet.stdout) == (0, f"Saving the results to {pred}/results.csv\n")


def test_masks_stored_as_sam2_saves_them_read_the_same(tmp_path):
    """Palette PNGs of 0 and 1 (sam2's tools/vos_inference.py) score as 1-bit ones do."""
    objects = sav_objects()
    gt, pred = write_sav(tmp_path, objects, writer=lambda path, m: write_ids(path, m.astype(np.uint8), compression=6))
    table, _ = expected_table(sav_reference(objects))
    assert evaluate("--gt_root", gt, "--pred_root", pred).returncode == 0
    assert (pred / "results.csv").read_text() == table


def test_davis_layout_lists_ids_in_the_official_order_and_counts_from_first_sighting(tmp_path):
    """Ids 9 and 2: the official evaluator lists a video's objects in its Python set's order,
    9 before 2. Id 2 shows up in the prediction (frame 1) before the ground truth (frame 2), so
    its frame 1 counts (J 0, F 0); id 4 is only predicted and is not reported."""
    gts, preds = [], []
    for frame in range(6):
        gt = np.zeros((H, W), np.uint8)
        gt[2 + frame : 10 + frame, 2:12] = 9
        pred = np.zeros((H, W), np.uint8)
        pred[2 + frame : 10 + frame, 3:12] = 9
        if frame >= 2:
            gt[14:20, 15:25] = 2
            pred[14:20, 16:26] = 2
        if frame == 1:
            pred[20:23, 0:3] = 2
            pred[0:2, 28:31] = 4
        gts.append(gt)
        preds.append(pred)
        write_ids(tmp_path / "gt" / "bear" / f"{frame:05d}.png", gt)
        write_ids(tmp_path / "pred" / "bear" / f"{frame:05d}.png", pred)
    evaluated = range(1, 5)
    nine = [jf(preds[t] == 9, gts[t] == 9) for t in evaluated]
    two = [jf(preds[t] == 2, gts[t] == 2) for t in evaluated]
    assert two[0] == (0.0, 0.0)
    rows = [("bear", 9, *(100 * np.mean(v) for v in zip(*nine))), ("bear", 2, *(100 * np.mean(v) for v in zip(*two)))]
    table, scores = expected_table(rows)
    assert table.splitlines()[2].startswith("bear        ,009,")
    result = evaluate("--gt_root", tmp_path / "gt", "--pred_root", tmp_path / "pred")
    assert without_time(result.stdout) == expected_stdout(tmp_path / "gt", ["bear"], table, scores, tmp_path / "pred")


def test_object_without_score_is_left_out_with_a_warning(tmp_path):
    objects = {**sav_objects(), ("sav_000002", "001"): ([rect((1, 5), (1, 5))] + [EMPTY] * 4 + [rect((1, 5), (1, 5))], [EMPTY] * 6)}
    gt, pred = write_sav(tmp_path, objects)
    result = evaluate("--gt_root", gt, "--pred_root", pred)
    assert result.returncode == 0
    assert (
        result.stderr
        == "warning: sav_000002/001: no score (ground truth empty on every evaluated frame); left out of the table and the global score "
        "(the official evaluator stops here)\n"
    )
    table, _ = expected_table(sav_reference(sav_objects()))
    assert (pred / "results.csv").read_text() == table


def test_strict_wants_the_same_videos_and_non_strict_takes_those_in_both(tmp_path):
    gt, pred = write_sav(tmp_path, sav_objects())
    os.rename(pred / "sav_000002", tmp_path / "elsewhere")
    result = evaluate("--gt_root", gt, "--pred_root", pred, "--strict")
    assert (result.returncode, result.stdout, result.stderr) == (
        2,
        "",
        USAGE_ERROR + f"--strict: 1 videos of the ground truth are not in {pred}: sav_000002\n",
    )
    result = evaluate("--gt_root", gt, "--pred_root", pred)
    assert "we are evaluating on 1 videos: ['sav_000001']" in result.stdout


@pytest.mark.parametrize("problem", ["missing", "size", "values", "damaged", "no_gt_root"])
def test_bad_input_is_one_line_naming_the_file(tmp_path, problem):
    gt, pred = write_sav(tmp_path, sav_objects())
    frame = pred / "sav_000001" / "001" / "00008.png"
    if problem == "missing":
        frame.unlink()
        message = (
            f"{frame} not found (1 of the 4 evaluated frames are missing); predict every annotated frame (--save_masks writes them all)"
        )
    elif problem == "size":
        write_mask(frame, np.zeros((H, W + 1), bool))
        message = (
            f"{frame} is {W + 1}x{H} but its ground truth {gt / 'sav_000001' / '001' / '00008.png'} is {W}x{H}; predict at the ground "
            "truth's resolution"
        )
    elif problem == "values":
        write_ids(frame, np.arange(H * W).reshape(H, W) % 3)
        message = (
            f"{frame} holds more than two values; an SA-V mask is one object per PNG (background and one foreground value); fix or remove "
            "that file"
        )
    elif problem == "damaged":
        frame.write_bytes(b"not a png")
        message = f"{frame} is not a PNG file; fix or remove that file"
    else:
        gt = tmp_path / "nowhere"
        message = f"--gt_root {gt} is not a folder; give the folder that holds one folder per video"
    result = evaluate("--gt_root", gt, "--pred_root", pred)
    found_while_scoring = SKIPPING + f"In dataset {gt}, we are evaluating on 2 videos: ['sav_000001', 'sav_000002']\n"
    assert (result.returncode, result.stdout, result.stderr) == (
        2,
        "" if problem in ("missing", "no_gt_root") else found_while_scoring,
        USAGE_ERROR + message + "\n",
    )


@pytest.mark.parametrize("stray", ["object_folder", "video_folder", "no_common_video"])
def test_stray_files_and_empty_selections_are_refused_not_guessed(tmp_path, stray):
    """The official evaluator counts every file of an object folder as a frame (a .DS_Store shifts
    which frames are first and last) and fails on a file beside the object folders."""
    gt, pred = write_sav(tmp_path, sav_objects())
    if stray == "object_folder":
        path = gt / "sav_000001" / "000" / "00006.json"  # among the evaluated frames (a first or last one is dropped, as there)
        message = f"{path} is not a PNG; the official evaluator counts every file of the folder as a frame: move it away"
    elif stray == "video_folder":
        path = gt / "sav_000002" / "notes.txt"
        message = (
            f"{path} is a file beside object folders; an SA-V video folder holds one folder per object, a DAVIS one only PNGs: move it away"
        )
    else:
        path, pred = tmp_path / "unused", tmp_path / "empty"
        pred.mkdir()
        message = f"no video folder of --gt_root {gt} is in --pred_root {pred}; give the folder that holds the predicted videos"
    path.write_text("x")
    result = evaluate("--gt_root", gt, "--pred_root", pred)
    assert_usage_error(result, message)


def test_missing_flags_are_a_usage_error():
    result = evaluate("--gt_root", "x")
    assert (result.returncode, result.stderr) == (
        2,
        USAGE_ERROR + "the following arguments are required: --pred_root (see jetson_benchmark.py evaluate --help)\n",
    )


OFFICIAL = os.environ.get("SAV_EVALUATOR")  # the official sav_dataset/ folder, to compare against


@pytest.mark.skipif(
    not OFFICIAL, reason="set SAV_EVALUATOR to sam2's sav_dataset/ folder (and SAV_EVALUATOR_PYTHON) to compare with the official evaluator"
)
@pytest.mark.parametrize("layout", ["sav", "davis"])
def test_same_output_as_the_official_evaluator(tmp_path, layout):
    if layout == "sav":
        gt, pred = write_sav(tmp_path, sav_objects(), writer=lambda path, m: write_ids(path, m.astype(np.uint8), compression=6))
    else:
        test_davis_layout_lists_ids_in_the_official_order_and_counts_from_first_sighting(tmp_path)
        gt, pred = tmp_path / "gt", tmp_path / "pred"
    python = os.environ.get("SAV_EVALUATOR_PYTHON", sys.executable)
    official = subprocess.run(
        [python, "sav_evaluator.py", "--gt_root", str(gt), "--pred_root", str(pred), "-n", "1"],
        cwd=OFFICIAL,
        capture_output=True,
        text=True,
        check=True,
    )
    official_csv = (pred / "results.csv").read_text()
    ours = evaluate("--gt_root", gt, "--pred_root", pred, "-n", "1")
    assert without_time(ours.stdout) == without_time(official.stdout)
    assert (pred / "results.csv").read_text() == official_csv


def test_the_speed_script_prints_its_table_without_the_official_evaluator():
    """scripts/evaluate_speed.py (the speed table of docs/evaluate.md) on its smallest case: the floor is below
    ours, and the columns that need the official evaluator say so."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "evaluate_speed.py"), "--sizes", "480p", "--layouts", "davis"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    header, rule, row = out.stdout.splitlines()[1:]
    cells = dict(zip([h.strip() for h in re.split(r"\s{2,}", header.strip())], row.split()))
    assert (cells["layout"], cells["masks"], cells["frames"], cells["official"], cells["x official"]) == ("davis", "480p", "216", "-", "-")
    assert float(cells["floor"]) < float(cells["evaluate"])
