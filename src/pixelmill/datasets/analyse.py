"""Analysing one image for a dataset: its identity (SHA-256 of its bytes), what its header
says, cheap statistics of its pixels and its embedding.

The image is opened as every other input is (:func:`pixelmill.codecs.open_source`: the limits
on bytes, pixels and decode memory are checked from the header), and only its proxy is decoded
(:func:`pixelmill.datasets.features.proxy`), under the time limit and the memory budget of the
watchdog. Its bytes are read a second time, streamed, for the hash. Every failure is a
:class:`~pixelmill.errors.PixelmillError`.
"""

from __future__ import annotations

import datetime
import hashlib
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyvips

from pixelmill import codecs, storage
from pixelmill.config import Settings
from pixelmill.datasets.embed import Embedder
from pixelmill.datasets.features import HEAD, measure, proxy
from pixelmill.datasets.fields import HEADER
from pixelmill.engine.watchdog import watchdog
from pixelmill.errors import LimitError
from pixelmill.storage import Location

EXIF_TEXT = re.compile(r"(.*) \(\1, ASCII, \d+ components?, \d+ bytes\)", re.DOTALL)
"""How libvips shows an ASCII EXIF tag: the value, then in brackets the value again, its type
and its size."""
EXIF_TIME = "%Y:%m:%d %H:%M:%S"


@dataclass(frozen=True)
class Analysis:
    """What one image is."""

    uri: str
    sha256: str
    fields: dict[str, Any]
    """Every header field and feature of :mod:`pixelmill.datasets.fields` (None where absent)."""
    embedding: np.ndarray


def analyse(loc: Location, settings: Settings, embedder: Embedder) -> Analysis:
    """Hash, describe, measure and embed the image at ``loc``."""
    with codecs.open_source(loc, settings) as source:
        header = _header(source)
        image = _proxy(source, settings)
    sha256, size, head = _digest(loc, settings.max_bytes)
    upright = (header["width"], header["height"])
    fields = {**header, "file_size": size, **measure(image, head, upright)}
    return Analysis(str(loc), sha256, fields, embedder(image))


def _proxy(source: codecs.Source, settings: Settings) -> pyvips.Image:
    """The source's proxy, decoded under the time limit and the memory budget: once the watch
    fires, the decode ends in a LimitError, whether it was stopped or had finished."""
    with watchdog(settings.time_limit, source.kill, memory=settings.max_memory) as watch:
        try:
            image = proxy(source)
        finally:
            _refuse_if_stopped(watch.reason, source, settings)
    return image


def _refuse_if_stopped(reason: str, source: codecs.Source, settings: Settings) -> None:
    if reason == "time":
        raise LimitError(f"{source.loc}: decoding took longer than the limit of "
                         f"{settings.time_limit:g} s (time_limit)")  # fmt: skip
    if reason == "memory":
        raise LimitError(f"{source.loc}: decoding held more memory than the limit of "
                         f"{settings.max_memory / 2**20:,.0f} MiB (max_memory)")  # fmt: skip


def _digest(loc: Location, limit: int) -> tuple[str, int, bytes]:
    """SHA-256 (hex) and size of the file's bytes, streamed, and its first :data:`HEAD`
    bytes."""
    digest, size, head = hashlib.sha256(), 0, b""
    for chunk in storage.chunks(loc):
        digest.update(chunk)
        if size < HEAD:
            head += chunk[: HEAD - size]
        size += len(chunk)
        if size > limit:
            raise LimitError(f"{loc}: more than the limit of {limit:,} bytes (max_bytes)")
    return digest.hexdigest(), size, head


def _header(source: codecs.Source) -> dict[str, Any]:
    """The header fields but ``file_size``, read without decoding."""
    info = codecs.describe(source)
    width, height = source.upright_size
    found = {
        "format": info["format"],
        "width": width,
        "height": height,
        "bands": info["bands"],
        "bit_depth": info["bit_depth"],
        "colour_space": info["colour_space"],
        "icc": (info["icc"] or {}).get("description"),
        "pages": info["pages"],
        "orientation": info["orientation"],
        "camera_make": _exif_text(source.header, "exif-ifd0-Make"),
        "camera_model": _exif_text(source.header, "exif-ifd0-Model"),
        "captured": _exif_time(_exif_text(source.header, "exif-ifd2-DateTimeOriginal")),
    }
    return {name: found[name] for name in HEADER if name != "file_size"}


def _exif_text(header: pyvips.Image, name: str) -> str | None:
    """An ASCII EXIF tag's value, stripped (None when absent or empty)."""
    if name not in header.get_fields():
        return None
    shown = str(header.get(name))
    match = EXIF_TEXT.fullmatch(shown)
    value = (match.group(1) if match else shown).strip().strip("\0").strip()
    return value or None


def _exif_time(text: str | None) -> float | None:
    """An EXIF date and time (``YYYY:MM:DD HH:MM:SS``, taken as UTC) in seconds since the
    epoch; None when absent or not a valid time."""
    if not text:
        return None
    try:
        moment = datetime.datetime.strptime(text[:19], EXIF_TIME)
    except ValueError:
        return None
    return moment.replace(tzinfo=datetime.UTC).timestamp()
