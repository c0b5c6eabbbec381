"""More inputs through the CLI: SA-V training videos (mp4 + RLE json), DAVIS 2017, and --shard.

The training test pairs the real masklet json of sav_000001 (../shared/fixtures) with a
synthesised mp4 of the same frame count and size: the real mp4 is not in the fixtures. Expected
values come from the json decoded here with pycocotools, and from DAVIS annotations written and
read back with Pillow: neither path goes through the benchmark's own cache or PNG code.
"""

import json
import shutil

import cv2
import numpy as np
import pytest
from conftest import USAGE_ERROR, assert_usage_error, cli, cli_with_fakes, rows_of, small_disk
from PIL import Image
from pycocotools import mask as rle_codec
from reference_metrics import object_jf

from sav_benchmark.masks import read_mask
from sav_benchmark.metrics import ObjectScorer
from sav_benchmark.split.synthetic import make_split


def write_mp4(path, n_frames, height, width):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 24, (width, height))
    assert writer.isOpened()
    for frame in range(n_frames):
        image = np.full((height, width, 3), (frame * 7) % 200, np.uint8)
        image[height // 4 : height // 2, (frame % 10) * width // 20 : (frame % 10) * width // 20 + width // 4] = 255
        writer.write(image)
    writer.release()


def write_masklets(path, masks, n_frames, kind="manual"):
    """An SA-V masklet json: masks[annotated frame][masklet] are boolean arrays."""
    height, width = masks[0][0].shape
    encoded = [[_rle(m) for m in frame] for frame in masks]
    first = [next((i for i, frame in enumerate(masks) if frame[j].any()), 0) for j in range(len(masks[0]))]
    path.write_text(
        json.dumps(
            {
                "video_id": path.name.split("_")[0] + "_" + path.name.split("_")[1],
                "video_frame_count": float(n_frames),
                "video_height": float(height),
                "video_width": float(width),
                "masklet": encoded,
                "masklet_id": list(range(len(masks[0]))),
                "masklet_first_appeared_frame": [float(f) for f in first],
                "masklet_type": [kind] * len(masks[0]),
                "masklet_num": len(masks[0]),
            }
        )
    )


def _rle(mask):
    rle = rle_codec.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": rle["size"], "counts": rle["counts"].decode()}


def small_masks(n_annotated, n_masklets, height=24, width=32, shift=0):
    masks = []
    for i in range(n_annotated):
        frame = []
        for j in range(n_masklets):
            mask = np.zeros((height, width), bool)
            mask[4 + j * 6 : 9 + j * 6, 2 + i + shift : 10 + i + shift] = True
            frame.append(mask)
        masks.append(frame)
    return masks


def small_video(root, video_id, n_frames=9, n_masklets=2, kinds=("manual",)):
    """An mp4 of n_frames (annotated at 0, 4, 8) with its json(s)."""
    write_mp4(root / f"{video_id}.mp4", n_frames, 24, 32)
    for kind in kinds:
        write_masklets(
            root / f"{video_id}_{kind}.json", small_masks((n_frames - 1) // 4 + 1, n_masklets, shift=kind == "auto"), n_frames, kind
        )


# SA-V training layout, with the real json


@pytest.fixture(scope="module")
def training(tmp_path_factory, fixtures_dir):
    tmp = tmp_path_factory.mktemp("train")
    root = tmp / "sav_train"
    root.mkdir()
    shutil.copy(fixtures_dir / "sav_000001_manual.json", root)
    write_mp4(root / "sav_000001.mp4", 483, 848, 480)  # portrait: 480 wide, 848 high, as the json says
    out = tmp / "out" / "run.csv"
    result = cli(
        "--split_dir",
        str(root),
        "--cache_dir",
        str(tmp / "cache"),
        "--models",
        "static_mask",
        "--output",
        str(out),
        "--save_masks",
        str(tmp / "masks"),
        "--quiet",
    )
    assert result.returncode == 0, result.stderr
    return tmp, root, rows_of(out), result


def test_training_video_gives_five_rows_and_prompts_masklet_3_on_video_frame_452(training):
    tmp, root, rows, result = training
    assert [(r["video_id"], r["object_id"], r["status"]) for r in rows] == [("sav_000001", f"{j:03d}", "ok") for j in range(5)]
    assert [r["prompt_frame"] for r in rows] == ["0", "0", "0", "452", "0"]
    assert json.loads(rows[3]["prompt_detail"]) == {"mask": "Annotations_6fps/sav_000001/003/00452.png", "object_id": "003"}
    assert (
        f"prepare: decoding {root / 'sav_000001.mp4'} into {(tmp / 'cache' / 'JPEGImages_24fps' / 'sav_000001').resolve()}" in result.stderr
    )
    assert len(list((tmp / "cache" / "JPEGImages_24fps" / "sav_000001").glob("*.jpg"))) == 483


def test_training_scores_equal_those_of_the_json_decoded_here(training, fixtures_dir):
    tmp, _, rows, _ = training
    data = json.loads((fixtures_dir / "sav_000001_manual.json").read_text())
    saved = tmp / "masks" / "static_mask" / "sav_000001"
    for j, row in enumerate(rows):
        names = sorted(p.name for p in (saved / f"{j:03d}").iterdir())
        assert names == [f"{4 * i:05d}.png" for i in range(121)]  # named by video frame, as val/test
        scorer = ObjectScorer()
        for i in range(1, 120):  # annotated frames minus the first and the last
            truth = rle_codec.decode(data["masklet"][i][j]).astype(bool)
            scorer.feed(read_mask(saved / f"{j:03d}" / f"{4 * i:05d}.png"), truth)
        score = scorer.conclude()
        assert (float(row["JF"]), int(row["n_eval_frames"])) == (pytest.approx(score.JF, abs=1e-9), score.n_frames)
    # annotated frames 1..119 are scored; masklet 3 counts from its first appearance, annotated frame 113
    assert [r["n_eval_frames"] for r in rows] == ["119", "119", "119", "7", "119"]
    late = read_mask(saved / "003" / "00448.png"), read_mask(saved / "003" / "00452.png")
    assert not late[0].any() and (late[1] == rle_codec.decode(data["masklet"][113][3]).astype(bool)).all()


def test_prepare_reuses_the_cache_and_notices_changed_inputs(tmp_path):
    root, cache = tmp_path / "train", tmp_path / "cache"
    root.mkdir()
    small_video(root, "sav_000007")

    def prepare():
        result = cli("prepare", "--split_dir", str(root), "--cache_dir", str(cache), "--output", str(tmp_path / "p.json"))
        assert result.returncode == 0, result.stderr
        return result.stderr

    decoding = f"prepare: decoding {root / 'sav_000007.mp4'}"
    assert decoding in prepare()
    first_mask = cache / "Annotations_6fps" / "sav_000007" / "000" / "00000.png"
    before = read_mask(first_mask)
    assert prepare() == ""  # everything reused
    write_masklets(root / "sav_000007_manual.json", small_masks(3, 2, shift=5), 9)
    assert prepare() == ""  # a new json: masks made again, frames kept
    assert (read_mask(first_mask) != before).any()
    write_mp4(root / "sav_000007.mp4", 9, 24, 32)
    assert decoding in prepare()


def test_broken_training_videos_fail_their_own_rows_and_the_rest_run(tmp_path):
    root = tmp_path / "train"
    root.mkdir()
    small_video(root, "sav_000001")
    small_video(root, "sav_000002")  # truncated below
    data = (root / "sav_000002.mp4").read_bytes()
    (root / "sav_000002.mp4").write_bytes(data[: len(data) // 2])
    small_video(root, "sav_000003", n_frames=13)  # the json says 13 frames, the mp4 has 9
    write_mp4(root / "sav_000003.mp4", 9, 24, 32)
    small_video(root, "sav_000004")
    wrong = json.loads((root / "sav_000004_manual.json").read_text())
    wrong["masklet"][1][1] = _rle(np.zeros((12, 16), bool))
    (root / "sav_000004_manual.json").write_text(json.dumps(wrong))
    small_video(root, "sav_000005")
    (root / "sav_000005_manual.json").write_text("{not json")
    small_video(root, "sav_000006")
    short = json.loads((root / "sav_000006_manual.json").read_text())
    short["masklet"][2][0]["counts"] = _rle(np.zeros((24, 31), bool))["counts"]  # runs that stop 24 pixels short
    (root / "sav_000006_manual.json").write_text(json.dumps(short))
    small_video(root, "sav_000008")
    empty = json.loads((root / "sav_000008_manual.json").read_text())
    empty.update(masklet=[[], [], []], masklet_id=[], masklet_num=0)
    (root / "sav_000008_manual.json").write_text(json.dumps(empty))
    out = tmp_path / "run.csv"
    result = cli(
        "--split_dir", str(root), "--cache_dir", str(tmp_path / "cache"), "--models", "static_mask", "--output", str(out), "--quiet"
    )
    assert result.returncode == 1
    rows = {(r["video_id"], r["object_id"]): (r["status"], r["error"]) for r in rows_of(out)}
    assert rows[("sav_000001", "000")] == rows[("sav_000001", "001")] == ("ok", "")
    assert rows[("sav_000002", "000")][0] == "error"
    assert rows[("sav_000002", "000")][1].startswith(f"cannot open {root / 'sav_000002.mp4'} as a video (truncated or not an mp4?)")
    assert rows[("sav_000003", "001")] == (
        "error",
        f"{root / 'sav_000003_manual.json'} says the video has 13 frames, but its mp4 decodes to 9 (a truncated download?); fetch both "
        "files again",
    )
    assert rows[("sav_000004", "000")] == (
        "error",
        f"{root / 'sav_000004_manual.json'}, annotated frame 1 (video frame 4), masklet 1: its RLE has size [12, 16], "
        "but the video is [24, 32] (height, width)",
    )
    assert list(k for k in rows if k[0] == "sav_000005") == [("sav_000005", "-")]
    assert rows[("sav_000005", "-")][1].startswith(f"cannot read {root / 'sav_000005_manual.json'} as json")
    assert rows[("sav_000006", "000")] == (
        "error",
        f"{root / 'sav_000006_manual.json'}, annotated frame 2 (video frame 8), masklet 0: its RLE does not cover the 24x32 mask exactly; "
        "fetch the file again",
    )
    assert rows[("sav_000008", "-")] == ("error", f"{root / 'sav_000008_manual.json'} names no masklet: the video has no object to run")
    assert len(rows) == 2 + 2 + 2 + 2 + 1 + 2 + 1
    assert not (tmp_path / "cache" / "JPEGImages_24fps" / "sav_000003").exists()  # nothing half-made is kept


def test_masklets_both_adds_the_auto_masklets_as_objects_of_their_own(tmp_path):
    root = tmp_path / "train"
    root.mkdir()
    small_video(root, "sav_000001", kinds=("manual", "auto"))
    small_video(root, "sav_000002")  # no auto json: with both, its manual masklets alone
    out = tmp_path / "run.csv"
    result = cli(
        "--split_dir",
        str(root),
        "--cache_dir",
        str(tmp_path / "cache"),
        "--masklets",
        "both",
        "--models",
        "static_mask",
        "--output",
        str(out),
        "--quiet",
    )
    assert result.returncode == 0, result.stderr
    keys = [(r["video_id"], r["object_id"]) for r in rows_of(out)]
    assert keys == [("sav_000001", o) for o in ("000", "001", "auto_000", "auto_001")] + [("sav_000002", "000"), ("sav_000002", "001")]
    auto = read_mask(tmp_path / "cache" / "Annotations_6fps" / "sav_000001" / "auto_000" / "00004.png")
    assert (auto == small_masks(3, 2, shift=1)[1][0]).all()


# DAVIS 2017 layout


DAVIS_FRAMES, DAVIS_SIZE = 10, (48, 64)


def davis_objects(frame):
    """Ids per pixel: 1 and 2 from frame 0, 3 from frame 5 on, over where 1 was at frame 0."""
    ids = np.zeros(DAVIS_SIZE, np.uint8)
    ids[10:30, 5 + frame : 25 + frame] = 1
    ids[20:40, 30 - frame : 50 - frame] = 2
    if frame >= 5:
        ids[12:18, 2:14] = 3
    return ids


def static_label_map(frame):
    """What static_mask predicts, saved the DAVIS way: each object's mask from its first frame
    (0, 0 and 5), one id per pixel, the lowest id where they overlap (1 and 3 do)."""
    ids = np.zeros(DAVIS_SIZE, np.uint8)
    for k, start in ((3, 5), (2, 0), (1, 0)):  # the lowest id written last
        if frame >= start:
            ids[davis_objects(start) == k] = k
    return ids


@pytest.fixture(scope="module")
def davis(tmp_path_factory):
    root = tmp_path_factory.mktemp("davis")
    for video in ("bear", "cows"):
        (root / "JPEGImages/480p" / video).mkdir(parents=True)
        (root / "Annotations/480p" / video).mkdir(parents=True)
        for frame in range(DAVIS_FRAMES):
            ids = davis_objects(frame)
            image = np.stack([ids * 60, 255 - ids * 40, np.full(DAVIS_SIZE, 90, np.uint8)], axis=2).astype(np.uint8)
            cv2.imwrite(str(root / "JPEGImages/480p" / video / f"{frame:05d}.jpg"), image)
            annotation = Image.fromarray(ids, mode="P")
            annotation.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0] + [7] * (252 * 3))
            annotation.save(root / "Annotations/480p" / video / f"{frame:05d}.png")
    (root / "ImageSets/2017").mkdir(parents=True)
    (root / "ImageSets/2017/val.txt").write_text("cows\n")
    return root


def test_davis_split_runs_one_row_per_palette_id_scored_on_its_label_maps(davis, tmp_path):
    out = tmp_path / "run.csv"
    result = cli(
        "--split_dir", str(davis), "--models", "static_mask", "--output", str(out), "--save_masks", str(tmp_path / "masks"), "--quiet"
    )
    assert result.returncode == 0, result.stderr
    rows = rows_of(out)
    assert [(r["video_id"], r["object_id"], r["prompt_frame"]) for r in rows] == [
        ("cows", "1", "0"),
        ("cows", "2", "0"),
        ("cows", "3", "5"),
    ]
    assert ((davis_objects(0) == 1) & (davis_objects(5) == 3)).any()  # 3 loses pixels to 1 in the label maps
    for row, counted in zip(rows, (8, 8, 4)):  # frames 1..8; object 3 counts from frame 5, where it appears
        k = int(row["object_id"])
        truths = [davis_objects(f) == k for f in range(DAVIS_FRAMES)]
        predicted = [static_label_map(f) == k for f in range(DAVIS_FRAMES)]
        j, f = object_jf(predicted[1:-1], truths[1:-1])
        assert (float(row["J"]), float(row["F"]), int(row["n_eval_frames"])) == (
            pytest.approx(j, abs=1e-9),
            pytest.approx(f, abs=1e-9),
            counted,
        )


def test_davis_masks_are_saved_as_palette_frames_where_the_lower_id_wins(davis, tmp_path):
    out = tmp_path / "run.csv"
    cli("--split_dir", str(davis), "--models", "static_mask", "--output", str(out), "--save_masks", str(tmp_path / "masks"), "--quiet")
    folder = tmp_path / "masks" / "static_mask" / "cows"
    assert sorted(p.name for p in folder.iterdir()) == [f"{f:05d}.png" for f in range(DAVIS_FRAMES)]
    for frame in (0, 7):
        saved = Image.open(folder / f"{frame:05d}.png")
        assert saved.mode == "P" and saved.getpalette()[3:6] == [128, 0, 0]
        assert (np.array(saved) == static_label_map(frame)).all()


def expected_davis_scores():
    """(J, F) of objects 1, 2, 3 on static_label_map, by the independent reference."""
    scores = []
    for k in (1, 2, 3):
        truths = [davis_objects(f) == k for f in range(DAVIS_FRAMES)]
        predicted = [static_label_map(f) == k for f in range(DAVIS_FRAMES)]
        scores.append(object_jf(predicted[1:-1], truths[1:-1]))
    return scores


def test_davis_objects_run_again_are_put_together_with_the_rest_of_their_video(davis, tmp_path):
    out, masks = tmp_path / "run.csv", tmp_path / "masks"
    args = ("--split_dir", str(davis), "--models", "fake_fail", "--output", str(out), "--save_masks", str(masks), "--quiet")
    first = cli_with_fakes(*args, FAKE_FAIL_PROMPT_FRAMES="5")  # object 3 fails
    assert first.returncode == 1
    assert [r["status"] for r in rows_of(out)] == ["ok", "ok", "error"]
    retried = cli_with_fakes(*args, "--resume", "--retry_failed")
    assert retried.returncode == 0, retried.stderr
    rows = rows_of(out)
    assert [(r["object_id"], r["status"]) for r in rows] == [("1", "ok"), ("2", "ok"), ("3", "ok")]
    for row, (j, f) in zip(rows, expected_davis_scores()):  # as if all three had run together
        assert (float(row["J"]), float(row["F"])) == (pytest.approx(j, abs=1e-9), pytest.approx(f, abs=1e-9))
    assert (np.array(Image.open(masks / "fake_fail" / "cows" / "00007.png")) == static_label_map(7)).all()


def test_a_davis_job_that_kills_the_run_twice_gets_a_crash_row(davis, tmp_path):
    out = tmp_path / "run.csv"
    args = ("--split_dir", str(davis), "--models", "fake_crash", "--output", str(out), "--quiet")
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    segfault = {"FAKE_FAIL_PROMPT_FRAMES": "5", "TMPDIR": str(temporary)}  # object 3, the video's last job, segfaults
    assert cli_with_fakes(*args, **segfault).returncode < 0
    assert cli_with_fakes(*args, "--resume", **segfault).returncode < 0  # objects 1 and 2 had no rows yet: run again
    # A driver killed mid-video leaves its label maps' files in the temporary folder (as docs/datasets.md says).
    assert [p.name.startswith("sav-benchmark-label-maps-") for p in temporary.iterdir()] == [True, True]
    final = cli_with_fakes(*args, "--resume", **segfault)
    assert final.returncode == 1
    assert [(r["object_id"], r["status"]) for r in rows_of(out)] == [("1", "ok"), ("2", "ok"), ("3", "crash")]
    assert not (tmp_path / "run.csv.current").exists()
    assert len(list(temporary.iterdir())) == 2  # a run that ends removes its own


def test_label_maps_that_cannot_be_kept_fail_the_videos_rows_with_a_reason(davis, tmp_path):
    """TMPDIR on a full disk: the DAVIS video's rows fail with the reason, no traceback, the run goes on."""
    with small_disk(tmp_path / "disk", "8k") as disk:
        out = tmp_path / "run.csv"
        result = cli("--split_dir", davis, "--models", "static_mask", "--output", out, "--quiet", TMPDIR=str(disk))
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
        rows = rows_of(out)
        assert rows and all(r["status"] == "error" and r["error"].startswith(f"cannot keep the label maps in {disk}") for r in rows)
        assert all(r["error"].endswith("); set TMPDIR to a folder with room") for r in rows), rows[0]["error"]


def test_davis_without_a_list_file_runs_every_video(davis, tmp_path):
    copy = tmp_path / "davis"
    shutil.copytree(davis, copy)
    shutil.rmtree(copy / "ImageSets")
    result = cli("prepare", "--split_dir", str(copy), "--limit_objects", "1", "--output", str(tmp_path / "p.json"))
    assert (result.returncode, result.stdout) == (0, f"prepared 2 videos, 2 objects: {tmp_path / 'p.json'}\n")


# --shard


def test_shards_cover_every_job_exactly_once_and_merge_into_the_whole_run(tmp_path):
    split = tmp_path / "split"
    make_split(split, videos=5, frames=5, width=48, height=32)
    whole = tmp_path / "whole.csv"
    assert cli("--split_dir", str(split), "--models", "static_mask", "--output", str(whole), "--quiet").returncode == 0
    parts = []
    for k in (1, 2):
        part = tmp_path / f"part{k}.csv"
        assert (
            cli("--split_dir", str(split), "--models", "static_mask", "--shard", f"{k}/2", "--output", str(part), "--quiet").returncode == 0
        )
        parts.append([(r["video_id"], r["object_id"]) for r in rows_of(part)])
    assert {v for v, _ in parts[0]} == {"synth_000", "synth_002", "synth_004"}
    assert sorted(parts[0] + parts[1]) == sorted((r["video_id"], r["object_id"]) for r in rows_of(whole))
    assert not set(parts[0]) & set(parts[1])
    merged = tmp_path / "merged.csv"
    result = cli("compare", str(tmp_path / "part1.csv"), str(tmp_path / "part2.csv"), "--merge", str(merged))
    assert (result.stdout, result.stderr) == (f"merged {len(parts[0]) + len(parts[1])} rows from 2 files: {merged}\n", "")


def test_merging_only_some_shards_warns_which_are_missing(tmp_path):
    split = tmp_path / "split"
    make_split(split, videos=3, frames=5, width=48, height=32)
    for k in (1, 3):
        assert (
            cli(
                "--split_dir", str(split), "--models", "static_mask", "--shard", f"{k}/3", "--output", str(tmp_path / f"{k}.csv"), "--quiet"
            ).returncode
            == 0
        )
    result = cli("compare", str(tmp_path / "1.csv"), str(tmp_path / "3.csv"), "--merge", str(tmp_path / "merged.csv"))
    assert (result.returncode, result.stderr) == (
        0,
        "jetson_benchmark.py: warning: shard 2/3 is not among the files: the merged run is incomplete\n",
    )


@pytest.mark.parametrize(
    "shard, message",
    [
        (
            "3/2",
            "argument --shard: must be K/N with 1 <= K <= N (1/2 and 2/2 split a run in two), not 3/2 (see jetson_benchmark.py run --help)",
        ),
        (
            "0/2",
            "argument --shard: must be K/N with 1 <= K <= N (1/2 and 2/2 split a run in two), not 0/2 (see jetson_benchmark.py run --help)",
        ),
        (
            "half",
            "argument --shard: must be K/N with 1 <= K <= N (1/2 and 2/2 split a run in two), "
            "not half (see jetson_benchmark.py run --help)",
        ),
    ],
)
def test_bad_shard_is_one_line(tmp_path, shard, message):
    result = cli("--split_dir", str(tmp_path), "--shard", shard)
    assert_usage_error(result, message)


def test_a_shard_with_no_video_is_refused(tmp_path):
    make_split(tmp_path, videos=2, frames=5, width=48, height=32)
    result = cli("--split_dir", str(tmp_path), "--models", "static_mask", "--shard", "3/3")
    assert (result.returncode, result.stderr) == (
        2,
        USAGE_ERROR + "--shard 3/3: this part has no video (the selection has fewer than 3); use at most as many parts as videos\n",
    )
