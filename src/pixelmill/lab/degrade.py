"""Degradations: what turns a clean target image into the model's input.

A :class:`Degradation` is a chain of random stages (blur, resize, noise, JPEG), each drawn from
a numpy Generator, so a seed gives the same input every time. Chaining the stages twice gives
Real-ESRGAN's second-order model (Wang et al. 2021). The fixed evaluation tracks (classic
bicubic, noise σ 15, JPEG q 30, and a realistic chain) are chains with single values.

Resizing, filtering and JPEG go through libvips (bicubic downscaling here matches MATLAB's
``imresize``, the reference of super-resolution tables, to about 0.2 of a level); only the blur
kernels are written here, as formulas.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyvips

from pixelmill.errors import UsageError
from pixelmill.lab import pixels

Rng = np.random.Generator
Range = tuple[float, float]

BLUR_KINDS = ("isotropic", "anisotropic", "motion")
KERNELS = {"bicubic": "cubic", "bilinear": "linear", "lanczos": "lanczos3", "area": "area"}
"""Resampling kernels by their name in recipes, with libvips' name (area: a box average)."""
MAX_KERNEL = 31
"""Largest blur kernel side."""
JPEG_MCU = 16
"""Side of the largest JPEG block: 8×8 DCT blocks, chroma subsampled over 16×16."""


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise UsageError(message)


def _check_range(name: str, value: Range, low: float, high: float) -> None:
    _check(low <= value[0] <= value[1] <= high,
           f"{name} {list(value)} is not a range within {low:g}..{high:g} (low, high)")  # fmt: skip


def _check_choice(name: str, values: tuple[str, ...], allowed: tuple[str, ...]) -> None:
    odd = [v for v in values if v not in allowed]
    _check(bool(values) and not odd,
           f"{name} {list(values)} must name one or more of {', '.join(allowed)}")  # fmt: skip


def _check_share(name: str, value: float) -> None:
    _check(0.0 <= value <= 1.0, f"{name} {value} is not a probability within 0..1")


def _draw(rng: Rng, value: Range) -> float:
    return float(rng.uniform(*value)) if value[1] > value[0] else float(value[0])


@dataclass(frozen=True)
class Blur:
    """Convolution with a random normalised kernel: Gaussian (isotropic or anisotropic and
    rotated) of standard deviation ``sigma``, or a straight motion streak ``length`` long."""

    p: float = 1.0
    sigma: Range = (0.2, 3.0)
    kinds: tuple[str, ...] = BLUR_KINDS
    length: Range = (3.0, 15.0)

    def __post_init__(self) -> None:
        _check_share("p", self.p)
        _check_range("sigma", self.sigma, 0.05, 10.0)
        _check_choice("kinds", self.kinds, BLUR_KINDS)
        _check_range("length", self.length, 1.0, MAX_KERNEL)

    def kernel(self, rng: Rng) -> np.ndarray:
        kind = self.kinds[int(rng.integers(len(self.kinds)))]
        if kind == "motion":
            return motion_kernel(_draw(rng, self.length), rng.uniform(0, np.pi))
        sx = _draw(rng, self.sigma)
        sy = _draw(rng, self.sigma) if kind == "anisotropic" else sx
        return gaussian_kernel(sx, sy, rng.uniform(0, np.pi))

    def __call__(self, image: np.ndarray, rng: Rng, target: tuple[int, int]) -> np.ndarray:
        mask = pixels.to_vips(self.kernel(rng).astype(np.float32))
        return pixels.to_vips(image).conv(mask, precision="float").numpy()


@dataclass(frozen=True)
class Resize:
    """Resampling with a random kernel: by a random ``factor`` of the current size, or, with
    no factor, to the model's input size (the target's size over the scale)."""

    p: float = 1.0
    factor: Range | None = None
    kernels: tuple[str, ...] = tuple(KERNELS)

    def __post_init__(self) -> None:
        _check_share("p", self.p)
        _check(self.factor is not None or self.p == 1.0,
               f"p {self.p}: a resize to the input size (no factor) always happens "
               "(p 1)")  # fmt: skip
        if self.factor is not None:
            _check_range("factor", self.factor, 0.05, 4.0)
        _check_choice("kernels", self.kernels, tuple(KERNELS))

    def __call__(self, image: np.ndarray, rng: Rng, target: tuple[int, int]) -> np.ndarray:
        kernel = KERNELS[self.kernels[int(rng.integers(len(self.kernels)))]]
        height, width = image.shape[:2]
        if self.factor is not None:
            factor = _draw(rng, self.factor)
            target = (max(1, round(height * factor)), max(1, round(width * factor)))
        return resize(image, target, kernel)


@dataclass(frozen=True)
class Noise:
    """Additive Gaussian noise of standard deviation ``sigma`` (on 0..255), in colour or the
    same in every channel (``gray`` of the time); or, ``poisson`` of the time, photon noise
    with ``peak`` photons at white."""

    p: float = 1.0
    sigma: Range = (1.0, 25.0)
    gray: float = 0.0
    poisson: float = 0.0
    peak: Range = (30.0, 3000.0)

    def __post_init__(self) -> None:
        for name in ("p", "gray", "poisson"):
            _check_share(name, getattr(self, name))
        _check_range("sigma", self.sigma, 0.0, 255.0)
        _check_range("peak", self.peak, 1.0, 1e6)

    def __call__(self, image: np.ndarray, rng: Rng, target: tuple[int, int]) -> np.ndarray:
        gray = rng.random() < self.gray
        if rng.random() < self.poisson:
            peak = _draw(rng, self.peak)
            source = image.mean(axis=2, keepdims=True) if gray else image
            noise = rng.poisson(np.clip(source, 0, 1) * peak) / peak - source
        else:
            shape = (*image.shape[:2], 1 if gray else 3)
            noise = rng.normal(0.0, _draw(rng, self.sigma) / 255.0, shape)
        return (image + noise).astype(np.float32)


@dataclass(frozen=True)
class Jpeg:
    """JPEG compression at a random ``quality`` (libvips; chroma subsampled below 90). With
    ``shift``, the block grid starts at a random offset, as in a crop of a JPEG: a model
    then meets block edges at every phase, as tiles of an image present them."""

    p: float = 1.0
    quality: Range = (30.0, 95.0)
    shift: bool = True

    def __post_init__(self) -> None:
        _check_share("p", self.p)
        _check_range("quality", self.quality, 1.0, 100.0)

    def __call__(self, image: np.ndarray, rng: Rng, target: tuple[int, int]) -> np.ndarray:
        quality = round(_draw(rng, self.quality))
        if not self.shift:
            return jpeg(image, quality)
        top, left = rng.integers(0, JPEG_MCU, size=2)
        padded = np.pad(image, ((top, 0), (left, 0), (0, 0)), mode="edge")
        return jpeg(padded, quality)[top:, left:]


Stage = Blur | Resize | Noise | Jpeg
STAGES: dict[str, type[Stage]] = {"blur": Blur, "resize": Resize, "noise": Noise, "jpeg": Jpeg}


@dataclass(frozen=True)
class Degradation:
    """A chain of stages from a target image to the model's input, ``scale`` times smaller.

    Each stage happens with its probability ``p``; the result is rounded to 8 bits, as real
    inputs are. When the scale is above 1 or a stage changes the size, the last resize must
    be one to the input size (a resize with no factor).
    """

    stages: tuple[Stage, ...]
    scale: int = 1

    def __post_init__(self) -> None:
        resizes = [s for s in self.stages if isinstance(s, Resize)]
        if self.scale > 1 or resizes:
            _check(bool(resizes) and resizes[-1].factor is None,
                   "the last resize must be one to the input size (no factor): the scale is "
                   f"{self.scale} or a resize changes the size")  # fmt: skip

    def __call__(self, target: np.ndarray, rng: Rng) -> np.ndarray:
        height, width = target.shape[:2]
        size = (height // self.scale, width // self.scale)
        image = target
        for stage in self.stages:
            if stage.p >= 1.0 or rng.random() < stage.p:
                image = stage(image, rng, size)
        return pixels.quantised(image)


def gaussian_kernel(sigma_x: float, sigma_y: float, angle: float) -> np.ndarray:
    """A normalised Gaussian with standard deviations ``sigma_x`` and ``sigma_y`` along axes
    turned by ``angle`` (radians), reaching 3 sigma."""
    radius = min(int(np.ceil(3 * max(sigma_x, sigma_y))), MAX_KERNEL // 2)
    ys, xs = np.mgrid[-radius : radius + 1, -radius : radius + 1].astype(np.float64)
    cos, sin = np.cos(angle), np.sin(angle)
    u, v = xs * cos + ys * sin, ys * cos - xs * sin
    kernel = np.exp(-0.5 * ((u / sigma_x) ** 2 + (v / sigma_y) ** 2))
    return kernel / kernel.sum()


def motion_kernel(length: float, angle: float) -> np.ndarray:
    """A normalised straight streak ``length`` pixels long at ``angle``: points along the
    segment spread over their neighbouring pixels (bilinear)."""
    radius = min(int(np.ceil(length / 2)) + 1, MAX_KERNEL // 2)
    kernel = np.zeros((2 * radius + 1, 2 * radius + 1))
    for t in np.linspace(-length / 2, length / 2, max(2, int(np.ceil(length * 4)))):
        x, y = radius + t * np.cos(angle), radius + t * np.sin(angle)
        x0, y0 = int(np.floor(x)), int(np.floor(y))
        fx, fy = x - x0, y - y0
        for dy, dx, weight in ((0, 0, (1 - fx) * (1 - fy)), (0, 1, fx * (1 - fy)),
                               (1, 0, (1 - fx) * fy), (1, 1, fx * fy)):  # fmt: skip
            kernel[min(y0 + dy, 2 * radius), min(x0 + dx, 2 * radius)] += weight
    return kernel / kernel.sum()


def resize(image: np.ndarray, size: tuple[int, int], kernel: str) -> np.ndarray:
    """``image`` resampled to ``size`` (height, width) with a libvips kernel, or ``area``:
    a box average when shrinking (bilinear when enlarging)."""
    height, width = image.shape[:2]
    if (height, width) == size:
        return image
    hscale, vscale = size[1] / width, size[0] / height
    vips = pixels.to_vips(image)
    if kernel == "area":
        out = (vips.shrink(1 / hscale, 1 / vscale) if hscale < 1 and vscale < 1
               else vips.resize(hscale, vscale=vscale, kernel="linear"))  # fmt: skip
    else:
        out = vips.resize(hscale, vscale=vscale, kernel=kernel, gap=0.0)
    if (out.height, out.width) != size:  # rounding: take or repeat the last row or column
        out = out.gravity("north-west", size[1], size[0], extend="copy")
    return out.numpy().reshape(*size, -1)


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """``image`` after a JPEG round trip in memory at ``quality``."""
    vips = pixels.to_vips(pixels.to_uint8(image)).copy(interpretation="srgb")
    encoded = vips.jpegsave_buffer(Q=quality)
    return pixels.from_vips(pyvips.Image.new_from_buffer(encoded, ""))


TRACKS = ("classic", "compressed", "realistic")
EVAL_SEED = 2024
"""Seed of the random parts of the evaluation tracks (the noise), per image index."""


def track(name: str, task: str, scale: int) -> Degradation:
    """A fixed evaluation degradation. ``classic``: bicubic downscaling for super-resolution
    (as in the SRCNN/FSRCNN/ESPCN tables), Gaussian noise σ 15 for denoise, JPEG quality 30
    for dejpeg. ``compressed``: the classic one, then JPEG quality 30 (for models that follow
    dejpeg). ``realistic``: blur σ 1, bicubic downscaling to the scale, Gaussian noise σ 5
    and JPEG quality 75, for every task."""
    _check(name in TRACKS, f"track {name!r} is not one of {', '.join(TRACKS)}")
    downscale = Resize(kernels=("bicubic",))
    if name == "realistic":
        blur = Blur(sigma=(1.0, 1.0), kinds=("isotropic",))
        noise, compression = Noise(sigma=(5.0, 5.0)), Jpeg(quality=(75.0, 75.0), shift=False)
        return Degradation((blur, downscale, noise, compression), scale)
    compression = Jpeg(quality=(30.0, 30.0), shift=False)
    classic = {"super-resolution": downscale, "denoise": Noise(sigma=(15.0, 15.0)),
               "dejpeg": compression}  # fmt: skip
    stages = (classic[task],)
    if name == "compressed" and task != "dejpeg":
        stages += (compression,)
    return Degradation(stages, scale)
