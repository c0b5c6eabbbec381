"""Reading and writing binary mask PNGs in the SA-V layout."""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    """(height, width) from a PNG's header, without decoding the image."""
    with open(path, "rb") as f:
        head = f.read(24)
    if len(head) < 24 or not head.startswith(PNG_SIGNATURE) or head[12:16] != b"IHDR":
        raise ValueError(f"{path} is not a PNG file")
    width, height = struct.unpack(">II", head[16:24])
    return height, width


def read_mask(path: Path, require_binary: bool = False) -> np.ndarray:
    """A binary mask: any non-zero pixel is foreground (SA-V: one object per PNG).

    With require_binary, a PNG holding more than one non-zero value is refused, as the official
    evaluator refuses it: such a file is not an SA-V object mask (a palette or a soft mask).
    """
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ValueError(f"cannot decode {path} as an image")
    if require_binary:
        foreground = image[image != 0]
        if foreground.size and (foreground != foreground.flat[0]).any():
            raise ValueError(f"{path} is not a binary mask (it holds several non-zero values)")
    if image.ndim == 3:
        return image.any(axis=2)
    return image > 0


def write_mask(path: Path, mask: np.ndarray) -> None:
    """Write a binary mask as a single-channel PNG with values 0 and 255."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), mask.astype(np.uint8) * 255):
        raise OSError(f"cannot write {path}")
