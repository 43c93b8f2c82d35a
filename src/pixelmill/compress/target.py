"""Encoding to a perceptual target: the lowest quality whose decoded result meets a condition
such as ``ssimulacra2>=80`` against the image before encoding, found in few encodes.

The search starts from a prediction (a per-format table from the target and how busy the
image is, see :data:`START`), steps from that first trial by the margin it missed or passed
by over a typical slope (:data:`SLOPES`), then interpolates the margin between the last
failure and the lowest pass (secant on quality) until they are :data:`CLOSE` apart; the
answer is the lowest quality seen to pass, so every answer was measured, and its bytes are
the trial's own. A target that fails even at the highest quality gives that quality (or lossless,
when allowed), marked as missed.

Where a viewer looks, the target must hold there too (:mod:`pixelmill.compress.regions`):
each tile holding a face or a detected object, and with ``background`` each tile of strong
edges or text, is scored on its own and must meet the target; smooth low-saliency tiles need
only the relaxed ``background`` value. libvips' encoders take one quality for the whole image,
so the search meets the strictest region. An image of more than 4 megapixels is searched on a
sample of its tiles first (:mod:`pixelmill.compress.sample`) and the answer confirmed on the
whole image, the search going on there while it fails: no image is passed on a sample's word.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyvips

from pixelmill.codecs import save
from pixelmill.compress.regions import Region
from pixelmill.compress.sample import sampled
from pixelmill.pipeline.formats import FORMATS, Format
from pixelmill.pipeline.kinds import Gate
from pixelmill.quality.metrics import compare, metric

CLOSE = 2
"""Width of the quality bracket at which the search stops (the lowest pass is kept)."""
NEAR = 1.0
"""Quality steps' worth of margin (at the format's typical slope) within which a pass ends the
search."""
MAX_TRIALS = 8
"""Encodes one search may spend."""
CONFIRM = 3
"""Encodes at full size after a sample's answer: the answer, then at most two to bracket the
full image's own answer."""
START = {"jpeg": (82.3, 1.29, 0.0), "webp": (92.7, 1.23, 8.1), "avif": (73.1, 1.73, 0.9),
         "heic": (73.1, 1.73, 0.9), "jxl": (79.7, 1.24, -3.2)}  # fmt: skip
"""Per format, the quality to try first for ``ssimulacra2>=T``: q = a + b × (T - 80) - c × x,
x being how busy the image is (see :func:`busyness`); the other metrics start at 75. Fitted by
``benchmarks/calibrate_target.py`` (targets 70, 80 and 90; WebP and JPEG on the Kodak set and
12 Wikimedia photographs, AVIF and JPEG XL on 10 Kodak images): the guess is off by 3.4 (WebP),
3.5 (JPEG), 2.7 (AVIF) and 3.2 (JPEG XL) quality steps (standard deviation). HEIC takes AVIF's
(its encoder is not built here)."""
SLOPES = {"jpeg": 0.75, "webp": 0.67, "avif": 0.52, "heic": 0.52, "jxl": 0.91}
"""Per format, SSIMULACRA 2 points gained per quality step near the answer (the first step's
guess; from ``benchmarks/calibrate_target.py``)."""


@dataclass(frozen=True)
class Trial:
    quality: int
    data: bytes
    score: float
    margin: float
    """How far the trial is past what it needs, in the metric's units (≥ 0: met): the least of
    the whole image's and each region's, turned so that more is better."""

    @property
    def met(self) -> bool:
        return self.margin >= 0


@dataclass
class Choice:
    """What a search chose, as the outcome's ``encode`` reports it."""

    format: str
    quality: int | None
    score: float
    target: str
    met: bool
    trials: int
    bytes: int
    lossless: bool = False
    seconds: float = 0.0
    regions: dict[str, Any] = field(default_factory=dict)
    data: bytes = b""

    def to_json(self) -> dict[str, Any]:
        return {"format": self.format, "quality": self.quality, "score": round(self.score, 3),
                "target": self.target, "met": self.met, "trials": self.trials,
                "bytes": self.bytes, "lossless": self.lossless,
                "seconds": round(self.seconds, 3), "regions": self.regions}  # fmt: skip


def with_quality(fmt: Format, options: dict[str, Any], quality: int) -> dict[str, Any]:
    """The encoder's options at ``quality`` (JPEG XL's saver calls it ``quality``)."""
    return {**options, "quality" if fmt.name == "jxl" else "Q": quality, "lossless": False} \
        if fmt.lossless else {**options, "Q": quality}


def encoded(image: pyvips.Image, fmt: Format, options: dict[str, Any]) -> bytes:
    return save.write_buffer(image, fmt, options)


def decoded(data: bytes) -> pyvips.Image:
    """Encoded bytes back to pixels (through Pillow for what libvips here does not read)."""
    try:
        return pyvips.Image.new_from_buffer(data, "")
    except pyvips.Error:
        import io

        import numpy as np
        import pillow_jxl  # noqa: F401  (registers JXL with Pillow)
        from PIL import Image

        return pyvips.Image.new_from_array(np.asarray(Image.open(io.BytesIO(data))))


def score_of(reference: pyvips.Image, candidate: pyvips.Image, name: str) -> float:
    return compare(reference, candidate, [name])[name]


def search(image: pyvips.Image, fmt: Format, target: Gate, options: dict[str, Any],
           regions: Sequence[Region] = (), lossless: bool = False,
           progress: Callable[[float], None] | None = None) -> Choice:  # fmt: skip
    """The lowest quality of ``fmt`` meeting ``target`` on ``image`` (and on each of
    ``regions``); ``options``: the encoder's other options. A large image is searched on a
    sample first (:mod:`pixelmill.compress.sample`), the answer confirmed at full size."""
    began = time.monotonic()
    start = predicted(image, fmt, target)
    sample = sampled(image, regions)
    rough: list[Trial] = []
    if sample is not None:
        tried = _trials(sample.image, fmt, target, options, sample.regions, start, progress)
        rough = list(tried.values())
        passing = [t.quality for t in rough if t.met]
        start = min(passing) if passing else max(t.quality for t in rough)
    scored = _trials(image, fmt, target, options, regions, start, progress,
                     most=MAX_TRIALS if sample is None else CONFIRM)  # fmt: skip
    trials = len(rough) + len(scored)
    facts = {"sampled": round(sample.share, 3), "full_size_encodes": len(scored)} \
        if sample is not None else {}  # fmt: skip
    passed = [t for t in scored.values() if t.met]
    if passed:
        best = min(passed, key=lambda t: t.quality)
        return Choice(fmt.name, best.quality, best.score, str(target), True, trials,
                      len(best.data), seconds=time.monotonic() - began,
                      regions=_region_report(regions, best) | facts, data=best.data)  # fmt: skip
    top = scored.get(100) or _trials(image, fmt, target, options, regions, 100, most=1)[100]
    if lossless and fmt.lossless:
        data = encoded(image, fmt, {**options, "lossless": True}
                       | ({"quality": 100} if fmt.name == "jxl" else {}))
        score = score_of(image, decoded(data), target.metric)
        return Choice(fmt.name, None, score, str(target), target.passes(score), trials + 1,
                      len(data), lossless=True, seconds=time.monotonic() - began, data=data,
                      regions=facts)  # fmt: skip
    return Choice(fmt.name, 100, top.score, str(target), False, trials, len(top.data),
                  seconds=time.monotonic() - began,
                  regions=_region_report(regions, top) | facts, data=top.data)  # fmt: skip


def _trials(image: pyvips.Image, fmt: Format, target: Gate, options: dict[str, Any],
            regions: Sequence[Region], start: int,
            progress: Callable[[float], None] | None = None,
            most: int = MAX_TRIALS) -> dict[int, Trial]:  # fmt: skip
    """The encodes of the search from ``start``, by quality, ``most`` of them at most. It
    stops when the last failure and the lowest pass are :data:`CLOSE` apart, or when a pass
    is within :data:`NEAR` steps' worth of margin of the target (its quality is then at most
    about that many steps above the lowest)."""
    scored: dict[int, Trial] = {}
    name = target.metric
    better = metric(name).higher_is_better is not False

    def trial(quality: int) -> Trial:
        data = encoded(image, fmt, with_quality(fmt, options, quality))
        candidate = decoded(data)
        score = score_of(image, candidate, name)
        margin = _margin(score, target, better)
        if regions:
            margin = min(margin, _worst(image, candidate, regions, name, better))
        scored[quality] = Trial(quality, data, score, margin)
        if progress is not None:
            progress(min(99.0, 100.0 * len(scored) / MAX_TRIALS))
        return scored[quality]

    quality = start
    failed, passed = 0, 101
    slope = slope_of(fmt, target)
    while len(scored) < most:
        result = scored.get(quality) or trial(quality)
        if result.met:
            passed = min(passed, quality)
        else:
            failed = max(failed, quality)
        near = result.met and result.margin <= slope * NEAR
        if passed - failed <= CLOSE or failed == 100 or near:
            break
        quality = _next(scored, failed, passed, slope)
        if quality in scored:
            break
    return scored


def predicted(image: pyvips.Image, fmt: Format, target: Gate) -> int:
    """The first quality tried: from the per-format table for SSIMULACRA 2, else 75."""
    if target.metric != "ssimulacra2" or fmt.name not in START:
        return 75
    base, slope, busy = START[fmt.name]
    quality = base + slope * (target.threshold - 80) - busy * busyness(image)
    return int(min(100, max(5, round(quality))))


def busyness(image: pyvips.Image) -> float:
    """How much fine detail the image has: the mean Sobel gradient of its luma on a 512-pixel
    thumbnail over 100 (about 0.25 for a smooth photograph, 1 for a busy one), capped at 2."""
    small = image.thumbnail_image(512)
    luma = small.colourspace("b-w")[0] if small.bands >= 3 else small[0]
    if luma.format == "ushort":
        luma = luma / 257
    return min(2.0, float(luma.cast("uchar").sobel().avg()) / 100.0)


def slope_of(fmt: Format, target: Gate) -> float:
    """How much the margin grows per quality step, as first assumed (:data:`SLOPES`)."""
    if target.metric != "ssimulacra2":
        return 0.0
    return SLOPES.get(fmt.name, 0.8)


def _next(scored: dict[int, Trial], failed: int, passed: int, slope: float) -> int:
    """The next quality to try: from one side of the answer, a step by the assumed
    ``slope`` (0: unknown, a fixed step) a little past where the margin would be 0; between a
    failure and a pass, the secant of the margin between them, pulled halfway to the middle
    when the last two trials fell on one side (as the Illinois method does, so the bracket
    keeps closing from both ends); always strictly inside what is still open."""
    if passed > 100 or failed == 0:
        known = scored[failed if passed > 100 else passed]
        step = -known.margin / slope if slope else (10 if passed > 100 else -10)
        guess = known.quality + step + (1 if passed > 100 else -1)
        return int(min(passed - 1, max(failed + 1, round(guess))))
    lo, hi = scored[failed], scored[passed]
    gap = hi.margin - lo.margin
    guess = failed - lo.margin / gap * (passed - failed) if gap > 0 else (failed + passed) / 2
    last = list(scored.values())[-2:]
    if len(last) == 2 and last[0].met == last[1].met:
        guess = (guess + (failed + passed) / 2) / 2
    return int(min(passed - 1, max(failed + 1, math.ceil(guess))))


def _margin(score: float, target: Gate, better: bool) -> float:
    return score - target.threshold if better else target.threshold - score


def _worst(image: pyvips.Image, candidate: pyvips.Image, regions: Sequence[Region], name: str,
           better: bool) -> float:  # fmt: skip
    """The least margin of the regions over what each needs."""
    worst = math.inf
    for region in regions:
        box = region.box
        score = score_of(image.crop(*box), candidate.crop(*box), name)
        worst = min(worst, score - region.needs if better else region.needs - score)
    return worst


def _region_report(regions: Sequence[Region], trial: Trial) -> dict[str, Any]:
    if not regions:
        return {}
    counts: dict[str, int] = {}
    for region in regions:
        counts[region.kind] = counts.get(region.kind, 0) + 1
    return {"tiles": counts, "margin": round(trial.margin, 3)}


def lossless_formats(allowed: Sequence[str]) -> list[Format]:
    return [FORMATS[f] for f in allowed if f in FORMATS and FORMATS[f].lossless]
