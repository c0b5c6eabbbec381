"""Every kind of bad input gives a row with a status and a reason, or exit 2 and one line before any work."""

import csv
import os
import shutil

import numpy as np
import pytest
from conftest import cli, small_disk

from sav_benchmark.masks import write_mask
from sav_benchmark.split.synthetic import make_split

MODELS = "static_mask"


def run(split, out, *extra):
    return cli("--split_dir", split, "--models", MODELS, "--output", out, *extra)


def rows_by_video(out):
    rows = {}
    for r in csv.DictReader(open(out, newline="")):
        rows.setdefault(r["video_id"], []).append(r)
    return rows


@pytest.fixture
def split(tmp_path):
    make_split(tmp_path / "s", videos=3, frames=13, width=64, height=48, objects=1)
    return tmp_path / "s"


def assert_only_video_failed(result, out, video, reason):
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    rows = rows_by_video(out)
    assert {(r["status"], r["error"]) for r in rows[video]} == {("error", reason)}
    assert all(r["status"] in ("ok", "no_score") for v, rs in rows.items() if v != video for r in rs)
    assert sum(len(rs) for rs in rows.values()) == 4  # 2 + 1 + 1 objects: every job has its row


def test_corrupt_jpeg_fails_that_videos_rows_only(split, tmp_path):
    frame = split / "JPEGImages_24fps/synth_001/00005.jpg"
    frame.write_bytes(os.urandom(2000))
    out = tmp_path / "o.csv"
    assert_only_video_failed(
        run(split, out), out, "synth_001", f"frame {frame} is not a JPEG file; fix the video's frames or leave it out (--video_ids)"
    )


def test_truncated_jpeg_fails_that_videos_rows_only(split, tmp_path):
    frame = split / "JPEGImages_24fps/synth_002/00012.jpg"
    frame.write_bytes(frame.read_bytes()[:500])
    out = tmp_path / "o.csv"
    assert_only_video_failed(
        run(split, out),
        out,
        "synth_002",
        f"frame {frame} is truncated (no JPEG end marker); fix the video's frames or leave it out (--video_ids)",
    )


def test_missing_frame_fails_that_videos_rows_only(split, tmp_path):
    (split / "JPEGImages_24fps/synth_000/00007.jpg").unlink()
    out = tmp_path / "o.csv"
    assert_only_video_failed(
        run(split, out),
        out,
        "synth_000",
        f"frames in {split / 'JPEGImages_24fps/synth_000'} are not numbered 0..11 without gaps (missing e.g. [7]); "
        "fix the video's frames or leave it out (--video_ids)",
    )


def test_unreadable_frame_fails_that_videos_rows_only(split, tmp_path):
    frame = split / "JPEGImages_24fps/synth_001/00003.jpg"
    frame.unlink()
    frame.mkdir()  # a name that cannot be read as a file, whoever runs the test
    out = tmp_path / "o.csv"
    assert_only_video_failed(
        run(split, out),
        out,
        "synth_001",
        f"frame {frame} cannot read it (Is a directory); fix the video's frames or leave it out (--video_ids)",
    )


def test_non_binary_mask_before_the_prompt_is_refused_before_any_work(split, tmp_path):
    mask = split / "Annotations_6fps/synth_001/000/00000.png"
    import cv2

    cv2.imwrite(str(mask), np.tile(np.arange(64, dtype=np.uint8), (48, 1)))
    result = run(split, tmp_path / "o.csv")
    assert (result.returncode, result.stdout) == (2, "")
    assert (
        result.stderr
        == f"jetson_benchmark.py: error: video synth_001, object 000, frame 0: {mask} holds more than two values; an SA-V mask is one "
        "object per PNG (background and one foreground value)\n"
    )


def test_non_binary_mask_after_the_prompt_fails_that_row(split, tmp_path):
    import cv2

    mask = split / "Annotations_6fps/synth_001/000/00004.png"
    soft = cv2.imread(str(mask), cv2.IMREAD_UNCHANGED)
    soft[soft > 0] = 200
    soft[0, 0] = 100  # a second non-zero value
    cv2.imwrite(str(mask), soft)
    out = tmp_path / "o.csv"
    result = run(split, out)
    assert result.returncode == 1
    row = rows_by_video(out)["synth_001"][0]
    assert (row["status"], row["error"]) == (
        "error",
        f"scoring failed: ValueError: {mask} holds more than two values; an SA-V mask is one object per PNG (background and one foreground "
        "value)",
    )


def test_unreadable_mask_is_refused_before_any_work(split, tmp_path):
    mask = split / "Annotations_6fps/synth_002/000/00008.png"
    mask.unlink()
    mask.mkdir()
    result = run(split, tmp_path / "o.csv")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == f"jetson_benchmark.py: error: video synth_002, object 000: [Errno 21] Is a directory: '{mask}'\n"


def test_object_empty_on_every_frame_is_skipped(split, tmp_path):
    folder = split / "Annotations_6fps/synth_002/007"
    for frame in (0, 4, 8, 12):
        write_mask(folder / f"{frame:05d}.png", np.zeros((48, 64), bool))
    out = tmp_path / "o.csv"
    assert run(split, out).returncode == 0
    row = [r for r in rows_by_video(out)["synth_002"] if r["object_id"] == "007"][0]
    assert (row["status"], row["error"], row["J"]) == ("skipped", "object never appears in the ground truth", "")


def test_single_frame_video_runs_and_has_no_score(tmp_path):
    make_split(tmp_path / "s", videos=1, frames=1, width=64, height=48, objects=1)
    out = tmp_path / "o.csv"
    result = run(tmp_path / "s", out)
    assert result.returncode == 0, result.stderr
    row = rows_by_video(out)["synth_000"][0]
    assert (row["status"], row["error"], row["n_frames"], row["n_propagated"]) == (
        "no_score",
        "no evaluated frame (fewer than 3 annotated frames)",
        "1",
        "1",
    )


def test_full_disk_stops_the_run_cleanly_and_resume_finishes_it(tmp_path):
    with small_disk(tmp_path / "disk", "24k") as disk:
        out = disk / "o.csv"
        make_split(tmp_path / "big", videos=6, frames=13, width=64, height=48, objects=3)
        result = run(tmp_path / "big", out)
        assert result.returncode == 1
        assert "Traceback" not in result.stderr
        assert "(No space left on device); the run stopped there. Make room, then resume with:" in result.stderr
        saved = tmp_path / "saved"
        shutil.copytree(disk, saved)
    resumed = run(tmp_path / "big", saved / "o.csv", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    keys = [(r["video_id"], r["object_id"]) for rs in rows_by_video(saved / "o.csv").values() for r in rs]
    assert len(keys) == len(set(keys)) == 6 * 3 + 1
