"""``crop``: cut out a box placed by gravity (smart: the most interesting part) or at x, y."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pyvips

from pixelmill.codecs import Source
from pixelmill.config import Settings
from pixelmill.engine.context import Context
from pixelmill.engine.imaging import SMART, Size, face_finder, place
from pixelmill.engine.step import Op
from pixelmill.errors import PipelineError
from pixelmill.pipeline import Step
from pixelmill.pipeline.kinds import Int
from pixelmill.pipeline.params import MAX_SIDE, gravity, side
from pixelmill.pipeline.spec import REQUIRED, Param, declare


def _box_or_gravity(args: Mapping[str, Any]) -> str | None:
    if (args["x"] is None) != (args["y"] is None):
        return "give both x and y for a box, or neither to place by gravity"
    if args["x"] is not None and args["gravity"] is not None:
        return "give either x and y or a gravity, not both"
    return None


def apply(image: pyvips.Image, step: Step, ctx: Context) -> pyvips.Image:
    if step["x"] is None:
        return place(image, step["width"], step["height"], step["gravity"] or "centre",
                     face_finder(ctx.settings, ctx.found))  # fmt: skip
    x, y = step["x"], step["y"]
    if x >= image.width or y >= image.height:
        raise PipelineError(
            f"crop: the box at x={x}, y={y} lies outside the {image.width}×{image.height} image"
        )
    width, height = min(step["width"], image.width - x), min(step["height"], image.height - y)
    return image.crop(x, y, width, height)


def random_access(step: Step, source: Source) -> bool:
    return step["x"] is None and step["gravity"] in SMART  # None (the default) is centre


def size(step: Step, w: int, h: int, settings: Settings) -> Size:
    x, y = step["x"] or 0, step["y"] or 0
    return max(1, min(step["width"], w - x)), max(1, min(step["height"], h - y))


OP = Op(declare(
    "crop",
    "cut out width × height, placed by gravity (centre, north…, smart: the most interesting "
    "part, entropy, faces: every face in frame) or at x=, y=",
    Param("width", side, "width in pixels (clipped to the image)", REQUIRED),
    Param("height", side, "height in pixels (clipped to the image)", REQUIRED),
    Param("gravity", gravity, "where the box sits (default centre)"),
    Param("x", Int(0, MAX_SIDE), "left edge of a box", positional=False),
    Param("y", Int(0, MAX_SIDE), "top edge of a box", positional=False),
    check=_box_or_gravity,
), apply, random_access, size)  # fmt: skip
