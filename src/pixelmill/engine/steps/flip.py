"""``flip``: mirror horizontally (left-right) or vertically (top-bottom)."""

from __future__ import annotations

import pyvips

from pixelmill.codecs import Source
from pixelmill.engine.context import Context
from pixelmill.engine.step import Op
from pixelmill.pipeline import Step
from pixelmill.pipeline.kinds import Choice
from pixelmill.pipeline.spec import Param, declare


def apply(image: pyvips.Image, step: Step, ctx: Context) -> pyvips.Image:
    return image.flip(step["direction"])


def random_access(step: Step, source: Source) -> bool:
    return step["direction"] == "vertical"


OP = Op(declare(
    "flip",
    "mirror horizontally (left-right) or vertically (top-bottom); alpha and 16 bits kept",
    Param("direction", Choice(("horizontal", "vertical"), {"h": "horizontal", "v": "vertical"}),
          "which way", "horizontal"),
), apply, random_access)  # fmt: skip
