"""SSIMULACRA 2 (Structural SIMilarity Unveiling Local And Compression Related Artifacts), the
perceptual image metric by Jon Sneyers (Cloudinary, 2022; version 2.1, April 2023): 100 for
identical images, about 90 visually lossless, 70 high quality, 50 medium, 30 low.

It follows the reference C++ implementation (``ssimulacra2.cc`` in cloudinary/ssimulacra2, the
same as libjxl's ``tools/ssimulacra2.cc``): six scales, each a 2×2 box downsample in linear
sRGB; per scale, XYB made positive (X × 14 + 0.42, Y + 0.01, B - Y + 0.55) and blurred with
σ 1.5; an SSIM map without the luminance term's gamma correction and two edge maps (artifacts:
edges the reference lacks; detail lost: edges the distorted image lacks); the 1-norm and 4-norm
of the 3 maps × 3 channels × 6 scales, weighted by the tool's 108 weights and mapped to the
score. The blur is the exact 9-tap kernel that the tool's recursive Gaussian (Charalampidis'
truncated cosines) amounts to, zero-padded at the borders as there.

Validated against the reference tool's scores on photographs with JPEG, WebP, rescaling, noise
and desaturation (``tests/data/ssimulacra2``): every pair within ±0.5, the largest difference
0.075.

Written here because no maintained library computes it in bounded memory, and the PyPI
``ssimulacra2`` port scores 0.2 to 5 points below the reference. Rows are pulled from libvips
once, top to bottom (so sequential sources work), and computed in numpy in chunks of rows, each
scale keeping only the rows its blur still needs: memory grows with the width, never the height.
(A lazy libvips graph would read the source once per scale, and recomputes each shared
intermediate for every consumer: a first version took 14 s on 12 megapixels.)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np
import pyvips

from pixelmill.errors import UsageError
from pixelmill.quality.images import Picture, pair

T = TypeVar("T")
SCALES = 6
MIN_SIDE = 8
"""The tool refuses smaller images, and stops adding scales below this side."""
CHUNK_PIXELS = 32768
"""Pixels a scale works on at a time (but at least twice the blur's radius in rows), split
between two threads: each half's planes, under 1 MB, stay in a core's cache. Larger chunks are
no faster and hold more memory."""
C2 = 0.0009
OPSIN = np.array([
    [0.30, 0.622, 0.078],
    [0.23, 0.692, 0.078],
    [0.24342268924547819, 0.20476744424496821, 1 - 0.24342268924547819 - 0.20476744424496821],
], np.float32)  # fmt: skip
"""libjxl's opsin absorbance matrix: linear sRGB to the LMS-like mix whose cube roots give XYB."""
BIAS = 0.0037930732552754493
CBRT_BIAS = float(np.cbrt(BIAS))
WEIGHTS = np.array([
    0.0, 0.0007376606707406586, 0.0, 0.0, 0.0007793481682867309, 0.0, 0.0,
    0.0004371155730107379, 0.0, 1.1041726426657346, 0.00066284834129271,
    0.00015231632783718752, 0.0, 0.0016406437456599754, 0.0, 1.8422455520539298,
    11.441172603757666, 0.0, 0.0007989109436015163, 0.000176816438078653, 0.0,
    1.8787594979546387, 10.94906990605142, 0.0, 0.0007289346991508072, 0.9677937080626833, 0.0,
    0.00014003424285435884, 0.9981766977854967, 0.00031949755934435053, 0.0004550992113792063,
    0.0, 0.0, 0.0013648766163243398, 0.0, 0.0, 0.0, 0.0, 0.0, 7.466890328078848, 0.0,
    17.445833984131262, 0.0006235601634041466, 0.0, 0.0, 6.683678146179332,
    0.00037724407979611296, 1.027889937768264, 225.20515300849274, 0.0, 0.0,
    19.213238186143016, 0.0011401524586618361, 0.001237755635509985, 176.39317598450694, 0.0,
    0.0, 24.43300999870476, 0.28520802612117757, 0.0004485436923833408, 0.0, 0.0, 0.0,
    34.77906344483772, 44.835625328877896, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
    0.0008680556573291698, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0005313191874358747, 0.0,
    0.00016533814161379112, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0004179171803251336,
    0.0017290828234722833, 0.0, 0.0020827005846636437, 0.0, 0.0, 8.826982764996862,
    23.19243343998926, 0.0, 95.1080498811086, 0.9863978034400682, 0.9834382792465353,
    0.0012286405048278493, 171.2667255897307, 0.9807858872435379, 0.0, 0.0, 0.0,
    0.0005130064588990679, 0.0, 0.00010854057858411537,
])  # fmt: skip
"""SSIMULACRA 2.1's weights, in the tool's order: channel (X, Y, B), scale, norm (1, 4), map
(SSIM, artifact, detail lost)."""


def _recursive_gaussian_kernel(sigma: float) -> np.ndarray:
    """The impulse response of libjxl's recursive Gaussian: Charalampidis (2016), "Recursive
    implementation of the Gaussian filter using truncated cosine functions", with three cosines
    over a window of radius N; the recursion is exactly this finite kernel of 2N - 1 taps."""
    radius = round(3.2795 * sigma + 0.2546)  # (57)
    omega = np.array([1, 3, 5]) * math.pi / (2 * radius)
    sign = np.array([1, -1, 1])
    p = sign / np.tan(omega / 2)  # (37)
    r = sign * p * p / np.sin(omega)  # (44)
    rho = np.exp(-0.5 * sigma * sigma * omega * omega) / radius  # (50)
    d13, d35, d51 = (p[i] * r[j] - r[i] * p[j] for i, j in ((0, 1), (1, 2), (2, 0)))
    zeta = np.array([d35 / d13, d51 / d13, 1.0])  # (52)
    beta = np.linalg.solve(  # (53)-(56)
        np.array([p, r, zeta]), [1.0, radius * radius - sigma * sigma, zeta @ rho]
    )
    taps = np.arange(-radius + 1, radius)
    return (beta[:, None] * np.cos(omega[:, None] * taps)).sum(axis=0).astype(np.float32)


KERNEL = _recursive_gaussian_kernel(1.5)
RADIUS = len(KERNEL) // 2
_code = np.arange(65536) / 65535
SRGB_TO_LINEAR = pyvips.Image.new_from_array(np.where(
    _code <= 0.04045, _code / 12.92, ((_code + 0.055) / 1.055) ** 2.4
).astype(np.float32).reshape(1, -1))  # fmt: skip
"""The sRGB transfer function for every 16-bit code: the working images hold 8- or 16-bit
codes, so the table is exact for them."""


def ssimulacra2(reference: Picture, distorted: Picture) -> float:
    """The SSIMULACRA 2.1 score of ``distorted`` against ``reference`` (at most 100)."""
    left, right = pair(reference, distorted)
    width, height = left.width, left.height
    if width < MIN_SIDE or height < MIN_SIDE:
        raise UsageError(f"SSIMULACRA 2 needs images of at least {MIN_SIDE}×{MIN_SIDE} pixels, "
                         f"not {width}×{height}")  # fmt: skip
    sizes = [(width, height)]
    while len(sizes) < SCALES and min(sizes[-1]) >= MIN_SIDE:
        sizes.append(((sizes[-1][0] + 1) // 2, (sizes[-1][1] + 1) // 2))
    # the SSIM maps' weights by channel and scale, laid out as the tool reads them for this
    # many scales: where both norms weigh 0, the map is not computed
    ssim_weights = WEIGHTS[: 18 * len(sizes)].reshape(3, len(sizes), 2, 3)[..., 0]
    region = pyvips.Region.new(_linear(left).bandjoin(_linear(right)))
    with ThreadPoolExecutor(1) as prefetch, ThreadPoolExecutor(1) as helper:
        scales: list[_Scale] = []
        for index in reversed(range(len(sizes))):
            ssim = [int(c) for c in np.flatnonzero(ssim_weights[:, index].any(axis=1))]
            scales.insert(0, _Scale(*sizes[index], ssim, scales[0] if scales else None, helper))
        step = scales[0].chunk

        def fetch(y: int) -> np.ndarray:
            rows = min(step, height - y)
            data = np.frombuffer(region.fetch(0, y, width, rows), np.float32)
            return np.ascontiguousarray(data.reshape(rows, width, 6).transpose(2, 0, 1))

        pending = prefetch.submit(fetch, 0)
        for y in range(0, height, step):
            rows = pending.result()
            if y + step < height:
                pending = prefetch.submit(fetch, y + step)
            scales[0].push(rows)
        scales[0].finish()
    return _score([scale.norms() for scale in scales])


def _linear(image: pyvips.Image) -> pyvips.Image:
    """Working sRGB (0..1) to linear light, through the exact table."""
    return (image * 65535 + 0.5).cast("ushort").maplut(SRGB_TO_LINEAR)


class _Scale:
    """One scale, fed the rows of both images in linear RGB (six planes) top to bottom, in
    chunks of about :data:`CHUNK_PIXELS`: it sums the maps of the rows it can finish, keeps the
    rows that the vertical blur still needs, and hands the rows, downsampled, to the next scale.
    Each chunk's work is split by rows between the calling thread and ``helper``. The SSIM map
    is computed for the channels (0, 1, 2: X, Y, B) in ``ssim`` only."""

    def __init__(self, width: int, height: int, ssim: list[int], smaller: _Scale | None,
                 helper: ThreadPoolExecutor) -> None:  # fmt: skip
        self.width, self.height, self.smaller, self.helper = width, height, smaller, helper
        self.ssim = ssim
        self.chunk = max(2 * RADIUS, min(CHUNK_PIXELS // width, height))
        self.blurred = 6 + 2 * len(ssim)
        self.held = np.zeros((self.blurred + 6, 2 * RADIUS + self.chunk, width), np.float32)
        """Image rows ``y - 2 RADIUS`` on: planes blurred across (both images' X, Y, B, then
        (x₁² + x₂²)/2 and x₁x₂ of the ``ssim`` channels), then both images' X, Y, B unblurred."""
        self.y = 0
        self.waiting: list[np.ndarray] = []
        self.odd: np.ndarray | None = None
        self.sums = np.zeros((2, 9))
        """Σ map and Σ map⁴ of the maps SSIM X, Y, B, artifact X, Y, B, detail lost X, Y, B."""

    def push(self, linear: np.ndarray) -> None:
        if self.smaller is not None:
            self._downsample(linear)
        self.waiting.append(linear)
        if sum(rows.shape[1] for rows in self.waiting) >= self.chunk:
            rows = self.waiting[0] if len(self.waiting) == 1 else np.concatenate(self.waiting, 1)
            done = rows.shape[1] // self.chunk * self.chunk
            for y in range(0, done, self.chunk):
                self._run(rows[:, y : y + self.chunk])
            self.waiting = [rows[:, done:]] if done < rows.shape[1] else []

    def finish(self) -> None:
        if self.smaller is not None:
            if self.odd is not None:
                self.smaller.push(_halve(np.concatenate([self.odd, self.odd], axis=1)))
            self.smaller.finish()
        if self.waiting:
            self._run(np.concatenate(self.waiting, axis=1))
        self._run(None)

    def norms(self) -> np.ndarray:
        """The 1-norms and 4-norms of the nine maps, (2, 9)."""
        means = self.sums / (self.width * self.height)
        return np.stack([means[0], means[1] ** 0.25])

    def _downsample(self, linear: np.ndarray) -> None:
        if self.odd is not None:
            linear = np.concatenate([self.odd, linear], axis=1)
        even = linear.shape[1] // 2 * 2
        self.odd = linear[:, even:] if even < linear.shape[1] else None
        if even:
            self.smaller.push(_halve(linear[:, :even]))

    def _run(self, linear: np.ndarray | None) -> None:
        """Take in rows (None: the zeros below the image) and finish those that have all
        the rows the blur needs."""
        fresh = RADIUS if linear is None else linear.shape[1]
        if linear is None:
            self.held[: self.blurred, 2 * RADIUS : 3 * RADIUS] = 0
        else:
            self._split(lambda a, b: self._take(linear[:, a:b], 2 * RADIUS + a), 0, fresh)
        first, stop = max(self.y - RADIUS, 0), min(self.y + fresh - RADIUS, self.height)
        offset = 2 * RADIUS - self.y
        for sums in self._split(self._maps, first + offset, stop + offset):
            self.sums += sums
        self.held[:, : 2 * RADIUS] = self.held[:, fresh : fresh + 2 * RADIUS]
        self.y += fresh

    def _split(self, work: Callable[[int, int], T], start: int, stop: int) -> list[T]:
        """``work(a, b)`` over two halves of ``start..stop``, one on the helper thread."""
        if stop <= start:
            return []
        middle = (start + stop) // 2
        if middle == start:
            return [work(start, stop)]
        other = self.helper.submit(work, middle, stop)
        return [work(start, middle), other.result()]

    def _take(self, linear: np.ndarray, at: int) -> None:
        """Rows into ``held`` from row ``at``: both images in XYB, blurred across."""
        rows, count = linear.shape[1], len(self.ssim)
        xyb = self.held[self.blurred :, at : at + rows]
        _xyb(linear[:3], xyb[:3])
        _xyb(linear[3:], xyb[3:])
        padded = np.empty((self.blurred, rows, self.width + 2 * RADIUS), np.float32)
        padded[:, :, :RADIUS] = padded[:, :, -RADIUS:] = 0
        inner = padded[:, :, RADIUS:-RADIUS]
        inner[:6] = xyb
        x1, x2 = xyb[self.ssim], xyb[[3 + c for c in self.ssim]]
        squares = np.multiply(x1, x1, out=inner[6 : 6 + count])
        squares += x2 * x2
        squares *= 0.5
        np.multiply(x1, x2, out=inner[6 + count :])
        _blur(padded, self.held[: self.blurred, at : at + rows], axis=2)

    def _maps(self, start: int, stop: int) -> np.ndarray:
        """Σ map and Σ map⁴ over the held rows ``start..stop``, blurred down here."""
        count = len(self.ssim)
        blurred = np.empty((self.blurred, stop - start, self.width), np.float32)
        _blur(self.held[: self.blurred, start - RADIUS : stop + RADIUS], blurred, axis=1)
        mu1, mu2 = blurred[:3], blurred[3:6]
        squares, product = blurred[6 : 6 + count], blurred[6 + count :]
        xyb = self.held[self.blurred :, start:stop]
        maps = np.empty((count + 6, stop - start, self.width), np.float32)
        both = mu1[self.ssim] * mu2[self.ssim]
        diff = mu1[self.ssim] - mu2[self.ssim]
        diff *= diff
        # (σ₁² + σ₂²)/2 and σ₁₂ as (x₁² + x₂²)/2 - μ₁μ₂ and x₁x₂ - μ₁μ₂: identical images give
        # identical terms, so exactly zero error
        denominator = np.subtract(squares, both, out=squares)
        denominator *= 2
        denominator += C2
        denominator -= diff
        numerator = np.subtract(product, both, out=product)
        numerator *= 2
        numerator += C2
        np.subtract(1, diff, out=diff)
        numerator *= diff
        numerator /= denominator
        ssim, artifact, lost = maps[:count], maps[count : count + 3], maps[count + 3 :]
        np.subtract(1, numerator, out=ssim)
        np.maximum(ssim, 0, out=ssim)
        edge = np.abs(xyb[3:] - mu2)
        edge += 1
        edge /= np.abs(xyb[:3] - mu1) + 1
        edge -= 1
        np.maximum(edge, 0, out=artifact)
        np.subtract(artifact, edge, out=lost)
        flat = maps.reshape(count + 6, -1)
        sums = np.zeros((2, 9))
        columns = [*self.ssim, *range(3, 9)]
        sums[0, columns] = flat.sum(axis=1)
        flat *= flat
        flat *= flat
        sums[1, columns] = flat.sum(axis=1)
        return sums


def _xyb(linear: np.ndarray, xyb: np.ndarray) -> None:
    """Linear RGB planes to the tool's positive XYB: X × 14 + 0.42, Y + 0.01, B - Y + 0.55."""
    cubes = np.empty_like(linear)
    term = np.empty_like(linear[0])
    for mixed, row in zip(cubes, OPSIN, strict=True):
        np.multiply(linear[0], row[0], out=mixed)
        for plane, factor in zip(linear[1:], row[1:], strict=True):
            mixed += np.multiply(plane, factor, out=term)
        mixed += BIAS
        np.cbrt(mixed, out=mixed)
    np.subtract(cubes[0], cubes[1], out=xyb[0])
    xyb[0] *= 7
    xyb[0] += 0.42
    np.add(cubes[0], cubes[1], out=xyb[1])
    xyb[1] *= 0.5
    np.subtract(cubes[2], xyb[1], out=xyb[2])
    xyb[2] += 0.55
    xyb[1] += 0.01 - CBRT_BIAS


def _halve(linear: np.ndarray) -> np.ndarray:
    """2×2 box means of an even number of rows, the last column repeated when the width is
    odd."""
    rows = linear[:, 0::2] + linear[:, 1::2]
    if rows.shape[2] % 2:
        rows = np.concatenate([rows, rows[:, :, -1:]], axis=2)
    out = np.add(rows[:, :, 0::2], rows[:, :, 1::2])
    out *= 0.25
    return out


def _blur(source: np.ndarray, out: np.ndarray, axis: int) -> None:
    """``out`` = ``source`` convolved with :data:`KERNEL` along ``axis``, where ``source`` has
    :data:`RADIUS` more entries on each side."""
    size = out.shape[axis]

    def shifted(offset: int) -> np.ndarray:
        index = [slice(None)] * source.ndim
        index[axis] = slice(RADIUS + offset, RADIUS + offset + size)
        return source[tuple(index)]

    np.multiply(shifted(0), KERNEL[RADIUS], out=out)
    pair_sum = np.empty_like(out)
    for offset in range(1, RADIUS + 1):
        np.add(shifted(-offset), shifted(offset), out=pair_sum)
        pair_sum *= KERNEL[RADIUS + offset]
        out += pair_sum


def _score(norms: list[np.ndarray]) -> float:
    """The tool's weighted sum and mapping to the score, over the scales computed."""
    features = np.array([
        norms[scale][norm, map_ * 3 + channel]
        for channel in range(3) for scale in range(len(norms)) for norm in range(2)
        for map_ in range(3)
    ])  # fmt: skip
    total = float(np.abs(features) @ WEIGHTS[: len(features)]) * 0.9562382616834844
    total = (2.326765642916932 * total - 0.020884521182843837 * total**2
             + 6.248496625763138e-05 * total**3)  # fmt: skip
    return 100.0 - 10.0 * total**0.6276336467831387 if total > 0 else 100.0
