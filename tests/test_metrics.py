"""J, F and J&F: every rule of SPEC-metrics, with values worked out by hand."""

import json

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from reference_metrics import boundary, dilate_by_shifts, jf, object_jf

from sav_benchmark.metrics import (
    ObjectScorer,
    boundary_map,
    contour_accuracy,
    count_near,
    evaluated_frames,
    foreground_window,
    frame_scores,
    global_scores,
    region_similarity,
    score_object,
    tolerance_radius,
)


def square(h, w, rows, cols):
    m = np.zeros((h, w), bool)
    m[rows[0] : rows[1] + 1, cols[0] : cols[1] + 1] = True
    return m


def test_boundary_of_a_2x2_square_is_the_ring_offset_toward_the_origin():
    mask = square(5, 5, (1, 2), (1, 2))
    expected = np.array([[1, 1, 1, 0, 0], [1, 0, 1, 0, 0], [1, 1, 1, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]], bool)
    assert (boundary_map(mask) == expected).all()


def test_boundary_last_row_and_column_rules_and_bottom_right_zero():
    mask = np.zeros((3, 3), bool)
    mask[2, 1] = True  # a pixel on the last row
    expected = np.array([[0, 0, 0], [1, 1, 0], [1, 1, 0]], bool)
    assert (boundary_map(mask) == expected).all()
    full = np.ones((4, 4), bool)
    assert not boundary_map(full).any()  # no edge inside; the image border is no boundary


@pytest.mark.parametrize("h,w,r", [(1080, 1920, 18), (480, 848, 8), (848, 480, 8), (240, 320, 4), (10, 10, 1)])
def test_tolerance_radius(h, w, r):
    assert tolerance_radius(h, w) == r


def test_disk_of_radius_two_holds_thirteen_offsets():
    source = np.zeros((9, 9), bool)
    source[4, 4] = True
    everywhere = np.ones((9, 9), bool)
    assert count_near(everywhere, source, 1) == 5
    assert count_near(everywhere, source, 2) == 13  # centre, 4 at 1, 4 at sqrt 2, 4 at 2


def test_near_count_is_zero_without_sources_or_queries():
    some = np.eye(5, dtype=bool)
    assert count_near(some, np.zeros((5, 5), bool), 3) == 0
    assert count_near(np.zeros((5, 5), bool), some, 3) == 0


def test_near_count_is_exact_at_every_radius_on_random_pixels():
    """Against the union of shifted copies (the dilation by the disk), at the radius's edge too."""
    rng = np.random.default_rng(4)
    for radius in range(1, 21):
        h, w = rng.integers(1, 70, size=2)
        sources = rng.random((h, w)) < rng.choice([0.002, 0.02, 0.2])
        queries = rng.random((h, w)) < rng.choice([0.01, 0.3])
        assert count_near(queries, sources, radius) == np.count_nonzero(queries & dilate_by_shifts(sources, radius)), radius


def test_window_is_the_box_of_both_masks_grown_by_one_and_clipped():
    p, g = np.zeros((10, 12), bool), np.zeros((10, 12), bool)
    assert foreground_window(p, g) is None
    p[3, 4] = g[5, 9] = True
    assert foreground_window(p, g) == (slice(2, 7), slice(3, 11))
    g[9, 11] = p[0, 0] = True
    assert foreground_window(p, g) == (slice(0, 10), slice(0, 12))


def test_region_similarity_hand_values():
    empty = np.zeros((4, 4), bool)
    assert region_similarity(empty, empty) == 1.0
    p = square(4, 4, (0, 1), (0, 1))  # 4 pixels
    g = square(4, 4, (0, 1), (1, 3))  # 6 pixels, 2 shared
    assert region_similarity(p, g) == pytest.approx(2 / 8)
    assert region_similarity(p, square(4, 4, (3, 3), (3, 3))) == 0.0


def test_contour_accuracy_hand_value_with_radius_one():
    # 10x10 frame: r = 1. Each 2x2 square has 8 boundary pixels; 3 of each lie within 1 of the other.
    g = square(10, 10, (4, 5), (2, 3))
    p = square(10, 10, (4, 5), (5, 6))
    assert contour_accuracy(p, g, 1) == pytest.approx(3 / 8)
    assert frame_scores(p, g) == (0.0, pytest.approx(3 / 8))


def test_contour_accuracy_empty_cases():
    empty = np.zeros((6, 6), bool)
    obj = square(6, 6, (1, 3), (1, 3))
    assert contour_accuracy(empty, empty, 1) == 1.0
    assert contour_accuracy(empty, obj, 1) == 0.0  # precision 1, recall 0
    assert contour_accuracy(obj, empty, 1) == 0.0  # precision 0, recall 1
    far_a, far_b = square(40, 40, (0, 2), (0, 2)), square(40, 40, (30, 35), (30, 35))
    assert contour_accuracy(far_a, far_b, 1) == 0.0  # precision + recall = 0
    assert frame_scores(far_a, far_b) == (0.0, 0.0)


def test_size_mismatch_is_an_error_not_a_resize():
    with pytest.raises(ValueError, match="differ in size"):
        frame_scores(np.zeros((4, 4), bool), np.zeros((4, 5), bool))


def test_evaluated_frames_drop_first_and_last():
    assert evaluated_frames([8, 0, 4, 12]) == [4, 8]
    assert evaluated_frames([0, 4, 8, 12], skip_first_and_last=False) == [0, 4, 8, 12]
    assert evaluated_frames([0, 4]) == []


def test_object_counts_from_first_frame_where_either_mask_is_present():
    e = np.zeros((8, 8), bool)
    g = square(8, 8, (2, 4), (2, 4))
    # frame 1: both empty, before the object shows up: not counted
    # frame 2: GT present, prediction empty: J = 0, F = 0
    # frame 3: both empty, after it showed up: J = 1, F = 1
    score = score_object([e, e, e], [e, g, e])
    assert (score.J, score.F, score.JF, score.n_frames) == (50.0, 50.0, 50.0, 2)


def test_prediction_alone_starts_the_count():
    e = np.zeros((8, 8), bool)
    g = square(8, 8, (2, 4), (2, 4))
    score = score_object([g, e], [e, g])  # frame 1 counted: J 0, F 0; frame 2: J 0, F 0
    assert (score.J, score.F, score.n_frames) == (0.0, 0.0, 2)


def test_object_without_ground_truth_is_missing_not_zero():
    e = np.zeros((8, 8), bool)
    score = score_object([square(8, 8, (1, 2), (1, 2)), e], [e, e])
    assert score.J is None and score.JF is None
    assert score.missing_reason == "ground truth empty on every evaluated frame"
    assert ObjectScorer().conclude().missing_reason.startswith("no evaluated frame")


def test_global_scores_are_object_weighted():
    # video A has one object (J 100, F 100), video B three (J 0, F 50): object-weighted J = 25
    jf_, j, f = global_scores([(100, 100), (0, 50), (0, 50), (0, 50)])
    assert (j, f, jf_) == (25.0, 62.5, 43.75)
    assert all(np.isnan(v) for v in global_scores([]))


def test_boundary_agrees_with_per_pixel_reference_on_random_masks():
    rng = np.random.default_rng(1)
    for _ in range(30):
        h, w = rng.integers(1, 12, size=2)
        m = rng.random((h, w)) < rng.random()
        assert (boundary_map(m) == boundary(m)).all()


def test_frame_scores_agree_with_reference_on_random_masks():
    rng = np.random.default_rng(2)
    for _ in range(40):
        h, w = rng.integers(2, 40, size=2)
        p = rng.random((h, w)) < rng.random()
        g = rng.random((h, w)) < rng.random()
        ours = frame_scores(p, g)
        assert ours == pytest.approx(jf(p, g), abs=1e-12)


def blob(h, w, rng):
    """A solid rectangle with ragged edges, anywhere, often touching an edge or a corner."""
    m = np.zeros((h, w), bool)
    y0, x0 = rng.integers(-h // 4, h, 2) if rng.random() < 0.5 else (rng.integers(0, h), rng.integers(0, w))
    y1, x1 = y0 + rng.integers(1, h), x0 + rng.integers(1, w)
    m[max(y0, 0) : y1, max(x0, 0) : x1] = True
    m[rng.random((h, w)) < 0.03] ^= True
    return m


def test_frame_scores_on_objects_at_the_frame_edges_agree_with_full_frame_reference():
    """The window must not change a pixel of J or F: objects at every edge, radius above 1."""
    rng = np.random.default_rng(5)
    for _ in range(60):
        h, w = rng.integers(60, 130, size=2)
        p = blob(h, w, rng) if rng.random() < 0.9 else np.zeros((h, w), bool)
        g = blob(h, w, rng)
        if rng.random() < 0.3:
            p = g.copy()
            p[-1, :] = rng.random() < 0.5  # differ only on the last row
        assert frame_scores(p, g) == pytest.approx(jf(p, g, boundary_fn=boundary_map), abs=1e-12)
    assert tolerance_radius(130, 130) == 2


def test_frame_scores_accept_masks_as_stored_values():
    """Non-zero is foreground: uint8 masks of 0 and 255 score as their boolean masks."""
    rng = np.random.default_rng(6)
    p, g = blob(50, 70, rng), blob(50, 70, rng)
    assert frame_scores(p.astype(np.uint8) * 255, g.astype(np.uint8)) == frame_scores(p, g)


def test_real_sav_masks_agree_with_reference(fixtures_dir):
    """Real SA-V masklets (848x480, r = 8): each annotated frame scored against the next one."""
    data = json.loads((fixtures_dir / "sav_000001_manual.json").read_text())
    masklets = data["masklet"]
    frames = range(0, len(masklets) - 1, 10)
    for obj in range(len(masklets[0])):
        preds = [mask_utils.decode(masklets[t + 1][obj]).astype(bool) for t in frames]
        gts = [mask_utils.decode(masklets[t][obj]).astype(bool) for t in frames]
        ours = score_object(preds, gts)
        ref = object_jf(preds, gts, boundary_fn=boundary_map)  # boundary_map is checked per pixel above
        if ref is None:
            assert ours.J is None
        else:
            assert (ours.J, ours.F) == pytest.approx(ref, abs=1e-9)
    assert gts[0].shape == (848, 480) and tolerance_radius(*gts[0].shape) == 8


def test_near_count_agrees_with_shift_reference_at_1080p():
    rng = np.random.default_rng(3)
    m = np.zeros((1080, 1920), bool)
    m[rng.integers(0, 1080, 50), rng.integers(0, 1920, 50)] = True
    m[0, 0] = m[-1, -1] = True  # corners: nothing is near from beyond the frame
    queries = rng.random((1080, 1920)) < 0.01
    queries[0, 18] = queries[18, 0] = queries[13, 13] = queries[13, 12] = True  # at 18, 18, 18.4 and 17.7 from the corner
    assert count_near(queries, m, 18) == np.count_nonzero(queries & dilate_by_shifts(m, 18))
