"""What the review screen's viewer shows: any region of an image of any size, scaled to the
reviewer's screen, cut in milliseconds from a tiled pyramid of the image made once.

A browser never gets a whole 400-megapixel image. The first time an image is looked at, it is
decoded once (sequentially, with the engine's limits: size, decompression bombs, strict
decoding) into a pyramidal, tiled TIFF (JPEG tiles of 256 pixels, each level half the one
before) in the data folder; a region is then read from the smallest level that still has the
pixels it needs, so zooming around costs a few tiles, never a decode. Regions are given in
fractions of the image, so a source and its upscaled output line up. Pyramids are kept up to a
budget of bytes, the least recently used removed first (use is marked in a pyramid's access
time, set explicitly, so its modification time stays the moment it was made).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import queue
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

import pyvips

from pixelmill import storage
from pixelmill.codecs import classify, open_source, to_srgb
from pixelmill.codecs.colour import to_depth
from pixelmill.config import Settings
from pixelmill.errors import PixelmillError, UsageError

LOG = logging.getLogger("pixelmill.review")
MAX_SIDE = 2048
"""The most pixels a region's answer has on a side."""
TILE = 256
QUALITY = 85
BUDGET = 8 * 1024**3
"""Bytes of pyramids kept by default."""
BIGTIFF = 2**31
"""Bytes of pixels from which a pyramid is a BigTIFF (a TIFF's offsets end at 4 GiB; its JPEG
tiles are far smaller than the pixels, so this is safe with room to spare)."""
WARM_QUEUE = 16
"""Images waiting to be prepared in the background at most (more are dropped)."""
IDLE = 5.0
"""Seconds the background thread waits for more images before it ends."""


@dataclass(frozen=True)
class Prepared:
    """An image's pyramid: its path, and the size of its full-resolution level."""

    path: str
    width: int
    height: int
    levels: int


class Previews:
    """Pyramids of images in ``folder`` (default: ``review/pyramids`` of the data folder)."""

    def __init__(self, settings: Settings, folder: str | None = None,
                 budget: int = BUDGET) -> None:  # fmt: skip
        self.settings = settings
        self.folder = folder or os.path.join(settings.data_folder, "review", "pyramids")
        self.budget = budget
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._waiting: queue.Queue[str] = queue.Queue(WARM_QUEUE)
        self._warmer: threading.Thread | None = None

    def prepare(self, uri: str) -> Prepared:
        """The pyramid of the image at ``uri``, made when missing (once, however many threads
        or processes ask)."""
        loc = storage.locate(uri)
        path = os.path.join(self.folder, _name(loc) + ".tif")
        with self._lock(path):
            if not os.path.exists(path):
                self._make(loc, path)
                self._evict(keep=path)
        _used(path)
        first = pyvips.Image.new_from_file(path, access="sequential")
        levels = first.get("n-pages") if "n-pages" in first.get_fields() else 1
        return Prepared(path, first.width, first.height, levels)

    def size(self, uri: str) -> tuple[int, int] | None:
        """The image's width and height, upright, from its header (None when unreadable)."""
        try:
            with open_source(storage.locate(uri), self.settings) as source:
                return source.upright_size
        except PixelmillError:
            return None

    def crop(self, uri: str, left: float, top: float, width: float, height: float,
             size: int) -> bytes:  # fmt: skip
        """A JPEG of the region (fractions of the image) with its longer side at most ``size``
        (and :data:`MAX_SIDE`) pixels, never enlarged past the image's own pixels."""
        if not (0 <= left < 1 and 0 <= top < 1 and 0 < width <= 1 - left + 1e-9
                and 0 < height <= 1 - top + 1e-9):  # fmt: skip
            raise UsageError(f"region {left}, {top}, {width}, {height}: give fractions of the "
                             "image (left and top from 0, width and height up to the edge)")
        if not 16 <= size <= 4096:
            raise UsageError(f"size {size}: give 16 to 4096 pixels")
        pyramid = self.prepare(uri)
        x0, y0 = left * pyramid.width, top * pyramid.height
        span_x, span_y = width * pyramid.width, height * pyramid.height
        longest = max(span_x, span_y)
        target = max(1.0, min(size, MAX_SIDE, longest))
        level = min(pyramid.levels - 1, max(0, math.floor(math.log2(longest / target))))
        image = pyvips.Image.new_from_file(pyramid.path, page=level, access="random")
        factor = 2**level
        x, y = min(int(x0 / factor), image.width - 1), min(int(y0 / factor), image.height - 1)
        w = max(1, min(image.width - x, math.ceil(span_x / factor)))
        h = max(1, min(image.height - y, math.ceil(span_y / factor)))
        region = image.crop(x, y, w, h)
        scale = target / max(w, h)
        if scale < 1:
            region = region.resize(scale, kernel="lanczos3")
        return region.jpegsave_buffer(Q=QUALITY, strip=True)

    def warm(self, uris: Iterable[str]) -> None:
        """Prepare these images in the background (one thread; a full line drops the rest)."""
        for uri in uris:
            with contextlib.suppress(queue.Full):
                self._waiting.put_nowait(uri)
        with self._guard:
            if self._warmer is None or not self._warmer.is_alive():
                self._warmer = threading.Thread(target=self._warm, name="pyramids", daemon=True)
                self._warmer.start()

    def _warm(self) -> None:
        """Prepare what is waiting; end once nothing has come for :data:`IDLE` seconds (under
        the guard, so an image put meanwhile starts a new thread or is taken by this one)."""
        while True:
            try:
                uri = self._waiting.get(timeout=IDLE)
            except queue.Empty:
                with self._guard:
                    if self._waiting.empty():
                        self._warmer = None
                        return
                continue
            try:
                self.prepare(uri)
            except (PixelmillError, pyvips.Error, OSError) as exc:
                LOG.warning("no pyramid of %s: %s", uri, exc)
            finally:
                self._waiting.task_done()

    def _make(self, loc: storage.Location, path: str) -> None:
        """Decode the image once, sequentially, into a pyramidal tiled TIFF written atomically."""
        os.makedirs(self.folder, exist_ok=True)
        spool = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
        try:
            with open_source(loc, self.settings) as source:
                image = _viewable(source.decode())
                large = image.width * image.height * image.bands > BIGTIFF
                image.tiffsave(spool, tile=True, pyramid=True, compression="jpeg", Q=QUALITY,
                               tile_width=TILE, tile_height=TILE, bigtiff=large,
                               strip=True)  # fmt: skip
            os.replace(spool, path)
        except pyvips.Error as exc:  # the decoder's, as the pyramid is written as it decodes
            raise classify(str(exc), str(loc), loading=True) from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(spool)

    def _evict(self, keep: str) -> None:
        """Remove the least recently used pyramids past the budget."""
        found = []
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(self.folder):
                if entry.name.endswith(".tif"):
                    stat = entry.stat()
                    found.append((stat.st_atime_ns, stat.st_size, entry.path))
        total = sum(size for _, size, _ in found)
        for _, size, path in sorted(found):
            if total <= self.budget:
                return
            if path != keep:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
                total -= size

    def _lock(self, path: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(path, threading.Lock())


def _used(path: str) -> None:
    """Mark a pyramid used now (its access time; its modification time stays)."""
    with contextlib.suppress(OSError):
        os.utime(path, ns=(time.time_ns(), os.stat(path).st_mtime_ns))


def _viewable(image: pyvips.Image) -> pyvips.Image:
    """8-bit sRGB (through an embedded ICC profile) without alpha (flattened on mid grey), what
    a browser shows."""
    image = to_depth(to_srgb(image), 8)
    if image.hasalpha():
        image = image.flatten(background=[128] * (image.bands - 1))
    if image.bands < 3:
        image = image.colourspace("srgb")
    return image.cast("uchar")


def _name(loc: storage.Location) -> str:
    """The pyramid's name: the image's URL and version (a changed file gets a new one)."""
    version = storage.version(loc) or storage.input_size(loc)
    return hashlib.sha256(f"{loc.url}\0{version}".encode()).hexdigest()
