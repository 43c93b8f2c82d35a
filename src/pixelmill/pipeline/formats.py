"""Output formats the grammar can name, and what each can hold.

Pure data shared by the grammar (to validate ``encode`` arguments when a pipeline is parsed) and
by the codecs (to choose savers and conversions).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Format:
    name: str
    extensions: tuple[str, ...]
    """File name suffixes, the first one canonical."""
    saver: str
    """The libvips save operation, or ``pillow`` for a format written through Pillow."""
    alpha: bool
    """Whether it can hold an alpha channel."""
    depths: tuple[int, ...]
    """Bit depths per sample it can hold, the first one the default for 8-bit input."""
    quality: int | None
    """Default quality (1–100), or None where quality does not apply."""
    effort: tuple[int, int] | None
    """Range of the encoder's effort (speed/size trade-off), or None."""
    lossless: bool
    """Whether ``lossless=true`` is available (formats always lossless say False)."""


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("jpeg", (".jpg", ".jpeg", ".jpe"), "jpegsave", False, (8,), 85, None, False),
        Format("png", (".png",), "pngsave", True, (8, 16), None, (0, 9), False),
        Format("webp", (".webp",), "webpsave", True, (8,), 80, (0, 6), True),
        Format("avif", (".avif",), "heifsave", True, (8, 10, 12), 60, (0, 9), True),
        Format("heic", (".heic", ".heif"), "heifsave", True, (8, 10, 12), 60, (0, 9), True),
        Format("tiff", (".tif", ".tiff"), "tiffsave", True, (8, 16), None, None, False),
        Format("gif", (".gif",), "gifsave", True, (8,), None, (1, 10), False),
        Format("jxl", (".jxl",), "pillow", True, (8,), 75, (1, 9), True),
    )
}
FORMAT_ALIASES = {"jpg": "jpeg", "tif": "tiff", "heif": "heic"}
AUTO = "auto"
"""``encode:auto``: the format is chosen for each request (see :func:`negotiate`)."""
TIFF_COMPRESSIONS = ("deflate", "none", "lzw", "packbits", "jpeg", "webp")
"""TIFF compressions, the first the default; jpeg and webp take ``q``."""

READ_ONLY = {"bmp": (".bmp", ".dib"), "ico": (".ico",), "cur": (".cur",), "tga": (".tga",),
             "pnm": (".ppm", ".pgm", ".pbm", ".pnm"), "psd": (".psd",),
             "sgi": (".sgi", ".rgb", ".bw"), "pcx": (".pcx",), "jp2": (".jp2", ".j2k", ".jpx")}  # fmt: skip
"""Formats pixelmill reads but does not write (see pixelmill.codecs.fallback), with their file
suffixes."""
READ_EXTENSIONS = frozenset((*(ext for f in FORMATS.values() for ext in f.extensions),
                             *(ext for suffixes in READ_ONLY.values() for ext in suffixes)))  # fmt: skip
"""Suffixes of the files a directory run picks up."""


def accepted(accept: str) -> set[str]:
    """The media types an ``Accept`` header takes (weight above zero; wildcards as written)."""
    taken = set()
    for item in accept.lower().split(","):
        media, *params = item.split(";")
        weights = [p.partition("=")[2] for p in params if p.partition("=")[0].strip() == "q"]
        try:
            weight = float(weights[0]) if weights else 1.0
        except ValueError:
            weight = 0.0
        if weight > 0:
            taken.add(media.strip())
    return taken


def negotiate(accept: str, source: str) -> Format:
    """The format ``encode:auto`` stands for: JPEG XL, else AVIF, else WebP, when the ``Accept``
    header names it (wildcards do not count); else JPEG, or PNG when the source's format may
    hold an alpha channel."""
    taken = accepted(accept)
    for name in ("jxl", "avif", "webp"):
        if f"image/{name}" in taken:
            return FORMATS[name]
    named = format_for_path(source)
    return FORMATS["png" if named is not None and named.alpha else "jpeg"]


def format_for_path(path: str) -> Format | None:
    """The format a destination's suffix names, if any."""
    lowered = path.lower()
    return next(
        (f for f in FORMATS.values() for ext in f.extensions if lowered.endswith(ext)), None
    )
