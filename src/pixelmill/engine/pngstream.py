"""Writing a PNG band by band from numpy rows: how the tiled executor hands its output to
libvips, through a pipe or a spool file.

Written by hand (chunks and a zlib stream of stored blocks, no filtering) because libvips
cannot take pixels from Python incrementally, and the formats it can read back without decoding
(raw, .v) are memory-mapped files, which cannot stream through a pipe and make resident memory
grow with the image's area; libvips reads a PNG sequentially, so the chain stays bounded by the
band. The stored blocks are framed here too: zlib at level 0 copies its input through its
window at about 1.4 ns a byte, five times the checksums that framing by hand leaves to pay.
"""

from __future__ import annotations

import struct
import zlib
from typing import Protocol

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
COLOUR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}
"""PNG colour type by number of bands: grey, grey+alpha, RGB, RGBA."""
ROWS_PER_CHUNK = 16
"""Rows written per IDAT chunk, so the writer's buffers stay small beside the band."""
STORED_BLOCK = 65535
"""Largest stored deflate block."""
ZLIB_HEADER = b"\x78\x01"
"""Deflate with a 32 KiB window, no preset dictionary (the check bits make it a multiple of 31)."""


class Sink(Protocol):
    """Where the PNG's bytes go: a file, or a pipe."""

    def write(self, data: bytes, /) -> object: ...


class PngBandWriter:
    """A PNG of known size, filled top to bottom with ``write(rows)``."""

    def __init__(self, out: Sink, width: int, height: int, bands: int, depth: int) -> None:
        self._out = out
        self._rows_left = height
        self._shape = (width, bands)
        self._dtype = np.dtype(">u2") if depth == 16 else np.dtype(np.uint8)
        self._adler = 1  # zlib.adler32 of nothing
        self._started = False
        out.write(SIGNATURE)
        self._chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, COLOUR_TYPES[bands],
                                         0, 0, 0))  # fmt: skip

    def write(self, rows: np.ndarray) -> None:
        """Append rows (h × width × bands, 8- or 16-bit)."""
        if rows.shape[1:] != self._shape or rows.shape[0] > self._rows_left:
            raise ValueError(f"rows of shape {rows.shape} do not fit the PNG")
        width = rows.shape[1] * rows.shape[2] * self._dtype.itemsize
        raw = np.zeros((ROWS_PER_CHUNK, 1 + width), np.uint8)  # filter byte 0 leads each row
        for first in range(0, rows.shape[0], ROWS_PER_CHUNK):
            part = rows[first : first + ROWS_PER_CHUNK]
            count = part.shape[0]
            raw[:count, 1:] = part.astype(self._dtype, copy=False).reshape(count, -1).view(np.uint8)
            self._chunk(b"IDAT", self._stored(memoryview(raw[:count]).cast("B")))
        self._rows_left -= rows.shape[0]

    def close(self) -> None:
        if self._rows_left:
            raise ValueError(f"{self._rows_left} rows were never written")
        final = struct.pack("<BHH", 1, 0, 0xFFFF) + struct.pack(">I", self._adler)
        self._chunk(b"IDAT", (b"" if self._started else ZLIB_HEADER) + final)
        self._chunk(b"IEND", b"")

    def _stored(self, data: memoryview) -> bytes:
        """``data`` as stored deflate blocks, after the zlib header if it is the first."""
        self._adler = zlib.adler32(data, self._adler)
        parts = [] if self._started else [ZLIB_HEADER]
        self._started = True
        for start in range(0, len(data), STORED_BLOCK):
            block = data[start : start + STORED_BLOCK]
            parts += [struct.pack("<BHH", 0, len(block), len(block) ^ 0xFFFF), block]
        return b"".join(parts)

    def _chunk(self, kind: bytes, data: bytes) -> None:
        if not data and kind != b"IEND":
            return
        self._out.write(struct.pack(">I", len(data)) + kind)
        self._out.write(data)
        self._out.write(struct.pack(">I", zlib.crc32(data, zlib.crc32(kind))))
