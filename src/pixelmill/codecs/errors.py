"""Turning libvips failures into pixelmill errors: which part failed, and its informative line."""

from __future__ import annotations

from collections.abc import Sequence

from pixelmill.errors import InputError, LimitError, PixelmillError, StorageError

DECODER_MARKERS = (
    "VipsJpeg:", "jpegload", "vipspng: libpng read", "pngload", "spng", "webp2vips", "webpload",
    "webp: unable to parse", "heifload", "heif: Invalid input", "tiff2vips", "tiffload",
    "gifload", "VipsForeignLoad", "load error",
)  # fmt: skip
LIMIT_MARKERS = (
    "Security limit exceeded",  # libheif's own size limits
    "cumulated byte limit",  # libtiff's limit on one strip's or tile's memory
)  # fmt: skip
UNSUPPORTED_MARKERS = ("No decoding plugin", "Unsupported codec", "Unsupported feature",
                       "has not been built in")  # fmt: skip
"""A HEIF whose compression (HEVC, say) this libvips build cannot decode."""
STORAGE_MARKERS = ("No space left", "Permission denied", "Input/output error", "Disk quota")
_NOISE = ("unable to call", "unable to load", "unable to write", "unable to fetch", "bad seek",
          "load error", "error in tile")  # fmt: skip


def _useful(message: str) -> list[str]:
    lines = [line.strip() for line in message.splitlines()]
    return [line for line in lines if line and not any(n in line for n in _NOISE)]


def detail(message: str) -> str:
    """The first line of a libvips error that says what went wrong."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return (_useful(message) or lines or ["unknown libvips error"])[0]


def classify(message: str, source: str, *, loading: bool = False,
             warned: Sequence[str] = ()) -> PixelmillError:  # fmt: skip
    """The pixelmill error for a libvips failure while processing ``source``; while
    ``loading`` (reading a header), anything not otherwise named is the input's fault, and so
    is a failure with no message of its own after the decoder ``warned`` (as a loader stops at
    ``fail_on=warning``)."""
    line = detail(message)
    causes = [line for line in warned if _useful(line)]
    if causes and not _useful(message):
        return InputError(f"{source}: the decoder refused it (fail_on): {causes[0]}")
    if any(marker in message for marker in LIMIT_MARKERS):
        return LimitError(f"{source}: the decoder's own limit refused it: {line}")
    if any(marker in message for marker in UNSUPPORTED_MARKERS):
        return InputError(f"{source}: its compression cannot be decoded by this build: {line}")
    if any(marker in message for marker in STORAGE_MARKERS):
        return StorageError(f"{'reading' if loading else 'writing'} failed: {line}")
    if loading or any(marker in message for marker in DECODER_MARKERS):
        return InputError(f"{source}: image data is corrupt or truncated: {line}")
    return PixelmillError(f"{source}: libvips failed: {line}")
