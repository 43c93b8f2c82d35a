"""``modulate``: brightness, saturation and hue, as image services adjust them (imgproxy's
``adjust``, Thumbor's ``brightness`` and ``saturation`` filters), in LCh so that they do not
shift one another; alpha and 16 bits kept."""

from __future__ import annotations

import pyvips

from pixelmill.codecs import colour_bands
from pixelmill.engine.context import Context
from pixelmill.engine.step import Op
from pixelmill.pipeline import Step
from pixelmill.pipeline.kinds import Float
from pixelmill.pipeline.spec import Param, declare


def apply(image: pyvips.Image, step: Step, ctx: Context) -> pyvips.Image:
    factors = (step["brightness"], step["saturation"], step["hue"])
    if factors == (1.0, 1.0, 0.0):
        return image
    bands = colour_bands(image)
    lch = image.extract_band(0, n=bands).colourspace("lch")
    changed = lch * [factors[0], factors[1], 1] + [0, 0, factors[2]]
    out = changed.colourspace(image.interpretation).cast(image.format)
    if image.bands > bands:
        out = out.bandjoin(image.extract_band(bands, n=image.bands - bands))
    return out.copy(interpretation=image.interpretation)


OP = Op(declare(
    "modulate",
    "brightness, saturation (factors, 1: unchanged) and hue (degrees); alpha and 16 bits kept",
    Param("brightness", Float(0.0, 10.0), "lightness factor", 1.0),
    Param("saturation", Float(0.0, 10.0), "chroma factor (0: grey)", 1.0),
    Param("hue", Float(-360.0, 360.0), "hue rotation in degrees", 0.0),
), apply)  # fmt: skip
