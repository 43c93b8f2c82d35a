"""Detection over an image of any size, in bounded memory: the image as 8-bit sRGB, read in
bands of tiles at its native scale for objects up to the detector's window, and again shrunk
(recursively) for larger ones, so a 20,000 × 20,000 mosaic is searched tile by tile and a
single large face is still found.

Each tile reads its core and a halo of half the window around it, and keeps what it found
whose centre lies in its core: cores part the image, so every object up to the window lies
whole in the tile that keeps it, as a whole-image run would see it. Objects standing apart are
found as in a whole-image run; in a crowd, a context-sensitive detector (MTCNN's pyramid and
suppression) answers slightly differently to a tile than to the whole (about 93 % of faces
agree on a dense mosaic: benchmarks/RESULTS.md, "Detection"). A box cut
by a tile's edge (a piece of an object larger than the window, or of one that another tile
keeps whole) is dropped when a kept box covers it, else merged with the overlapping boxes of
its class from the neighbouring tiles. The levels' results meet in one last
non-maximum suppression.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyvips

from pixelmill.engine.tiled import bands_of, windows
from pixelmill.models.detect import Detection, Detector, nms

FACES = "faces"
"""The face detector that ``gravity=faces``, ``redact:faces`` and the ``faces`` gate use."""
OVERLAP = 0.4
"""Intersection over union above which two detections of one class from different tiles or
levels are one."""
EDGE = 2.0
"""Pixels from a tile's edge within which a box counts as cut by it."""


@dataclass(frozen=True)
class Found:
    """What a detector found in one image: the detections, in that image's pixels, and the
    image's size (so later steps of other sizes can scale them)."""

    model: str
    width: int
    height: int
    detections: tuple[Detection, ...]

    def count(self, label: str | None = None) -> int:
        return sum(1 for d in self.detections if label is None or d.label == label)


Seen = list[tuple[pyvips.Image, Found]]
"""What the run's detectors found so far, with the image each looked at."""


def as_rgb8(image: pyvips.Image) -> pyvips.Image:
    """``image`` as three 8-bit sRGB bands, any alpha flattened on white."""
    if image.hasalpha():
        image = image.flatten(background=[65535 if image.format == "ushort" else 255] * 3)
    if image.interpretation not in ("srgb", "rgb16", "b-w", "grey16"):
        image = image.colourspace("srgb")
    if image.format == "ushort":
        image = (image >> 8).cast("uchar")
    elif image.format != "uchar":
        image = image.cast("uchar")
    if image.bands == 1:
        image = image.bandjoin([image, image])
    return image[0:3] if image.bands > 3 else image


def find(image: pyvips.Image, detector: Detector, threshold: float | None = None,
         labels: tuple[str, ...] = (), tile: int | None = None) -> list[Detection]:  # fmt: skip
    """What ``detector`` finds in ``image`` (of ``labels`` only, when given), best first.

    ``tile``: the core of a tile at native scale (default: the detector's window × 2); an
    image that fits one tile and its halo is searched whole."""
    rgb = as_rgb8(image)
    window = detector.window if tile is None else max(tile // 2, detector.smallest)
    found = _levels(rgb, detector, threshold, window, 2 * window)
    if labels:
        found = [d for d in found if d.label in labels]
    return found


def _levels(rgb: pyvips.Image, detector: Detector, threshold: float | None, window: int,
            core: int) -> list[Detection]:  # fmt: skip
    halo = window // 2
    if max(rgb.width, rgb.height) <= core + 2 * halo:
        return detector.find(_whole(rgb), threshold)
    found = _tiled(rgb, detector, threshold, window, core, halo)
    factor = detector.smallest / window  # objects larger than the window become found ones
    shrunk = rgb.resize(factor, kernel="linear")
    scale_x, scale_y = rgb.width / shrunk.width, rgb.height / shrunk.height
    coarse = [d.moved(scale_x, scale_y) for d in _levels(shrunk, detector, threshold, window, core)]
    return _merged(found + [d for d in coarse if d.size > window], by_min=False)


def _whole(rgb: pyvips.Image) -> np.ndarray:
    data = rgb.write_to_memory()
    return np.frombuffer(data, np.uint8).reshape(rgb.height, rgb.width, 3)


def _tiled(rgb: pyvips.Image, detector: Detector, threshold: float | None, window: int,
           core: int, halo: int) -> list[Detection]:  # fmt: skip
    rows = windows(rgb.height, core, halo)
    cols = windows(rgb.width, core, halo)
    kept: list[Detection] = []
    cut: list[Detection] = []
    for row, band in zip(rows, bands_of(rgb, rows)):
        for col in cols:
            tile = np.ascontiguousarray(band[:, col.start : col.stop])
            for found in detector.find(tile, threshold, largest=window):
                d = found.moved(1, 1, col.start, row.start)
                cx, cy = (d.box[0] + d.box[2]) / 2, (d.box[1] + d.box[3]) / 2
                edges = (col.start > 0 and d.box[0] <= col.start + EDGE,
                         row.start > 0 and d.box[1] <= row.start + EDGE,
                         col.stop < rgb.width and d.box[2] >= col.stop - EDGE,
                         row.stop < rgb.height and d.box[3] >= row.stop - EDGE)  # fmt: skip
                if any(edges):
                    cut.append(d)
                elif col.core0 <= cx < col.core1 and row.core0 <= cy < row.core1:
                    kept.append(d)
    whole = [d for d in cut if not any(k.label == d.label and _covered(d.box, k.box)
                                       for k in kept)]  # fmt: skip
    return kept + _joined(whole)


def _joined(cut: list[Detection]) -> list[Detection]:
    """Boxes cut by tile edges, each merged with those of its class it overlaps (their union,
    the best score and landmarks)."""
    groups: list[list[Detection]] = []
    for d in sorted(cut, key=lambda d: -d.score):
        for group in groups:
            if any(g.label == d.label and _touch(g.box, d.box) for g in group):
                group.append(d)
                break
        else:
            groups.append([d])
    joined = []
    for group in groups:
        best = group[0]
        box = (min(g.box[0] for g in group), min(g.box[1] for g in group),
               max(g.box[2] for g in group), max(g.box[3] for g in group))  # fmt: skip
        joined.append(Detection(box, best.score, best.label, best.landmarks))
    return joined


def _covered(part: tuple[float, ...], whole: tuple[float, ...]) -> bool:
    """Whether most of ``part`` lies in ``whole`` (a piece of an object another tile kept)."""
    w = min(part[2], whole[2]) - max(part[0], whole[0])
    h = min(part[3], whole[3]) - max(part[1], whole[1])
    area = (part[2] - part[0]) * (part[3] - part[1])
    return w > 0 and h > 0 and w * h >= 0.5 * area


def _touch(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _merged(found: list[Detection], by_min: bool) -> list[Detection]:
    """One detection per object of a class: non-maximum suppression over all of them."""
    if not found:
        return []
    labels = sorted({d.label for d in found})
    boxes = np.array([d.box for d in found], np.float64)
    offset = np.array([labels.index(d.label) for d in found], np.float64)[:, None]
    boxes = boxes + offset * (boxes.max() + 1)
    scores = np.array([d.score for d in found])
    return [found[i] for i in nms(boxes, scores, OVERLAP, by_min)]
