"""``scale``: resize by a factor (below 1 shrinks, above 1 enlarges)."""

from __future__ import annotations

import pyvips

from pixelmill.config import Settings
from pixelmill.engine.context import Context
from pixelmill.engine.imaging import Size, premultiplied, rescale, scaled
from pixelmill.engine.step import Op
from pixelmill.pipeline import Step
from pixelmill.pipeline.kinds import Float
from pixelmill.pipeline.params import kernel
from pixelmill.pipeline.spec import REQUIRED, Param, declare


def apply(image: pyvips.Image, step: Step, ctx: Context) -> pyvips.Image:
    factor = step["factor"]
    return premultiplied(image, lambda i: rescale(i, factor, factor, step["kernel"]))


def size(step: Step, w: int, h: int, settings: Settings) -> Size:
    return scaled(w, h, step["factor"], step["factor"])


OP = Op(declare("scale", "resize by a factor, e.g. scale:2 (below 1 shrinks, above 1 enlarges)",
                Param("factor", Float(0.0001, 1000.0), "scale factor", REQUIRED), kernel),
        apply, size=size)  # fmt: skip
