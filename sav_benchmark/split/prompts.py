"""Deterministic prompts derived from a ground-truth mask: clicks, a box, or the mask itself."""

from __future__ import annotations

import cv2
import numpy as np

# --num_points at most: each click costs prepare one distance transform of the mask per object.
MAX_POINTS = 64


def click_points(mask: np.ndarray, num_points: int = 1) -> list[list[int]]:
    """Positive clicks as [x, y] pixel coordinates.

    The first click is the mask pixel farthest from the mask boundary (maximum of the Euclidean
    distance transform); each further click is farthest from the boundary and from all earlier
    clicks. Pixels outside the image count as background, so a mask cut by the frame edge is
    clicked away from that edge. Ties go to the lowest row, then the lowest column.
    """
    if not mask.any():
        raise ValueError("cannot place clicks on an empty mask")
    # A background frame of one pixel makes the image edge part of the boundary.
    field = np.pad(mask.astype(np.uint8), 1)
    clicks: list[list[int]] = []
    for _ in range(num_points):
        distance = cv2.distanceTransform(field, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        # Squared distances are integers; rounding them makes ties exact despite float32 sqrt.
        squared = np.rint(distance.astype(np.float64) ** 2)
        if squared.max() == 0:
            break  # every mask pixel is already clicked
        row, col = np.unravel_index(np.argmax(squared), squared.shape)  # first max: row-major
        clicks.append([int(col) - 1, int(row) - 1])
        field[row, col] = 0
    return clicks


def tight_box(mask: np.ndarray) -> list[int]:
    """[x0, y0, x1, y1]: the smallest box holding every mask pixel, inclusive pixel indices."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        raise ValueError("cannot box an empty mask")
    return [int(cols[0]), int(rows[0]), int(cols[-1]), int(rows[-1])]
