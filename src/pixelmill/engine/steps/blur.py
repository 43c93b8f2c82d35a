"""``blur``: Gaussian blur (alpha premultiplied, so edges do not darken)."""

from __future__ import annotations

import pyvips

from pixelmill.engine.context import Context
from pixelmill.engine.imaging import premultiplied
from pixelmill.engine.step import Op
from pixelmill.pipeline import Step
from pixelmill.pipeline.kinds import Float
from pixelmill.pipeline.spec import REQUIRED, Param, declare


def apply(image: pyvips.Image, step: Step, ctx: Context) -> pyvips.Image:
    sigma = step["sigma"]
    return premultiplied(image, lambda i: i.gaussblur(sigma)).cast(image.format)


def neighbourhood(step: Step) -> float:
    """A Gaussian's mask grows with its sigma (shared with ``sharpen``)."""
    return 1.0 + step["sigma"]


OP = Op(declare("blur", "Gaussian blur; alpha and 16 bits kept",
                Param("sigma", Float(0.01, 1000.0), "radius in pixels", REQUIRED)),
        apply, weight=neighbourhood)  # fmt: skip
