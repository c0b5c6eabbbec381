"""Prompts: clicks, boxes, worked out by hand."""

import numpy as np
import pytest

from sav_benchmark.split.prompts import click_points, tight_box


def test_click_is_at_the_distance_transform_maximum():
    m = np.zeros((9, 9), bool)
    m[2:7, 2:7] = True  # 5x5 square: its centre (4, 4) is 3 from the background
    assert click_points(m) == [[4, 4]]


def test_ties_go_to_lowest_row_then_column():
    m = np.zeros((6, 8), bool)
    m[2:4, 2:6] = True  # every pixel is 1 from the background
    assert click_points(m) == [[2, 2]]


def test_image_edge_counts_as_boundary():
    m = np.ones((5, 5), bool)  # the whole frame: centre is 3 from the padded border
    assert click_points(m) == [[2, 2]]
    m = np.zeros((5, 9), bool)
    m[:, :4] = True  # cut by the left edge: 2 from edge and background first at row 1, column 1
    assert click_points(m) == [[1, 1]]


def test_further_clicks_keep_away_from_boundary_and_earlier_clicks():
    m = np.zeros((9, 23), bool)
    m[1:8, 1:22] = True  # 7 rows: row 4 is 4 from the boundary for columns 4..18
    # (4,4) first; then the first pixel 4 from both boundary and (4,4): column 8; then column 12
    assert click_points(m, 3) == [[4, 4], [8, 4], [12, 4]]


def test_tight_box_is_inclusive():
    m = np.zeros((10, 10), bool)
    m[2:5, 3:8] = True
    assert tight_box(m) == [3, 2, 7, 4]


def test_empty_masks_are_refused():
    with pytest.raises(ValueError):
        click_points(np.zeros((3, 3), bool))
    with pytest.raises(ValueError):
        tight_box(np.zeros((3, 3), bool))
