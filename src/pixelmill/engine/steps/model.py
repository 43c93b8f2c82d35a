"""``model``: run an ONNX model over the image in tiles, any size, in bounded memory, with no
seams (see :mod:`pixelmill.engine.tiled`). The model's output is streamed into the steps after
it, or spooled to disk first when one of them needs random access."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pyvips

from pixelmill.config import Settings
from pixelmill.engine.context import Context
from pixelmill.engine.imaging import Size
from pixelmill.engine.step import Op
from pixelmill.models import find
from pixelmill.pipeline import Step
from pixelmill.pipeline.kinds import Int, Name
from pixelmill.pipeline.spec import REQUIRED, Param, declare

WEIGHT = 100.0
"""Work of one output pixel of a model, in plain passes (a small CNN's arithmetic per pixel
against a resize's)."""


def apply(image: pyvips.Image, step: Step, ctx: Context) -> pyvips.Image:
    from pixelmill.engine import bandsink, tiled
    from pixelmill.models.runtime import session_for

    session = session_for(step["name"], ctx.settings)
    depth = 2 if image.format == "ushort" else 1
    plan = tiled.plan_for(
        session.manifest, session.working_bytes, image.width, step["tile"], step["overlap"],
        step["batch"], budget=tiled.EXECUTOR_SHARE * ctx.settings.max_memory,
        pixel_bytes=(session.manifest.bands + image.hasalpha()) * depth, on_gpu=session.on_gpu)
    ctx.notes.append(f"{plan.describe(step['name'])} on {session.providers[0]}")
    run = tiled.ModelRun(image, session, plan)
    ctx.models.append(run)
    if ctx.random_after and ctx.private:  # unredacted pixels never go to a spool file
        progress, ctx.progress = ctx.progress, None
        return ctx.stack.enter_context(bandsink.Stream(run, str(ctx.source), progress)).copy_memory()
    if ctx.random_after:
        spool = ctx.stack.enter_context(
            tempfile.TemporaryDirectory(prefix="pixelmill-model-", dir=ctx.settings.tmp_dir)
        )
        return bandsink.spooled(run, Path(spool) / "model.png", ctx.progress)
    progress, ctx.progress = ctx.progress, None
    return ctx.stack.enter_context(bandsink.Stream(run, str(ctx.source), progress))


def size(step: Step, w: int, h: int, settings: Settings) -> Size:
    factor = find(step["name"], settings).manifest.scale
    return w * factor, h * factor


OP = Op(declare(
    "model",
    "run an ONNX model over the image in tiles (any size, bounded memory, no seams); see "
    "Models",
    Param("name", Name(), "model name (pixelmill models list)", REQUIRED),
    Param("tile", Int(16, 8192), "tile side in pixels (default: the smallest that does as much "
          "work per pixel as larger ones, within max_memory)",
          positional=False),
    Param("overlap", Int(0, 512), "pixels each tile reads past its core (default: the model's "
          "receptive field, which makes tiled output equal whole-image output)", positional=False),
    Param("batch", Int(1, 256), "tiles per inference call (default: enough to keep the CPU busy, within max_memory)",
          positional=False),
), apply, size=size, weight=lambda step: WEIGHT, models=lambda step: (step["name"],))  # fmt: skip
