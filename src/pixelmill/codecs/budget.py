"""How much memory decoding an image takes, read from its header before any pixel is decoded.

Most decoders stream: baseline JPEG, non-interlaced PNG and TIFF strips or tiles hold a few rows
at a time, whatever the image's height. Others must hold the whole image at once, so a file of
a few hundred bytes that claims 30,000 × 30,000 pixels can ask for gigabytes: a progressive JPEG
keeps every DCT coefficient, an interlaced PNG every pass, GIF and WebP decode whole frames into
RGBA, and libheif decodes a whole HEIF/AVIF image through YUV planes. The figures below are
bytes per pixel measured on 6000 × 4000 photographs through the engine (peak resident memory
over a bare process; ``benchmarks/bench_hardening.py`` measures them again). TIFF strips and
tiles are bounded by libtiff itself (50 MB a strip or tile), HEIF by libheif's own size limits.
"""

from __future__ import annotations

import pyvips

from pixelmill.codecs.loaders import LOADERS

WHOLE_IMAGE_BYTES = {
    "gifload": 6.0,
    "webpload": 8.5,
}
"""Bytes per pixel of decoders that always hold the whole frame (RGBA plus the copy handed on)."""
HEIF_BYTES_PER_SAMPLE_BYTE = 16.0
"""libheif: YUV planes, their RGB conversion and the copy handed on, per byte of a sample."""


def decode_bytes(header: pyvips.Image, loader: str) -> tuple[int, str]:
    """Bytes the decoder of ``loader`` holds at once for the image of ``header`` (its first
    page), and what makes it hold them (empty when it streams)."""
    pixels = header.width * header.height
    fields = set(header.get_fields())
    sample = 2 if header.format == "ushort" else 1
    if loader == "jpegload" and "jpeg-multiscan" in fields and header.get("jpeg-multiscan"):
        return int(pixels * (2 * header.bands + 1)), "a progressive JPEG"
    if loader == "pngload" and "interlaced" in fields and header.get("interlaced"):
        return int(pixels * header.bands * sample * 1.1), "an interlaced PNG"
    if loader in WHOLE_IMAGE_BYTES:
        return int(pixels * WHOLE_IMAGE_BYTES[loader]), f"a {LOADERS[loader]} frame"
    if loader == "heifload":
        return int(pixels * HEIF_BYTES_PER_SAMPLE_BYTE * sample), "a HEIF/AVIF image"
    return 0, ""
