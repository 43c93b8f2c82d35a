"""``strip``: drop metadata (EXIF, XMP, IPTC, comments), keeping the ICC profile or converting
to sRGB and dropping it; the output is then written without metadata."""

from __future__ import annotations

import pyvips

from pixelmill.codecs import to_srgb, without_fields
from pixelmill.engine.context import Context
from pixelmill.engine.step import Op
from pixelmill.pipeline import Step
from pixelmill.pipeline.kinds import Choice
from pixelmill.pipeline.spec import Param, declare

METADATA_PREFIXES = (
    "exif-", "xmp-", "iptc-", "png-comment-", "gif-comment", "jpeg-comment", "orientation",
)  # fmt: skip


def apply(image: pyvips.Image, step: Step, ctx: Context) -> pyvips.Image:
    ctx.strip = True  # and the encoder adds none of its own
    if step["icc"] == "srgb":
        image = to_srgb(image)
    fields = image.get_fields()
    return without_fields(image, [f for f in fields if f.startswith(METADATA_PREFIXES)])


OP = Op(declare(
    "strip",
    "drop EXIF/XMP/IPTC/comments; keep the ICC profile or convert to sRGB and drop it",
    Param("icc", Choice(("keep", "srgb")), "keep the profile, or convert to sRGB and drop it",
          "keep"),
), apply)  # fmt: skip
