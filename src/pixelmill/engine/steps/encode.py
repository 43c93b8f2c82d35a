"""``encode``: the output's format and its options; without it the destination's suffix
decides. It is the last step and changes nothing in the image's graph: the encoder writes what
the graph makes (see :mod:`pixelmill.codecs.save` and :mod:`pixelmill.engine.output`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pyvips

from pixelmill.engine.context import Context
from pixelmill.engine.step import Op
from pixelmill.pipeline import Step
from pixelmill.pipeline.formats import AUTO, FORMAT_ALIASES, FORMATS, TIFF_COMPRESSIONS
from pixelmill.pipeline.kinds import Bool, Choice, Float, Int, IntChoice, Names, Target
from pixelmill.pipeline.spec import REQUIRED, Param, declare

TARGETED = ("target", "background", "formats", "on_miss", "look")
"""The options of a target encode."""


def target_metrics() -> list[str]:
    """What a target may name: the full-reference metrics with a better direction."""
    from pixelmill.quality.metrics import metrics

    return [name for name, m in metrics().items()
            if m.kind == "reference" and m.higher_is_better is not None]  # fmt: skip


def _target_options(args: Mapping[str, Any]) -> str | None:
    target = args["target"]
    if target is None:
        given = [k for k in TARGETED if args[k] not in (None, False, "keep", True)]
        return f"{', '.join(given)} need(s) a target=" if given else None
    if args["q"] is not None:
        return "give either q or a target, not both"
    if args["format"] != AUTO and args["formats"] is not None:
        return "formats= is for encode:auto (the formats it may choose from)"
    background = args["background"]
    if background is not None:
        from pixelmill.quality.metrics import metric

        stricter = background > target.threshold if metric(target.metric).higher_is_better \
            else background < target.threshold
        if stricter:
            return f"background={background:g} must be a relaxed target, not stricter than {target}"
    return None


def _encode_options(args: Mapping[str, Any]) -> str | None:
    problem = _target_options(args)
    if problem:
        return problem
    if args["format"] == AUTO:
        extra = [k for k, v in args.items()
                 if k not in ("format", "q", "lossless", *TARGETED) and v not in (None, False)]
        if args["lossless"] and args["target"] is None:
            extra.append("lossless")
        return f"encode:auto takes only q, or target= and its options, not {', '.join(extra)}" \
            if extra else None
    fmt = FORMATS[args["format"]]
    name = fmt.name
    if args["target"] is not None and fmt.quality is None:
        takers = ", ".join(f for f, spec in FORMATS.items() if spec.quality)
        return f"a target needs a format with a quality ({takers}, or auto), not {name}"
    tiff_lossy = name == "tiff" and args["compression"] in ("jpeg", "webp")
    if args["q"] is not None and fmt.quality is None and not tiff_lossy:
        takers = [f for f, spec in FORMATS.items() if spec.quality] + ["tiff with jpeg/webp"]
        return f"q does not apply to {name}; it applies to {', '.join(takers)}"
    if args["lossless"] and not fmt.lossless:
        takers = ", ".join(f for f, spec in FORMATS.items() if spec.lossless)
        return f"lossless is not available for {name}; it is for {takers}"
    if args["lossless"] and args["q"] is not None:
        return "give either q or lossless=true, not both"
    if args["effort"] is not None:
        if fmt.effort is None:
            takers = ", ".join(f for f, spec in FORMATS.items() if spec.effort)
            return f"effort does not apply to {name}; it applies to {takers}"
        low, high = fmt.effort
        if not low <= args["effort"] <= high:
            return f"effort {args['effort']} is out of range for {name} ({low}..{high})"
    if args["bitdepth"] is not None and args["bitdepth"] not in fmt.depths:
        allowed = ", ".join(map(str, fmt.depths))
        return f"bitdepth {args['bitdepth']} is not available for {name}; allowed: {allowed}"
    if name != "tiff":
        for option, unset in (("compression", None), ("tile", False), ("pyramid", False),
                              ("bigtiff", None)):  # fmt: skip
            if args[option] != unset:
                return f"{option} applies only to tiff, not {name}"
    return None


def apply(image: pyvips.Image, step: Step, ctx: Context) -> pyvips.Image:
    return image


def models(step: Step) -> tuple[str, ...]:
    """The models a target encode runs: the face detector where it looks for faces, and the
    content-kind classifier where it chooses the format (lossless for graphics)."""
    if step["target"] is None:
        return ()
    return ("faces",) * step["look"] + ("content-kind",) * (step["format"] == AUTO)


OP = Op(declare(
    "encode",
    "jpeg png webp avif heic tiff gif jxl, or auto; q=, effort=, lossless=, bitdepth=, or "
    "target= (the smallest file meeting it); TIFF compression=, tile=, pyramid=, bigtiff=",
    Param("format", Choice((*FORMATS, AUTO), FORMAT_ALIASES), "output format; auto: JPEG XL, "
          "AVIF or WebP when the client takes it (on-demand URLs), else JPEG, or PNG for "
          "sources that may have alpha", REQUIRED),
    Param("q", Int(1, 100), "quality (default per format: jpeg 85, webp 80, avif/heic 60, "
          "jxl 75)", positional=False),
    Param("effort", Int(0, 10), "encoder effort (webp 0-6, avif/heic 0-9, png 0-9, gif 1-10, "
          "jxl 1-9)", positional=False),
    Param("lossless", Bool(), "lossless webp, avif, heic, jxl", False, positional=False),
    Param("target", Target(target_metrics), "encode at the lowest quality whose result meets "
          "this, e.g. target=ssimulacra2>=80 (with lossless=true: lossless when even the "
          "highest quality misses it); see docs/compression.md", positional=False),
    Param("background", Float(-1000.0, 1000.0), "relaxed target for smooth, low-saliency "
          "tiles (faces, objects and edges keep the target)", positional=False),
    Param("formats", Names(), "what encode:auto:target= chooses from (default avif,webp,jpeg; "
          "on-demand URLs: within Accept)", positional=False),
    Param("on_miss", Choice(("keep", "fail", "flag", "hold")), "a missed target: keep the "
          "highest quality, fail writing nothing, or flag or hold it for review like a qc gate",
          "keep", positional=False),
    Param("look", Bool(), "find faces so that the target holds on each (false: the average "
          "and detect steps' boxes only)", True, positional=False),
    Param("bitdepth", IntChoice((8, 10, 12, 16)), "bits per sample (default: keep the input's "
          "where the format holds it, else 8)", positional=False),
    Param("compression", Choice(TIFF_COMPRESSIONS), "tiff compression (default deflate)",
          positional=False),
    Param("tile", Bool(), "tiff: tiled layout", False, positional=False),
    Param("pyramid", Bool(), "tiff: add reduced-resolution levels (implies tile)", False,
          positional=False),
    Param("bigtiff", Bool(), "tiff: 64-bit offsets (default: when the output may pass 4 GB)",
          positional=False),
    check=_encode_options,
    encodes=True,
), apply, models=models)  # fmt: skip
