"""Cheap statistics of an image's pixels (the ``feature`` fields of
:mod:`pixelmill.datasets.fields`), read from a small proxy of it.

The proxy is the image decoded straight to at most :data:`PROXY` pixels on its long side
(shrink-on-load: a JPEG is decoded at 1/2, 1/4 or 1/8 scale in the DCT domain), upright, in
8-bit sRGB with three bands, and held in memory once, so memory and time follow the proxy, not
the image. Images smaller than the proxy are not enlarged.

The no-reference indicators (sharpness, noise, blockiness, exposure, colourfulness) are those of
:mod:`pixelmill.quality.blind`, measured on the proxy: they are proxy-scale values, comparable
across items because every proxy has the same long side (except images smaller than it, which
are measured at their own scale). Blockiness sees the 8×8 JPEG grid only where the proxy is the
image at full scale; for larger JPEGs, ``jpeg_quality`` is the indicator of compression.
"""

from __future__ import annotations

import math
import struct

import numpy as np
import pyvips

from pixelmill.codecs import Source, classify, to_srgb
from pixelmill.datasets.fields import FEATURES
from pixelmill.quality import blind

PROXY = 512
"""Long side of the proxy, in pixels."""
HEAD = 256 * 1024
"""Bytes at the start of a file read for its JPEG quantisation tables: room for the application
segments (EXIF, ICC, XMP, up to 64 KiB each) that come before them."""
MASK = 3
"""Least side of a proxy that sharpness and noise (3×3 masks, less their margin) can read;
thinner ones have none."""

# JPEG's example quantisation tables (ITU-T T.81 Annex K, tables K.1 and K.2), natural order,
# which the IJG library scales by its quality setting.
LUMINANCE = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
])  # fmt: skip
CHROMINANCE = np.array([
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99,
    24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99,
    *[99] * 32,
])  # fmt: skip


def _zigzag() -> np.ndarray:
    """Natural-order index of each coefficient in the zigzag order DQT segments use."""
    cells = [(row, col) for row in range(8) for col in range(8)]
    cells.sort(key=lambda c: (c[0] + c[1], c[1] if (c[0] + c[1]) % 2 == 0 else c[0]))
    return np.array([row * 8 + col for row, col in cells])


ZIGZAG = _zigzag()
QUALITIES = np.arange(1, 101)


def _ijg_tables(base: np.ndarray) -> np.ndarray:
    """``base`` scaled for every IJG quality 1..100, zigzag order (libjpeg's
    ``jpeg_quality_scaling`` and ``jpeg_add_quant_table`` with baseline clamping)."""
    scale = np.where(QUALITIES < 50, 5000 // QUALITIES, 200 - 2 * QUALITIES)[:, None]
    return np.clip((base[ZIGZAG][None, :] * scale + 50) // 100, 1, 255)


IJG = {0: _ijg_tables(LUMINANCE), 1: _ijg_tables(CHROMINANCE)}
"""The tables libjpeg writes for each quality: table 0 for luma, 1 for chroma."""


def proxy(source: Source) -> pyvips.Image:
    """The image at most :data:`PROXY` pixels on its long side, upright, as 8-bit sRGB with
    three bands (alpha flattened onto white), in memory."""
    image = source.thumbnail(PROXY, height=PROXY, size="down")
    try:
        return _srgb8(to_srgb(image)).copy_memory()
    except pyvips.Error as exc:
        raise classify(str(exc), str(source.loc), loading=True) from None


def _srgb8(image: pyvips.Image) -> pyvips.Image:
    """``image`` flattened onto white, as 8-bit sRGB with three bands."""
    if image.hasalpha():
        peak = 65535 if image.format == "ushort" else 255
        image = image.flatten(background=[peak] * (image.bands - 1))
    if image.interpretation != "srgb" or image.bands != 3:
        image = image.colourspace("srgb")
    return image.cast("uchar")


def measure(
    proxy: pyvips.Image, head: bytes | None = None, size: tuple[int, int] | None = None
) -> dict[str, float | None]:
    """Every feature of :data:`~pixelmill.datasets.fields.FEATURES` of a proxy, with the JPEG
    quality read from ``head``, the first bytes of the file (:data:`HEAD` suffice), and the
    aspect from ``size``, the image's upright width and height (default: the proxy's, whose
    sides are rounded to whole pixels, so that a 1×60000 image's proxy is 1×512)."""
    width, height = size or (proxy.width, proxy.height)
    luma = proxy.recomb(blind.FULL_RANGE_LUMA)
    exposure = blind.exposure(proxy)
    masked = min(proxy.width, proxy.height) >= MASK  # room for the 3×3 masks
    values = {
        "mean_luma": exposure["mean_luma"],
        "contrast": luma.deviate() / 255 if proxy.width * proxy.height > 1 else 0.0,
        "colourfulness": blind.colourfulness(proxy),
        "sharpness": blind.sharpness(proxy) if masked else None,
        "noise": blind.noise(proxy) if masked else None,
        "blockiness": blind.blockiness(proxy),
        "jpeg_quality": jpeg_quality(head) if head else None,
        "clipped_black": exposure["clipped_black"],
        "clipped_white": exposure["clipped_white"],
        "entropy": luma.rint().cast("uchar").hist_find().hist_entropy(),
        "aspect": width / height,
    }
    return {name: _plain(values[name]) for name in FEATURES}


def jpeg_quality(head: bytes) -> float | None:
    """The IJG quality (1..100) whose tables are nearest to a JPEG's quantisation tables (the
    mean absolute difference over its luma and chroma tables); None when ``head`` is not the
    start of a JPEG or holds no tables before the first scan.

    The tables are parsed by hand because libvips does not expose them. The IJG scaling
    (libjpeg's ``jcparam.c``): quality q scales the Annex K tables by 5000/q percent below 50
    and by 200 − 2q percent from 50, rounded, clamped to 1..255. Tables that no quality gives
    (a camera's, say) get the nearest quality."""
    tables = dqt_tables(head)
    known = [slot for slot in IJG if slot in tables]
    if not known:
        return None
    error = sum(np.abs(IJG[slot] - tables[slot][None, :]).mean(axis=1) for slot in known)
    return float(QUALITIES[int(np.argmin(error))])


def dqt_tables(head: bytes) -> dict[int, np.ndarray]:
    """The quantisation tables of a JPEG's DQT segments (ITU-T T.81 B.2.4.1) met before its
    first scan, by slot (0..3), in zigzag order; empty when ``head`` is not a JPEG's start."""
    tables: dict[int, np.ndarray] = {}
    if not head.startswith(b"\xff\xd8"):
        return tables
    at = 2
    while at + 4 <= len(head):
        if head[at] != 0xFF:
            break
        marker = head[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in (0xDA, 0xD9):  # start of scan, end of image
            break
        (length,) = struct.unpack_from(">H", head, at + 2)
        if marker == 0xDB:
            tables.update(_dqt_segment(head[at + 4 : at + 2 + length]))
        at += 2 + length
    return tables


def _dqt_segment(body: bytes) -> dict[int, np.ndarray]:
    """The tables of one DQT segment: each a byte of precision (8 or 16 bits) and slot, then
    64 values."""
    tables = {}
    at = 0
    while at < len(body):
        precision, slot = body[at] >> 4, body[at] & 0x0F
        size = 128 if precision else 64
        values = body[at + 1 : at + 1 + size]
        if len(values) < size or slot > 3:
            break
        tables[slot] = np.frombuffer(values, ">u2" if precision else "u1").astype(np.int64)
        at += 1 + size
    return tables


def _plain(value: float | None) -> float | None:
    """A plain, finite Python float (``-0.0`` as ``0.0``), or None."""
    if value is None or not math.isfinite(value):
        return None
    return float(value) + 0.0
