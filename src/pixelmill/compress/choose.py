"""Choosing the format too (``encode:auto:target=…``): the target search run in each allowed
format, the smallest file that meets the target kept. Graphics and screenshots (as the
content-kind classifier sees them) also try lossless WebP and PNG, which often beat lossy
coding on flat colours and text."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pyvips

from pixelmill.codecs import save
from pixelmill.compress.regions import Region
from pixelmill.compress.target import Choice, decoded, encoded, score_of, search
from pixelmill.errors import PipelineError
from pixelmill.pipeline.formats import FORMATS, Format
from pixelmill.pipeline.kinds import Gate

LOSSY = ("avif", "webp", "jpeg")
"""What ``encode:auto:target=`` tries unless told (``formats=``), smallest first in most
cases."""
FLAT = ("graphic", "screenshot")
"""Content kinds for which lossless coding is tried as well."""

Prepare = Callable[[Format], tuple[pyvips.Image, dict[str, Any]]]
"""The image converted for a format, and that format's encoder options."""


def best(prepare: Prepare, formats: Sequence[str], target: Gate, regions: Sequence[Region],
         lossless: bool, flat: bool) -> tuple[Choice, list[Choice]]:  # fmt: skip
    """The smallest encoding meeting ``target`` over ``formats`` (lossless WebP or PNG too
    when ``flat``), and every candidate tried; when none meets it, the best-scoring one. A
    format that cannot hold the image (alpha in JPEG) is passed over."""
    tried: list[Choice] = []
    refused: PipelineError | None = None
    for name in formats:
        fmt = FORMATS[name]
        if not save.encoder_available(name) or fmt.quality is None:
            continue
        try:
            image, options = prepare(fmt)
        except PipelineError as exc:
            refused = exc
            continue
        tried.append(search(image, fmt, target, options, regions, lossless))
    if not tried and not flat and refused is not None:
        raise refused
    if flat:
        for name in ("webp", "png"):
            if name in formats or name == "png":
                tried.append(_lossless(prepare, FORMATS[name], target))
    met = [c for c in tried if c.met]
    if met:
        return min(met, key=lambda c: c.bytes), tried
    return max(tried, key=lambda c: c.score), tried


def _lossless(prepare: Prepare, fmt: Format, target: Gate) -> Choice:
    image, options = prepare(fmt)
    if fmt.name != "png":
        options = {**options, "lossless": True}
    data = encoded(image, fmt, options)
    score = score_of(image, decoded(data), target.metric)
    return Choice(fmt.name, None, score, str(target), target.passes(score), 1, len(data),
                  lossless=True, data=data)  # fmt: skip
