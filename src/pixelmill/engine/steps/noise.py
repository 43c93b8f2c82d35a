"""``noise``: seeded Gaussian noise, independent in each colour band; alpha untouched. libvips
draws each pixel's noise from its position and the seed, so the result repeats exactly."""

from __future__ import annotations

import pyvips

from pixelmill.codecs import colour_bands
from pixelmill.engine.context import Context
from pixelmill.engine.imaging import max_value
from pixelmill.engine.step import Op
from pixelmill.pipeline import Step
from pixelmill.pipeline.kinds import Float, Int
from pixelmill.pipeline.spec import REQUIRED, Param, declare


def apply(image: pyvips.Image, step: Step, ctx: Context) -> pyvips.Image:
    bands, peak = colour_bands(image), max_value(image)
    sigma = step["sigma"] * peak / 255
    grains = [pyvips.Image.gaussnoise(image.width, image.height, sigma=sigma, mean=0,
                                      seed=step["seed"] + band)
              for band in range(bands)]  # fmt: skip
    noisy = (image[:bands] + grains[0].bandjoin(grains[1:])).clamp(min=0, max=peak)
    if image.bands > bands:
        noisy = noisy.bandjoin(image[bands:])
    return noisy.cast(image.format).copy(interpretation=image.interpretation)


OP = Op(declare(
    "noise",
    "seeded Gaussian noise (seed=): film grain, or a repeatable degradation for benchmarks",
    Param("sigma", Float(0.0, 255.0), "standard deviation in 8-bit levels", REQUIRED),
    Param("seed", Int(0, 2**31 - 1), "random seed (the same seed gives the same noise)", 0,
          positional=False),
), apply)  # fmt: skip
