"""``classify``: say what kind of image this is with an ONNX classifier (manifest task
``classify``), e.g. the bundled ``content-kind`` (photo, graphic, screenshot, scan). The image
goes on unchanged; the top classes go in the outcome (``classes``), the job's result and the
dataset's item, and to ``encode:auto:target=``, which codes graphics and screenshots
losslessly when that is smaller."""

from __future__ import annotations

import time

import pyvips

from pixelmill.engine.context import Context
from pixelmill.engine.step import Op, whole
from pixelmill.pipeline import Step
from pixelmill.pipeline.kinds import Int, Name
from pixelmill.pipeline.spec import REQUIRED, Param, declare


def apply(image: pyvips.Image, step: Step, ctx: Context) -> pyvips.Image:
    began = time.monotonic()
    top = classified(image, step["model"], step["top"], ctx)
    shown = ", ".join(f"{c['class']} {c['score']:.2f}" for c in top)
    ctx.notes.append(f"classify {step['model']}: {shown} in {time.monotonic() - began:.2f} s")
    return image


def classified(image: pyvips.Image, model: str, k: int, ctx: Context) -> list[dict]:
    """The ``k`` likeliest classes of ``image`` by ``model``, recorded in the run."""
    import numpy as np

    from pixelmill.engine.detection import as_rgb8
    from pixelmill.models.classify import classifier_for

    classifier = classifier_for(model, ctx.settings)
    side = classifier.side
    small = as_rgb8(image).thumbnail_image(side, height=side, size="force")
    rgb = np.frombuffer(small.write_to_memory(), np.uint8).reshape(side, side, 3)
    top = classifier.top(rgb, k)
    ctx.classes.append({"model": model, "top": top})
    return top


OP = Op(declare(
    "classify",
    "say what kind of image it is with a classifier model (content-kind is bundled: photo, "
    "graphic, screenshot, scan); the image goes on unchanged, the top classes go in the outcome",
    Param("model", Name(), "classifier model (task classify; pixelmill models list)", REQUIRED),
    Param("top", Int(1, 100), "how many of the likeliest classes are kept", 3, positional=False),
), apply, whole, weight=lambda step: 2.0, gate=True,
    models=lambda step: (step["model"],))  # fmt: skip
