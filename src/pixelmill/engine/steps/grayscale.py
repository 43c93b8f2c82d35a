"""``grayscale``: convert to grey, keeping alpha and bit depth."""

from __future__ import annotations

import pyvips

from pixelmill.codecs import colour_bands, to_srgb
from pixelmill.engine.context import Context
from pixelmill.engine.step import Op
from pixelmill.pipeline import Step
from pixelmill.pipeline.spec import declare


def apply(image: pyvips.Image, step: Step, ctx: Context) -> pyvips.Image:
    if colour_bands(image) == 1:
        return image
    return to_srgb(image).colourspace("grey16" if image.format == "ushort" else "b-w")


OP = Op(declare("grayscale", "convert to grey, keeping alpha and bit depth"), apply)
