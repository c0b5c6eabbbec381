"""Phase 1 on synthetic SA-V splits: indexing, selection, prompts, the prepared manifest."""

import numpy as np
import pytest

from sav_benchmark.errors import UsageError
from sav_benchmark.masks import read_mask, write_mask
from sav_benchmark.split import PreparedSplit, prepare_split
from sav_benchmark.split.synthetic import make_split


@pytest.fixture(scope="module")
def split(synthetic_split):
    return synthetic_split(videos=3, frames=17, width=96, height=64)


def test_indexes_videos_in_list_order_with_their_objects(split):
    prepared = prepare_split(split)
    assert [v.video_id for v in prepared.videos] == ["synth_000", "synth_001", "synth_002"]
    first = prepared.videos[0]
    assert (first.n_frames, first.height, first.width) == (17, 64, 96)
    assert [o.object_id for o in first.objects] == ["000", "001", "002"]
    assert first.objects[0].annotated_frames == [0, 4, 8, 12, 16]


def test_late_object_is_prompted_on_its_first_non_empty_annotated_frame(split):
    late = prepare_split(split).videos[0].objects[2]
    assert late.prompt_frame == 12  # it enters at frame 10, between annotated frames 8 and 12
    assert not read_mask(split / "Annotations_6fps/synth_000/002/00008.png").any()
    mask = read_mask(split / "Annotations_6fps/synth_000/002/00012.png")
    x, y = late.points[0]
    assert mask[y, x]
    rows, cols = np.nonzero(mask)
    assert late.box == [cols.min(), rows.min(), cols.max(), rows.max()]


def test_selection_flags(split):
    assert [v.video_id for v in prepare_split(split, limit_videos=2).videos] == ["synth_000", "synth_001"]
    assert [v.video_id for v in prepare_split(split, video_ids=["synth_002", "synth_000"]).videos] == ["synth_000", "synth_002"]
    assert all(len(v.objects) == 1 for v in prepare_split(split, limit_objects=1).videos)
    assert len(prepare_split(split, num_points=3).videos[0].objects[0].points) == 3


def test_unknown_video_id_suggests_the_closest(split):
    with pytest.raises(UsageError, match="did you mean synth_001"):
        prepare_split(split, video_ids=["synth_01"])


def test_object_that_never_appears_is_kept_with_a_skip_reason(tmp_path):
    make_split(tmp_path, videos=1, frames=9, width=64, height=48)
    empty = tmp_path / "Annotations_6fps/synth_000/009"
    for frame in (0, 4, 8):
        write_mask(empty / f"{frame:05d}.png", np.zeros((48, 64), bool))
    obj = prepare_split(tmp_path).videos[0].objects[-1]
    assert (obj.object_id, obj.prompt_frame, obj.skip_reason) == ("009", None, "object never appears in the ground truth")


def test_a_gap_in_the_frame_numbering_is_that_videos_problem(tmp_path):
    make_split(tmp_path, videos=2, frames=9, width=64, height=48)
    (tmp_path / "JPEGImages_24fps/synth_000/00003.jpg").unlink()
    first, second = prepare_split(tmp_path).videos
    assert first.problem == (
        f"frames in {tmp_path / 'JPEGImages_24fps/synth_000'} are not numbered 0..7 without gaps (missing e.g. [3]); "
        "fix the video's frames or leave it out (--video_ids)"
    )
    assert second.problem == "" and second.n_frames == 9


def test_prepared_manifest_round_trips(split, tmp_path):
    prepared = prepare_split(split, limit_objects=2)
    prepared.save(tmp_path / "p.json")
    assert PreparedSplit.load(tmp_path / "p.json") == prepared
