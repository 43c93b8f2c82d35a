"""``flatten``: remove alpha by blending onto a background colour (needed before JPEG)."""

from __future__ import annotations

import pyvips

from pixelmill.codecs import colour_bands
from pixelmill.engine.context import Context
from pixelmill.engine.imaging import background, max_value
from pixelmill.engine.step import Op
from pixelmill.pipeline import Step
from pixelmill.pipeline.kinds import Colour
from pixelmill.pipeline.spec import Param, declare


def apply(image: pyvips.Image, step: Step, ctx: Context) -> pyvips.Image:
    if not image.hasalpha():
        return image
    bands = colour_bands(image)
    _, fill = background(image.extract_band(0, n=bands), step["background"])
    return image.flatten(background=fill[:bands], max_alpha=max_value(image)).cast(image.format)


OP = Op(declare("flatten", "blend alpha onto a colour (needed before JPEG)",
                Param("background", Colour(), "colour under transparent parts", "white")),
        apply)  # fmt: skip
