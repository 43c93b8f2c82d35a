"""``rotate``: clockwise by degrees; multiples of 90 are exact, other angles enlarge the
canvas."""

from __future__ import annotations

import math

import pyvips

from pixelmill.codecs import Source
from pixelmill.config import Settings
from pixelmill.engine.context import Context
from pixelmill.engine.imaging import Size, background, premultiplied
from pixelmill.engine.step import Op
from pixelmill.pipeline import Step
from pixelmill.pipeline.kinds import Float
from pixelmill.pipeline.params import background as background_param
from pixelmill.pipeline.spec import REQUIRED, Param, declare


def apply(image: pyvips.Image, step: Step, ctx: Context) -> pyvips.Image:
    angle = step["angle"] % 360
    if angle == 0:
        return image
    if angle in (90, 180, 270):
        return image.rot(f"d{int(angle)}")
    image, fill = background(image, step["background"])
    return premultiplied(image, lambda i: i.rotate(angle, background=fill))


def random_access(step: Step, source: Source) -> bool:
    return step["angle"] % 360 != 0


def size(step: Step, w: int, h: int, settings: Settings) -> Size:
    angle = step["angle"] % 360
    if angle in (0, 180):
        return w, h
    if angle in (90, 270):
        return h, w
    across, down = abs(math.cos(math.radians(angle))), abs(math.sin(math.radians(angle)))
    return math.ceil(w * across + h * down) + 1, math.ceil(w * down + h * across) + 1


def weight(step: Step) -> float:
    return 1.0 if step["angle"] % 90 == 0 else 4.0  # interpolated


OP = Op(declare(
    "rotate",
    "rotate clockwise by degrees; multiples of 90 are exact, other angles enlarge the canvas "
    "(background=)",
    Param("angle", Float(-360.0, 360.0), "degrees clockwise", REQUIRED),
    background_param,
), apply, random_access, size, weight)  # fmt: skip
