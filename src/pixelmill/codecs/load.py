"""Opening images safely: size and pixel limits checked from the header before anything is
decoded, unreadable files named precisely, EXIF orientation and CMYK handled on load.

libvips' operation cache is switched off, as image servers do: it keys loads by file name, so
a file rewritten in place would be served stale to a long-running process.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import IO, Any

import pyvips

from pixelmill import storage
from pixelmill.codecs.colour import working_space
from pixelmill.codecs.errors import detail
from pixelmill.codecs.sniff import explain_unreadable
from pixelmill.config import Settings
from pixelmill.errors import InputError, LimitError
from pixelmill.storage import Location

pyvips.cache_set_max(0)

TURNING_ORIENTATIONS = range(3, 9)
"""EXIF orientations whose correction reads the image out of order (rotations, vertical flips)."""
SWAPPING_ORIENTATIONS = range(5, 9)
"""EXIF orientations whose correction swaps width and height."""


class Source:
    """An opened source: its header is read and checked; pixels are decoded on demand."""

    def __init__(
        self, loc: Location, handle: str | IO[bytes], settings: Settings, size: int | None
    ) -> None:
        self.loc = loc
        self.size = size
        self.settings = settings
        self._handle = handle
        self._sources: list[pyvips.SourceCustom] = []  # libvips calls back into them until closed
        self._opened: list[pyvips.Image] = []
        self.header = self._open("sequential")
        self._check_pixels()

    @property
    def orientation(self) -> int:
        header = self.header
        return header.get("orientation") if "orientation" in header.get_fields() else 1

    @property
    def upright_size(self) -> tuple[int, int]:
        """Width and height once the orientation is applied (when autorotating)."""
        w, h = self.header.width, self.header.height
        turn = self.settings.autorotate and self.orientation in SWAPPING_ORIENTATIONS
        return (h, w) if turn else (w, h)

    @property
    def loader(self) -> str:
        return str(self.header.get("vips-loader"))

    def decode(self, random_access: bool = False) -> pyvips.Image:
        """The whole image, lazily, upright (when autorotating) and in RGB or grey."""
        turns = self.settings.autorotate and self.orientation in TURNING_ORIENTATIONS
        image = self._open("random") if random_access or turns else self.header
        if self.settings.autorotate:
            image = image.autorot()
        return working_space(image, str(self.loc))

    def thumbnail(self, width: int, **options: Any) -> pyvips.Image:
        """Decode straight to a smaller size (shrink-on-load), upright when autorotating."""
        options.update(no_rotate=not self.settings.autorotate, fail_on=self.settings.fail_on)
        try:
            if isinstance(self._handle, str):
                image = pyvips.Image.thumbnail(self._handle, width, **options)
            else:
                image = pyvips.Image.thumbnail_source(self._vips_source(), width, **options)
        except pyvips.Error as exc:
            raise InputError(f"{self.loc}: cannot decode: {detail(str(exc))}") from None
        self._opened.append(image)
        return working_space(image, str(self.loc))

    def kill(self) -> None:
        """Make every computation reading this source fail (from any thread): the time limit."""
        for image in self._opened:
            image.set_kill(True)

    def _vips_source(self) -> pyvips.Source:
        handle = self._handle
        assert not isinstance(handle, str)
        handle.seek(0)
        source = pyvips.SourceCustom()
        source.on_read(handle.read)
        source.on_seek(handle.seek)
        self._sources.append(source)
        return source

    def _open(self, access: str) -> pyvips.Image:
        options = {"access": access, "fail_on": self.settings.fail_on}
        try:
            if isinstance(self._handle, str):
                image = pyvips.Image.new_from_file(self._handle, **options)
            else:
                image = pyvips.Image.new_from_source(self._vips_source(), "", **options)
        except pyvips.Error as exc:
            if "not a known" in str(exc):
                reason = explain_unreadable(self.loc.name, storage.read_bytes(self.loc, 64))
            else:
                reason = detail(str(exc))
            raise InputError(f"{self.loc}: {reason}") from None
        self._opened.append(image)
        return image

    def _check_pixels(self) -> None:
        w, h = self.header.width, self.header.height
        limit = self.settings.max_pixels
        if w * h > limit:
            raise LimitError(
                f"{self.loc}: {w}×{h} = {w * h:,} pixels is over the limit of {limit:,} "
                "(max_pixels)"
            )


@contextlib.contextmanager
def open_source(loc: Location, settings: Settings) -> Iterator[Source]:
    """Open a source for decoding, after checking its size (when the storage knows it); it stays
    open inside the block."""
    size = storage.input_size(loc)
    if size == 0:
        raise InputError(f"{loc}: empty file (0 bytes)")
    if size is not None and size > settings.max_bytes:
        raise LimitError(
            f"{loc}: {size:,} bytes is over the limit of {settings.max_bytes:,} (max_bytes)"
        )
    with storage.open_input(loc, settings.max_bytes) as handle:
        yield Source(loc, handle, settings, size)
