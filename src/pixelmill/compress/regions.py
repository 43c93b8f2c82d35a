"""Where a viewer looks: an image parted into tiles of about :data:`TILE` pixels, each marked
``face`` or ``object`` (it overlaps a detection), ``edges`` (strong edges or text: its mean
luma gradient is at least :data:`EDGES`), or ``background`` (the rest: smooth, low saliency).

Faces and objects must meet the target on their own; with a relaxed ``background`` value,
edges must too and background tiles need only that value. Without one, the whole image meets
the target on average, and faces and objects each as well.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyvips

TILE = 256
EDGES = 12.0
"""Mean luma gradient (Sobel, 8-bit grey levels) from which a tile holds edges or text."""


@dataclass(frozen=True)
class Region:
    box: tuple[int, int, int, int]
    """left, top, width, height in pixels."""
    kind: str
    needs: float
    """The score it must reach."""


def cuts(length: int, tile: int = TILE) -> list[tuple[int, int]]:
    """About ``tile``-pixel parts of ``length`` (start, size), none smaller than half a tile."""
    parts = max(1, round(length / tile))
    edges = [round(i * length / parts) for i in range(parts + 1)]
    return [(a, b - a) for a, b in itertools.pairwise(edges)]


def regions_of(image: pyvips.Image, boxes: Sequence[tuple[float, float, float, float]],
               labels: Sequence[str], target: float, background: float | None) -> list[Region]:  # fmt: skip
    """The tiles that must meet a value of their own (see the module's docstring);
    ``boxes``: detections in the image's pixels, with their classes in ``labels``."""
    rows, cols = cuts(image.height), cuts(image.width)
    busy = _gradients(image, rows, cols) if background is not None else None
    found = []
    for i, (top, height) in enumerate(rows):
        for j, (left, width) in enumerate(cols):
            hit = [label for (x0, y0, x1, y1), label in zip(boxes, labels)
                   if x0 < left + width and left < x1 and y0 < top + height and top < y1]
            box = (left, top, width, height)
            if hit:
                found.append(Region(box, "face" if "face" in hit else "object", target))
            elif busy is not None and background is not None:
                edgy = busy[i, j] >= EDGES
                found.append(Region(box, "edges" if edgy else "background",
                                    target if edgy else background))  # fmt: skip
    return found


def _gradients(image: pyvips.Image, rows: list[tuple[int, int]],
               cols: list[tuple[int, int]]) -> np.ndarray:  # fmt: skip
    """The mean luma gradient of each tile."""
    luma = image.colourspace("b-w")[0] if image.bands >= 3 else image[0]
    if luma.format == "ushort":
        luma = luma / 257
    edges = luma.cast("uchar").sobel()
    out = np.zeros((len(rows), len(cols)))
    for i, (top, height) in enumerate(rows):
        for j, (left, width) in enumerate(cols):
            out[i, j] = edges.crop(left, top, width, height).avg()
    return out
