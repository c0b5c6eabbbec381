"""Reading and writing mask PNGs: binary object masks (SA-V) and object-id maps (DAVIS).

Decoding a mask is most of what scoring costs, so the common PNGs (grey or palette, 8 bits or
fewer, rows filtered with None, Sub or Up) are decoded here with zlib and numpy: no colour
expansion of palettes, no copies. Everything else goes through OpenCV.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
COLOUR_TYPE_GREY, COLOUR_TYPE_PALETTE = 0, 3
FILTER_SUB, FILTER_UP = 1, 2
LAST_FILTER = 4  # Average (3) and Paeth (4) run pixel by pixel: OpenCV decodes such files
# Masks are written for speed: level 1 makes them a few kB and quick to inflate.
WRITE_COMPRESSION = 1


def png_size(path: Path) -> tuple[int, int]:
    """(height, width) from a PNG's header, without decoding the image."""
    with open(path, "rb") as f:
        head = f.read(24)
    if len(head) < 24 or not head.startswith(PNG_SIGNATURE) or head[12:16] != b"IHDR":
        raise ValueError(f"{path} is not a PNG file")
    width, height = struct.unpack(">II", head[16:24])
    return height, width


def read_mask(path: Path, require_binary: bool = False) -> np.ndarray:
    """A binary mask: any non-zero value is foreground (SA-V: one object per PNG).

    With require_binary, a PNG holding more than two values is refused, as the official evaluator
    refuses it: such a file is not an SA-V object mask (a palette of objects, or a soft mask).
    """
    values = read_png_values(path)
    if require_binary and values.ndim == 3:
        raise ValueError(f"{path} is a colour PNG; an SA-V mask is one channel (background and one foreground value)")
    if require_binary and not at_most_two_values(values):
        raise ValueError(f"{path} holds more than two values; an SA-V mask is one object per PNG (background and one foreground value)")
    if values.ndim == 3:
        return values.any(axis=2)
    return values != 0


def at_most_two_values(values: np.ndarray) -> bool:
    """len(np.unique(values)) <= 2, without sorting a whole frame."""
    if values.ndim != 2:
        return bool(np.unique(values).size <= 2)
    low, high, _, _ = cv2.minMaxLoc(values)
    if high - low <= 1:  # integers: nothing lies between them
        return True
    return bool(np.count_nonzero(values == low) + np.count_nonzero(values == high) == values.size)


def write_mask(path: Path, mask: np.ndarray) -> None:
    """Write a binary mask as a 1-bit greyscale PNG, small and quick to encode and decode.
    PIL (the official evaluator's reader) reads it as 0 and 1, OpenCV as 0 and 255."""
    mask = np.asarray(mask).astype(bool, copy=False)
    height, width = mask.shape
    _write_png(path, width, height, 1, COLOUR_TYPE_GREY, np.packbits(mask, axis=1))


def write_ids(path: Path, ids: np.ndarray, compression: int = WRITE_COMPRESSION) -> None:
    """Write object ids as a palette PNG with the DAVIS palette, as DAVIS annotations are stored
    (and as sam2's tools/vos_inference.py saves SA-V predictions: ids 0 and 1, zlib level 6)."""
    height, width = ids.shape
    _write_png(path, width, height, 8, COLOUR_TYPE_PALETTE, ids.astype(np.uint8, copy=False), davis_palette(), compression)


def _write_png(
    path: Path,
    width: int,
    height: int,
    bit_depth: int,
    colour_type: int,
    packed_rows: np.ndarray,
    palette: bytes = b"",
    compression: int = WRITE_COMPRESSION,
) -> None:
    rows = np.zeros((height, packed_rows.shape[1] + 1), np.uint8)  # a leading 0 per row: filter None
    rows[:, 1:] = packed_rows
    png = (
        PNG_SIGNATURE
        + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0))
        + (_chunk(b"PLTE", palette) if palette else b"")
        + _chunk(b"IDAT", zlib.compress(rows.tobytes(), compression))
        + _chunk(b"IEND", b"")
    )
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(png)


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def read_ids(path: Path) -> np.ndarray:
    """The object id of every pixel (uint8) from a palette or 8-bit grey PNG (DAVIS)."""
    data = _read_bytes(path)
    png = _parse_png(data, path)
    if not (png.colour_type == COLOUR_TYPE_PALETTE or png.colour_type == COLOUR_TYPE_GREY and png.bit_depth == 8):
        raise ValueError(f"{path} is not an index mask: object ids need a palette or 8-bit grey PNG")
    return _values(data, png, path)


def read_png_values(path: Path) -> np.ndarray:
    """The pixel values as PIL gives them for 'L', 'P' and '1' images: grey levels (2- and 4-bit
    ones stretched to 0..255), palette indices, 0/1 for 1-bit grey. Colour PNGs come back as
    height x width x channels (OpenCV's order)."""
    data = _read_bytes(path)
    return _values(data, _parse_png(data, path), path)


def _values(data: bytes, png: _Png, path: Path) -> np.ndarray:
    """read_png_values of a file already read and parsed."""
    values = _decode_simple(png, path)
    if values is not None:
        return values
    palette = png.colour_type == COLOUR_TYPE_PALETTE
    if palette:
        return _palette_indices(data, png, path)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ValueError(f"cannot decode {path} as an image")
    if png.colour_type == COLOUR_TYPE_GREY and png.bit_depth == 1:
        return (image != 0).view(np.uint8)  # OpenCV scales 1-bit pixels to 0 and 255
    return image


def _palette_indices(data: bytes, png: _Png, path: Path) -> np.ndarray:
    """A palette PNG this module cannot unfilter (Average or Paeth rows, interlacing): PIL gives
    its indices where it is installed (sam2 depends on it); else OpenCV's colours are mapped back
    to indices, a colour listed twice to its lowest."""
    try:
        from PIL import Image
    except ImportError:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"cannot decode {path} as an image") from None
        return _colours_to_ids(image, png.palette, path)
    try:
        with Image.open(io.BytesIO(data)) as image:
            return np.array(image)
    except Exception as exc:  # PIL's errors for damaged files have no common base
        raise ValueError(f"cannot decode {path} as an image ({exc})") from None


def _read_bytes(path: Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read {path} ({exc.strerror or exc})") from None


@dataclass(frozen=True)
class _Png:
    width: int
    height: int
    bit_depth: int
    colour_type: int
    interlaced: bool
    palette: bytes
    data: bytes  # the IDAT chunks, joined


def _parse_png(data: bytes, path: Path) -> _Png:
    if not data.startswith(PNG_SIGNATURE):
        raise ValueError(f"{path} is not a PNG file")
    header, palette, parts, offset = b"", b"", [], len(PNG_SIGNATURE)
    while offset + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[offset : offset + 8])
        payload = data[offset + 8 : offset + 8 + length]
        if kind == b"IHDR":
            header = payload
        elif kind == b"PLTE":
            palette = payload
        elif kind == b"IDAT":
            parts.append(payload)
        elif kind == b"IEND":
            break
        offset += 12 + length
    if len(header) < 13:
        raise ValueError(f"{path} is a damaged PNG (no header)")
    width, height, bit_depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", header[:13])
    return _Png(width, height, bit_depth, colour_type, interlace != 0, palette, b"".join(parts))


def _decode_simple(png: _Png, path: Path) -> np.ndarray | None:
    """Grey or palette, 8 bits or fewer, not interlaced, rows filtered with None, Sub or Up:
    inflate and undo the filters with numpy. None for any other PNG."""
    if png.colour_type not in (COLOUR_TYPE_GREY, COLOUR_TYPE_PALETTE) or png.bit_depth > 8 or png.interlaced:
        return None
    row_bytes = (png.width * png.bit_depth + 7) // 8
    size = png.height * (row_bytes + 1)
    try:
        raw = zlib.decompress(png.data, bufsize=max(size, 1))
    except zlib.error as exc:
        raise ValueError(f"{path} is a damaged PNG ({exc})") from None
    if len(raw) < size:
        raise ValueError(f"{path} is a damaged PNG (its image data is short)")
    rows = np.frombuffer(raw, np.uint8, count=size).reshape(png.height, row_bytes + 1)
    filters = rows[:, 0]
    if filters.max(initial=0) > LAST_FILTER:
        raise ValueError(f"{path} is a damaged PNG (unknown row filter)")
    if (filters > FILTER_UP).any():
        return None
    values = _unfilter(rows[:, 1:], filters)
    return _unpack(values, png.bit_depth, png.width, png.colour_type == COLOUR_TYPE_GREY) if png.bit_depth < 8 else values


def _unfilter(rows: np.ndarray, filters: np.ndarray) -> np.ndarray:
    """Undo the None, Sub and Up filters, at one byte per step (one channel of 8 bits or fewer).
    uint8 sums wrap around, which is the filters' modulo-256 arithmetic."""
    values = np.array(rows)  # contiguous, writable
    sub = filters == FILTER_SUB
    if sub.any():
        values[sub] = np.cumsum(values[sub], axis=1, dtype=np.uint8)
    up_rows = np.flatnonzero(filters == FILTER_UP)
    # A run of consecutive Up rows is a cumulative sum down the run, from the final row above it.
    for run in np.split(up_rows, np.flatnonzero(np.diff(up_rows) > 1) + 1) if up_rows.size else ():
        first, end = run[0], run[-1] + 1
        values[first:end] = np.cumsum(values[first:end], axis=0, dtype=np.uint8)
        if first > 0:
            values[first:end] += values[first - 1]
    return values


def _unpack(packed: np.ndarray, bit_depth: int, width: int, scale: bool) -> np.ndarray:
    """Pixels of 1, 2 or 4 bits, the first in the most significant bits of each byte; with scale,
    2- and 4-bit grey levels are stretched to 0..255, as PIL reads them."""
    if bit_depth == 1:
        return np.unpackbits(packed, axis=1, count=width)
    shifts = np.arange(8 - bit_depth, -1, -bit_depth, dtype=np.uint8)
    pixels = (packed[:, :, None] >> shifts) & np.uint8((1 << bit_depth) - 1)
    values = np.ascontiguousarray(pixels.reshape(packed.shape[0], -1)[:, :width])
    return values * np.uint8(255 // ((1 << bit_depth) - 1)) if scale else values


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


class PackedMasks(Mapping):
    """Boolean masks by frame, held as bits compressed with zlib, each inflated and unpacked when
    read: what a job keeps of a long video stays small (a 640x480 mask: 38,400 bytes of bits, a
    few hundred once compressed), and so does what a worker sends back. A mask may come with its
    scores at its True pixels (row-major order), for label maps that resolve overlaps by score."""

    def __init__(self) -> None:
        self._packed: dict[int, tuple[tuple[int, ...], bytes, np.ndarray | None]] = {}

    def add(self, frame: int, mask: np.ndarray, scores: np.ndarray | None = None) -> None:
        if scores is not None and scores.shape != (int(np.count_nonzero(mask)),):
            raise ValueError(f"frame {frame}: {scores.shape[0]} scores for a mask of {np.count_nonzero(mask)} pixels")
        self._packed[frame] = (mask.shape, _compressed_bits(mask), scores)

    def add_empty(self, frame: int, shape: tuple[int, int]) -> None:
        self._packed[frame] = (shape, _compressed_bits(np.zeros(shape, bool)), None)

    def scores(self, frame: int) -> np.ndarray | None:
        """The mask's scores at its True pixels, or None when it came without."""
        return self._packed[frame][2]

    def copy_from(self, other: PackedMasks, frame: int) -> None:
        self._packed[frame] = other._packed[frame]

    def __getitem__(self, frame: int) -> np.ndarray:
        shape, compressed, _ = self._packed[frame]
        size = int(np.prod(shape))
        bits = np.frombuffer(zlib.decompress(compressed, bufsize=(size + 7) // 8 or 1), np.uint8)
        return np.unpackbits(bits, count=size).reshape(shape).view(bool)

    def __contains__(self, frame: object) -> bool:
        return frame in self._packed  # without unpacking the mask

    def __iter__(self) -> Iterator[int]:
        return iter(self._packed)

    def __len__(self) -> int:
        return len(self._packed)


def _compressed_bits(mask: np.ndarray) -> bytes:
    # Level 1: a mask's bits are long runs, which the fastest level already shrinks 20 to 100 times.
    return zlib.compress(np.packbits(mask).tobytes(), 1)
