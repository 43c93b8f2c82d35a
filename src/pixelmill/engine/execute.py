"""Running one pipeline from one source to one destination, as a single lazy libvips graph.

The source is opened (header checked against the limits), the steps are chained without
computing anything, and the encoder pulls pixels through the graph into an atomic output, so
memory follows the width of the image and the steps' windows, not its area.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from pixelmill import codecs, storage
from pixelmill.config import Settings
from pixelmill.engine.ops import OPS, thumbnail_with
from pixelmill.errors import UsageError
from pixelmill.pipeline import Pipeline
from pixelmill.pipeline.formats import FORMATS, Format, format_for_path
from pixelmill.storage import Location


@dataclass(frozen=True)
class Outcome:
    """What one run produced."""

    source: str
    destination: str
    format: str
    width: int
    height: int
    bands: int
    bytes_written: int
    seconds: float


def output_format(pipeline: Pipeline, destination: Location) -> Format:
    """The format from ``encode``, else from the destination's suffix; both must agree."""
    encode = pipeline.find("encode")
    named = format_for_path(destination.name)
    if encode is None:
        if named is None:
            suffixes = ", ".join(e for f in FORMATS.values() for e in f.extensions)
            raise UsageError(
                f"{destination}: cannot tell the output format from the name; use one of "
                f"{suffixes} or add an encode step"
            )
        return named
    fmt = FORMATS[encode["format"]]
    if named is not None and named is not fmt:
        raise UsageError(
            f"{destination}: the name says {named.name} but the pipeline encodes {fmt.name}; "
            f"name it *{fmt.extensions[0]}"
        )
    return fmt


def execute(
    pipeline: Pipeline,
    source: Location,
    destination: Location,
    settings: Settings,
    progress: Callable[[float], None] | None = None,
) -> Outcome:
    """Run ``pipeline`` from ``source`` to ``destination``; nothing is written on failure."""
    started = time.monotonic()
    fmt = output_format(pipeline, destination)
    steps = [s for s in pipeline.steps if s.op != "encode"]
    if settings.autorotate:
        steps = [s for s in steps if s.op != "autorotate"]  # done on load
    with codecs.open_source(source, settings) as src:
        if steps and steps[0].op == "thumbnail":
            image = thumbnail_with(src.thumbnail, src.upright_size, steps.pop(0))
        else:
            orientation = src.orientation
            random = any(OPS[s.op].random_access(s, orientation) for s in steps)
            image = src.decode(random_access=random)
        for step in steps:
            image = OPS[step.op].apply(image, step)
        strip = pipeline.find("strip") is not None
        image, options = codecs.prepare(image, fmt, pipeline.find("encode"), strip=strip)
        with storage.atomic_output(destination, settings.tmp_dir) as spool:
            codecs.write(
                image, fmt, options, spool,
                source=str(source),
                deadline=started + settings.time_limit,
                time_limit=settings.time_limit,
                progress=progress,
            )  # fmt: skip
            size = os.path.getsize(spool)
    return Outcome(
        str(source), str(destination), fmt.name, image.width, image.height, image.bands, size,
        time.monotonic() - started,
    )  # fmt: skip

