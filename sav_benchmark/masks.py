"""Reading and writing binary mask PNGs in the SA-V layout."""

from __future__ import annotations

import struct
import zlib
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


# Index masks (DAVIS): one PNG per frame whose pixel value is the object id (0 = background),
# usually stored with a palette. OpenCV expands a palette into colours, so ids are recovered
# from the PLTE chunk; an 8-bit grey PNG holds the ids directly.
COLOUR_TYPE_GREY, COLOUR_TYPE_PALETTE = 0, 3


def _png_chunks(data: bytes) -> dict[bytes, bytes]:
    """The first chunk of each type (IHDR, PLTE, ...), without the image data."""
    chunks, offset = {}, len(PNG_SIGNATURE)
    while offset + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[offset : offset + 8])
        chunks.setdefault(kind, data[offset + 8 : offset + 8 + length])
        if kind == b"IEND":
            break
        offset += 12 + length
    return chunks


def read_ids(path: Path) -> np.ndarray:
    """The object id of every pixel (uint8) from a palette or 8-bit grey PNG."""
    data = Path(path).read_bytes()
    if not data.startswith(PNG_SIGNATURE):
        raise ValueError(f"{path} is not a PNG file")
    chunks = _png_chunks(data)
    header = chunks.get(b"IHDR", b"")
    if len(header) < 10:
        raise ValueError(f"{path} is a damaged PNG (no header)")
    bit_depth, colour_type = header[8], header[9]
    if colour_type == COLOUR_TYPE_GREY and bit_depth == 8:
        ids = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        if ids is None:
            raise ValueError(f"cannot decode {path} as an image")
        return ids
    if colour_type != COLOUR_TYPE_PALETTE:
        raise ValueError(f"{path} is not an index mask: object ids need a palette or 8-bit grey PNG")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"cannot decode {path} as an image")
    return _colours_to_ids(image, chunks.get(b"PLTE", b""), path)


def _colour_keys(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.int32)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def _colours_to_ids(bgr: np.ndarray, palette: bytes, path: Path) -> np.ndarray:
    entries = _colour_keys(np.frombuffer(palette, np.uint8)[: len(palette) // 3 * 3].reshape(-1, 3))
    if entries.size == 0:
        raise ValueError(f"{path} has no palette")
    # A colour listed twice (palettes are often padded with black) is read as its lowest index:
    # searchsorted finds the first of equal entries, and the stable sort keeps them in index order.
    order = np.argsort(entries, kind="stable")
    sorted_entries = entries[order]
    pixels = _colour_keys(bgr[..., ::-1])
    position = np.minimum(np.searchsorted(sorted_entries, pixels), entries.size - 1)
    if not (sorted_entries[position] == pixels).all():
        raise ValueError(f"{path} holds colours that are not in its palette")
    return order[position].astype(np.uint8)


def davis_palette() -> bytes:
    """The 256-colour palette of DAVIS and PASCAL VOC annotations: the bits of each index are
    spread over red, green and blue from the most significant bit down."""
    colours = bytearray()
    for index in range(256):
        red = green = blue = 0
        value = index
        for shift in range(7, -1, -1):
            red |= (value & 1) << shift
            green |= ((value >> 1) & 1) << shift
            blue |= ((value >> 2) & 1) << shift
            value >>= 3
        colours += bytes((red, green, blue))
    return bytes(colours)


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def write_ids(path: Path, ids: np.ndarray) -> None:
    """Write object ids as a palette PNG with the DAVIS palette, as DAVIS annotations are stored."""
    height, width = ids.shape
    rows = np.zeros((height, width + 1), np.uint8)  # a leading 0 per row: PNG filter type None
    rows[:, 1:] = ids
    png = (
        PNG_SIGNATURE
        + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, COLOUR_TYPE_PALETTE, 0, 0, 0))
        + _chunk(b"PLTE", davis_palette())
        + _chunk(b"IDAT", zlib.compress(rows.tobytes(), 6))
        + _chunk(b"IEND", b"")
    )
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(png)
