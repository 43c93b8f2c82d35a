"""Turning libvips failures into pixelmill errors: which part failed, and its informative line."""

from __future__ import annotations

from pixelmill.errors import InputError, PixelmillError, StorageError

DECODER_MARKERS = (
    "VipsJpeg: premature", "VipsJpeg: Corrupt", "VipsJpeg: Bogus", "VipsJpeg: Invalid",
    "jpegload", "vipspng: libpng read", "pngload", "spng", "webp2vips", "webpload",
    "webp: unable to parse", "heifload", "heif: Invalid input", "tiff2vips", "tiffload",
    "gifload", "VipsForeignLoad", "load error",
)  # fmt: skip
STORAGE_MARKERS = ("No space left", "Permission denied", "Input/output error", "Disk quota")
_NOISE = ("unable to call", "unable to load", "unable to write", "unable to fetch", "bad seek")


def detail(message: str) -> str:
    """The first line of a libvips error that says what went wrong."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    useful = [line for line in lines if not any(n in line for n in _NOISE)]
    return (useful or lines or ["unknown libvips error"])[0]


def classify(message: str, source: str) -> PixelmillError:
    """The pixelmill error for a libvips failure while processing ``source``."""
    line = detail(message)
    if any(marker in message for marker in STORAGE_MARKERS):
        return StorageError(f"writing failed: {line}")
    if any(marker in message for marker in DECODER_MARKERS):
        return InputError(f"{source}: image data is corrupt or truncated: {line}")
    return PixelmillError(f"{source}: libvips failed: {line}")
