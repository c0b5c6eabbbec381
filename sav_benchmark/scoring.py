"""Scoring masks as the evaluators see them. DAVIS stores one label map per frame (one object id
per pixel), so a model's objects of a video are put together before they are scored and saved."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .masks import write_ids


class Composite:
    """One model's masks of one video as DAVIS stores them, one id per pixel. Where objects
    overlap the lowest id wins, as sam2's vos_inference decides for DAVIS output; that rule
    makes the result the same whatever order the objects are added in."""

    def __init__(self) -> None:
        self.frames: dict[int, np.ndarray] = {}

    def add(self, object_id: int, masks: dict[int, np.ndarray]) -> None:
        for frame, mask in masks.items():
            ids = self.frames.setdefault(frame, np.zeros(mask.shape, np.uint8))
            ids[np.asarray(mask, bool) & ((ids == 0) | (ids > object_id))] = object_id

    def save(self, folder: Path, names: dict[int, str]) -> None:
        """<folder>/<frame>.png for every frame, as palette PNGs."""
        for frame, ids in self.frames.items():
            write_ids(folder / names[frame], ids)
