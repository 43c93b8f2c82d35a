"""``qc``: a quality gate. It measures the image against the input of the step before it (or
the run's reference) and passes, flags the output for review, holds it back until a reviewer
approves it, or fails the run before anything is written; the image goes on unchanged (see
:mod:`pixelmill.engine.qc`). Flagged and held outputs go to the review queue ``queue``."""

from __future__ import annotations

import time

import pyvips

from pixelmill.engine import qc
from pixelmill.engine.context import Context
from pixelmill.engine.imaging import face_finder
from pixelmill.engine.step import Op, whole
from pixelmill.errors import QualityError
from pixelmill.pipeline import Step
from pixelmill.pipeline.kinds import Choice, Gates, Name
from pixelmill.pipeline.spec import REQUIRED, Param, declare

WEIGHT = 10.0
"""Work of a gate per pixel: its metrics read both images whole."""


def apply(image: pyvips.Image, step: Step, ctx: Context) -> pyvips.Image:
    began = time.monotonic()
    counted = {}
    if any(gate.metric == "faces" for gate in step["gates"]):
        counted["faces"] = float(len(face_finder(ctx.settings, ctx.found)(image)))
    verdict = qc.judge(image, ctx.given if ctx.reference is None else ctx.reference, step,
                       counted)  # fmt: skip
    ctx.clock.aside("qc", time.monotonic() - began)
    ctx.verdicts.append(verdict)
    ctx.notes.append(verdict.describe())
    if verdict.outcome == "fail":
        raise QualityError(f"{ctx.source}: {verdict.describe()}; nothing was written")
    return image


OP = Op(declare(
    "qc",
    "quality gate, e.g. qc:ssim>=0.92:consistency>=35:on_fail=hold:queue=faces: fail (default) "
    "stops and writes nothing, flag writes and sends the output to review, hold writes it but "
    "keeps it from delivery until a reviewer approves it; see docs/quality.md",
    Param("gates", Gates(qc.gate_names), "conditions on metrics, e.g. ssim>=0.92:"
          "consistency>=35 (pixelmill metrics lists them), or on counts: faces>=1", REQUIRED),
    Param("on_fail", Choice(("fail", "flag", "hold")), "a failed condition stops the run and "
          "writes nothing (fail), writes and sends the output to review (flag), or writes it "
          "and holds it back until a reviewer approves it (hold)", "fail", positional=False),
    Param("queue", Name(), "the review queue of flagged and held outputs", "review",
          positional=False),
), apply, whole, weight=lambda step: WEIGHT, gate=True)  # fmt: skip
