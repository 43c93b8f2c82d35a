"""The checks the fuzz harnesses run on one input, with no dependency on atheris, so that
``tests/test_fuzz_regressions.py`` runs the same checks on the seed corpora and on every saved
reproducer.

A check returns (the input was handled: accepted, or refused with a
:class:`~pixelmill.errors.PixelmillError`) or raises: any other exception is a bug, and so is a
:class:`Mismatch` (a parsed pipeline that does not survive its own round trip).

Import pixelmill *before* this module when its coverage should be instrumented (the harnesses
do, inside ``atheris.instrument_imports()``); this module itself only uses what is imported.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any

import pyvips

from pixelmill import codecs, storage
from pixelmill.codecs import decoder_warnings
from pixelmill.config import Settings
from pixelmill.errors import PixelmillError
from pixelmill.pipeline import Pipeline

LOADER_SETTINGS = Settings(max_pixels=4_000_000, max_memory=256 * 1024**2, max_bytes=1 << 20,
                           time_limit=5)  # fmt: skip
"""Bounded decoding: at most 4 MP, 256 MiB of decoder memory, 1 MiB files (time_limit is not
enforced by ``open_source``; the fuzzer's own ``-timeout`` bounds each input)."""
CROP = 64
"""Side of the top-left corner of the image whose pixels are decoded and averaged."""


class Mismatch(AssertionError):
    """A pipeline that parsed does not come back equal from its canonical text or JSON form."""

    def __init__(self, message: str, form: Any) -> None:
        super().__init__(message)
        self.form = form


# --- the pipeline grammar -------------------------------------------------------------------


def pipeline_sources(data: bytes) -> Iterator[Any]:
    """What the pipeline harness feeds ``Pipeline.parse`` for one input: the bytes as text
    (undecodable bytes kept as lone surrogates, as ``sys.argv`` gets them on POSIX), then,
    when that text is JSON, the value ``json.loads`` makes of it (lists, objects, numbers…)."""
    text = data.decode("utf-8", "surrogateescape")
    yield text
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):  # not JSON, or nested past the recursion limit
        return
    yield value


def check_pipeline(data: bytes) -> None:
    """Parse every source of ``data``; each must parse or raise a PixelmillError, and each that
    parses must round-trip through its canonical text and JSON forms."""
    for source in pipeline_sources(data):
        check_pipeline_source(source)


def check_pipeline_source(source: Any) -> Pipeline | None:
    """Parse one source (text or a JSON value); the parsed pipeline, or None when refused."""
    try:
        pipeline = Pipeline.parse(source)
    except PixelmillError:
        return None
    text = str(pipeline)
    _same(pipeline, text, "canonical text", source)
    as_json = pipeline.to_json()
    _same(pipeline, as_json, "to_json()", source)
    # The JSON form must also survive being sent as JSON (an API body, a job record).
    _same(pipeline, json.dumps(as_json), "json.dumps(to_json())", source)
    return pipeline


def _same(pipeline: Pipeline, form: Any, what: str, source: Any) -> None:
    try:
        again = Pipeline.parse(form)
    except PixelmillError as exc:
        raise Mismatch(f"the {what} {form!r} of {source!r} does not parse: {exc}", form) from exc
    if again != pipeline:
        raise Mismatch(f"the {what} {form!r} of {source!r} parses to {again!r}, "
                       f"not {pipeline!r}", form)  # fmt: skip


# --- the loaders ----------------------------------------------------------------------------


def check_loader(data: bytes, path: str, settings: Settings = LOADER_SETTINGS) -> str:
    """Write ``data`` to ``path``, open it as a source under ``settings``, describe it and, if
    its header is accepted, decode the top-left corner (at most 64 × 64) and average it. Returns
    ``"ok"`` or the kind of the PixelmillError that refused it (``"input"``, ``"limit"``,
    ``"internal"`` for a bare PixelmillError…); anything else propagates."""
    _replace(path, data)
    started = time.monotonic()
    try:
        with codecs.open_source(storage.locate(path), settings) as src:
            codecs.describe(src)  # as `pixelmill info`: from the header, not wrapped
            try:
                image = src.decode()
                image.crop(0, 0, min(image.width, CROP), min(image.height, CROP)).avg()
            except pyvips.Error as exc:  # as the engine: the failure named and classified
                raise codecs.classify(str(exc), path,
                                      warned=decoder_warnings.since(started)) from None  # fmt: skip
    except PixelmillError as exc:
        return exc.kind
    return "ok"


def _replace(path: str, data: bytes) -> None:
    """Put ``data`` at ``path`` as a new file (a new inode: a libvips source still open on the
    previous input, or memory-mapping it, keeps its own bytes)."""
    spool = path + ".part"
    with open(spool, "wb") as handle:
        handle.write(data)
    os.replace(spool, path)
