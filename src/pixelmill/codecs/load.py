"""Opening images safely: only the documented formats' decoders run (see
:mod:`pixelmill.codecs.loaders`), and the formats this libvips build cannot read go through
Pillow (:mod:`pixelmill.codecs.fallback`) under the same rules; size, pixel and decode-memory
limits are checked from the header before anything is decoded; unreadable files are named
precisely; EXIF orientation and CMYK are handled on load.

Every load reads through a libvips source (a file's or a Python handle's), never a file name:
libvips would read load options out of brackets in a name.

libvips' operation cache is switched off, as image servers do: it keys loads by file name, so
a file rewritten in place would be served stale to a long-running process.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import IO, Any

import pyvips

from pixelmill import storage
from pixelmill.codecs import fallback, loaders
from pixelmill.codecs.budget import decode_bytes
from pixelmill.codecs.colour import working_space
from pixelmill.codecs.errors import classify
from pixelmill.codecs.sniff import SUPPORTED, declared_size, explain_unreadable
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
        self._opened: list[pyvips.Image] = []
        self._fallback: fallback.PillowSource | None = None
        self._decoded: pyvips.Image | None = None
        source = self._vips_source()  # sniffing reads ahead without consuming: one for both
        self._loader = self._sniff(source)
        if self._fallback is None:
            self.header = self._open("sequential", source)
            if self._loader == "heifload" and _compression(self.header) == "hevc":
                self._fall_back()  # this libvips has no HEVC decoder
        self._check_pixels()
        self._check_declared()
        self._check_memory()

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
        """The libvips loader's nickname, e.g. ``jpegload``, or ``pillow:FORMAT`` for a format
        read through Pillow."""
        return self._loader

    @property
    def streams(self) -> bool:
        """Whether the image is decoded as it is read (not whole, before anything else)."""
        return self._fallback is None and not decode_bytes(self.header, self._loader)[0]

    def decode(self, random_access: bool = False, in_memory: bool = False) -> pyvips.Image:
        """The whole image, lazily, upright (when autorotating) and in RGB or grey;
        ``in_memory``: decoded for random access into memory, never into a temporary file
        (for content that must not reach a disk before it is redacted)."""
        if self._fallback is not None:
            return working_space(self._whole(), str(self.loc))
        turns = self.settings.autorotate and self.orientation in TURNING_ORIENTATIONS
        if in_memory and (random_access or turns):
            image = self._open("random", memory=True)
        else:
            image = self._open("random") if random_access or turns else self.header
        if self.settings.autorotate:
            image = image.autorot()
        return working_space(image, str(self.loc))

    def thumbnail(self, width: int, **options: Any) -> pyvips.Image:
        """Decode straight to a smaller size (shrink-on-load), upright when autorotating."""
        # thumbnail_source hands fail_on to the loader only through the option string
        # (libvips 8.17): as a plain option, a truncated JPEG comes out grey at the bottom
        if self._fallback is not None:
            return working_space(self._whole().thumbnail_image(width, **options), str(self.loc))
        if self._loader == "jpegload":
            return self._jpeg_thumbnail(width, **options)
        options.update(no_rotate=not self.settings.autorotate,
                       option_string=f"fail_on={self.settings.fail_on}")
        source = self._vips_source()
        try:
            image = pyvips.Image.thumbnail_source(source, width, **options)
        except pyvips.Error as exc:
            raise classify(str(exc), str(self.loc), loading=True) from None
        image._references.append(source)
        self._opened.append(image)
        return working_space(image, str(self.loc))

    def _jpeg_thumbnail(self, width: int, **options: Any) -> pyvips.Image:
        """A JPEG decoded at the smallest DCT scale (1/2, 1/4, 1/8) still at least the
        thumbnail's size, as Pillow's ``draft`` picks it, then reduced with Lanczos 3.
        libvips' own thumbnail keeps twice the size for the reduction: 7 ms more of CPU on a
        12-megapixel photo (17 %), for a sharpness its JPEG encode at q80 mostly gives up."""
        factor = _scale(self.upright_size, width, options)
        shrink = max((s for s in (8, 4, 2, 1) if s * factor <= 1), default=1)
        image = self._open("sequential", shrink=shrink) if shrink > 1 else self.header
        image = image.thumbnail_image(width, no_rotate=not self.settings.autorotate, **options)
        return working_space(image, str(self.loc))

    def kill(self) -> None:
        """Make every computation reading this source fail (from any thread): the time limit,
        the memory budget, a cancellation."""
        for image in self._opened:
            image.set_kill(True)

    def _vips_source(self) -> pyvips.Source:
        handle = self._handle
        try:
            if isinstance(handle, str):
                return pyvips.Source.new_from_file(handle)
        except pyvips.Error as exc:
            raise classify(str(exc), str(self.loc), loading=True) from None
        handle.seek(0)
        source = pyvips.SourceCustom()
        source.on_read(handle.read)
        source.on_seek(handle.seek)
        return source

    def _sniff(self, source: pyvips.Source) -> str:
        """The allowed loader of the source's content (Pillow's for the formats libvips does
        not know here), or a refusal naming what it is."""
        try:
            loader = loaders.allowed(source)
        except loaders.Refused as refused:
            raise InputError(f"{self.loc}: its content is {refused.format}, which pixelmill "
                             f"does not read (supported: {SUPPORTED})") from None  # fmt: skip
        if loader is None:
            return self._fall_back()
        return loader

    def _fall_back(self) -> str:
        """Read the image through Pillow: its header now, its pixels whole when asked."""
        found = fallback.identify(self._handle)
        if found is None:
            reason = explain_unreadable(self.loc.name, storage.read_bytes(self.loc, 64))
            raise InputError(f"{self.loc}: {reason}")
        self._fallback = found
        self._loader = f"pillow:{found.format}"
        self.header = found.header()
        return self._loader

    def _whole(self) -> pyvips.Image:
        """The pixels of an image read through Pillow, decoded once, upright when
        autorotating."""
        assert self._fallback is not None
        if self._decoded is None:
            try:
                image = self._fallback.decode()
            except fallback.ERRORS as exc:
                why = " ".join(str(exc).split())[:300]  # one line
                raise InputError(f"{self.loc}: {self._fallback.format.upper()} data is corrupt "
                                 f"or truncated ({why})") from None  # fmt: skip
            self._decoded = image.autorot() if self.settings.autorotate else image
        return self._decoded

    def _open(self, access: str, source: pyvips.Source | None = None,
              **options: bool) -> pyvips.Image:  # fmt: skip
        try:
            image = loaders.load(self._loader, source or self._vips_source(), access=access,
                                 fail_on=self.settings.fail_on, **options)  # fmt: skip
        except pyvips.Error as exc:
            raise classify(str(exc), str(self.loc), loading=True) from None
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

    def _check_declared(self) -> None:
        """A GIF may declare no pixels at all, which its decoder turns into one."""
        if self._loader != "gifload":
            return
        declared = declared_size(storage.read_bytes(self.loc, 16))
        if declared is not None and 0 in declared:
            raise InputError(f"{self.loc}: the header declares a {declared[0]}×{declared[1]} "
                             "image")  # fmt: skip

    def _check_memory(self) -> None:
        if self._fallback is not None:
            need, why = (self._fallback.decode_bytes(),
                         f"a {self._fallback.format.upper()} image (read through Pillow)")  # fmt: skip
        else:
            need, why = decode_bytes(self.header, self._loader)
        limit = self.settings.max_memory
        if need > limit:
            w, h = self.header.width, self.header.height
            raise LimitError(
                f"{self.loc}: decoding {why} of {w}×{h} holds the whole image at once, about "
                f"{need / 2**20:,.0f} MiB, over the limit of {limit / 2**20:,.0f} MiB "
                "(max_memory)"
            )


def _compression(header: pyvips.Image) -> str | None:
    fields = header.get_fields()
    return header.get("heif-compression") if "heif-compression" in fields else None


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


def _scale(size: tuple[int, int], width: int, options: dict[str, Any]) -> float:
    """The largest factor libvips' thumbnail will scale an image of ``size`` by, given its
    box (``width``, ``height``) and ``size`` mode (``force`` scales each axis alone; a crop
    fills the box)."""
    factors = (width / size[0], options.get("height", width) / size[1])
    if options.get("size") == "force":
        return max(factors)
    return max(factors) if options.get("crop") else min(factors)
