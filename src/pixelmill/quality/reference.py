"""Full-reference metrics on libvips: PSNR (RGB and luma), SSIM, MS-SSIM and CIEDE2000.

Each is a lazy libvips graph ended by one ``stats()`` (per-band sums), so memory stays a few
scanlines of each image however large it is, and libvips spreads the work over the cores.

- PSNR: 10·log10(1/MSE) on 0..1 values; luma is Y of BT.601 (16..235, divided by 255), the
  convention of super-resolution papers. Checked against scikit-image.
- SSIM (Wang, Bovik, Sheikh, Simoncelli, IEEE TIP 2004): Gaussian window σ 1.5 cut at 11×11,
  K1 0.01, K2 0.03, mean over the window's valid region, per band and averaged. Equals
  scikit-image's ``structural_similarity(gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False)``; with ``downsample`` the authors' ``ssim.m``, which first
  averages F×F blocks, F = max(1, round(min side / 256)).
- MS-SSIM (Wang, Simoncelli, Bovik, Asilomar 2003): five scales of 2×2 averages, contrast-
  structure terms of the first four and the whole SSIM of the last, with the paper's weights,
  as the authors' ``msssim.m``.
- CIEDE2000 (Sharma, Wu, Dalal 2005): the mean ΔE00 per pixel in CIELAB (D65), libvips' own
  ``dE00``; checked against scikit-image's ``deltaE_ciede2000``.

Written here rather than taken from scikit-image because its metrics hold whole float images in
memory (several times an image's size); the formulas are short, the tests pin them to it.
"""

from __future__ import annotations

import math

import numpy as np
import pyvips

from pixelmill.errors import UsageError
from pixelmill.quality.images import Picture, pair

SIGMA = 1.5
RADIUS = 5
"""Half-side of SSIM's window: 11×11, as the paper and scikit-image (truncate 3.5)."""
K1, K2 = 0.01, 0.03
MS_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
"""MS-SSIM's exponents, finest scale first (Wang et al. 2003)."""
LUMA = pyvips.Image.new_from_list([[65.481, 128.553, 24.966]])
"""BT.601 Y from 0..1 RGB on the 16..235 scale, less its offset of 16."""
PEAK_DB = 100.0
"""PSNR of identical images (instead of infinity, so scores stay numbers)."""


def psnr(reference: Picture, distorted: Picture, *, luma: bool = False) -> float:
    """Peak signal-to-noise ratio in dB, over the RGB bands or on luma (Y of BT.601)."""
    left, right = _pair(reference, distorted, luma)
    return decibels(mean_square_error(left, right))


def ssim(reference: Picture, distorted: Picture, *, luma: bool = False,
         downsample: bool = False) -> float:  # fmt: skip
    """Mean structural similarity, per RGB band and averaged (or on luma); ``downsample`` first
    averages F×F blocks as the authors' code does for large images."""
    left, right = _pair(reference, distorted, luma)
    if downsample:
        factor = max(1, round(min(left.width, left.height) / 256))
        left, right = (_block_average(image, factor) for image in (left, right))
    _check_window(left, "SSIM")
    similarity, _ = _ssim_maps(left, right)
    return float(np.mean(_sums(_valid(similarity))[:, 0]) / _valid_area(left))


def ms_ssim(reference: Picture, distorted: Picture, *, luma: bool = True) -> float:
    """Multi-scale SSIM over five scales, on luma (as the paper) or per RGB band, averaged."""
    left, right = _pair(reference, distorted, luma)
    if min(left.width, left.height) >> (len(MS_WEIGHTS) - 1) < 2 * RADIUS + 1:
        side = (2 * RADIUS + 1) << (len(MS_WEIGHTS) - 1)
        raise UsageError(f"MS-SSIM needs images of at least {side}×{side} pixels (five "
                         f"scales of its 11×11 window), not {left.width}×{left.height}")
    score = np.ones(left.bands)
    for level, weight in enumerate(MS_WEIGHTS):
        similarity, contrast = _ssim_maps(left, right)
        term = similarity if level == len(MS_WEIGHTS) - 1 else contrast
        mean = _sums(_valid(term))[:, 0] / _valid_area(left)
        score *= np.sign(mean) * np.abs(mean) ** weight
        left, right = (_block_average(image, 2) for image in (left, right))
    return float(np.mean(score))


def ciede2000(reference: Picture, distorted: Picture) -> float:
    """Mean CIEDE2000 colour difference per pixel (0: identical; about 2.3: just noticeable)."""
    left, right = pair(reference, distorted)
    lab = [(image * 255).copy(interpretation="srgb").colourspace("lab") for image in (left, right)]
    return float(_sums(lab[0].dE00(lab[1]))[0, 0] / (left.width * left.height))


def mean_square_error(reference: pyvips.Image, distorted: pyvips.Image) -> float:
    """Mean squared difference over every pixel and band of two working-form images."""
    difference = reference - distorted
    area = reference.width * reference.height * reference.bands
    return float(_sums(difference * difference)[:, 0].sum() / area)


def decibels(mse: float) -> float:
    """PSNR in dB of a mean squared error on 0..1 values (:data:`PEAK_DB` when zero)."""
    return PEAK_DB if mse <= 10 ** (-PEAK_DB / 10) else -10 * math.log10(mse)


def to_luma(image: pyvips.Image) -> pyvips.Image:
    """Y of BT.601 (16..235, divided by 255) of a working-form image."""
    return (image.recomb(LUMA) + 16) / 255


def _pair(reference: Picture, distorted: Picture, luma: bool
          ) -> tuple[pyvips.Image, pyvips.Image]:  # fmt: skip
    """Both images in working form, or their luma."""
    left, right = pair(reference, distorted)
    return (to_luma(left), to_luma(right)) if luma else (left, right)


def _sums(image: pyvips.Image) -> np.ndarray:
    """Per band: sum and sum of squares (one pass of ``stats``)."""
    table = image.stats().numpy()  # row 0 is every band together, then one row per band
    return table[1:, 2:4].astype(np.float64)


def _window() -> pyvips.Image:
    offsets = np.arange(-RADIUS, RADIUS + 1)
    weights = np.exp(-(offsets**2) / (2 * SIGMA**2))
    return pyvips.Image.new_from_list([list(weights / weights.sum())])


def _blur(image: pyvips.Image) -> pyvips.Image:
    return image.convsep(_window(), precision="float")


def _ssim_maps(left: pyvips.Image, right: pyvips.Image) -> tuple[pyvips.Image, pyvips.Image]:
    """SSIM's map and its contrast-structure term, band by band (values in 0..1)."""
    c1, c2 = K1**2, K2**2
    mean_l, mean_r = _blur(left), _blur(right)
    var_l = _blur(left * left) - mean_l * mean_l
    var_r = _blur(right * right) - mean_r * mean_r
    covariance = _blur(left * right) - mean_l * mean_r
    contrast = (2 * covariance + c2) / (var_l + var_r + c2)
    luminance = (2 * mean_l * mean_r + c1) / (mean_l * mean_l + mean_r * mean_r + c1)
    return luminance * contrast, contrast


def _valid(image: pyvips.Image) -> pyvips.Image:
    """The region where the whole window lies inside the image."""
    return image.crop(RADIUS, RADIUS, image.width - 2 * RADIUS, image.height - 2 * RADIUS)


def _valid_area(image: pyvips.Image) -> int:
    return (image.width - 2 * RADIUS) * (image.height - 2 * RADIUS)


def _check_window(image: pyvips.Image, metric: str) -> None:
    if min(image.width, image.height) < 2 * RADIUS + 1:
        raise UsageError(f"{metric} needs images of at least {2 * RADIUS + 1}×{2 * RADIUS + 1} "
                         f"pixels, not {image.width}×{image.height}")  # fmt: skip


def _block_average(image: pyvips.Image, factor: int) -> pyvips.Image:
    """Every ``factor``-th mean of ``factor``² blocks, as MATLAB's ``imfilter`` of a box with
    edges repeated ('symmetric', the same for the one or two pixels it reaches) and then
    ``(1:f:end, 1:f:end)``: blocks start ⌊(f+1)/2⌋ − 1 pixels before each sample."""
    if factor == 1:
        return image
    before = (factor + 1) // 2 - 1
    width, height = (-(-side // factor) * factor for side in (image.width, image.height))
    padded = image.embed(before, before, width, height, extend="copy")
    return padded.shrink(factor, factor)
