"""What an image is, from its header alone (nothing is decoded)."""

from __future__ import annotations

from typing import Any

from pixelmill.codecs.icc import describe_icc
from pixelmill.codecs.load import Source
from pixelmill.codecs.save import BITS

_LOADER_FORMATS = {"jpeg": "jpeg", "png": "png", "webp": "webp", "tiff": "tiff", "gif": "gif",
                   "nsgif": "gif", "heif": "heif", "svg": "svg"}  # fmt: skip


def describe(src: Source) -> dict[str, Any]:
    """Format, size, bands, bit depth, colour space, ICC, orientation and pages of a source,
    and its decoder: libvips, or Pillow for the formats this build of libvips cannot read, and
    whether it streams (a decoder that does not holds the whole image at once)."""
    header = src.header
    fields = header.get_fields()
    loader = src.loader.split("load")[0]
    fmt = _LOADER_FORMATS.get(loader, loader.removeprefix("pillow:"))
    if fmt == "heif" and "heif-compression" in fields:
        fmt = {"av1": "avif", "hevc": "heic"}.get(header.get("heif-compression"), "heif")
    icc = header.get("icc-profile-data") if "icc-profile-data" in fields else None
    return {
        "source": str(src.loc),
        "format": fmt,
        "width": header.width,
        "height": header.height,
        "bands": header.bands,
        "bit_depth": BITS.get(header.format, 0),
        "sample_format": header.format,
        "colour_space": header.interpretation,
        "alpha": bool(header.hasalpha()),
        "icc": describe_icc(icc) if icc else None,
        "orientation": src.orientation,
        "pages": header.get("n-pages") if "n-pages" in fields else 1,
        "bytes": src.size,
        "decoder": "Pillow" if src.loader.startswith("pillow:") else "libvips",
        "streams": src.streams,
    }
