"""The formats pixelmill reads and writes, with the library behind each and whether it streams,
as ``pixelmill formats`` prints them (and the README's table)."""

from __future__ import annotations

from typing import Any

from pixelmill.codecs.budget import WHOLE_IMAGE_BYTES
from pixelmill.codecs.fallback import FORMATS as PILLOW_READS
from pixelmill.codecs.save import encoder_available
from pixelmill.pipeline.formats import FORMATS, READ_ONLY

NAMES = {"jpeg": "JPEG", "png": "PNG", "webp": "WebP", "avif": "AVIF", "heic": "HEIC/HEIF",
         "tiff": "TIFF", "gif": "GIF", "jxl": "JPEG XL", "bmp": "BMP", "ico": "ICO", "cur": "CUR",
         "tga": "TGA", "pnm": "PPM/PGM/PBM", "psd": "PSD (flattened composite)", "sgi": "SGI",
         "pcx": "PCX", "jp2": "JPEG 2000"}  # fmt: skip
LIBVIPS_LOADERS = {"jpeg": "jpegload", "png": "pngload", "webp": "webpload", "avif": "heifload",
                   "tiff": "tiffload", "gif": "gifload"}  # fmt: skip
READ_NOTES = {
    "jpeg": "progressive files are decoded whole", "png": "interlaced files are decoded whole",
    "avif": "decoded whole (libheif)", "heic": "HEVC through pillow-heif (libheif, libde265)",
    "jxl": "pillow-jxl-plugin (libjxl)", "psd": "the composite image, not the layers",
}  # fmt: skip
WRITE_NOTES = {
    "heic": "needs an HEVC encoder; the one pillow-heif bundles (x265) is GPL, so pixelmill does "
            "not use it",
    "jxl": "through Pillow: the output is encoded whole",
}  # fmt: skip


def formats() -> list[dict[str, Any]]:
    """Every format: its name, file suffixes, which library reads and writes it, whether
    reading streams, and what it holds."""
    rows = []
    for name in (*FORMATS, *READ_ONLY):
        spec = FORMATS.get(name)
        loader = LIBVIPS_LOADERS.get(name)
        reader = "libvips" if loader else "Pillow" if name in PILLOW_READS.values() else None
        writes = spec is not None and encoder_available(name)
        rows.append({
            "format": name, "name": NAMES[name],
            "extensions": list(spec.extensions if spec else READ_ONLY[name]),
            "read": reader,
            "streams": loader is not None and loader not in WHOLE_IMAGE_BYTES
                       and name not in ("avif",),
            "write": ("Pillow" if spec.saver == "pillow" else "libvips") if writes else None,
            "alpha": bool(spec and spec.alpha) if writes else None,
            "depths": list(spec.depths) if writes else None,
            "notes": "; ".join(n for n in (READ_NOTES.get(name), WRITE_NOTES.get(name)) if n),
        })  # fmt: skip
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    """The table of :func:`formats`, as the README shows it."""
    lines = ["| format | suffixes | read | streams | write | notes |", "|---|---|---|---|---|---|"]
    for row in rows:
        write = (f"{row['write']} ({'/'.join(map(str, row['depths']))}-bit"
                 f"{', alpha' if row['alpha'] else ''})" if row["write"] else "—")  # fmt: skip
        lines.append(f"| {row['name']} | {' '.join(row['extensions'])} | {row['read'] or '—'} | "
                     f"{'yes' if row['streams'] else 'no'} | {write} | {row['notes']} |")
    return "\n".join(lines)
