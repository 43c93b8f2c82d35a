"""A pixelmill plugin: a ``sepia`` step, a ``mean-red`` metric and a storage rule that refuses
paths with a ``drafts`` folder."""

import pyvips

from pixelmill.engine.step import Op
from pixelmill.pipeline.kinds import Float
from pixelmill.pipeline.spec import Param, declare
from pixelmill.quality.metrics import Metric

TONE = [[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]]


def sepia(image: pyvips.Image, step, ctx) -> pyvips.Image:
    """Mix the colour bands towards a sepia tone, by ``amount``."""
    colour, rest = image[:3], image[3:] if image.bands > 3 else None
    toned = colour.recomb(TONE).clamp(max=255 if image.format == "uchar" else 65535)
    mixed = (colour * (1 - step["amount"]) + toned * step["amount"]).cast(image.format)
    mixed = mixed.copy(interpretation=image.interpretation)
    return mixed.bandjoin(rest) if rest is not None else mixed


def mean_red(image) -> float:
    """The mean of the first band, 0 to 1."""
    return image[0].avg() / (65535 if image.format == "ushort" else 255)


def no_drafts(location) -> str | None:
    return "drafts are not processed" if "/drafts/" in location.url else None


SEPIA = Op(declare("sepia", "tone the image sepia (plugin example)",
                   Param("amount", Float(0.0, 1.0), "how far towards sepia", 1.0)), sepia)
MEAN_RED = Metric("mean-red", "blind", None, "0..1", "mean of the red band",
                  "pixelmill_sample:mean_red")
