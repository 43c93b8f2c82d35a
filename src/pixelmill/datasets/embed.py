"""Embeddings of images: fixed-length, unit-norm vectors whose distances say how alike two
images look, computed from the proxy of :mod:`pixelmill.datasets.features`.

The built-in embedding (:data:`BUILTIN`) needs no model. It is 64 numbers in four blocks,
concatenated and L2-normalised as a whole:

- colour (27): a joint RGB histogram of 3 × 3 × 3 bins, square-rooted (the Hellinger map, so
  that Euclidean distance compares distributions; its norm is 1); it tells dark from bright and
  grey from colourful;
- layout (16): mean luma (0..1) of a 4 × 4 grid of cells less the image's mean, times 2; it
  tells where the light is (sky above, a subject in the middle);
- edges (16): gradient-orientation histograms (8 unsigned orientations, each gradient shared
  between its two nearest, weighted by magnitude) at two scales, the proxy and the proxy shrunk
  4×: the mean magnitude per orientation (levels per pixel), square-rooted, over 3; blur lowers
  the fine scale far more than the coarse, and flat graphics put their edges at 0° and 90°;
- statistics (5): mean luma and its standard deviation (0..1), the share of flat pixels (both
  central differences under 1.5 levels: graphics have large areas of one colour, photographs
  grain), the mean chroma (max − min of RGB, 0..1), and the fine scale's share of the summed
  edge magnitudes of both scales.

It separates photographs from screenshots and graphics, blurred from sharp, dark from bright,
and moves little when an image is recompressed at high quality. It is a few lines of numpy over
the proxy rather than scikit-image's HOG: scikit-image is no dependency of the engine, and HOG
normalises each block, which discards the edge strength that tells blur. Embeddings of a model (any ONNX
model whose manifest's task is ``embed``) are :class:`OnnxEmbedder`.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import pyvips

from pixelmill.config import Settings
from pixelmill.models.registry import ModelFile
from pixelmill.models.runtime import once
from pixelmill.models.vectors import VectorModel
from pixelmill.quality.images import shrunk_to

BUILTIN = "builtin"
LUMA = np.array([0.299, 0.587, 0.114])
BINS = 3
"""Bins per channel of the colour histogram."""
GRID = 4
"""Cells per side of the luma layout."""
ORIENTATIONS = 8
COARSE = 4
"""Shrink of the coarse scale of the edge histograms."""
FLAT = 1.5
"""Central difference (levels) under which a pixel counts as flat."""


class Embedder(Protocol):
    """What makes embeddings: ``dim`` float32 numbers of unit norm from a proxy."""

    name: str
    dim: int

    def __call__(self, proxy: pyvips.Image) -> np.ndarray: ...


class Builtin:
    """The handcrafted embedding described above (no model)."""

    name = BUILTIN
    dim = BINS**3 + GRID * GRID + 2 * ORIENTATIONS + 5

    def __call__(self, proxy: pyvips.Image) -> np.ndarray:
        rgb = proxy.numpy().astype(np.float32)
        luma = rgb @ LUMA.astype(np.float32)
        fine, flat = _orientations(luma)
        coarse, _ = _orientations(_shrink(luma, COARSE))
        fine_energy, coarse_energy = fine.sum(), coarse.sum()
        statistics = np.array([
            luma.mean() / 255, luma.std() / 255, flat,
            (rgb.max(axis=2) - rgb.min(axis=2)).mean() / 255,
            fine_energy / (fine_energy + coarse_energy) if fine_energy + coarse_energy else 0.5,
        ])  # fmt: skip
        edges = np.sqrt(np.concatenate([fine, coarse])) / 3
        return _unit(np.concatenate([_colour(rgb), 2 * _layout(luma / 255), edges, statistics]))


def _colour(rgb: np.ndarray) -> np.ndarray:
    """Hellinger-mapped joint RGB histogram (BINS³ bins)."""
    index = (rgb.astype(np.int32) * BINS // 256) @ np.array([BINS * BINS, BINS, 1])
    counts = np.bincount(index.ravel(), minlength=BINS**3)
    return np.sqrt(counts / counts.sum())


def _layout(luma: np.ndarray) -> np.ndarray:
    """Mean luma of a GRID × GRID grid of cells, less the overall mean (a cell that no pixel
    falls in, in an image narrower than the grid, counts as the mean)."""
    rows = np.arange(luma.shape[0]) * GRID // luma.shape[0]
    cols = np.arange(luma.shape[1]) * GRID // luma.shape[1]
    cell = (rows[:, None] * GRID + cols[None, :]).ravel()
    counts = np.bincount(cell, minlength=GRID * GRID)
    sums = np.bincount(cell, luma.ravel(), GRID * GRID)
    cells = np.where(counts > 0, sums / np.maximum(counts, 1), luma.mean())
    return cells - cells.mean()


def _shrink(luma: np.ndarray, factor: int) -> np.ndarray:
    """Block means of ``factor`` × ``factor`` pixels (a ragged edge dropped)."""
    h, w = luma.shape[0] // factor, luma.shape[1] // factor
    if not h or not w:
        return luma
    return luma[: h * factor, : w * factor].reshape(h, factor, w, factor).mean(axis=(1, 3))


def _orientations(luma: np.ndarray) -> tuple[np.ndarray, float]:
    """Mean gradient magnitude per unsigned orientation (levels per pixel), and the share of
    flat pixels."""
    if min(luma.shape) < 3:
        return np.zeros(ORIENTATIONS), 1.0
    gx = (luma[1:-1, 2:] - luma[1:-1, :-2]) / 2
    gy = (luma[2:, 1:-1] - luma[:-2, 1:-1]) / 2
    magnitude = np.hypot(gx, gy)
    position = (np.arctan2(gy, gx) % np.pi * (ORIENTATIONS / np.pi)).ravel()
    low = np.floor(position)
    share = (position - low) * magnitude.ravel()  # split between the two nearest bins
    low = low.astype(np.int32) % ORIENTATIONS
    histogram = (
        np.bincount(low, magnitude.ravel() - share, ORIENTATIONS)
        + np.bincount((low + 1) % ORIENTATIONS, share, ORIENTATIONS)
    ) / magnitude.size
    flat = float(((np.abs(gx) < FLAT) & (np.abs(gy) < FLAT)).mean())
    return histogram, flat


def _unit(vector: np.ndarray) -> np.ndarray:
    """``vector`` as float32 of unit L2 norm (left as is when it is all zeros)."""
    norm = np.linalg.norm(vector)
    return (vector / norm if norm else vector).astype(np.float32)


class OnnxEmbedder:
    """An ONNX model whose manifest's task is ``embed`` (:class:`VectorModel`), fed the proxy
    resized to the manifest's tile, in its value range; its vectors L2-normalised."""

    def __init__(self, model: ModelFile, settings: Settings) -> None:
        self.model = VectorModel(model, settings)
        self.name = model.manifest.name
        self.dim = self.model.dim

    def __call__(self, proxy: pyvips.Image) -> np.ndarray:
        manifest = self.model.manifest
        image = shrunk_to(proxy, manifest.tile, manifest.tile)
        if manifest.channels == 1:
            image = image.colourspace("b-w")
        low, high = manifest.value_range
        pixels = np.atleast_3d(image.numpy()).astype(np.float32) * ((high - low) / 255) + low
        return _unit(self.model.run(pixels.transpose(2, 0, 1)[None])[0])


_BUILTIN = Builtin()


def embedder(name: str | None, settings: Settings) -> Embedder:
    """The embedder called ``name``: the built-in one (None or ``builtin``), else the model of
    that name, loaded once per process; refused unless its task is ``embed``."""
    if name in (None, BUILTIN):
        return _BUILTIN
    return once("embedder", name, settings, lambda model: OnnxEmbedder(model, settings))
