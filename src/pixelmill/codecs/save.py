"""Encoding: what each format can hold, the saver options an ``encode`` step asks for, and the
write that pulls pixels through the graph.

JPEG XL is written through Pillow (pillow-jxl-plugin, libjxl): this libvips build has no JPEG XL
saver. That encoder takes the whole image at once, so a JPEG XL output does not stream; its
memory is the output's pixels (bounded by ``max_output_pixels`` and the memory budget)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import pyvips

from pixelmill.codecs.colour import colour_bands, to_depth, to_srgb
from pixelmill.errors import PipelineError
from pixelmill.pipeline import Step
from pixelmill.pipeline.formats import FORMATS, TIFF_COMPRESSIONS, Format

BITS = {"uchar": 8, "char": 8, "ushort": 16, "short": 16, "uint": 32, "int": 32,
        "float": 32, "double": 64, "complex": 64, "dpcomplex": 128}  # fmt: skip
OPTIMIZE_CODING_UP_TO = 16_000_000
"""Pixels up to which JPEG Huffman tables are optimised: libjpeg then keeps every DCT coefficient
of the image in memory (about 6 bytes a pixel), which would break streaming on large outputs."""
BIGTIFF_FROM = 3_500_000_000
"""Uncompressed bytes above which TIFF output switches to 64-bit offsets by default."""
EIGHT_BIT_TIFF = ("jpeg", "webp")
"""TIFF compressions that take 8-bit samples only (webp also RGB only)."""

Progress = Callable[[float], None]


@functools.cache
def encoder_available(fmt: str) -> bool:
    """Whether this build can write the format (HEVC is often left out for patents)."""
    probe = pyvips.Image.black(16, 16, bands=3).copy(interpretation="srgb")
    try:
        write_buffer(probe, FORMATS[fmt], _codec(fmt))
    except (pyvips.Error, ImportError):
        return False
    return True


def _codec(fmt: str) -> dict[str, Any]:
    return {"compression": "av1" if fmt == "avif" else "hevc"} if fmt in ("avif", "heic") else {}


def prepare(
    image: pyvips.Image, fmt: Format, encode: Step | None, *, strip: bool = False
) -> tuple[pyvips.Image, dict]:
    """The image converted to what the format holds, and the saver's options; with ``strip``
    the saver writes no metadata but the ICC profile (savers otherwise add a minimal EXIF).

    Alpha, 16-bit samples and ICC profiles are kept where the format can hold them; alpha where
    it cannot is an error (say ``flatten``), since silently dropping it changes the picture.
    """
    if not encoder_available(fmt.name):
        raise PipelineError(f"encode: {fmt.name} encoding is not available in this build; "
                            f"use {', '.join(f for f in FORMATS if encoder_available(f))}")
    args = dict(encode.args) if encode else {}
    if image.hasalpha() and not fmt.alpha:
        raise PipelineError(
            f"encode: {fmt.name} cannot hold an alpha channel; add a flatten step "
            f"(e.g. flatten:white) or encode to "
            f"{', '.join(f for f, spec in FORMATS.items() if spec.alpha and encoder_available(f))}"
        )
    depth = args.get("bitdepth") or _default_depth(image, fmt)
    compression = args.get("compression") or TIFF_COMPRESSIONS[0]
    if fmt.name == "tiff" and compression in EIGHT_BIT_TIFF:
        if depth != 8 and args.get("bitdepth"):
            raise PipelineError(f"encode: tiff with {compression} compression holds 8 bits only")
        depth = 8
        if compression == "webp" and colour_bands(image) == 1:
            image = image.colourspace("srgb")
    image = to_depth(image, depth)
    if fmt.name == "gif":
        image = to_srgb(image)
    options = _options(fmt, args, image, depth)
    if strip:
        options["keep"] = "icc" if "icc-profile-data" in image.get_fields() else "none"
    return image, options


def _default_depth(image: pyvips.Image, fmt: Format) -> int:
    bits = BITS[image.format]
    return bits if bits in fmt.depths else fmt.depths[0]


def _options(fmt: Format, args: dict[str, Any], image: pyvips.Image, depth: int) -> dict:
    quality = args.get("q") or fmt.quality
    effort = args.get("effort")
    lossless = bool(args.get("lossless"))
    name = fmt.name
    if name == "jpeg":
        return {"Q": quality, "optimize_coding": image.width * image.height <= OPTIMIZE_CODING_UP_TO}
    if name == "png":
        return {"compression": 6 if effort is None else effort, "bitdepth": depth}
    if name == "webp":
        return {"Q": quality, "lossless": lossless, "effort": 4 if effort is None else effort}
    if name in ("avif", "heic"):
        options = {**_codec(name), "Q": quality, "lossless": lossless, "bitdepth": depth}
        return options | {"effort": 4 if effort is None else effort}
    if name == "tiff":
        return _tiff_options(args, image)
    if name == "jxl":
        return {"quality": 100 if lossless else quality, "lossless": lossless,
                "effort": 7 if effort is None else effort}  # fmt: skip
    return {"effort": 7 if effort is None else effort}  # gif


def _tiff_options(args: dict[str, Any], image: pyvips.Image) -> dict:
    compression = args.get("compression") or TIFF_COMPRESSIONS[0]
    options: dict[str, Any] = {"compression": compression}
    if compression in EIGHT_BIT_TIFF:
        options["Q"] = args.get("q") or 85
    elif compression in ("deflate", "lzw"):
        options["predictor"] = "horizontal"
    if args.get("tile") or args.get("pyramid"):
        options.update(tile=True, tile_width=256, tile_height=256)
    if args.get("pyramid"):
        options["pyramid"] = True
    bigtiff = args.get("bigtiff")
    if bigtiff is None:
        size = image.width * image.height * image.bands * BITS[image.format] // 8
        bigtiff = size * (1.34 if args.get("pyramid") else 1) > BIGTIFF_FROM
    options["bigtiff"] = bigtiff
    return options


def write_buffer(image: pyvips.Image, fmt: Format, options: dict) -> bytes:
    """Run the lazy graph into memory (small outputs, such as on-demand images)."""
    if fmt.saver == "pillow":
        return _pillow_encode(image, fmt, options)
    return getattr(image, fmt.saver + "_buffer")(**options)


def _pillow_encode(image: pyvips.Image, fmt: Format, options: dict) -> bytes:
    """Encode through Pillow (JPEG XL): the whole image at once."""
    import io

    import pillow_jxl  # noqa: F401  (registers JXL with Pillow)
    from PIL import Image

    keep = options.get("keep", "all")
    fields = image.get_fields()
    icc = image.get("icc-profile-data") if "icc-profile-data" in fields and keep != "none" else None
    picture = Image.fromarray(image.numpy())
    out = io.BytesIO()
    picture.save(out, format="JXL", icc_profile=icc, exif=b"" if keep != "all" else None,
                 **{k: v for k, v in options.items() if k != "keep"})  # fmt: skip
    return out.getvalue()


def write(
    image: pyvips.Image, fmt: Format, options: dict, path: str, progress: Progress | None = None
) -> None:
    """Run the lazy graph into ``path``, reporting the percentage done (libvips errors are left
    for the caller to classify)."""
    if fmt.saver == "pillow":
        with open(path, "wb") as out:
            out.write(_pillow_encode(image, fmt, options))
        if progress is not None:
            progress(100.0)
        return
    if progress is not None:
        image = image.copy()
        image.set_progress(True)
        image.signal_connect("eval", lambda img, state: progress(state.percent))
    getattr(image, fmt.saver)(path, **options)
    if progress is not None:
        progress(100.0)
