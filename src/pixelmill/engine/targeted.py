"""The last stage of a run whose encode step has a target (``encode:…:target=``): the image
made once in memory, the regions where a viewer looks found (faces: what ``detect`` steps
found, else the face detector), the quality (and with ``encode:auto``, the format) searched
(:mod:`pixelmill.compress`), and the chosen bytes written atomically. A missed target is
reported in the outcome and judged like a gate (``on_miss``)."""

from __future__ import annotations

import time

import pyvips

from pixelmill import codecs, storage
from pixelmill.compress.choose import FLAT, best
from pixelmill.compress.regions import regions_of
from pixelmill.compress.target import Choice
from pixelmill.engine.context import Context
from pixelmill.engine.imaging import face_finder
from pixelmill.engine.qc import Verdict
from pixelmill.errors import LimitError, ModelError, QualityError
from pixelmill.pipeline import Step
from pixelmill.pipeline.formats import AUTO, FORMATS, Format
from pixelmill.storage import Location

LOOK_SIDE = 1536
"""Longest side of the copy faces are looked for in (faces matter here by the tiles they
touch, so one 20-pixel face of that copy is enough; a detect step's own boxes are used as
they are)."""
MAX_PIXELS = 100_000_000
"""Largest image a target encode takes: it holds the image, and each trial, in memory."""


def render(image: pyvips.Image, encode: Step, destination: Location | None, ctx: Context
           ) -> tuple[Format, int, bytes | None]:  # fmt: skip
    """Encode ``image`` to ``encode``'s target into ``destination`` (None: into memory): the
    format chosen, the size written and, in memory, the bytes."""
    if image.width * image.height > MAX_PIXELS:
        raise LimitError(f"{ctx.source}: a target encode holds the image in memory: "
                         f"{image.width}×{image.height} is over {MAX_PIXELS:,} pixels; use a "
                         "fixed quality (q=)")  # fmt: skip
    began = time.monotonic()
    image = image.copy_memory()
    target = encode["target"]
    regions = regions_of(image, *_boxes(image, encode, ctx), target.threshold, encode["background"])
    formats = encode["formats"] if encode["format"] == AUTO else (encode["format"],)
    flat = encode["format"] == AUTO and _flat(image, ctx)

    def prepare(fmt: Format) -> tuple[pyvips.Image, dict]:
        step = Step.make("encode", format=fmt.name, effort=encode["effort"],
                         bitdepth=encode["bitdepth"])  # fmt: skip
        return codecs.prepare(image, fmt, step, strip=ctx.strip)

    chosen, tried = best(prepare, formats, target, regions, encode["lossless"], flat)
    ctx.clock.aside("search", time.monotonic() - began)
    ctx.encode = {**chosen.to_json(), "seconds": round(time.monotonic() - began, 3),
                  "tried": [_brief(c) for c in tried]}  # fmt: skip
    ctx.notes.append(_describe(chosen, len(tried)))
    _judge(chosen, encode, ctx)
    fmt = FORMATS[chosen.format]
    if destination is None:
        ctx.clock.lap("render")
        return fmt, len(chosen.data), chosen.data
    with storage.atomic_output(destination, ctx.settings.tmp_dir) as spool:
        with open(spool, "wb") as out:
            out.write(chosen.data)
        ctx.clock.lap("render")
    ctx.clock.lap("store")
    return fmt, len(chosen.data), None


def _boxes(image: pyvips.Image, encode: Step, ctx: Context) -> tuple[list, list]:
    """Boxes where the target must hold, in ``image``'s pixels: what the detect steps found
    (scaled from the image each looked at), and, when none did, the faces found in a copy of
    at most :data:`LOOK_SIDE` pixels."""
    boxes, labels = [], []
    for _, found in ctx.found:
        sx, sy = image.width / found.width, image.height / found.height
        for d in found.detections:
            boxes.append(d.moved(sx, sy).box)
            labels.append(d.label)
    if not boxes and encode["look"]:
        factor = min(1.0, LOOK_SIDE / max(image.width, image.height))
        small = image.resize(factor) if factor < 1 else image
        for d in face_finder(ctx.settings, [])(small):
            boxes.append(d.moved(image.width / small.width, image.height / small.height).box)
            labels.append(d.label)
    return boxes, labels


def _flat(image: pyvips.Image, ctx: Context) -> bool:
    """Whether the content-kind classifier (when installed, or a classify step's answer)
    calls the image a graphic or a screenshot."""
    said = [c for c in ctx.classes if c["model"] == "content-kind"]
    if not said:
        from pixelmill.engine.steps.classify import classified

        try:
            classified(image, "content-kind", 1, ctx)
        except ModelError:
            return False
        said = ctx.classes[-1:]
    return said[0]["top"][0]["class"] in FLAT


def _judge(chosen: Choice, encode: Step, ctx: Context) -> None:
    if chosen.met or encode["on_miss"] == "keep":
        return
    target = encode["target"]
    verdict = Verdict(encode["on_miss"], {target.metric: chosen.score}, (str(target),),
                      (str(target),))  # fmt: skip
    ctx.verdicts.append(verdict)
    if verdict.outcome == "fail":
        raise QualityError(f"{ctx.source}: the target {target} was missed even at the highest "
                           f"quality ({target.metric} {chosen.score:.4g}); nothing was written")


def _brief(choice: Choice) -> dict:
    return {"format": choice.format, "quality": choice.quality, "lossless": choice.lossless,
            "score": round(choice.score, 3), "met": choice.met, "bytes": choice.bytes,
            "trials": choice.trials}  # fmt: skip


def _describe(chosen: Choice, tried: int) -> str:
    quality = "lossless" if chosen.lossless else f"q {chosen.quality}"
    state = "met" if chosen.met else "MISSED"
    return (f"encode {chosen.format} {quality}: {chosen.target} {state} ({chosen.score:.2f}) "
            f"in {chosen.trials} encode(s), {tried} format(s) tried, {chosen.bytes:,} bytes")
