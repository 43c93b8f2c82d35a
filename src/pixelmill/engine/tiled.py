"""Running a model over an image of any size: band by band, in bounded memory, with no seams.

Rows are pulled from the lazy libvips graph strictly top to bottom (so sequential sources
work); each band is cut into tiles of one shape whose windows reach ``halo`` pixels past their
core (shifted inwards at the image's edges, never padded), the tiles run in batches, and each
tile's core is kept. With a halo of at least the model's receptive field every output pixel
sees exactly the input it would see in whole-image inference, so tiled equals untiled. Finished
bands are handed on (see :mod:`pixelmill.engine.bandsink`): streamed into the steps after the
model, or spooled to disk when one of them needs random access; memory grows with the image's
width times the band height, never with its area. The next band is fetched on a thread while
the model runs on the current one.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pyvips

from pixelmill.engine.imaging import rescale
from pixelmill.engine.memory import return_large_blocks
from pixelmill.errors import ModelError
from pixelmill.models.manifest import Manifest
from pixelmill.models.runtime import Session

MIN_TILE = 32
MAX_BATCH = 16
TENSOR_FACTOR = 3.0
"""What onnxruntime holds for a batch of tiles, as a multiple of the two largest tensors that
shape inference finds: measured at 1.1–2.8× for the bundled models, batches of 1 to 16."""
CALL_PIXELS = 1 << 16
"""Window pixels one inference call needs on the CPU to run at full speed: per output pixel a
72² window takes 1.8× the time of a 264² one, while 4 windows of 136² or 16 of 72² come within
15 % of it (sr-x2, two threads)."""
MAX_WINDOW_PIXELS = 1 << 19
"""Largest window (about 724²) the planner takes on the CPU: larger ones cost more per pixel
(caches), more than their smaller share of overlap saves: a model reaching 20 pixels ran 18 %
slower with 1064² windows than with 552² ones (``benchmarks/bench_tile_plan.py``)."""
SPEED_GAIN = 0.05
"""A larger tile is chosen only if it does this much less work per output pixel."""
EXECUTOR_SHARE = 0.5
"""Share of ``max_memory`` the executor plans to hold (its bands and the model's tensors); the
rest is left to the decoder, the steps after the model and the encoder."""


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
    blend: int = 0
    """Half-width of the cross-fade between tiles: 0 (an exact crop) when the halo covers the
    receptive field, else the halo."""

    def describe(self, name: str) -> str:
        fade = " (blended: less than the receptive field)" if self.blend else ""
        return f"model {name}: tile {self.tile}, overlap {self.halo}{fade}, batch {self.batch}"


def windows(length: int, core: int, halo: int) -> list[Window]:
    """Cores of ``core`` pixels covering ``length``, each with a window reaching ``halo``
    beyond it, all windows the same size and inside ``[0, length)``; window starts never
    decrease."""
    size = min(core + 2 * halo, length)
    return [
        Window(c0, min(c0 + core, length), start := min(max(c0 - halo, 0), length - size),
               start + size)
        for c0 in range(0, length, core)
    ]  # fmt: skip


def plan_for(manifest: Manifest, working_bytes: float, width: int, tile: int | None,
             overlap: int | None, batch: int | None, *, budget: float,
             pixel_bytes: int = 3, on_gpu: bool = False) -> Plan:  # fmt: skip
    """The tile, overlap and batch for an image ``width`` wide, those the request gives kept.

    The tile is the smallest whose work per output pixel (its window's area over its core's)
    comes within :data:`SPEED_GAIN` of the least any tile up to the manifest's allows; a tile
    whose plan (:func:`plan_bytes`) would pass ``budget``, or on the CPU whose window would pass
    :data:`MAX_WINDOW_PIXELS`, is not considered. On the CPU the batch is what fills
    :data:`CALL_PIXELS`; on a GPU, whose tensors are not in this memory, a whole band's tiles
    up to :data:`MAX_BATCH`; it is halved until the plan fits."""
    align = manifest.align
    halo = manifest.overlap if overlap is None else -(-overlap // align) * align

    def aligned(side: int) -> int:
        return max(align, -(-side // align) * align)

    def batch_for(side: int) -> int:
        if batch:
            return batch
        per_band = -(-width // side)
        if on_gpu:
            return max(1, min(MAX_BATCH, per_band))
        return max(1, min(MAX_BATCH, per_band, -(-CALL_PIXELS // (side + 2 * halo) ** 2)))

    def fits(side: int, count: int) -> bool:
        tensors = 0.0 if on_gpu else working_bytes
        return plan_bytes(side, halo, count, manifest.scale, width, pixel_bytes, tensors) <= budget

    if tile is not None:
        sides = [aligned(tile)]
    else:
        sides = sorted({aligned(side) for side in _doublings(MIN_TILE, manifest.tile)})
        sides = [side for side in sides if fits(side, 1) and (
            on_gpu or (side + 2 * halo) ** 2 <= MAX_WINDOW_PIXELS)] or sides[:1]
    least = min(_work(side, halo) for side in sides)
    side = next(side for side in sides if _work(side, halo) <= least * (1 + SPEED_GAIN))
    count = batch_for(side)
    while count > 1 and not batch and not fits(side, count):
        count //= 2
    return Plan(side, halo, count, halo if halo < manifest.overlap else 0)


def plan_bytes(tile: int, halo: int, batch: int, scale: int, width: int, pixel_bytes: int,
               working_bytes: float) -> float:  # fmt: skip
    """Memory a plan holds for an image ``width`` wide: the window rows of a band and the next
    (prefetched), an output band, and the model's tensors for a batch."""
    window = tile + 2 * halo
    rows = (2 * window + window * scale**2) * width * pixel_bytes
    return rows + TENSOR_FACTOR * batch * window**2 * working_bytes


def _doublings(low: int, high: int) -> list[int]:
    """``low``, twice it, … while under ``high``, and ``high``."""
    sides = [low]
    while sides[-1] * 2 < high:
        sides.append(sides[-1] * 2)
    return [*sides, high] if high > low else [low]


def _work(tile: int, halo: int) -> float:
    """Pixels a tile computes per pixel it delivers."""
    return ((tile + 2 * halo) / tile) ** 2


class RowReader:
    """Rows of a lazy image, each fetched once, in order."""

    def __init__(self, image: pyvips.Image) -> None:
        self._region = pyvips.Region.new(image)
        self._shape = (image.width, image.bands)
        self.dtype = np.uint16 if image.format == "ushort" else np.uint8

    def read(self, y0: int, y1: int) -> np.ndarray:
        if y1 <= y0:
            return np.empty((0, *self._shape), self.dtype)
        data = self._region.fetch(0, y0, self._shape[0], y1 - y0)
        return np.frombuffer(data, self.dtype).reshape(y1 - y0, *self._shape)


def bands_of(image: pyvips.Image, rows: list[Window]) -> Iterator[np.ndarray]:
    """The window rows of each band, in one buffer used again for every band (so a window is
    valid until the next is asked for); the next band's rows are fetched on a thread while
    the caller works."""
    reader = RowReader(image)
    height = max(row.stop - row.start for row in rows)
    buffer = np.empty((height, image.width, image.bands), reader.dtype)
    held_from, held_to = 0, 0
    with ThreadPoolExecutor(1) as prefetch:
        pending = prefetch.submit(reader.read, 0, rows[0].stop)
        for index, row in enumerate(rows):
            kept = held_to - row.start  # window starts are non-decreasing (see windows)
            buffer[:kept] = buffer[row.start - held_from : held_to - held_from]
            fresh = pending.result()
            buffer[kept : kept + len(fresh)] = fresh
            held_from, held_to = row.start, row.stop
            if index + 1 < len(rows):
                pending = prefetch.submit(reader.read, row.stop, rows[index + 1].stop)
            yield buffer[: row.stop - row.start]


class ModelRun:
    """A model over one image, ready to give its output band by band.

    The image is prepared for the model (grey made RGB for a colour model, alpha kept as the
    last band); :meth:`output_bands` yields the output rows top to bottom, 8- or 16-bit with
    the alpha resized beside the model; :meth:`finish` turns the image read back from them
    into what the pipeline expects (grey again, the source's interpretation)."""

    def __init__(self, image: pyvips.Image, session: Session, plan: Plan) -> None:
        return_large_blocks()
        manifest = session.manifest
        self.session, self.plan, self.scale = session, plan, manifest.scale
        self.alpha = image.hasalpha()
        self.depth = 16 if image.format == "ushort" else 8
        colour = image.extract_band(0, n=image.bands - 1) if self.alpha else image
        self.grey = colour.bands == 1 and manifest.bands == 3
        if self.grey:
            colour = colour.colourspace("rgb16" if self.depth == 16 else "srgb")
        self.source = colour.bandjoin(image.extract_band(image.bands - 1)) if self.alpha else colour
        align = manifest.align
        if image.width % align or image.height % align:  # edges copied out to whole steps
            self.source = self.source.embed(0, 0, -(-image.width // align) * align,
                                            -(-image.height // align) * align, extend="copy")
        self.interpretation = image.interpretation
        self.width, self.height = image.width * self.scale, image.height * self.scale
        self.bands = self.source.bands
        self.source_dtype = np.uint16 if self.depth == 16 else np.uint8
        self.seconds = 0.0
        """Time spent in inference so far."""

    def output_bands(self, progress: Callable[[float], None] | None = None
                     ) -> Iterator[np.ndarray]:  # fmt: skip
        """The output, rows × width × bands, a band at a time from the top, each valid until
        the next is asked for; where overlaps are blended, each band's lower edge waits for
        the next band to be cross-faded."""
        plan, scale = self.plan, self.scale
        rows = windows(self.source.height, plan.tile, plan.halo)
        cols = windows(self.source.width, plan.tile, plan.halo)
        row_zones, col_zones = zones(rows, plan.blend), zones(cols, plan.blend)
        extents = [(row.core0 - above, row.core1 + below)
                   for row, above, below in zip(rows, row_zones, row_zones[1:])]  # fmt: skip
        tallest = max(bottom - top for top, bottom in extents) * scale
        buffer = np.empty((tallest, self.source.width * scale, self.bands), self.source_dtype)
        carry, rows_left = None, self.height
        for index, (row, window) in enumerate(zip(rows, bands_of(self.source, rows))):
            top, bottom = extents[index]
            band = buffer[: (bottom - top) * scale]
            self._band(band, window, row.start, top, cols, col_zones)
            if carry is not None:
                band[: len(carry)] = blend(carry, band[: len(carry)], axis=0)
            keep = len(band) - 2 * row_zones[index + 1] * scale
            carry = band[keep:].copy() if keep < len(band) else None
            yield band[: min(keep, rows_left), : self.width]  # without the alignment's edge
            rows_left -= keep
            if progress is not None:
                progress(100.0 * (index + 1) / len(rows))

    def finish(self, out: pyvips.Image) -> pyvips.Image:
        if self.grey:
            alpha = out.extract_band(3) if self.alpha else None
            out = out.extract_band(0, n=3).colourspace("grey16" if self.depth == 16 else "b-w")
            out = out.bandjoin(alpha) if alpha is not None else out
        return out.copy(interpretation=self.interpretation)

    def _band(self, out: np.ndarray, window: np.ndarray, start: int, top: int,
              cols: list[Window], col_zones: list[int]) -> None:  # fmt: skip
        """Fill ``out`` with the output rows from ``top`` (input coordinates) of the band read
        from row ``start``: the model over its tiles a batch at a time, each tile's part written
        straight into the band and cross-faded with its left neighbour where they overlap."""
        scale = self.scale
        colour = window[:, :, :-1] if self.alpha else window
        y0 = (top - start) * scale
        y1 = y0 + len(out)
        for first in range(0, len(cols), self.plan.batch):
            group = cols[first : first + self.plan.batch]
            tiles = np.stack([colour[:, c.start : c.stop] for c in group])
            began = time.perf_counter()
            outputs = run_tiles(self.session, tiles, self.plan.halo)
            self.seconds += time.perf_counter() - began
            for offset, (col, tile) in enumerate(zip(group, outputs)):
                left, right = col_zones[first + offset], col_zones[first + offset + 1]
                x0, x1 = (col.core0 - left) * scale, (col.core1 + right) * scale
                part = tile[y0:y1, x0 - col.start * scale : x1 - col.start * scale]
                fade = 2 * left * scale
                out[:, x0 + fade : x1, : part.shape[2]] = part[:, fade:]
                if fade:
                    out[:, x0 : x0 + fade, : part.shape[2]] = blend(
                        out[:, x0 : x0 + fade, : part.shape[2]], part[:, :fade], axis=1)
        if self.alpha:
            out[:, :, -1] = self._alpha(window[:, :, -1], y0, y1)

    def _alpha(self, alpha: np.ndarray, y0: int, y1: int) -> np.ndarray:
        """Output rows ``y0``..``y1`` of the band's alpha, resized with libvips."""
        if self.scale == 1:
            return alpha[y0:y1]
        resized = rescale(pyvips.Image.new_from_array(alpha), self.scale, self.scale, "lanczos3")
        data = resized.crop(0, y0, resized.width, y1 - y0).write_to_memory()
        return np.frombuffer(data, alpha.dtype).reshape(y1 - y0, resized.width)


def zones(cuts: list[Window], blend_radius: int) -> list[int]:
    """Half-widths of the cross-fades at the borders between cores (0 before the first core
    and after the last), each kept within half of the cores beside it."""
    inner = [min(blend_radius, (a.core1 - a.core0) // 2, (b.core1 - b.core0) // 2)
             for a, b in itertools.pairwise(cuts)]  # fmt: skip
    return [0, *inner, 0]


def blend(first: np.ndarray, second: np.ndarray, axis: int) -> np.ndarray:
    """A linear cross-fade from ``first`` to ``second`` along ``axis``; the weights of the two
    sum to one at every pixel."""
    length = first.shape[axis]
    weight = ((np.arange(length, dtype=np.float32) + 0.5) / length).reshape(
        [length if a == axis else 1 for a in range(first.ndim)])  # fmt: skip
    mixed = first * (1 - weight) + second * weight
    return np.rint(mixed).astype(first.dtype)


def run_tiles(session: Session, tiles: np.ndarray, halo: int) -> np.ndarray:
    """Run a batch of tiles. Out of memory, the batch runs again in halves, and a single tile
    in two overlapping halves of its width; any other failure is an error."""
    try:
        return session.run(tiles)
    except Exception as exc:  # noqa: BLE001  # onnxruntime raises its own types
        text = str(exc)
        if not (isinstance(exc, MemoryError) or "allocat" in text.lower()):
            raise ModelError(f"model {session.manifest.name}: inference failed on a batch of "
                             f"{len(tiles)} tiles of {tiles.shape[1]}×{tiles.shape[2]}: {text}"
                             ) from None  # fmt: skip
        if len(tiles) > 1:
            half = len(tiles) // 2
            return np.concatenate([run_tiles(session, tiles[:half], halo),
                                   run_tiles(session, tiles[half:], halo)])  # fmt: skip
        middle, scale = tiles.shape[2] // 2, session.manifest.scale
        if middle - halo < MIN_TILE // 2:
            raise ModelError(f"model {session.manifest.name}: out of memory on one tile of "
                             f"{tiles.shape[1]}×{tiles.shape[2]}: {text}") from None  # fmt: skip
        left = run_tiles(session, tiles[:, :, : middle + halo], halo)[:, :, : middle * scale]
        right = run_tiles(session, tiles[:, :, middle - halo :], halo)[:, :, halo * scale :]
        return np.concatenate([left, right], axis=2)
