"""``detect``: find objects or faces with an ONNX detector (manifest task ``detect``), in tiles
for large images (see :mod:`pixelmill.engine.detection`). The image goes on unchanged; what
was found goes in the outcome (``detections``), the job's result and the dataset's item, and
to the steps after it (``gravity=faces``, ``redact``, the ``faces`` and ``detections``
gates)."""

from __future__ import annotations

import time

import pyvips

from pixelmill.engine.context import Context
from pixelmill.engine.step import Op, whole
from pixelmill.errors import UsageError
from pixelmill.pipeline import Step
from pixelmill.pipeline.kinds import Int, Name
from pixelmill.pipeline.params import classes, threshold
from pixelmill.pipeline.spec import REQUIRED, Param, declare

WEIGHT = 30.0
"""Work of a detector per pixel, in plain passes (a cascade of small networks)."""


def apply(image: pyvips.Image, step: Step, ctx: Context) -> pyvips.Image:
    from pixelmill.engine.detection import Found, find
    from pixelmill.models.detect import detector_for

    began = time.monotonic()
    detector = detector_for(step["model"], ctx.settings)
    unknown = [c for c in step["classes"] or () if c not in detector.labels]
    if unknown:
        raise UsageError(f"detect: model {step['model']} has no class {', '.join(unknown)} "
                         f"(its classes: {', '.join(detector.labels)})")  # fmt: skip
    found = find(image, detector, step["threshold"], step["classes"] or (), step["tile"])
    ctx.found.append((image, Found(step["model"], image.width, image.height, tuple(found))))
    ctx.clock.aside(f"detect:{step['model']}", time.monotonic() - began)
    counts: dict[str, int] = {}
    for d in found:
        counts[d.label] = counts.get(d.label, 0) + 1
    shown = ", ".join(f"{n} {label}" for label, n in counts.items()) or "nothing"
    ctx.notes.append(f"detect {step['model']}: {shown} in {time.monotonic() - began:.2f} s")
    return image


OP = Op(declare(
    "detect",
    "find objects or faces with a detector model (detect:faces is bundled); the image goes "
    "on unchanged, the boxes go in the outcome and to later steps",
    Param("model", Name(), "detector model (task detect; pixelmill models list)", REQUIRED),
    threshold,
    classes,
    Param("tile", Int(64, 8192), "core of a tile in pixels for large images (default: the "
          "model's)", positional=False),
), apply, whole, weight=lambda step: WEIGHT, gate=True,
    models=lambda step: (step["model"],))  # fmt: skip
