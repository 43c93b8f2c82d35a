"""Naming what a file is from its first bytes, for the error when no decoder accepts it."""

from __future__ import annotations

from pixelmill.pipeline.formats import FORMATS, READ_ONLY

SIGNATURES: tuple[tuple[bytes, int, str, bool], ...] = (
    # (magic, offset, name, readable by pixelmill)
    (b"\xff\xd8\xff", 0, "JPEG", True),
    (b"\x89PNG\r\n\x1a\n", 0, "PNG", True),
    (b"GIF8", 0, "GIF", True),
    (b"WEBP", 8, "WebP", True),
    (b"II*\x00", 0, "TIFF", True),
    (b"MM\x00*", 0, "TIFF", True),
    (b"II+\x00", 0, "BigTIFF", True),
    (b"MM\x00+", 0, "BigTIFF", True),
    (b"ftypavif", 4, "AVIF", True),
    (b"ftypheic", 4, "HEIC", True),
    (b"ftypmif1", 4, "HEIF", True),
    (b"BM", 0, "BMP", True),
    (b"%PDF", 0, "PDF", False),
    (b"8BPS", 0, "Photoshop (PSD)", True),
    (b"\xff\x0a", 0, "JPEG XL", True),
    (b"\x00\x00\x00\x0cJXL ", 0, "JPEG XL", True),
    (b"\x00\x00\x00\x0cjP  ", 0, "JPEG 2000", True),
    (b"\xffO\xffQ", 0, "JPEG 2000", True),
    (b"\x00\x00\x01\x00", 0, "ICO", True),
    (b"\x00\x00\x02\x00", 0, "CUR", True),
    (b"\x01\xda", 0, "SGI", True),
    (b"PK\x03\x04", 0, "ZIP archive", False),
    (b"\x1f\x8b", 0, "gzip archive", False),
)
SUPPORTED = ", ".join((*FORMATS, *READ_ONLY))


def identify(head: bytes) -> tuple[str, bool] | None:
    """The format named by a file's first bytes and whether pixelmill reads it, if known."""
    for magic, offset, name, readable in SIGNATURES:
        if head[offset : offset + len(magic)] == magic:
            return name, readable
    return None


def declared_size(head: bytes) -> tuple[int, int] | None:
    """The size a GIF's header declares (its logical screen), which decoders may replace by
    the first frame's: a 0×0 GIF comes out as one pixel."""
    if head.startswith(b"GIF8") and len(head) >= 10:
        return int.from_bytes(head[6:8], "little"), int.from_bytes(head[8:10], "little")
    return None


def looks_like_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(c.isprintable() or c in "\r\n\t" for c in text)


def explain_unreadable(name: str, head: bytes) -> str:
    """Why a file that no decoder accepted cannot be read, in one phrase."""
    known = identify(head)
    if known and known[1]:
        return f"{known[0]} data is corrupt or truncated"
    if known:
        return f"{known[0]} files are not supported (supported: {SUPPORTED})"
    suffix = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    named = f"named .{suffix} but " if suffix else ""
    if looks_like_text(head):
        return f"{named}it is a text file, not an image"
    return f"{named}its content is not a recognised image format (supported: {SUPPORTED})"
