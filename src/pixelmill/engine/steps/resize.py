"""``resize``: fit inside a box, fill it and crop, or force both sides; never enlarges unless
asked."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pyvips

from pixelmill.codecs import Source
from pixelmill.config import Settings
from pixelmill.engine.context import Context
from pixelmill.engine.imaging import SMART, Size, face_finder, place, premultiplied, rescale, scaled
from pixelmill.engine.step import Op
from pixelmill.pipeline import Step
from pixelmill.pipeline.kinds import Bool, Choice
from pixelmill.pipeline.params import gravity, kernel, side
from pixelmill.pipeline.spec import REQUIRED, Param, declare


def fill_gravity(args: Mapping[str, Any]) -> str | None:
    """Gravity applies to mode fill only (shared with ``thumbnail``)."""
    if args["mode"] != "fill" and args["gravity"] != "centre":
        return f"gravity applies to mode fill only, not {args['mode']}"
    return None


def _needs_a_side(args: Mapping[str, Any]) -> str | None:
    if args["width"] is None and args["height"] is None:
        return "give width, height or both"
    if args["mode"] in ("fill", "force") and None in (args["width"], args["height"]):
        return f"mode {args['mode']} needs both width and height"
    return fill_gravity(args)


def _scales(step: Step, w: int, h: int) -> tuple[float, float]:
    width, height, mode = step["width"], step["height"], step["mode"]
    fits = [s for s in (width and width / w, height and height / h) if s]
    if mode == "fill":
        hscale = vscale = max(fits)
    elif mode == "force" and width and height:
        hscale, vscale = width / w, height / h
    else:
        hscale = vscale = min(fits)
    if not step["upscale"]:
        hscale, vscale = min(hscale, 1.0), min(vscale, 1.0)
    return hscale, vscale


def apply(image: pyvips.Image, step: Step, ctx: Context) -> pyvips.Image:
    hscale, vscale = _scales(step, image.width, image.height)
    if (hscale, vscale) != (1.0, 1.0):
        image = premultiplied(image, lambda i: rescale(i, hscale, vscale, step["kernel"]))
    if step["mode"] == "fill":
        image = place(image, step["width"], step["height"], step["gravity"],
                      face_finder(ctx.settings, ctx.found))  # fmt: skip
    return image


def smart_fill(step: Step, source: Source) -> bool:
    """A fill placed by looking at the whole image (shared with ``thumbnail``)."""
    return step["mode"] == "fill" and step["gravity"] in SMART


def size(step: Step, w: int, h: int, settings: Settings) -> Size:
    out = scaled(w, h, *_scales(step, w, h))
    if step["mode"] == "fill":
        return min(step["width"], out[0]), min(step["height"], out[1])
    return out


OP = Op(declare(
    "resize",
    "fit inside a box, fill it and crop (gravity=), or force both sides; never enlarges "
    "unless upscale=true",
    Param("mode", Choice(("fit", "fill", "force")), "how the image meets the box", REQUIRED),
    Param("width", side, "box width in pixels (omit to follow the height)"),
    Param("height", side, "box height in pixels (omit to follow the width)"),
    kernel,
    Param("gravity", gravity, "which part fill keeps", "centre", positional=False),
    Param("upscale", Bool(), "allow enlarging", False, positional=False),
    check=_needs_a_side,
), apply, smart_fill, size)  # fmt: skip
