"""Mask PNGs: the fast reader gives what PIL (the official evaluator's reader) gives, for every
encoding the masks are found in; the writer's files read back the same in PIL and OpenCV."""

import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from sav_benchmark.masks import PackedMasks, at_most_two_values, read_ids, read_mask, read_png_values, write_ids, write_mask
from sav_benchmark.scoring import Composite


def pil_values(path):
    return np.array(Image.open(path))


def save_pil(path, array, mode=None, palette=None, **options):
    image = Image.fromarray(array, mode) if mode else Image.fromarray(array)
    if palette is not None:
        image.putpalette(palette)
    image.save(path, **options)


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def encode_with_filters(values, filters):
    """An 8-bit grey PNG whose rows use the given filter types, filtered here pixel by pixel."""
    height, width = values.shape
    v = values.astype(int)
    out = bytearray()
    for y in range(height):
        out.append(filters[y])
        for x in range(width):
            left = v[y, x - 1] if x else 0
            up = v[y - 1, x] if y else 0
            up_left = v[y - 1, x - 1] if x and y else 0
            predictor = [0, left, up, (left + up) // 2, paeth(left, up, up_left)][filters[y]]
            out.append((v[y, x] - predictor) % 256)

    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(out))) + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    "filters",
    [
        [0] * 12,
        [1] * 12,
        [2] * 12,
        [0, 2, 2, 1, 2, 0, 2, 2, 2, 1, 1, 2],
        [2, 1, 0, 2, 2, 2, 2, 1, 2, 0, 0, 2],
        [3, 4, 0, 1, 2, 4, 3, 2, 1, 0, 4, 3],
    ],
)
def test_rows_filtered_any_way_read_as_pil_reads_them(tmp_path, filters):
    rng = np.random.default_rng(len(filters) + sum(filters))
    values = rng.integers(0, 256, (12, 17), dtype=np.uint8)  # wrap-around in every filter
    path = tmp_path / "filtered.png"
    path.write_bytes(encode_with_filters(values, filters))
    assert (pil_values(path) == values).all()  # the test's encoder is right
    assert (read_png_values(path) == values).all()


@pytest.mark.parametrize("kind", ["L", "P", "1", "P4", "P2", "I16", "RGB", "cv2", "cv2_1bit", "ours"])
def test_every_mask_encoding_reads_as_pil_reads_it(tmp_path, kind):
    rng = np.random.default_rng(3)
    mask = np.zeros((37, 53), bool)
    mask[5:30, 7:40] = True
    mask[rng.random(mask.shape) < 0.1] ^= True
    path = tmp_path / "m.png"
    davis = [0, 0, 0, 128, 0, 0, 0, 128, 0] + [7, 7, 7] * 253
    if kind == "L":
        save_pil(path, mask.astype(np.uint8) * 255)
    elif kind == "P":
        save_pil(path, mask.astype(np.uint8), palette=davis)
    elif kind == "1":
        save_pil(path, mask)
    elif kind in ("P4", "P2"):
        save_pil(path, mask.astype(np.uint8) * 3, palette=davis, bits=int(kind[1]))
    elif kind == "I16":
        cv2.imwrite(str(path), mask.astype(np.uint16) * 1000)
    elif kind == "RGB":
        save_pil(path, np.stack([mask.astype(np.uint8) * 200] * 3, axis=2))
    elif kind == "cv2":
        cv2.imwrite(str(path), mask.astype(np.uint8) * 255)
    elif kind == "cv2_1bit":
        cv2.imwrite(str(path), mask.astype(np.uint8) * 255, [cv2.IMWRITE_PNG_BILEVEL, 1])
    else:
        write_mask(path, mask)
    if kind == "RGB":  # the official evaluator cannot read it either
        with pytest.raises(ValueError, match="is a colour PNG; an SA-V mask is one channel"):
            read_mask(path, require_binary=True)
        return
    assert (read_png_values(path) == pil_values(path)).all()
    assert (read_mask(path, require_binary=True) == mask).all()


def test_written_masks_read_back_in_pil_and_opencv(tmp_path):
    mask = np.zeros((9, 21), bool)
    mask[2:7, 3:19] = True
    write_mask(tmp_path / "m.png", mask)
    assert (pil_values(tmp_path / "m.png") == mask).all()
    assert (cv2.imread(str(tmp_path / "m.png"), cv2.IMREAD_UNCHANGED) == mask * 255).all()


def test_ids_are_palette_indices_even_where_two_share_a_colour(tmp_path):
    ids = np.array([[0, 1, 2], [3, 0, 1]], np.uint8)
    palette = [0, 0, 0, 10, 10, 10, 10, 10, 10, 5, 5, 5]  # 1 and 2 have one colour
    save_pil(tmp_path / "p.png", ids, palette=palette)
    assert (read_ids(tmp_path / "p.png") == ids).all()
    write_ids(tmp_path / "w.png", ids)
    assert (pil_values(tmp_path / "w.png") == ids).all()


@pytest.mark.parametrize(
    "values,expected",
    [([0, 0], True), ([0, 1], True), ([0, 255], True), ([3, 7], True), ([0, 1, 2], False), ([0, 128, 255], False), ([5, 5], True)],
)
def test_at_most_two_values_counts_as_np_unique(values, expected):
    array = np.array(values * 5, np.uint8).reshape(-1, len(values))
    assert at_most_two_values(array) is expected
    assert (np.unique(array).size <= 2) is expected


def test_a_mask_with_three_values_is_refused(tmp_path):
    save_pil(tmp_path / "m.png", np.array([[0, 1, 2]], np.uint8))
    with pytest.raises(ValueError, match="holds more than two values"):
        read_mask(tmp_path / "m.png", require_binary=True)


@pytest.mark.parametrize("damage", ["signature", "truncated"])
def test_damaged_pngs_are_named(tmp_path, damage):
    write_mask(tmp_path / "m.png", np.ones((20, 20), bool))
    data = (tmp_path / "m.png").read_bytes()
    (tmp_path / "m.png").write_bytes(b"GIF89a" + data[6:] if damage == "signature" else data[: len(data) - 20])
    with pytest.raises(ValueError, match="m.png"):
        read_mask(tmp_path / "m.png")


def test_davis_label_maps_resolve_overlaps_by_score_then_lowest_id(tmp_path):
    """Hand-worked: three objects on a 1 x 4 frame; scores at each mask's pixels, row-major."""

    def masks(bits, scores=None):
        packed = PackedMasks()
        mask = np.array([bits], bool)
        packed.add(7, mask, None if scores is None else np.array(scores, np.float32))
        return packed

    one, two, three = masks([1, 1, 1, 0], [5.0, 1.0, 2.0]), masks([0, 1, 1, 1], [3.0, 2.0, 0.5]), masks([0, 0, 0, 1], [0.5])
    for order in ([(1, one), (2, two), (3, three)], [(3, three), (2, two), (1, one)]):
        composite = Composite(tmp_path / str(order[0][0]))
        composite.folder.mkdir()
        for object_id, packed in order:
            composite.add(object_id, packed)
        # pixel 0: only 1; pixel 1: 2 scores 3 > 1; pixel 2: 1 and 2 tie at 2, the lower id; pixel 3: 2 and 3 tie at 0.5
        assert composite.ids(7).tolist() == [[1, 2, 1, 2]]
    without_scores = Composite(tmp_path)  # the baseline's masks: every pixel scores the same, the lowest id wins
    for object_id, bits in ((2, [0, 1, 1, 1]), (1, [1, 1, 0, 0])):
        without_scores.add(object_id, masks(bits))
    assert without_scores.ids(7).tolist() == [[1, 1, 2, 2]]
    with pytest.raises(ValueError, match=r"^frame 7: 2 scores for a mask of 3 pixels$"):
        masks([1, 1, 1, 0], [1.0, 2.0])
