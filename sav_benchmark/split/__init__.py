"""Phase 1, the input: index a split of any layout, check it, select videos and objects, derive
their prompts, into a PreparedSplit (written as the prepared manifest) that the run phase reads, so
that every problem with the input is found before any model is built.

`sav` reads SA-V val/test, `sav_train` turns SA-V training videos into that layout in a cache,
`davis` reads DAVIS 2017, `lvos` LVOS v2, `mose` MOSE and MOSEv2, `synthetic` makes small splits of
each; `checks` holds what they share and `model` the prepared split itself.
"""

from __future__ import annotations

from pathlib import Path

from .checks import detect_layout
from .davis import prepare_davis
from .lvos import prepare_lvos
from .model import (
    DEMO_HINT,
    LAYOUT_DAVIS,
    LAYOUT_LVOS,
    LAYOUT_MOSE,
    LAYOUT_SAV_TRAIN,
    MASKLET_CHOICES,
    PROTOCOL_LVOS,
    PROTOCOL_MOSEV2,
    PROTOCOL_SAV,
    PROTOCOL_SERVER,
    PreparedObject,
    PreparedSplit,
    PreparedVideo,
    Selection,
    is_prepared_manifest,
    parse_shard,
)
from .mose import prepare_mose
from .sav import prepare_sav
from .sav_train import prepare_training

__all__ = [
    "DEMO_HINT",
    "LAYOUT_DAVIS",
    "LAYOUT_LVOS",
    "LAYOUT_MOSE",
    "MASKLET_CHOICES",
    "PROTOCOL_LVOS",
    "PROTOCOL_MOSEV2",
    "PROTOCOL_SAV",
    "PROTOCOL_SERVER",
    "PreparedObject",
    "PreparedSplit",
    "PreparedVideo",
    "is_prepared_manifest",
    "parse_shard",
    "prepare_split",
]


def prepare_split(
    split_dir: str | Path,
    video_ids: list[str] | None = None,
    limit_videos: int | None = None,
    limit_objects: int | None = None,
    num_points: int = 1,
    shard: tuple[int, int] | None = None,
    masklets: str = "manual",
    cache_dir: str | Path | None = None,
) -> PreparedSplit:
    """Index, check and select a split of any layout; raise UsageError on any bad input.

    masklets and cache_dir concern SA-V training videos only (see `sav_train`)."""
    root = Path(split_dir)
    selection = Selection(video_ids, limit_videos, limit_objects, shard)
    layout = detect_layout(root)
    if layout == LAYOUT_DAVIS:
        return prepare_davis(root, selection, num_points)
    if layout == LAYOUT_LVOS:
        return prepare_lvos(root, selection, num_points)
    if layout == LAYOUT_MOSE:
        return prepare_mose(root, selection, num_points)
    if layout == LAYOUT_SAV_TRAIN:
        return prepare_training(root, selection, num_points, masklets, cache_dir)
    return prepare_sav(root, selection, num_points)
