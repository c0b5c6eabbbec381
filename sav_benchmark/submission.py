"""The zip a challenge server takes: for val/test splits whose ground truth only the server holds
(MOSE, MOSEv2), each model's saved label maps of every frame, `<video>/<frame>.png` at the zip's
root, as MOSE's instructions make it (`cd <masks>; zip -r submission.zip *`)."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any


def write_submissions(masks_dir: Path, rows: list[dict[str, Any]]) -> list[Path]:
    """DIR/<model>.zip for each model with saved masks; written whole or not at all."""
    written = []
    for model in dict.fromkeys(row["model"] for row in rows):
        folder = masks_dir / model
        if folder.is_dir():
            written.append(write_submission(folder, masks_dir / f"{model}.zip"))
    return written


def write_submission(folder: Path, target: Path) -> Path:
    partial = target.with_name(target.name + ".partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_STORED) as archive:  # PNGs are compressed already
        for path in sorted(folder.rglob("*.png")):
            archive.write(path, path.relative_to(folder).as_posix())
    os.replace(partial, target)
    return target
