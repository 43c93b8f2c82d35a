"""Formats this libvips build does not read, read through Pillow: BMP, ICO/CUR, TGA,
PPM/PGM/PBM (PNM), PSD (the flattened composite), SGI, PCX, JPEG 2000, JPEG XL (with
pillow-jxl-plugin) and HEIC compressed with HEVC (pillow-heif bundles libheif with the libde265
decoder; the libvips wheel has no HEVC decoder).

Pillow reads the header first, so the pixel limit and the memory budget are checked before
anything is decoded, as on the main path; except JPEG XL, whose plugin decodes the image when
it opens the file (its input is bounded by ``max_bytes``, its memory by the run's budget). It cannot stream: an image is then decoded whole
(:data:`COPIES` buffers of it at most), which ``pixelmill info`` says. The pixels become a
libvips image with the file's orientation, ICC profile, depth (16-bit grey stays 16-bit) and
alpha, so everything after the loader is the main path. Pillow's own decompression-bomb limit
is switched off: pixelmill's ``max_pixels`` is the one that applies.
"""

from __future__ import annotations

import functools
from typing import IO, Any

import pyvips

FORMATS = {"BMP": "bmp", "DIB": "bmp", "ICO": "ico", "CUR": "cur", "TGA": "tga", "PPM": "pnm",
           "PSD": "psd", "SGI": "sgi", "PCX": "pcx", "JPEG2000": "jp2", "JXL": "jxl",
           "HEIF": "heic"}  # fmt: skip
"""Pillow's names of the formats read here, and ours (as ``pixelmill info`` names them)."""
TARGETS = {"1": "L", "L": "L", "P": "RGB", "LA": "LA", "La": "LA", "PA": "RGBA", "RGB": "RGB",
           "RGBA": "RGBA", "RGBa": "RGBA", "RGBX": "RGB", "CMYK": "RGB", "YCbCr": "RGB",
           "LAB": "RGB", "HSV": "RGB", "I": "I;16", "I;16": "I;16", "I;16L": "I;16",
           "I;16B": "I;16", "I;16N": "I;16", "F": "I;16"}  # fmt: skip
"""The mode each of Pillow's modes is decoded to: 8-bit grey or RGB with or without alpha, or
16-bit grey."""
BANDS = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4, "I;16": 1}
COPIES = 3
"""Whole-image buffers held at once while decoding: Pillow's, the converted one, libvips'."""
ORIENTATION = 0x0112
ERRORS = (OSError, ValueError, SyntaxError, EOFError, RuntimeError)
"""What Pillow and its plugins raise on a file they cannot read."""


@functools.cache
def _pillow() -> Any:
    """Pillow with the HEIF and JPEG XL plugins registered (those installed)."""
    from PIL import Image

    try:
        import pillow_heif

        pillow_heif.register_heif_opener()
    except ImportError:
        FORMATS.pop("HEIF", None)
    try:
        import pillow_jxl  # noqa: F401  (registers JXL with Pillow)
    except ImportError:
        FORMATS.pop("JXL", None)
    Image.MAX_IMAGE_PIXELS = None
    return Image


class PillowSource:
    """An image that Pillow reads: its header at once, its pixels (whole) on demand."""

    def __init__(self, image: Any) -> None:
        self.image = image
        self.format = FORMATS[image.format]
        target = TARGETS.get(image.mode)
        if target is None:
            raise ValueError(f"pixel mode {image.mode}")
        if image.mode == "P" and "transparency" in image.info:
            target = "RGBA"
        self.mode = target

    @property
    def width(self) -> int:
        return self.image.width

    @property
    def height(self) -> int:
        return self.image.height

    @property
    def bands(self) -> int:
        return BANDS[self.mode]

    @property
    def sample_bytes(self) -> int:
        return 2 if self.mode == "I;16" else 1

    def decode_bytes(self) -> int:
        """Bytes held at once while decoding."""
        return self.width * self.height * self.bands * self.sample_bytes * COPIES

    def header(self) -> pyvips.Image:
        """A stand-in of the image's header, with its size, bands, depth and fields, whose
        pixels are never read."""
        fmt = "ushort" if self.sample_bytes == 2 else "uchar"
        return self._described(pyvips.Image.black(self.width, self.height, bands=self.bands)
                               .cast(fmt))  # fmt: skip

    def decode(self) -> pyvips.Image:
        """The whole image (Pillow's errors propagate: OSError, ValueError…)."""
        import numpy as np  # here: a run that never falls back does not pay for numpy

        image = self.image
        image.load()
        if image.mode != self.mode:
            image = image.convert(self.mode) if self.mode != "I;16" else _sixteen(image)
        pixels = np.asarray(image)
        if self.mode == "I;16":
            pixels = pixels.astype(np.uint16, copy=False)
        return self._described(pyvips.Image.new_from_array(np.ascontiguousarray(pixels)))

    def _described(self, image: pyvips.Image) -> pyvips.Image:
        grey = self.bands < 3
        space = ("grey16" if grey else "rgb16") if self.sample_bytes == 2 else (
            "b-w" if grey else "srgb")  # fmt: skip
        image = image.copy(interpretation=space)
        orientation = self.image.getexif().get(ORIENTATION)
        if isinstance(orientation, int) and 1 <= orientation <= 8:
            image.set_type(pyvips.GValue.gint_type, "orientation", orientation)
        icc = self.image.info.get("icc_profile")
        if icc:
            image.set_type(pyvips.GValue.blob_type, "icc-profile-data", bytes(icc))
        return image


def identify(handle: str | IO[bytes]) -> PillowSource | None:
    """The image of ``handle`` if Pillow reads it as one of :data:`FORMATS` (its header only),
    else None."""
    pillow = _pillow()
    if not isinstance(handle, str):
        handle.seek(0)
    try:
        return PillowSource(pillow.open(handle, formats=list(FORMATS)))
    except ERRORS:  # Pillow's (and its plugins') ways of saying "not mine" or "broken"
        return None


def _sixteen(image: Any) -> Any:
    """A 32-bit integer or float grey image as 16-bit (values clipped to 0..65535)."""
    import numpy as np
    from PIL import Image

    values = np.clip(np.asarray(image, dtype=np.float64), 0, 65535).astype(np.uint16)
    return Image.fromarray(values)
