"""``pad``: add borders, in CSS order."""

from __future__ import annotations

import pyvips

from pixelmill.config import Settings
from pixelmill.engine.context import Context
from pixelmill.engine.imaging import Size, background
from pixelmill.engine.step import Op
from pixelmill.pipeline import Step
from pixelmill.pipeline.kinds import Int
from pixelmill.pipeline.params import MAX_SIDE
from pixelmill.pipeline.params import background as background_param
from pixelmill.pipeline.spec import REQUIRED, Param, declare


def _sides(step: Step) -> tuple[int, int, int, int]:
    """Top, right, bottom and left, the omitted ones filled in CSS's way."""
    top = step["top"]
    right = top if step["right"] is None else step["right"]
    bottom = top if step["bottom"] is None else step["bottom"]
    left = right if step["left"] is None else step["left"]
    return top, right, bottom, left


def apply(image: pyvips.Image, step: Step, ctx: Context) -> pyvips.Image:
    top, right, bottom, left = _sides(step)
    image, fill = background(image, step["background"])
    return image.embed(
        left, top, image.width + left + right, image.height + top + bottom,
        extend="background", background=fill,
    )  # fmt: skip


def size(step: Step, w: int, h: int, settings: Settings) -> Size:
    top, right, bottom, left = _sides(step)
    return w + left + right, h + top + bottom


OP = Op(declare(
    "pad",
    "add borders, CSS order: top, right, bottom, left (omitted sides repeat the opposite "
    "one); background= (white, or transparent with alpha)",
    Param("top", Int(0, MAX_SIDE), "pixels above", REQUIRED),
    Param("right", Int(0, MAX_SIDE), "pixels right (default: top)"),
    Param("bottom", Int(0, MAX_SIDE), "pixels below (default: top)"),
    Param("left", Int(0, MAX_SIDE), "pixels left (default: right)"),
    background_param,
), apply, size=size)  # fmt: skip
