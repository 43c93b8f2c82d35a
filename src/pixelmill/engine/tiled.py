"""Running a model over an image of any size: band by band, in bounded memory, with no seams.

Rows are pulled from the lazy libvips graph strictly top to bottom (so sequential sources
work); each band is cut into tiles of one shape whose windows reach ``halo`` pixels past their
core (shifted inwards at the image's edges, never padded), the tiles run in batches, and each
tile's core is kept. With a halo of at least the model's receptive field every output pixel
sees exactly the input it would see in whole-image inference, so tiled equals untiled. Finished
bands go to a PNG spool on disk, read back lazily by libvips for the following steps; memory
grows with the image's width times the band height, never with its area. The next band is
fetched on a thread while the model runs on the current one.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyvips

from pixelmill.engine.pngstream import PngBandWriter
from pixelmill.errors import ModelError
from pixelmill.models.runtime import Session

MIN_TILE = 32
MAX_BATCH = 16
MEMORY_SHARE = 0.25
"""Share of the free memory that one batch of tiles may plan to use."""
ACTIVATION_FLOATS = 64
"""Floats per input pixel assumed for a model's intermediate activations."""


@dataclass(frozen=True)
class Window:
    """Along one axis: the core a tile delivers and the window it reads."""

    core0: int
    core1: int
    start: int
    stop: int


@dataclass(frozen=True)
class Plan:
    tile: int
    halo: int
    batch: int

    def describe(self, name: str) -> str:
        return f"model {name}: tile {self.tile}, overlap {self.halo}, batch {self.batch}"


def windows(length: int, core: int, halo: int) -> list[Window]:
    """Cores of ``core`` pixels covering ``length``, each with a window reaching ``halo``
    beyond it, all windows the same size and inside ``[0, length)``."""
    size = min(core + 2 * halo, length)
    return [
        Window(c0, min(c0 + core, length), start := min(max(c0 - halo, 0), length - size),
               start + size)
        for c0 in range(0, length, core)
    ]  # fmt: skip


def plan_for(session: Session, width: int, tile: int | None, overlap: int | None,
             batch: int | None) -> Plan:  # fmt: skip
    """Tile side from the request, else the manifest's preference within the free memory."""
    manifest = session.manifest
    halo = manifest.receptive_field if overlap is None else overlap
    batch = batch or max(1, min(MAX_BATCH, -(-width // (tile or manifest.tile))))
    if tile is None:
        free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        per_pixel = 4 * (manifest.channels * (1 + manifest.scale**2) + ACTIVATION_FLOATS)
        tile = manifest.tile
        while tile > MIN_TILE and batch * (tile + 2 * halo) ** 2 * per_pixel > MEMORY_SHARE * free:
            tile //= 2
    return Plan(tile, halo, batch)


class RowReader:
    """Rows of a lazy image, each fetched once, in order."""

    def __init__(self, image: pyvips.Image) -> None:
        self._region = pyvips.Region.new(image)
        self._shape = (image.width, image.bands)
        self._dtype = np.uint16 if image.format == "ushort" else np.uint8

    def read(self, y0: int, y1: int) -> np.ndarray:
        if y1 <= y0:
            return np.empty((0, *self._shape), self._dtype)
        data = self._region.fetch(0, y0, self._shape[0], y1 - y0)
        return np.frombuffer(data, self._dtype).reshape(y1 - y0, *self._shape)


def bands_of(image: pyvips.Image, rows: list[Window]) -> Iterator[np.ndarray]:
    """The window rows of each band, the next band prefetched while the caller works."""
    reader = RowReader(image)
    kept, kept_from = reader.read(0, 0), 0
    with ThreadPoolExecutor(1) as prefetch:
        pending = prefetch.submit(reader.read, 0, rows[0].stop)
        for index, row in enumerate(rows):
            window = np.concatenate([kept[row.start - kept_from :], pending.result()])
            if index + 1 < len(rows):
                pending = prefetch.submit(reader.read, row.stop, rows[index + 1].stop)
            kept, kept_from = window, row.start
            yield window


def apply_model(
    image: pyvips.Image,
    session: Session,
    plan: Plan,
    spool: Path,
    progress: Callable[[float], None] | None = None,
    access: str = "sequential",
) -> pyvips.Image:
    """The model's output as a lazy image read from PNG spools in ``spool`` (which must live
    until the image has been consumed), with libvips ``access`` for the steps that follow. 8- and 16-bit depth is kept; grey images go through an
    RGB model as RGB and come back grey; alpha is resized beside the model."""
    manifest = session.manifest
    scale = manifest.scale
    has_alpha = image.hasalpha()
    colour = image.extract_band(0, n=image.bands - 1) if has_alpha else image
    grey = colour.bands == 1
    if grey and manifest.channels == 3:
        colour = colour.colourspace("rgb16" if image.format == "ushort" else "srgb")
    source = colour.bandjoin(image.extract_band(image.bands - 1)) if has_alpha else colour
    depth = 16 if image.format == "ushort" else 8
    width, height = image.width, image.height
    rows, cols = windows(height, plan.tile, plan.halo), windows(width, plan.tile, plan.halo)
    colour_path, alpha_path = spool / "model.png", spool / "alpha.png"
    with open(colour_path, "wb") as colour_out, open(alpha_path, "wb") as alpha_out:
        writer = PngBandWriter(colour_out, width * scale, height * scale, colour.bands, depth)
        alpha_writer = PngBandWriter(alpha_out, width, height, 1, depth) if has_alpha else None
        for index, (row, window) in enumerate(zip(rows, bands_of(source, rows))):
            core = window[row.core0 - row.start : row.core1 - row.start]
            if alpha_writer is not None:
                alpha_writer.write(core[:, :, -1:])
                window = window[:, :, :-1]
            writer.write(_run_band(session, window, row, cols, plan.batch, depth))
            if progress is not None:
                progress(100.0 * (index + 1) / len(rows))
        writer.close()
        if alpha_writer is not None:
            alpha_writer.close()
    out = pyvips.Image.new_from_file(str(colour_path), access=access)
    if grey and manifest.channels == 3:
        out = out.colourspace("grey16" if depth == 16 else "b-w")
    if has_alpha:
        alpha = pyvips.Image.new_from_file(str(alpha_path), access=access)
        out = out.bandjoin(alpha.resize(scale, kernel="lanczos3") if scale > 1 else alpha)
    return out.copy(interpretation=image.interpretation)


def _run_band(session: Session, window: np.ndarray, row: Window, cols: list[Window],
              batch: int, depth: int) -> np.ndarray:  # fmt: skip
    """One band of output: the model over the tiles of the window rows, a batch at a time,
    each tile's core written straight into the 8/16-bit band (no float copy of the band)."""
    manifest = session.manifest
    scale, (low, high) = manifest.scale, manifest.value_range
    peak = 65535.0 if depth == 16 else 255.0
    bands = window.shape[2]
    per_channel = manifest.channels == 1 and bands == 3
    out = np.empty(((row.core1 - row.core0) * scale, window.shape[1] * scale, bands),
                   np.uint16 if depth == 16 else np.uint8)  # fmt: skip
    top, bottom = (row.core0 - row.start) * scale, (row.core1 - row.start) * scale
    for first in range(0, len(cols), batch):
        group = cols[first : first + batch]
        tiles = np.stack([window[:, c.start : c.stop] for c in group]).astype(np.float32)
        tiles = tiles.transpose(0, 3, 1, 2) * ((high - low) / peak) + low
        if per_channel:
            tiles = tiles.reshape(-1, 1, *tiles.shape[2:])
        outputs = _run(session, tiles)
        if per_channel:
            outputs = outputs.reshape(len(group), bands, *outputs.shape[2:])
        outputs -= low  # in place, to spare band-sized temporaries
        outputs *= peak / (high - low)
        np.rint(outputs, out=outputs)
        np.clip(outputs, 0, peak, out=outputs)
        for col, tile in zip(group, outputs):
            left, right = (col.core0 - col.start) * scale, (col.core1 - col.start) * scale
            out[:, col.core0 * scale : col.core1 * scale] = tile[:, top:bottom,
                                                                 left:right].transpose(1, 2, 0)
    return out


def _run(session: Session, tiles: np.ndarray) -> np.ndarray:
    """Run a batch; out of memory, run it again in halves; any other failure is an error."""
    try:
        return session.run(np.ascontiguousarray(tiles))
    except Exception as exc:
        text = str(exc)
        out_of_memory = isinstance(exc, MemoryError) or "allocat" in text.lower()
        if out_of_memory and len(tiles) > 1:
            half = len(tiles) // 2
            return np.concatenate([_run(session, tiles[:half]), _run(session, tiles[half:])])
        raise ModelError(f"model {session.manifest.name}: inference failed on a batch of "
                         f"{len(tiles)} tiles of {tiles.shape[2]}×{tiles.shape[3]}: {text}") from None
