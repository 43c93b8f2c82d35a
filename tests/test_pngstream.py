"""The band-by-band PNG writer that carries a model's output: valid PNGs (checked by Pillow's
strict decoder and by libvips), whatever the width, depth, bands and band heights."""

from __future__ import annotations

import io
import zlib

import numpy as np
import pytest
import pyvips
from PIL import Image

from pixelmill.engine.pngstream import STORED_BLOCK, PngBandWriter


@pytest.mark.parametrize(("width", "height", "bands", "depth"), [
    (100, 64, 3, 8), (STORED_BLOCK // 3 + 5, 20, 3, 8), (7, 5, 1, 16), (50, 33, 4, 16),
    (1, 1, 2, 8), (9000, 3, 4, 16),
])  # fmt: skip
def test_bands_make_one_valid_png(width, height, bands, depth) -> None:
    dtype = np.uint16 if depth == 16 else np.uint8
    pixels = np.random.default_rng(width).integers(0, 2**depth, (height, width, bands)).astype(dtype)
    out = io.BytesIO()
    writer = PngBandWriter(out, width, height, bands, depth)
    for part in np.array_split(pixels, min(3, height)):
        writer.write(part)
    writer.close()
    data = out.getvalue()
    decoded = pyvips.Image.new_from_buffer(data, "", fail_on="warning")
    assert np.array_equal(
        np.frombuffer(decoded.write_to_memory(), dtype).reshape(pixels.shape), pixels)
    with Image.open(io.BytesIO(data)) as image:
        image.load()  # Pillow checks every chunk's CRC and the zlib stream's Adler-32
        if depth == 8:
            assert np.array_equal(np.asarray(image).reshape(pixels.shape), pixels)
    idat = b"".join(_chunks(data, b"IDAT"))
    rows = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(height, -1)
    assert (rows[:, 0] == 0).all()  # filter "none" on every row


def test_rows_that_do_not_fit_are_refused() -> None:
    writer = PngBandWriter(io.BytesIO(), 10, 4, 3, 8)
    with pytest.raises(ValueError, match="do not fit"):
        writer.write(np.zeros((2, 11, 3), np.uint8))
    writer.write(np.zeros((3, 10, 3), np.uint8))
    with pytest.raises(ValueError, match="do not fit"):
        writer.write(np.zeros((2, 10, 3), np.uint8))
    with pytest.raises(ValueError, match="1 rows were never written"):
        writer.close()


def _chunks(data: bytes, kind: bytes) -> list[bytes]:
    found, at = [], 8
    while at < len(data):
        length = int.from_bytes(data[at : at + 4], "big")
        if data[at + 4 : at + 8] == kind:
            found.append(data[at + 8 : at + 8 + length])
        at += 12 + length
    return found
