"""The output's format: what the pipeline's encoding step (``encode``) asks for, else what the
destination's name says, ``encode:auto`` made concrete for a client, and the suffix an output
named after its source takes."""

from __future__ import annotations

import os

from pixelmill.errors import UsageError
from pixelmill.pipeline import Pipeline, Step
from pixelmill.pipeline.formats import AUTO, FORMATS, Format, accepted, format_for_path, negotiate
from pixelmill.storage import Location


def settle_format(pipeline: Pipeline, source: str, accept: str = "",
                  destination: str | None = None) -> Pipeline:  # fmt: skip
    """The pipeline with ``encode:auto`` made concrete: the format the destination's name
    gives, else the one negotiated from ``accept`` (see :func:`formats.negotiate`)."""
    encode = pipeline.encoder()
    if encode is None or encode["format"] != AUTO:
        return pipeline
    named = destination and format_for_path(destination)
    if encode["target"] is not None:
        args = dict(encode.args)
        if named:
            args.update(format=named.name, formats=None)
        else:
            args["formats"] = candidates(encode["formats"], accept)
        concrete = Step.make(encode.op, **args)
        return Pipeline(tuple(concrete if step is encode else step for step in pipeline.steps))
    chosen = named or negotiate(accept, source)
    quality = encode["q"] if chosen.quality is not None else None  # PNG takes none
    concrete = Step.make(encode.op, format=chosen.name, q=quality)
    return Pipeline(tuple(concrete if step is encode else step for step in pipeline.steps))


CHOSEN = ".auto"
"""The suffix of an output whose format ``encode:auto:target=`` chooses (read its first bytes,
or the outcome's ``format``, to know which)."""


def candidates(formats: tuple[str, ...] | None, accept: str) -> tuple[str, ...]:
    """What ``encode:auto:target=`` may choose from: ``formats`` (default
    :data:`pixelmill.compress.choose.LOSSY`), within what an ``Accept`` header takes when one
    is given (JPEG and PNG always)."""
    formats = formats or ("avif", "webp", "jpeg")
    if not accept:
        return formats
    taken = accepted(accept)
    kept = tuple(f for f in formats if f in ("jpeg", "png") or f"image/{f}" in taken)
    return kept or ("jpeg",)


def output_format(pipeline: Pipeline, destination: Location | None) -> Format | None:
    """The format from ``encode``, else from the destination's suffix; both must agree. None
    for ``encode:auto:target=``, whose format the search chooses."""
    encode = pipeline.encoder()
    if encode is not None and encode["format"] == AUTO:
        if destination is not None and not destination.name.endswith(CHOSEN):
            raise UsageError(f"{destination}: encode:auto:target= chooses the format image by "
                             f"image: name the output *{CHOSEN} (any format) or with the suffix "
                             "of one format, or use `pixelmill optimize`")  # fmt: skip
        return None
    if destination is None:
        if encode is None:
            raise UsageError("an output rendered into memory needs an encode step")
        return FORMATS[encode["format"]]
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


def output_suffix(pipeline: Pipeline, source: str) -> str:
    """The suffix for a pipeline's output named after ``source``: its encode step's format,
    else the source's own suffix when pixelmill writes that format, else .png."""
    encode = settle_format(pipeline, source).encoder()
    if encode is not None and encode["format"] == AUTO:
        raise UsageError("encode:auto:target= chooses the format image by image: name the "
                         "output with a suffix, give one format (e.g. encode:webp:target=…), "
                         "or use `pixelmill optimize`, which names each output after its "
                         "format")  # fmt: skip
    if encode is not None:
        return FORMATS[encode["format"]].extensions[0]
    return os.path.splitext(source)[1] if format_for_path(source) else ".png"
