"""FSIM and FSIMc: the feature similarity index.

Lin Zhang, Lei Zhang, Xuanqin Mou and David Zhang, "FSIM: A Feature Similarity Index for Image
Quality Assessment", IEEE Transactions on Image Processing 20(8), 2378-2386, 2011.

This follows the authors' MATLAB code, ``FeatureSIM.m`` (2010), step by step: YIQ on 0..255
values; the automatic downsampling by F = max(1, round(min(rows, cols) / 256)) (an F×F box
filter, zero outside the image, then every F-th pixel from the first); phase congruency with
Kovesi's ``phasecong2`` as embedded there (log-Gabor filters, 4 scales from wavelength 6 in
steps of 2, 4 orientations, σ_f/f₀ 0.55, angular spread ratio 1.2, a Butterworth low-pass of
radius 0.45 and order 15, noise threshold k = 2 divided by 1.7); the Scharr gradient magnitude
(zero padding); similarity maps with T1 = 0.85, T2 = 160 (and T3 = T4 = 200, λ = 0.03 on the
I and Q channels for FSIMc); pooling weighted by the larger phase congruency of the two images.
The box filter and the decimation run in libvips before anything is made into an array, so a
large image streams through in bounded memory and the phase congruency works on the reduced
image only (about 256 pixels on the short side).

Validation: FeatureSIM.m run in GNU Octave 7.3.0 on 14 image pairs (four photographs; JPEG,
WebP, noise, rescaling, desaturation; values in ``tests/data/quality-reference.json``) and on 4
resized pairs with F = 3, 4, 5 and sizes not divisible by F: this module agrees within 1.4e-8
for FSIM and for FSIMc, all of it from the float32 working images of ``images.pair`` (fed
float64 images, the same code agrees within 5e-13).

Why hand-written: no maintained Python library computes it without PyTorch/torchvision. piq
and pyiqa need them; image-similarity-measures (numpy, OpenCV and the 2016 phasepack) averages
a per-band FSIM with other phase-congruency parameters and no downsampling, so it does not
reproduce FeatureSIM.m.

One addition: where neither image has any phase congruency (flat images), the weighted mean is
undefined (0/0 in ``FeatureSIM.m``); the plain mean of the similarity map is returned instead.
"""

from __future__ import annotations

import math

import numpy as np
import pyvips

from pixelmill.quality.images import Picture, pair

YIQ = [[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]]
"""RGB (0..255) to Y, I, Q, with FeatureSIM.m's coefficients."""
T1, T2, T3, T4, LAMBDA = 0.85, 160.0, 200.0, 200.0, 0.03
SCALES, ORIENTATIONS = 4, 4
MIN_WAVELENGTH, MULT, SIGMA_ON_F, D_THETA_ON_SIGMA, K_NOISE, EPSILON = 6, 2, 0.55, 1.2, 2.0, 1e-4


def fsim(reference: Picture, distorted: Picture) -> float:
    """FSIM of ``distorted`` against ``reference``, on luma: 1.0 for identical images."""
    return _scores(reference, distorted, colour=False)[0]


def fsimc(reference: Picture, distorted: Picture) -> float:
    """FSIMc: FSIM with the chromatic (I, Q) similarity terms; equals FSIM for grey images."""
    return _scores(reference, distorted, colour=True)[1]


def _scores(reference: Picture, distorted: Picture, colour: bool) -> tuple[float, float]:
    left, right = pair(reference, distorted)
    factor = max(1, math.floor(min(left.width, left.height) / 256 + 0.5))  # MATLAB round()
    yiq1, yiq2 = _reduced_yiq(left, factor), _reduced_yiq(right, factor)
    y1, y2 = yiq1[..., 0], yiq2[..., 0]
    pc1, pc2 = _phase_congruency([y1, y2])
    g1, g2 = _gradient_magnitude(y1), _gradient_magnitude(y2)
    similarity = ((2 * pc1 * pc2 + T1) / (pc1**2 + pc2**2 + T1)
                  * (2 * g1 * g2 + T2) / (g1**2 + g2**2 + T2))  # fmt: skip
    weight = np.maximum(pc1, pc2)
    luma = _pool(similarity, weight)
    if not colour:
        return luma, math.nan
    i1, i2, q1, q2 = yiq1[..., 1], yiq2[..., 1], yiq1[..., 2], yiq2[..., 2]
    chroma = ((2 * i1 * i2 + T3) / (i1**2 + i2**2 + T3)
              * (2 * q1 * q2 + T4) / (q1**2 + q2**2 + T4))  # fmt: skip
    # real() of a power as in FeatureSIM.m: the product can be negative for opposite chroma
    chroma_term = np.real(np.power(chroma.astype(np.complex128), LAMBDA))
    return luma, _pool(similarity * chroma_term, weight)


def _pool(similarity: np.ndarray, weight: np.ndarray) -> float:
    total = float(weight.sum())
    if total <= 0.0:  # no structure in either image: unweighted mean (see the module notes)
        return float(similarity.mean())
    return float((similarity * weight).sum() / total)


def _reduced_yiq(image: pyvips.Image, factor: int) -> np.ndarray:
    """Y, I, Q (0..255 scale) box-filtered and decimated by ``factor``, as an H×W×3 array.

    ``conv2(X, ones(F)/F², 'same')`` then ``X(1:F:end, 1:F:end)`` averages, for output pixel
    k, input pixels kF - p .. kF - p + F - 1 (zero outside), p = F - 1 - ceil((F - 1) / 2).
    Padding p zero pixels before the image makes that the k-th aligned F×F block, which
    libvips' integer ``shrink`` averages while streaming.
    """
    rgb = image.cast("double")
    if factor > 1:  # averaging first: YIQ is linear, and only the small image meets it
        pad = factor - 1 - factor // 2
        width, height = -(-image.width // factor) * factor, -(-image.height // factor) * factor
        rgb = rgb.embed(pad, pad, width, height, extend="black").shrink(factor, factor)
    return (rgb * 255.0).recomb(YIQ).numpy()


def _centred_grid(rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """Kovesi's frequency grid, normalised to ±0.5, with odd and even sizes as in phasecong2."""

    def axis(n: int) -> np.ndarray:
        if n % 2:
            return np.arange(-(n - 1) / 2, (n - 1) / 2 + 1) / max(n - 1, 1)
        return np.arange(-n / 2, n / 2) / n

    return np.meshgrid(axis(cols), axis(rows))


def _phase_congruency(images: list[np.ndarray]) -> list[np.ndarray]:
    """phasecong2 of FeatureSIM.m for same-size grey images, sharing one filter bank."""
    rows, cols = images[0].shape
    bank, noise_sums = _filter_bank(rows, cols)
    maps = []
    for image in images:
        spectrum = np.fft.fft2(image)
        energy_all = np.zeros(image.shape)
        amplitude_all = np.zeros(image.shape)
        for filters, (em_n, sum_an2, sum_ai_aj) in zip(bank, noise_sums):
            responses = np.fft.ifft2(spectrum * filters)  # scales×H×W: even + i·odd
            total = responses.sum(axis=0)
            direction = np.conj(total / (np.abs(total) + EPSILON))  # mean phase, conjugated
            energy = np.zeros(image.shape)
            for response in responses:  # E·MeanE + O·MeanO - |E·MeanO - O·MeanE|
                turned = response * direction
                energy += turned.real - np.abs(turned.imag)
                amplitude_all += np.abs(response)
            # Noise: Rayleigh estimate from the median energy at the smallest scale.
            noise_power = -float(np.median(np.abs(responses[0]) ** 2)) / math.log(0.5) / em_n
            tau = math.sqrt((2 * noise_power * sum_an2 + 4 * noise_power * sum_ai_aj) / 2)
            threshold = tau * math.sqrt(math.pi / 2) + K_NOISE * math.sqrt(2 - math.pi / 2) * tau
            energy_all += np.maximum(energy - threshold / 1.7, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            congruency = energy_all / amplitude_all
        maps.append(np.where(amplitude_all > 0, congruency, 0.0))
    return maps


def _filter_bank(rows: int, cols: int) -> tuple[np.ndarray, list[tuple[float, float, float]]]:
    """Log-Gabor filters (orientations×scales×H×W, zero frequency at [0, 0]) and, per
    orientation, phasecong2's noise sums: EM_n, sum(EstSumAn2), sum(EstSumAiAj)."""
    x, y = _centred_grid(rows, cols)
    radius = np.fft.ifftshift(np.sqrt(x**2 + y**2))
    theta = np.fft.ifftshift(np.arctan2(-y, x))
    lowpass = 1.0 / (1.0 + (radius / 0.45) ** (2 * 15))
    radius[0, 0] = 1.0
    wavelengths = MIN_WAVELENGTH * MULT ** np.arange(SCALES, dtype=np.float64)
    log_gabor = np.exp(-np.log(radius[None] * wavelengths[:, None, None]) ** 2
                       / (2 * math.log(SIGMA_ON_F) ** 2)) * lowpass  # fmt: skip
    log_gabor[:, 0, 0] = 0.0
    theta_sigma = math.pi / ORIENTATIONS / D_THETA_ON_SIGMA
    sin_theta, cos_theta = np.sin(theta), np.cos(theta)
    bank = np.empty((ORIENTATIONS, SCALES, rows, cols))
    noise_sums = []
    for o in range(ORIENTATIONS):
        angle = o * math.pi / ORIENTATIONS
        d_sin = sin_theta * math.cos(angle) - cos_theta * math.sin(angle)
        d_cos = cos_theta * math.cos(angle) + sin_theta * math.sin(angle)
        spread = np.exp(-(np.arctan2(d_sin, d_cos) ** 2) / (2 * theta_sigma**2))
        filters = np.multiply(log_gabor, spread, out=bank[o])
        # Sums over pixels of products of real(ifft2(filter))·sqrt(rows·cols), by Parseval:
        # the spectrum of that real part is the filter's even part (f(k) + f(-k)) / 2.
        even_part = (filters + np.roll(filters[:, ::-1, ::-1], (1, 1), axis=(1, 2))) / 2
        sum_an2 = float((even_part**2).sum())
        sum_ai_aj = float(((even_part.sum(axis=0) ** 2).sum() - sum_an2) / 2)
        noise_sums.append((float((filters[0] ** 2).sum()), sum_an2, sum_ai_aj))
    return bank, noise_sums


def _gradient_magnitude(y: np.ndarray) -> np.ndarray:
    """Scharr gradient magnitude with conv2(..., 'same') zero padding."""
    p = np.pad(y, 1)
    left, right = p[:, :-2], p[:, 2:]
    gx = (3 * (left[:-2] - right[:-2]) + 10 * (left[1:-1] - right[1:-1])
          + 3 * (left[2:] - right[2:])) / 16  # fmt: skip
    top, bottom = p[:-2], p[2:]
    gy = (3 * (top[:, :-2] - bottom[:, :-2]) + 10 * (top[:, 1:-1] - bottom[:, 1:-1])
          + 3 * (top[:, 2:] - bottom[:, 2:])) / 16  # fmt: skip
    return np.sqrt(gx**2 + gy**2)
