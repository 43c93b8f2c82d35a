"""No-reference indicators, for production where no ground truth exists, on libvips.

Each is a lazy graph ended by one ``stats()`` or ``project()``, so memory stays bounded however
large the image. Luma here is full-range BT.601 (0.299 R + 0.587 G + 0.114 B), and values are
on its 0..255 scale unless said otherwise.

- ``sharpness``: variance of the Laplacian of luma (Pech-Pacheco et al., ICPR 2000); higher is
  sharper, a blurred image falls towards 0.
- ``noise``: standard deviation of white Gaussian noise (Immerkær, CVIU 1996): the mean
  absolute response of a mask that cancels local planes, scaled by √(π/2)/6. Textures raise it.
- ``blockiness``: mean absolute step of luma across the 8×8 JPEG grid over the mean step inside
  blocks, both directions (in the spirit of Wang, Bovik, Evans, ICIP 2000); 1 is no blocking.
- ``exposure``: mean luma (0..1) and the shares of pixels clipped to black (every channel at
  0) and to white (every channel at full scale).
- ``colourfulness``: Hasler and Süsstrunk's M (SPIE 2003) on 0..255 RGB: 0 for greys, about
  33 "moderately", above 100 "extremely" colourful.
- ``consistency``: for upscalers, the PSNR (dB) of the output shrunk back to the input's size
  (bicubic, antialiased) against the input: an upscale should reproduce its input when
  downscaled; hallucinated or shifted content lowers it.

Written here because the formulas are a few lines each over libvips, and no maintained library
computes them without loading whole images into memory.
"""

from __future__ import annotations

import math

import numpy as np
import pyvips

from pixelmill.quality.images import Picture, shrunk_to, working
from pixelmill.quality.reference import decibels, mean_square_error

BLOCK = 8
"""Side of JPEG's DCT blocks."""
LAPLACIAN = pyvips.Image.new_from_list([[0, 1, 0], [1, -4, 1], [0, 1, 0]])
IMMERKAER = pyvips.Image.new_from_list([[1, -2, 1], [-2, 4, -2], [1, -2, 1]])
FULL_RANGE_LUMA = pyvips.Image.new_from_list([[0.299, 0.587, 0.114]])
CLIP = 0.5 / 255
"""How near 0 or 1 a channel counts as clipped (half an 8-bit level)."""


def sharpness(picture: Picture) -> float:
    """Variance of the Laplacian of luma (0..255 scale)."""
    response = _inner(_luma255(picture).conv(LAPLACIAN, precision="float"), 1)
    mean, mean_square = _moments(response)
    return mean_square - mean * mean


def noise(picture: Picture) -> float:
    """Estimated standard deviation of Gaussian noise in luma (0..255 scale)."""
    response = _inner(_luma255(picture).conv(IMMERKAER, precision="float"), 1).abs()
    return math.sqrt(math.pi / 2) / 6 * _moments(response)[0]


def blockiness(picture: Picture) -> float:
    """Mean luma step across the 8×8 grid over the mean step within blocks (1: none)."""
    image = _luma255(picture)
    ratios = []
    for across in (True, False):  # steps between columns, then between rows
        if (image.width if across else image.height) < 2 * BLOCK:
            continue
        if across:
            steps = (image.crop(1, 0, image.width - 1, image.height)
                     - image.crop(0, 0, image.width - 1, image.height)).abs()  # fmt: skip
            profile = steps.project()[0].numpy().ravel()  # column sums
        else:
            steps = (image.crop(0, 1, image.width, image.height - 1)
                     - image.crop(0, 0, image.width, image.height - 1)).abs()  # fmt: skip
            profile = steps.project()[1].numpy().ravel()  # row sums
        edges = np.arange(profile.size) % BLOCK == BLOCK - 1
        inside = profile[~edges].mean()
        ratios.append(profile[edges].mean() / inside if inside > 0 else 1.0)
    return float(np.mean(ratios)) if ratios else 1.0


def exposure(picture: Picture) -> dict[str, float]:
    """Mean luma (0..1) and the shares of pixels clipped to black and to white."""
    image = working(picture)
    black = (image <= CLIP).bandbool("and")
    white = (image >= 1 - CLIP).bandbool("and")
    bands = image.recomb(FULL_RANGE_LUMA).bandjoin([black.cast("float") / 255,
                                                    white.cast("float") / 255])  # fmt: skip
    means = _stats(bands)[1:, 4]
    return {"mean_luma": float(means[0]), "clipped_black": float(means[1]),
            "clipped_white": float(means[2])}  # fmt: skip


def colourfulness(picture: Picture) -> float:
    """Hasler and Süsstrunk's colourfulness M on 0..255 RGB."""
    image = working(picture) * 255
    red_green = image[0] - image[1]
    yellow_blue = (image[0] + image[1]) / 2 - image[2]
    table = _stats(red_green.bandjoin(yellow_blue))[1:]
    means, deviations = table[:, 4], table[:, 5]
    return float(np.hypot(*deviations) + 0.3 * np.hypot(*means))


def consistency(source: Picture, output: Picture) -> float:
    """PSNR (dB) of ``output`` shrunk to ``source``'s size (bicubic) against ``source``."""
    small, large = working(source), working(output)
    return decibels(mean_square_error(small, shrunk_to(large, small.width, small.height)))


def _luma255(picture: Picture) -> pyvips.Image:
    return working(picture).recomb(FULL_RANGE_LUMA) * 255


def _inner(image: pyvips.Image, margin: int) -> pyvips.Image:
    """``image`` less ``margin`` pixels on each side, where a mask reached past the edge."""
    return image.crop(margin, margin, image.width - 2 * margin, image.height - 2 * margin)


def _stats(image: pyvips.Image) -> np.ndarray:
    return image.stats().numpy().astype(np.float64)


def _moments(image: pyvips.Image) -> tuple[float, float]:
    """Mean and mean square of a one-band image."""
    row = _stats(image)[1]
    count = image.width * image.height
    return float(row[2] / count), float(row[3] / count)
