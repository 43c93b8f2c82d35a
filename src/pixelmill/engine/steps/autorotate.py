"""``autorotate``: rotate upright by the EXIF orientation. Done on load unless the setting
``autorotate`` is off, when this step does it."""

from __future__ import annotations

import pyvips

from pixelmill.codecs import Source
from pixelmill.codecs.load import TURNING_ORIENTATIONS
from pixelmill.engine.context import Context
from pixelmill.engine.step import Op
from pixelmill.pipeline import Step
from pixelmill.pipeline.spec import declare


def apply(image: pyvips.Image, step: Step, ctx: Context) -> pyvips.Image:
    return image if ctx.settings.autorotate else image.autorot()  # else done on load


def random_access(step: Step, source: Source) -> bool:
    return not source.settings.autorotate and source.orientation in TURNING_ORIENTATIONS


OP = Op(declare("autorotate", "rotate upright by the EXIF orientation (done on load by default; "
                "--no-autorotate keeps it)"), apply, random_access)  # fmt: skip
