"""LVOS v2's scoring (sav_benchmark.metrics_lvos): every rule with values worked out by hand, and,
pointed at a checkout of the official toolkit, the same numbers as the toolkit to the last bit.

The pointed tests need LVOS_EVAL, a checkout of github.com/LingyiHongfd/lvos-evaluation, and
LVOS_PYTHON, a python with its requirements (numpy<2, pillow, opencv-python-headless,
scikit-image, scipy, pandas, tqdm; default: this python). They run the toolkit in a subprocess,
always on its pure-Python boundary path (its optional Cython module, if built, is kept from loading:
it changes F), from a working directory holding the unseen and unsupervised lists made for the test."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sav_benchmark.metrics import frame_scores
from sav_benchmark.metrics_lvos import (
    GLOBAL_COLUMNS,
    UNSEEN_VIDEOS_V2,
    LVOSObjectScore,
    LVOSObjectScorer,
    ObjectResult,
    csv_paths,
    frame_file_name,
    global_table,
    object_mask,
    per_sequence_table,
    rounded_std,
    scored_frames,
    sequence_name,
    write_csvs,
)

# ---------------------------------------------------------------- which frames are scored


def test_end_as_last_frame_and_as_last_plus_5_score_the_same_frames():
    # an object on frames 1, 6, ..., 46: 10 frames; the first and the last are not scored
    expected = [(slot, 6 + 5 * slot) for slot in range(8)]
    assert scored_frames(1, 46, 10) == expected  # end = the last frame: range() stops before it
    assert scored_frames(1, 51, 10) == expected  # end = last + 5: the last is candidate k = 9 = frame_nums - 1


def test_an_object_that_starts_late_has_its_own_window():
    # frames 21, 26, 31, 36, 41: 21 is the reference (k = 0) and 41 the last (k = 4)
    assert scored_frames(21, 41, 5) == [(0, 26), (1, 31), (2, 36)]
    assert scored_frames(21, 46, 5) == [(0, 26), (1, 31), (2, 36)]
    assert scored_frames("21", "46", "5") == [(0, 26), (1, 31), (2, 36)]  # meta values go through int()


def test_frame_nums_larger_than_the_window_leaves_slots_unfilled():
    # 9 candidates (1 .. 41), 10 slots: k = 1..8 fill slots 0..7, slots 8 and 9 stay empty
    assert scored_frames(1, 46, 12) == [(slot, 6 + 5 * slot) for slot in range(8)]
    assert scored_frames(10, 10, 7) == []  # no candidate at all


def test_where_the_official_evaluator_crashes_scored_frames_refuses():
    with pytest.raises(ValueError, match=r"video vid1, object 3: frame_range start 1, end 56 gives 11 frames.*frame_nums 10"):
        scored_frames(1, 56, 10, video="vid1", obj="3")  # slot 9 of 8
    with pytest.raises(ValueError, match="frame_nums 1 < 2"):
        scored_frames(1, 6, 1)
    with pytest.raises(ValueError, match="frame_nums 0 < 2"):
        scored_frames(1, 1, 0)
    with pytest.raises(ValueError, match="3 frames"):
        scored_frames(1, 11 + 1, 2)  # frame_nums 2 and a third candidate: slot 1 of 0
    assert scored_frames(1, 11, 2) == []  # frame_nums 2, two candidates: nothing scored, no crash


def test_frame_file_names_have_8_digits():
    assert frame_file_name(6) == "00000006" and frame_file_name(12345678) == "12345678"


def test_object_mask_is_label_equality_without_void():
    labels = np.array([[0, 1, 2], [255, 1, 12]], np.uint8)
    assert object_mask(labels, "1").tolist() == [[False, True, False], [False, True, False]]
    assert object_mask(labels, 255).tolist() == [[False, False, False], [True, False, False]]


# ---------------------------------------------------------------- per object


def test_unfilled_slots_count_zero_in_the_means_and_in_v():
    scorer = LVOSObjectScorer(6)  # 4 slots
    scorer.add(0, 1.0, 1.0)
    scorer.add(1, 0.5, 0.25)
    score = scorer.conclude()
    # JF per slot: 1, 0.375, 0, 0; mean 0.34375; variance (0.65625^2 + 0.03125^2 + 2 * 0.34375^2) / 4 = 0.1669921875
    assert (score.JM, score.FM, score.scored, score.slots) == (0.375, 0.3125, 2, 4)
    assert score.V == math.sqrt(0.167)  # the variance rounded to 4 decimals first


def test_v_rounds_the_variance_to_4_decimals_before_the_square_root():
    assert rounded_std(0.0100848) == math.sqrt(0.0101)
    assert round(rounded_std(0.0100848), 7) == 0.1004988
    assert rounded_std(0.00004) == 0.0 and rounded_std(0.00006) == 0.01
    assert rounded_std(0.0) == 0.0


def test_feed_scores_masks_with_frame_scores_in_any_slot_order():
    gt = np.zeros((20, 20), bool)
    gt[5:15, 5:15] = True
    pred = np.zeros_like(gt)
    pred[5:15, 5:10] = True
    scorer = LVOSObjectScorer("5")  # 3 slots
    assert scorer.feed(2, pred, gt) == frame_scores(pred, gt)
    assert scorer.feed(0, gt, gt) == (1.0, 1.0)
    assert scorer.feed(1, np.zeros_like(gt), np.zeros_like(gt)) == (1.0, 1.0)  # object absent, nothing predicted
    j, f = frame_scores(pred, gt)
    score = scorer.conclude()
    assert j == 0.5 and score.JM == (1 + 1 + j) / 3 and score.FM == (1 + 1 + f) / 3


def test_an_object_with_no_slot_has_nan_scores():
    score = LVOSObjectScorer(2).conclude()
    assert all(math.isnan(v) for v in score[:3]) and (score.scored, score.slots) == (0, 0)
    assert score.columns() == {"J": None, "F": None, "JF": None, "V": None, "n_eval_frames": 0}


def test_columns_are_percent():
    assert LVOSObjectScore(0.5, 0.75, 0.25, 3, 4).columns() == {"J": 50.0, "F": 75.0, "JF": 62.5, "V": 25.0, "n_eval_frames": 3}


def test_the_scorer_refuses_what_the_official_evaluator_cannot_do():
    scorer = LVOSObjectScorer(5, video="v", obj="2")
    with pytest.raises(ValueError, match="video v, object 2: slot 3 is outside the 3 slots"):
        scorer.add(3, 1.0, 1.0)
    with pytest.raises(ValueError, match="slot -1"):
        scorer.add(-1, 1.0, 1.0)
    scorer.add(1, 1.0, 1.0)
    with pytest.raises(ValueError, match="slot 1 was scored already"):
        scorer.add(1, 1.0, 1.0)
    with pytest.raises(ValueError, match="frame_nums 1 < 2"):
        LVOSObjectScorer(1)


# ---------------------------------------------------------------- tables


OBJECTS = [
    ("seenB", 0.4, 0.2, 0.3),  # given before seenA: the tables sort the videos
    ("seenA", 0.8, 0.6, 0.1),
    ("R3UJGYwy", 0.3, 0.9, 0.5),  # unseen in LVOS v2
    ("seenB", 0.6, 0.4, 0.1),
]


def test_global_table_is_the_macro_average_of_the_seen_and_unseen_groups():
    table = global_table(OBJECTS)
    assert list(table) == list(GLOBAL_COLUMNS)
    j_seen, f_seen, v_seen = (0.4 + 0.8 + 0.6) / 3, (0.2 + 0.6 + 0.4) / 3, (0.3 + 0.1 + 0.1) / 3
    expected = {
        "J&F-Mean": (j_seen + f_seen + 0.3 + 0.9) / 4,  # 0.55; the mean over all 4 objects would be 0.525
        "J-Mean": (j_seen + 0.3) / 2,
        "J-seen-Mean": j_seen,
        "J-unseen-Mean": 0.3,
        "F-Mean": (f_seen + 0.9) / 2,
        "F-seen-Mean": f_seen,
        "F-unseen-Mean": 0.9,
        "V-Mean": (v_seen + 0.5) / 2,
        "V-seen-Mean": v_seen,
        "V-unseen-Mean": 0.5,
    }
    assert table == pytest.approx(expected, abs=1e-15)
    assert table["J&F-Mean"] == pytest.approx(0.55) and table["J-Mean"] == pytest.approx(0.45) and table["F-Mean"] == pytest.approx(0.65)


def test_group_means_are_numpys_pairwise_means_in_sorted_video_order():
    rng = np.random.default_rng(5)
    values = rng.random(300)
    objects = [(f"v{i:03d}", float(v), 0.5, 0.0) for i, v in enumerate(values)]
    rng.shuffle(objects)  # the toolkit's order is the sorted one
    in_order = [o[1] for o in sorted(objects)]
    assert sum(in_order) / len(in_order) != float(np.mean(in_order))  # the summation order shows in the last bits
    assert global_table(objects)["J-seen-Mean"] == float(np.mean(in_order))


def test_the_unseen_list_decides_by_video_name():
    table = global_table(OBJECTS, unseen_videos=["seenA"])
    assert table["J-unseen-Mean"] == 0.8 and table["J-seen-Mean"] == pytest.approx((0.4 + 0.3 + 0.6) / 3)


def test_an_empty_group_gives_nan_and_the_nan_spreads():
    table = global_table([o for o in OBJECTS if o[0] != "R3UJGYwy"])
    assert table["J-seen-Mean"] == pytest.approx(0.6) and table["F-seen-Mean"] == pytest.approx(0.4)
    assert table["V-seen-Mean"] == pytest.approx(0.5 / 3)
    for name in ("J&F-Mean", "J-Mean", "J-unseen-Mean", "F-Mean", "F-unseen-Mean", "V-Mean", "V-unseen-Mean"):
        assert math.isnan(table[name]), name
    assert all(math.isnan(v) for v in global_table([]).values())


def test_per_sequence_rows_are_named_by_position_in_sorted_videos():
    assert per_sequence_table(OBJECTS) == [
        ("R3UJGYwy_1", 0.3, 0.9, 0.5),
        ("seenA_1", 0.8, 0.6, 0.1),
        ("seenB_1", 0.4, 0.2, 0.3),
        ("seenB_2", 0.6, 0.4, 0.1),
    ]
    assert per_sequence_table([ObjectResult("v", 0.1, 0.2, 0.3)]) == [("v_1", 0.1, 0.2, 0.3)]
    assert sequence_name("v", 0) == "v_1"


def test_csvs_are_written_as_the_toolkit_writes_them(tmp_path):
    paths = write_csvs(tmp_path, OBJECTS)
    assert paths == csv_paths(tmp_path) == (tmp_path / "global_results-valid.csv", tmp_path / "per-sequence_results-valid.csv")
    assert paths[0].read_bytes() == (
        b"J&F-Mean,J-Mean,J-seen-Mean,J-unseen-Mean,F-Mean,F-seen-Mean,F-unseen-Mean,V-Mean,V-seen-Mean,V-unseen-Mean\n"
        b"0.550,0.450,0.600,0.300,0.650,0.400,0.900,0.333,0.167,0.500\n"
    )
    assert paths[1].read_bytes() == (
        b"Sequence,J-Mean,F-Mean,V-Mean\nR3UJGYwy_1,0.300,0.900,0.500\nseenA_1,0.800,0.600,0.100\n"
        b"seenB_1,0.400,0.200,0.300\nseenB_2,0.600,0.400,0.100\n"
    )
    write_csvs(tmp_path, [("a", 0.25, 0.5, math.nan)], subset="test")
    assert (tmp_path / "global_results-test.csv").read_text().splitlines()[1] == ",,0.250,,,0.500,,,,"
    assert (tmp_path / "per-sequence_results-test.csv").read_text().splitlines()[1] == "a_1,0.250,0.500,"


def test_the_unseen_list_has_51_distinct_names():
    assert len(UNSEEN_VIDEOS_V2) == len(set(UNSEEN_VIDEOS_V2)) == 51
    assert UNSEEN_VIDEOS_V2[0] == "R3UJGYwy" and UNSEEN_VIDEOS_V2[-1] == "3bvEjhOT"


# ---------------------------------------------------------------- against the official toolkit

LVOS_EVAL = os.environ.get("LVOS_EVAL")
LVOS_PYTHON = os.environ.get("LVOS_PYTHON", sys.executable)
pointed = pytest.mark.skipif(
    not LVOS_EVAL,
    reason="set LVOS_EVAL to a checkout of github.com/LingyiHongfd/lvos-evaluation (and LVOS_PYTHON to a python with numpy<2 "
    "and its requirements) to run it",
)

# Run by LVOS_PYTHON: `driver.py CHECKOUT MODE IN OUT [evaluation_method.py arguments]`, in a working
# directory holding unseen_videos.txt and unsupervised_videos.txt. The Cython boundary module is
# kept from loading (None in sys.modules makes its import fail), so the toolkit takes its
# pure-Python (DAVIS) path whether or not it was built.
DRIVER = r"""
import json, runpy, sys
import numpy as np
checkout, mode, inp, out = sys.argv[1:5]
sys.modules["lvos.metric_ops._get_binary_c._get_binary_c"] = None
sys.path.insert(0, checkout)
from lvos import metrics, utils
assert not metrics.use_cython
result = {"numpy": np.__version__}
if mode == "frames":
    data = np.load(inp)
    result["JF"] = [
        [float(metrics.db_eval_iou(data[f"gt{i}"][None], data[f"pred{i}"][None])[0]),
         float(metrics.db_eval_boundary(data[f"gt{i}"][None], data[f"pred{i}"][None])[0])]
        for i in range(int(data["n"]))
    ]
elif mode == "stats":
    data = np.load(inp)
    result["stats"] = []
    for i in range(int(data["n"])):
        j, f = data[f"j{i}"][None], data[f"f{i}"][None]
        result["stats"].append([float(utils.db_statistics(j)[0]), float(utils.db_statistics(f)[0]), float(utils.db_statistics_var(j, f))])
else:
    script = checkout + "/evaluation_method.py"
    sys.argv = [script, *sys.argv[5:]]
    run = runpy.run_path(script, run_name="__main__")
    result["global"] = dict(zip(run["table_g"].columns, map(float, run["table_g"].iloc[0])))
    result["sequences"] = [[r[0], *map(float, r[1:])] for r in run["table_seq"].itertuples(index=False)]
    from lvos.evaluation import LVOSEvaluation
    from lvos.results import Results
    args = run["args"]
    evaluation = LVOSEvaluation(lvos_root=args.lvos_path, task="semi-supervised", gt_set=args.set)
    result["frames"] = {}
    for video in evaluation.dataset.get_sequences():
        sequence = evaluation.dataset.get_sequence(video)
        j, f = evaluation._evaluate_semisupervised(sequence, Results(args.results_path), None, ("J", "F", "V"))
        result["frames"][video] = {o: [j[o][0].tolist(), f[o][0].tolist()] for o in j}
with open(out, "w") as handle:
    json.dump(result, handle)
"""


def run_official(tmp_path: Path, mode: str, data: Path | None, *args: str, unseen: tuple[str, ...] | None = None) -> dict:
    """The driver's result; unseen_videos.txt is the checkout's unless `unseen` is given."""
    work = tmp_path / "official_cwd"
    work.mkdir(exist_ok=True)
    checkout = Path(LVOS_EVAL)
    listed = (checkout / "unseen_videos.txt").read_text()
    (work / "unseen_videos.txt").write_text(listed if unseen is None else "".join(f"{name}\n" for name in unseen))
    (work / "unsupervised_videos.txt").write_text((checkout / "unsupervised_videos.txt").read_text())
    (work / "driver.py").write_text(DRIVER)
    out = tmp_path / f"official_{mode}.json"
    done = subprocess.run(
        [LVOS_PYTHON, "driver.py", str(checkout), mode, str(data or ""), str(out), *args],
        capture_output=True,
        text=True,
        cwd=work,
        timeout=600,
    )
    assert done.returncode == 0 and out.exists(), (
        f"the official toolkit failed (it needs numpy<2: LVOS_PYTHON={LVOS_PYTHON}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    assert "using Python version" in done.stdout, done.stdout[-2000:]
    result = json.loads(out.read_text())
    result["stdout"] = done.stdout
    return result


def same(a: float, b: float) -> bool:
    """Equal to the last bit, NaN equal to NaN."""
    return (math.isnan(a) and math.isnan(b)) or a == b


@pointed
def test_the_unseen_list_is_the_official_file():
    listed = [line.strip() for line in (Path(LVOS_EVAL) / "unseen_videos.txt").read_text().splitlines() if line.strip()]
    assert tuple(listed) == UNSEEN_VIDEOS_V2


def blob(h: int, w: int, cy: float, cx: float, ry: float, rx: float) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1


def mask_pairs(rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    """(pred, gt) pairs: empty either or both, full frames, masks on the borders, noise, blobs, and
    frame sizes whose tolerance 0.008 x diagonal is a whole number (125 -> 1 ... 1000 -> 8)."""
    pairs = []
    for h, w in [(1, 1), (1, 6), (6, 1), (2, 2), (3, 7), (17, 9)]:
        for _ in range(6):
            pairs.append((rng.random((h, w)) < 0.5, rng.random((h, w)) < 0.5))
    for h, w in [(48, 64), (75, 100), (150, 200), (300, 400), (375, 500), (600, 800), (97, 131)]:
        gt = blob(h, w, rng.uniform(0, h), rng.uniform(0, w), rng.uniform(2, h / 2), rng.uniform(2, w / 2))
        other = blob(h, w, rng.uniform(0, h), rng.uniform(0, w), rng.uniform(2, h / 2), rng.uniform(2, w / 2))
        pred = other | gt & (rng.random((h, w)) < 0.9)
        empty, full = np.zeros((h, w), bool), np.ones((h, w), bool)
        noise = rng.random((h, w)) < 0.02
        pairs += [(pred, gt), (gt, pred), (pred ^ noise, gt), (empty, gt), (pred, empty), (empty, empty), (full, gt), (full, full)]
        edge = np.zeros((h, w), bool)
        edge[h // 2 :, w // 2 :] = True  # touches the last row and column
        pairs += [(edge, gt), (edge, np.roll(edge, (-1, -1), (0, 1)))]
    pairs.append((np.zeros((720, 1280), bool), blob(720, 1280, 300, 700, 120, 250)))
    pairs.append((blob(720, 1280, 305, 690, 110, 260), blob(720, 1280, 300, 700, 120, 250)))
    return pairs


@pointed
def test_frame_scores_equal_davis_db_eval_iou_and_db_eval_boundary(tmp_path):
    pairs = mask_pairs(np.random.default_rng(7))
    data = {"n": len(pairs)}
    for i, (pred, gt) in enumerate(pairs):
        data[f"pred{i}"], data[f"gt{i}"] = pred.astype(np.uint8), gt.astype(np.uint8)  # as the toolkit's readers make them
    np.savez(tmp_path / "masks.npz", **data)
    official = run_official(tmp_path, "frames", tmp_path / "masks.npz")["JF"]
    ours = [list(frame_scores(pred, gt)) for pred, gt in pairs]
    differ = [(i, pairs[i][1].shape, o, t) for i, (o, t) in enumerate(zip(official, ours)) if o != t]
    assert not differ, differ
    assert len({round(x[1], 6) for x in official}) > 20  # the cases are not all alike


@pointed
def test_object_statistics_equal_the_officials_to_the_last_bit(tmp_path):
    rng = np.random.default_rng(11)
    cases = []
    for n in [0, 1, 2, 3, 7, 8, 9, 16, 127, 128, 129, 130, 255, 256, 300, 1000, 2500]:
        j, f = rng.random(n), rng.random(n)
        j[rng.random(n) < 0.1] = 0.0  # unfilled slots
        f[j == 0] = 0.0
        j[rng.random(n) < 0.1] = 1.0
        cases.append((j, f))
    cases.append((np.full(50, 0.9), np.full(50, 0.9)))  # variance 0
    cases.append((np.r_[np.ones(5), np.zeros(5)], np.r_[np.ones(5), np.zeros(5)]))
    data = {"n": len(cases)} | {f"j{i}": j for i, (j, _) in enumerate(cases)} | {f"f{i}": f for i, (_, f) in enumerate(cases)}
    np.savez(tmp_path / "stats.npz", **data)
    official = run_official(tmp_path, "stats", tmp_path / "stats.npz")["stats"]
    for (j, f), (jm, fm, v) in zip(cases, official):
        scorer = LVOSObjectScorer(len(j) + 2)
        for slot in np.flatnonzero((j != 0) | (f != 0)):
            scorer.add(int(slot), float(j[slot]), float(f[slot]))
        score = scorer.conclude()
        assert same(score.JM, jm) and same(score.FM, fm) and same(score.V, v), (len(j), score, (jm, fm, v))


# The synthetic split: frames 1, 6, 11, ... (6 FPS numbering). One seen video and one unseen video
# (its name is added to a copy of the official list). Objects: one from the first frame to the last
# (`end` read as last + 5), one that appears late and leaves and comes back (`end` = the last
# frame; while it is away the prediction is empty on two frames and not on two), one whose
# frame_nums is 3 too many (3 slots stay 0), a label not in the meta, meta keys not in id order,
# a window of 138 slots (past numpy's 128-element summation blocks), P and L mode predictions; and,
# when asked, an object on two frames only (frame_nums 2: no slot, NaN scores, a NaN seen group).
SEEN, UNSEEN = "seenVid1", "zUnseen1"


def write_label_map(path: Path, labels: np.ndarray, mode: str = "P") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(labels.astype(np.uint8), mode="L")
    if mode == "P":
        image = image.convert("P")
        image.putpalette([0, 0, 0, 200, 40, 40, 40, 200, 40, 40, 40, 200] + [128] * (252 * 3))
    image.save(path)


def make_split(root: Path, two_frame_object: bool = False) -> dict:
    """Write the split (root/valid) and the predictions (root/res); return the meta."""
    rng = np.random.default_rng(3)
    meta: dict = {"videos": {}}

    def video(name: str, frames: int, size: tuple[int, int], objects: dict, pred_mode: str) -> None:
        h, w = size
        meta["videos"][name] = {"objects": {}}
        for obj, (first, last, end, frame_nums, _) in objects.items():
            range_ = {"start": 1 + 5 * first, "end": end(1 + 5 * last), "frame_nums": frame_nums(last - first + 1)}
            meta["videos"][name]["objects"][obj] = {"frame_range": range_}
        for t in range(frames):
            gt, pred = np.zeros((h, w), np.uint8), np.zeros((h, w), np.uint8)
            for obj, (first, last, _, _, away) in objects.items():
                if not first <= t <= last:
                    continue
                cy, cx = h / 2 + h / 4 * math.sin(t / 7 + int(obj)), w / 2 + w / 4 * math.cos(t / 9 + int(obj))
                shape = blob(h, w, cy, cx, h / 6 + (t % 5), w / 7 + (t % 3))
                guess = blob(h, w, cy + rng.normal(0, 2), cx + rng.normal(0, 2), h / 6 + rng.normal(0, 1.5), w / 7)
                guess ^= rng.random((h, w)) < 0.01 * (t % 4)
                if t not in away:
                    gt[shape] = int(obj)
                if away.get(t, True):
                    pred[guess] = int(obj)
            gt[:3, :3] = pred[:3, :3] = 7  # a label the meta does not name
            write_label_map(root / "valid" / "Annotations" / name / f"{frame_file_name(1 + 5 * t)}.png", gt)
            write_label_map(root / "res" / name / f"{frame_file_name(1 + 5 * t)}.png", pred, pred_mode)

    def last_plus_5(last_frame: int) -> int:
        return last_frame + 5

    def last(last_frame: int) -> int:
        return last_frame

    def exact(count: int) -> int:
        return count

    def three_too_many(count: int) -> int:
        return count + 3

    # object: (first index, last index, end rule, frame_nums rule, {away index: predicted while away})
    late = {20: False, 21: False, 22: True, 23: True}
    seen = {"2": (10, 39, last, exact, late), "1": (0, 39, last_plus_5, exact, {}), "5": (2, 30, last, three_too_many, {})}
    if two_frame_object:
        seen["4"] = (38, 39, last_plus_5, exact, {})
    video(SEEN, 40, (96, 128), seen, "P")
    video(UNSEEN, 140, (48, 64), {"1": (0, 139, last, exact, {}), "3": (60, 80, last_plus_5, exact, {})}, "L")
    (root / "valid" / "valid_meta.json").write_text(json.dumps(meta, indent=1))
    return meta


def score_split(root: Path, meta: dict) -> tuple[list[ObjectResult], dict]:
    """Our scores of the split: per object (video, JM, FM, V) and per-slot J and F."""
    objects, frames = [], {}
    read = {}

    def labels(path: Path) -> np.ndarray:
        if path not in read:
            read[path] = np.array(Image.open(path))
        return read[path]

    for name in sorted(meta["videos"]):
        frames[name] = {}
        for obj, spec in meta["videos"][name]["objects"].items():
            s, e, n = (spec["frame_range"][k] for k in ("start", "end", "frame_nums"))
            scorer = LVOSObjectScorer(n, video=name, obj=obj)
            j_slots, f_slots = [0.0] * (n - 2), [0.0] * (n - 2)
            for slot, frame in scored_frames(s, e, n, video=name, obj=obj):
                gt = object_mask(labels(root / "valid" / "Annotations" / name / f"{frame_file_name(frame)}.png"), obj)
                pred = object_mask(labels(root / "res" / name / f"{frame_file_name(frame)}.png"), obj)
                j_slots[slot], f_slots[slot] = scorer.feed(slot, pred, gt)
            score = scorer.conclude()
            objects.append(ObjectResult(name, score.JM, score.FM, score.V))
            frames[name][obj] = [j_slots, f_slots]
    return objects, frames


@pointed
@pytest.mark.parametrize("two_frame_object", [False, True], ids=["split", "with_a_two_frame_object"])
def test_the_official_evaluation_of_a_synthetic_split_equals_ours(tmp_path, two_frame_object):
    meta = make_split(tmp_path, two_frame_object)
    unseen = (*UNSEEN_VIDEOS_V2, UNSEEN)
    official = run_official(
        tmp_path, "evaluate", None, "--lvos_path", str(tmp_path / "valid"), "--results_path", str(tmp_path / "res"), "--mp_nums", "1",
        unseen=unseen,
    )  # fmt: skip
    objects, frames = score_split(tmp_path, meta)

    # per frame, slot by slot (zero slots included)
    assert official["frames"] == frames
    late = frames[SEEN]["2"]
    assert late[0][9:13] == [1.0, 1.0, 0.0, 0.0] and late[1][9:13] == [1.0, 1.0, 0.0, 0.0]  # away: predicted nothing, then something
    assert frames[SEEN]["5"][0][-3:] == [0.0, 0.0, 0.0] and min(frames[SEEN]["5"][0][:-3]) > 0  # 3 unfilled slots
    assert len(frames[UNSEEN]["1"][0]) == 138
    assert frames[SEEN].get("4", [[], []]) == [[], []]

    # the tables at full precision
    ours_global = global_table(objects, unseen)
    assert list(official["global"]) == list(ours_global)
    assert all(same(official["global"][k], ours_global[k]) for k in ours_global), (official["global"], ours_global)
    nan = {k for k, v in ours_global.items() if math.isnan(v)}
    assert nan == ({"J&F-Mean", "J-Mean", "J-seen-Mean", "F-Mean", "F-seen-Mean", "V-Mean", "V-seen-Mean"} if two_frame_object else set())
    ours_rows = per_sequence_table(objects)
    names = [f"{SEEN}_1", f"{SEEN}_2", f"{SEEN}_3", *([f"{SEEN}_4"] if two_frame_object else []), f"{UNSEEN}_1", f"{UNSEEN}_2"]
    assert [r[0] for r in official["sequences"]] == names
    assert len(ours_rows) == len(official["sequences"])
    for theirs, mine in zip(official["sequences"], ours_rows):
        assert theirs[0] == mine[0] and all(same(a, b) for a, b in zip(theirs[1:], mine[1:])), (theirs, mine)

    # the CSVs byte for byte
    mine_dir = tmp_path / "ours"
    mine_dir.mkdir()
    for theirs, mine in zip(csv_paths(tmp_path / "res"), write_csvs(mine_dir, objects, unseen)):
        assert mine.read_bytes() == theirs.read_bytes(), (mine.read_text(), theirs.read_text())
