"""``thumbnail``: a fast resize to a box; as the first step it decodes the source at a reduced
size (shrink-on-load), as libvips' thumbnail does (8-bit sRGB output). A JPEG is decoded at
the smallest DCT scale that still holds the box, as Pillow's ``draft`` picks it (see
:meth:`pixelmill.codecs.Source.thumbnail`)."""

from __future__ import annotations

from collections.abc import Callable

import pyvips

from pixelmill.codecs import Source
from pixelmill.config import Settings
from pixelmill.engine.context import Context
from pixelmill.engine.imaging import INTERESTING, Finder, Size, face_finder, place, scaled
from pixelmill.engine.step import Op
from pixelmill.engine.steps.resize import fill_gravity, smart_fill
from pixelmill.pipeline import Step
from pixelmill.pipeline.kinds import Bool, Choice
from pixelmill.pipeline.params import MAX_SIDE, gravity, side
from pixelmill.pipeline.spec import REQUIRED, Param, declare

Shrink = Callable[..., pyvips.Image]


def _thumbnail(shrink: Shrink, size: Size, step: Step, faces: Finder) -> pyvips.Image:
    """Thumbnail through ``shrink`` (libvips' thumbnail of a source, or of an image), whose
    input is ``size`` (width, height) once upright."""
    width = step["width"]
    height = step["height"] or width
    mode, where = step["mode"], step["gravity"]
    fit = "both" if step["upscale"] else "down"
    if mode == "force":
        if not step["upscale"]:
            width, height = min(width, size[0]), min(height, size[1])
        return shrink(width, height=height, size="force")
    if mode == "fit":
        return shrink(width, height=height, size=fit)
    if where in INTERESTING:
        return shrink(width, height=height, size=fit, crop=INTERESTING[where])
    w, h = size
    if width / w >= height / h:
        cover = shrink(width, height=MAX_SIDE, size=fit)
    else:
        cover = shrink(MAX_SIDE, height=height, size=fit)
    if where == "faces":
        cover = cover.copy_memory()  # read twice: to find the faces, then to cut them out
    return place(cover, width, height, where, faces)


def apply(image: pyvips.Image, step: Step, ctx: Context) -> pyvips.Image:
    return _thumbnail(image.thumbnail_image, (image.width, image.height), step,
                      face_finder(ctx.settings, ctx.found))  # fmt: skip


def on_load(source: Source, step: Step) -> pyvips.Image:
    return _thumbnail(source.thumbnail, source.upright_size, step,
                      face_finder(source.settings, []))  # fmt: skip


def size(step: Step, w: int, h: int, settings: Settings) -> Size:
    width = step["width"]
    height = step["height"] or width
    if step["mode"] == "force":
        return (width, height) if step["upscale"] else (min(width, w), min(height, h))
    fits = (width / w, height / h)
    factor = min(fits) if step["mode"] == "fit" else max(fits)
    factor = factor if step["upscale"] else min(factor, 1.0)
    out = scaled(w, h, factor, factor)
    if step["mode"] == "fill":
        return min(width, out[0]), min(height, out[1])
    return out


OP = Op(declare(
    "thumbnail",
    "fast resize to a box, decoding at reduced size (shrink-on-load) when it is the first "
    "step: a JPEG at the smallest DCT scale holding the box (8-bit sRGB output, as libvips' "
    "thumbnail)",
    Param("width", side, "box width in pixels", REQUIRED),
    Param("height", side, "box height in pixels (default: the width)"),
    Param("mode", Choice(("fit", "fill", "force")), "how the image meets the box", "fit",
          positional=False),
    Param("gravity", gravity, "which part fill keeps", "centre", positional=False),
    Param("upscale", Bool(), "allow enlarging", False, positional=False),
    check=fill_gravity,
), apply, smart_fill, size, on_load=on_load)  # fmt: skip
