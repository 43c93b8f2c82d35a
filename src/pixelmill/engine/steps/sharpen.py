"""``sharpen``: unsharp mask on lightness."""

from __future__ import annotations

import pyvips

from pixelmill.engine.context import Context
from pixelmill.engine.step import Op
from pixelmill.engine.steps.blur import neighbourhood
from pixelmill.pipeline import Step
from pixelmill.pipeline.kinds import Float
from pixelmill.pipeline.spec import Param, declare


def apply(image: pyvips.Image, step: Step, ctx: Context) -> pyvips.Image:
    return image.sharpen(sigma=step["sigma"], m2=step["amount"])


OP = Op(declare(
    "sharpen",
    "unsharp mask on lightness",
    Param("sigma", Float(0.1, 100.0), "radius of the mask in pixels", 0.5),
    Param("amount", Float(0.0, 100.0), "strength on edges", 3.0, positional=False),
), apply, weight=neighbourhood)  # fmt: skip
