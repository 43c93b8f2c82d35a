"""``redact``: make what a detector finds unrecognisable (``redact:faces`` for faces), before
anything is encoded. ``pixelate`` replaces each box by blocks of its average colours,
``blur`` does the same with finer blocks and then smooths them (so nothing a deblurring could
undo survives: the detail is averaged away first), ``fill`` paints the box over. It works on
8- and 16-bit images and keeps alpha as it is.

Nothing unredacted is written anywhere: a pipeline with ``redact`` decodes its source into
memory rather than a temporary file, and a model step before it keeps its output in memory
instead of spooling it (see :attr:`pixelmill.engine.step.Op.private`).
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

import pyvips

from pixelmill.codecs import colour_bands
from pixelmill.engine.context import Context
from pixelmill.engine.step import Op, whole
from pixelmill.pipeline import Step
from pixelmill.pipeline.kinds import Choice, Float, Name
from pixelmill.pipeline.params import classes, threshold
from pixelmill.pipeline.spec import REQUIRED, Param, declare

if TYPE_CHECKING:
    from pixelmill.models.detect import Detection

BLOCKS = {"pixelate": 8, "blur": 6}
"""Blocks across the longer side of a box."""


def apply(image: pyvips.Image, step: Step, ctx: Context) -> pyvips.Image:
    began = time.monotonic()
    boxes = _found(image, step, ctx)
    for d in boxes:
        image = _hide(image, d, step["mode"], step["margin"])
    ctx.notes.append(f"redact {step['model']}: {len(boxes)} box(es) {step['mode']} in "
                     f"{time.monotonic() - began:.2f} s")  # fmt: skip
    return image


def _found(image: pyvips.Image, step: Step, ctx: Context) -> list[Detection]:
    """What the detector finds in ``image`` (what a ``detect`` step before found in it, when
    it ran the same model there)."""
    from pixelmill.engine.detection import Found, find
    from pixelmill.models.detect import detector_for

    labels = step["classes"] or ()
    for looked_at, found in ctx.found:
        if looked_at is image and found.model == step["model"] and step["threshold"] is None:
            return [d for d in found.detections if not labels or d.label in labels]
    detector = detector_for(step["model"], ctx.settings)
    found = find(image, detector, step["threshold"], labels)
    ctx.found.append((image, Found(step["model"], image.width, image.height, tuple(found))))
    return found


def _hide(image: pyvips.Image, d: Detection, mode: str, margin: float) -> pyvips.Image:
    x0, y0, x1, y1 = d.box
    grow_x, grow_y = (x1 - x0) * margin, (y1 - y0) * margin
    left, top = max(0, math.floor(x0 - grow_x)), max(0, math.floor(y0 - grow_y))
    right = min(image.width, math.ceil(x1 + grow_x))
    bottom = min(image.height, math.ceil(y1 + grow_y))
    if right <= left or bottom <= top:
        return image
    region = image.crop(left, top, right - left, bottom - top)
    bands = colour_bands(image)
    colour = region[0:bands] if region.bands > bands else region
    if mode == "fill":
        hidden = (colour * 0).cast(image.format)
    else:
        block = max(2, math.ceil(max(colour.width, colour.height) / BLOCKS[mode]))
        coarse = colour.shrink(block, block)  # averages: the detail is gone from here on
        hidden = coarse.zoom(block, block).crop(0, 0, min(colour.width, coarse.width * block),
                                                min(colour.height, coarse.height * block))
        hidden = hidden.embed(0, 0, colour.width, colour.height, extend="copy")
        if mode == "blur":
            hidden = hidden.gaussblur(block / 2, precision="float")
        hidden = hidden.cast(image.format)
    if region.bands > bands:
        hidden = hidden.bandjoin(region[bands:])
    hidden = hidden.copy(interpretation=image.interpretation)
    return image.insert(hidden, left, top)


OP = Op(declare(
    "redact",
    "make what a detector finds unrecognisable, e.g. redact:faces (mode=blur, pixelate or "
    "fill; margin= around each box); nothing unredacted is written, spools included",
    Param("model", Name(), "detector model whose finds are hidden (faces is bundled)", REQUIRED),
    Param("mode", Choice(tuple(BLOCKS) + ("fill",)), "how a box is hidden", "blur",
          positional=False),
    Param("margin", Float(0.0, 2.0), "added around each box, as a fraction of its side",
          0.15, positional=False),
    threshold,
    classes,
), apply, whole, weight=lambda step: 30.0, models=lambda step: (step["model"],),
    private=True)  # fmt: skip
