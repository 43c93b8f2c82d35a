"""Which decoders may run: only the loaders of the documented formats, chosen from the file's
content before any pixel is decoded.

libvips picks its loader by content, and a build carries many more loaders than pixelmill
documents (SVG through librsvg, PDF, its own ``.v`` format, matrices, CSV…); a few hostile
bytes named ``.jpg`` could reach any of them, and some need unbounded memory or time. So every
load sniffs the loader first, refuses any outside :data:`LOADERS`, and then calls the allowed
one by name, so the file cannot be taken for something else on the way.
"""

from __future__ import annotations

from typing import Any

import pyvips
from pyvips import ffi, vips_lib

LOADERS = {
    "jpegload": "JPEG", "pngload": "PNG", "webpload": "WebP", "tiffload": "TIFF",
    "gifload": "GIF", "heifload": "HEIF/AVIF",
}  # fmt: skip
"""The libvips loaders pixelmill runs (nickname: format)."""
REFUSED_NAMES = {
    "svgload": "SVG", "pdfload": "PDF", "vipsload": "libvips' own .v",
    "matrixload": "libvips matrix", "csvload": "CSV", "ppmload": "PPM/PGM/PBM/PFM",
    "radload": "Radiance HDR", "fitsload": "FITS", "jxlload": "JPEG XL",
    "jp2kload": "JPEG 2000", "magickload": "ImageMagick", "openslideload": "OpenSlide",
    "matload": "Matlab", "analyzeload": "Analyze", "openexrload": "OpenEXR",
    "rawload": "raw camera",
}  # fmt: skip
"""Names for the refusal of loaders outside :data:`LOADERS`, by nickname."""


class Refused(Exception):
    """The content is a format whose loader pixelmill does not run."""

    def __init__(self, loader: str) -> None:
        super().__init__(loader)
        self.format = REFUSED_NAMES.get(loader, loader.removesuffix("load"))


def sniff(source: pyvips.Source) -> str | None:
    """The nickname of the loader libvips would use for ``source`` (e.g. ``jpegload``), or
    None when no loader knows the content. Only the first bytes are read."""
    pointer = vips_lib.vips_foreign_find_load_source(source.pointer)
    if pointer == ffi.NULL:
        vips_lib.vips_error_clear()  # or the next error would carry this one's text
        return None
    nickname = pyvips.nickname_find(pyvips.type_from_name(ffi.string(pointer).decode()))
    return nickname.removesuffix("_source")


def allowed(source: pyvips.Source) -> str | None:
    """The allowed loader for ``source``, None when no loader knows it; raises
    :class:`Refused` for a format outside :data:`LOADERS`."""
    loader = sniff(source)
    if loader is not None and loader not in LOADERS:
        raise Refused(loader)
    return loader


def load(loader: str, source: pyvips.Source, **options: Any) -> pyvips.Image:
    """Run the allowed ``loader`` on ``source`` by name (no second sniffing)."""
    assert loader in LOADERS, loader
    image = pyvips.Operation.call(f"{loader}_source", source, **options)
    image._references.append(source)  # a custom source calls back into Python until closed
    return image
