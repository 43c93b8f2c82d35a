"""A smaller stand-in for a large image in the quality search: whole 256-pixel tiles of it
joined edge to edge, a quarter of its area (at least 16 tiles), every tile that must meet a
value of its own (faces, objects, edges: :mod:`pixelmill.compress.regions`) first, the rest
spread evenly over the image. The search finds its quality on the sample, then confirms it
at full size, searching on there while it fails (:func:`pixelmill.compress.target.search`),
so a sample never passes an image that fails.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyvips

from pixelmill.compress.regions import Region

FROM = 4_000_000
"""Pixels from which the search starts on a sample."""
SHARE = 0.25
TILE = 256


@dataclass(frozen=True)
class Sample:
    image: pyvips.Image
    regions: tuple[Region, ...]
    share: float
    """The sample's area over the image's."""


def sampled(image: pyvips.Image, regions: Sequence[Region]) -> Sample | None:
    """The sample of ``image`` with its regions moved onto it, or None when the image is
    small enough to search whole."""
    rows, cols = image.height // TILE, image.width // TILE
    if image.width * image.height < FROM or rows * cols < 32:
        return None
    wanted = max(16, round(SHARE * rows * cols))
    across = math.ceil(math.sqrt(wanted))
    wanted = across * (wanted // across)  # whole rows: no filler in the mosaic
    kinds = {(r, c): _kind(r, c, regions) for r in range(rows) for c in range(cols)}
    first = [cell for cell, kind in kinds.items() if kind is not None and kind[0] != "background"]
    rest = [cell for cell in kinds if cell not in set(first)]
    spread = [rest[round(i)] for i in np.linspace(0, len(rest) - 1, max(0, wanted - len(first)))]
    cells = (first[: wanted] + spread)[:wanted]
    tiles, moved = [], []
    for index, (r, c) in enumerate(cells):
        tiles.append(image.crop(c * TILE, r * TILE, TILE, TILE))
        kind = kinds[(r, c)]
        if kind is not None:
            box = ((index % across) * TILE, (index // across) * TILE, TILE, TILE)
            moved.append(Region(box, kind[0], kind[1]))
    mosaic = pyvips.Image.arrayjoin(tiles, across=across).copy_memory()
    return Sample(mosaic, tuple(moved), len(cells) * TILE * TILE / (image.width * image.height))


def _kind(row: int, col: int, regions: Sequence[Region]) -> tuple[str, float] | None:
    """The kind and need of the region overlapping the tile most (None: none does)."""
    x0, y0 = col * TILE, row * TILE
    best, most = None, 0
    for region in regions:
        left, top, width, height = region.box
        w = min(x0 + TILE, left + width) - max(x0, left)
        h = min(y0 + TILE, top + height) - max(y0, top)
        if w > 0 and h > 0 and (w * h > most or region.kind in ("face", "object")):
            best, most = (region.kind, region.needs), w * h
            if region.kind in ("face", "object"):
                break
    return best
