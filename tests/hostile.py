"""Hostile and broken inputs, made on the spot: small files that claim huge images, formats
outside the documented list, containers that lie about their sizes, and corrupt data that a
lenient decoder would turn into silent garbage."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import pyvips
from conftest import photo


def chunk(kind: bytes, body: bytes) -> bytes:
    """A PNG chunk with its length and CRC."""
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header(width: int, height: int, interlace: int = 0, idat: bytes | None = None) -> bytes:
    """A PNG of 8-bit RGB whose header claims ``width`` × ``height``, with ``idat`` (default:
    almost no data)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, interlace)
    data = idat if idat is not None else zlib.compress(b"\0" * 16)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data)
            + chunk(b"IEND", b""))  # fmt: skip


def gif_frames(screen: tuple[int, int], *frames: tuple[int, int]) -> bytes:
    """A GIF whose logical screen and frames have these sizes."""
    out = b"GIF89a" + struct.pack("<HHBBB", *screen, 0, 0, 0)
    for frame in frames:  # each: its descriptor, then LZW data holding a clear and an end code
        out += b"\x2c" + struct.pack("<HHHHB", 0, 0, *frame, 0) + b"\x02\x02\x4c\x01\x00"
    return out + b"\x3b"


def progressive_jpeg(width: int, height: int) -> bytes:
    """A progressive JPEG (under a kilobyte) whose frame header claims ``width`` × ``height``."""
    small = photo(16, 16).jpegsave_buffer(interlace=True)
    at = small.index(b"\xff\xc2")  # SOF2: marker, length, precision, height, width
    return small[: at + 5] + struct.pack(">HH", height, width) + small[at + 9 :]


def avif_claiming(width: int, height: int) -> bytes:
    """A small AVIF whose ``ispe`` box claims ``width`` × ``height``."""
    data = bytearray(photo(64, 64).heifsave_buffer(compression="av1", effort=0))
    at = data.index(b"ispe")
    data[at + 8 : at + 16] = struct.pack(">II", width, height)
    return bytes(data)


def hevc_heic() -> bytes:
    """A real HEIC photograph, compressed with HEVC (pillow-heif bundles an encoder)."""
    import io

    import numpy as np
    import pillow_heif
    from PIL import Image

    array = np.ndarray(buffer=photo(64, 48).write_to_memory(), dtype=np.uint8, shape=(48, 64, 3))
    out = io.BytesIO()
    pillow_heif.from_pillow(Image.fromarray(array)).save(out, quality=80)
    return out.getvalue()


def svg_bomb() -> bytes:
    """A 30000 × 30000 SVG with a large blur: a few hundred bytes that would take gigabytes."""
    return (b'<svg xmlns="http://www.w3.org/2000/svg" width="30000" height="30000">'
            b'<filter id="b"><feGaussianBlur stdDeviation="900"/></filter>'
            b'<rect width="30000" height="30000" filter="url(#b)" fill="red"/></svg>')  # fmt: skip


def vips_native() -> bytes:
    """libvips' own ``.v`` format."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "native.v"
        pyvips.Image.black(10, 10).write_to_file(str(path))
        return path.read_bytes()


def tiff(width: int, height: int, pixels: bytes, *, compression: int = 1,
         byte_count: int | None = None) -> bytes:
    """An 8-bit grey TIFF with its directory first and one strip of ``pixels``, which may be
    shorter than ``byte_count`` (default: their length), the size the directory declares."""
    entries = [(256, 4, width), (257, 4, height), (258, 3, 8), (259, 3, compression),
               (262, 3, 1), (273, 4, 8 + 2 + 9 * 12 + 4), (277, 3, 1), (278, 4, height),
               (279, 4, len(pixels) if byte_count is None else byte_count)]  # fmt: skip
    ifd = struct.pack("<H", len(entries))
    for tag, kind, value in entries:
        ifd += struct.pack("<HHI", tag, kind, 1)
        ifd += struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value)
    return b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0) + pixels


def grey(width: int, height: int) -> bytes:
    return photo(width, height, bands=1).write_to_memory()


def noise(width: int, height: int) -> bytes:
    """Samples that do not compress."""
    return pyvips.Image.gaussnoise(width, height, sigma=80).cast("uchar").write_to_memory()


def cut_jpeg_scan() -> bytes:
    """A JPEG whose scan data stops half way and is closed by an end marker (the grey bottom
    of a photograph uploaded in part)."""
    whole = photo(400, 300).jpegsave_buffer(Q=90)
    scan = whole.index(b"\xff\xda")
    return whole[: (scan + len(whole)) // 2] + b"\xff\xd9"


def bad_ihdr_crc() -> bytes:
    data = bytearray(photo(64, 48).pngsave_buffer())
    data[29] ^= 0xFF  # the CRC of IHDR, bytes 29-32
    return bytes(data)


def tga_claiming(width: int, height: int) -> bytes:
    """A TGA header (true colour, 24-bit) claiming a size, and a few bytes of pixels."""
    return struct.pack("<BBBHHBHHHHBB", 0, 0, 2, 0, 0, 0, 0, 0, width, height, 24, 0) + bytes(64)


def psd_claiming(width: int, height: int) -> bytes:
    """A Photoshop header (RGB, 8-bit, raw) claiming a size, with no pixels."""
    header = b"8BPS" + struct.pack(">H6xHIIHH", 1, 3, height, width, 8, 3)
    return header + struct.pack(">IIIH", 0, 0, 0, 0) + bytes(64)


def thin(width: int, height: int, suffix: str) -> bytes:
    return pyvips.Image.black(width, height).write_to_buffer(suffix)


BUILDERS: dict[str, Callable[[], bytes]] = {
    "svg-named.jpg": svg_bomb,
    "native.jpg": vips_native,
    "native-truncated.v": lambda: vips_native()[:-40],
    "gif-20000.jpg": lambda: gif_frames((20000, 20000), (20000, 20000)),
    "gif-screen-1x1.gif": lambda: gif_frames((1, 1), (20000, 20000)),
    "gif-second-frame.gif": lambda: gif_frames((10, 10), (10, 10), (20000, 20000)),
    "progressive-30000.jpg": lambda: progressive_jpeg(30000, 30000),
    "interlaced-22000.png": lambda: png_header(22000, 22000, interlace=1),
    "ispe-30000.avif": lambda: avif_claiming(30000, 30000),
    "hevc-cut.heic": lambda: hevc_heic()[:1500],
    "ppm-100000.ppm": lambda: b"P6\n100000 100000\n255\n" + bytes(64),
    "tga-65535.tga": lambda: tga_claiming(65535, 65535),
    "psd-30000.psd": lambda: psd_claiming(30000, 30000),
    "tiff-plain.tif": lambda: tiff(256, 256, grey(256, 256)),
    "tiff-half.tif": lambda: tiff(256, 256, grey(256, 256)[: 256 * 128], byte_count=256 * 256),
    "tiff-compression-60000.tif": lambda: tiff(64, 64, grey(64, 64), compression=60000),
    "tiff-short-strip.tif": lambda: tiff(64, 64, grey(64, 64)[:1000]),
    "tiff-one-strip.tif": lambda: tiff(7500, 7500, zlib.compress(noise(7500, 7500), 1),
                                       compression=8),
    "jpeg-cut-scan.jpg": cut_jpeg_scan,
    "png-bad-ihdr-crc.png": bad_ihdr_crc,
    "gif-0x0.gif": lambda: gif_frames((0, 0), (0, 0)),
    "tall-1x60000.jpg": lambda: thin(1, 60000, ".jpg"),
    "wide-500000x1.png": lambda: thin(500000, 1, ".png"),
    "tall-1x500000.png": lambda: thin(1, 500000, ".png"),
    "photo.jpg": lambda: photo(4000, 3000).jpegsave_buffer(Q=90),
}


def write(folder: Path) -> dict[str, Path]:
    """Every hostile input, written into ``folder``, by name."""
    folder.mkdir(parents=True, exist_ok=True)
    made = {}
    for name, build in BUILDERS.items():
        made[name] = folder / name
        made[name].write_bytes(build())
    return made
