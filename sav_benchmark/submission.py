"""The zip a challenge server takes: for val/test splits whose ground truth only the server holds
(MOSE, MOSEv2, LVOS's test split), each model's saved label maps of every frame, as the server
reads them: MOSE's `<video>/<frame>.png` at the zip's root (`cd <masks>; zip -r submission.zip *`),
LVOS's under `Annotations/`. A zip is written only for a model whose every row of the whole split
ran: a server scores a missing video or object as 0, or refuses the zip."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

from .results import NOT_FAILED


def write_submissions(masks_dir: Path, rows: list[dict[str, Any]], root: str, partial_because: str) -> tuple[list[Path], list[str]]:
    """DIR/<model>.zip for each model with saved masks and no failed row (written whole or not at
    all), with `root` as the folder inside the zip; and why the others got none."""
    written, refused = [], []
    for model in dict.fromkeys(row["model"] for row in rows):
        failed = sum(row["status"] not in NOT_FAILED for row in rows if row["model"] == model)
        if partial_because or failed:
            why = partial_because or f"{failed} of its rows failed: run them again with --resume --retry_failed"
            refused.append(f"{model}: no zip for the challenge server ({why})")
        elif (masks_dir / model).is_dir():
            written.append(write_submission(masks_dir / model, masks_dir / f"{model}.zip", root))
    return written, refused


def write_submission(folder: Path, target: Path, root: str = "") -> Path:
    partial = target.with_name(target.name + ".partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_STORED) as archive:  # PNGs are compressed already
        for path in sorted(folder.rglob("*.png")):
            archive.write(path, (Path(root) / path.relative_to(folder)).as_posix())
    os.replace(partial, target)
    return target
