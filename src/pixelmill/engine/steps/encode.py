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
from pixelmill.pipeline.kinds import Bool, Choice, Int, IntChoice
from pixelmill.pipeline.spec import REQUIRED, Param, declare


def _encode_options(args: Mapping[str, Any]) -> str | None:
    if args["format"] == AUTO:
        extra = [k for k, v in args.items() if k not in ("format", "q") and v not in (None, False)]
        return f"encode:auto takes only q, not {', '.join(extra)}" if extra else None
    fmt = FORMATS[args["format"]]
    name = fmt.name
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


OP = Op(declare(
    "encode",
    "jpeg png webp avif heic tiff gif jxl, or auto; q=, effort=, lossless=, bitdepth=; TIFF "
    "compression=, tile=, pyramid=, bigtiff=",
    Param("format", Choice((*FORMATS, AUTO), FORMAT_ALIASES), "output format; auto: JPEG XL, "
          "AVIF or WebP when the client takes it (on-demand URLs), else JPEG, or PNG for "
          "sources that may have alpha", REQUIRED),
    Param("q", Int(1, 100), "quality (default per format: jpeg 85, webp 80, avif/heic 60, "
          "jxl 75)", positional=False),
    Param("effort", Int(0, 10), "encoder effort (webp 0-6, avif/heic 0-9, png 0-9, gif 1-10, "
          "jxl 1-9)", positional=False),
    Param("lossless", Bool(), "lossless webp, avif, heic, jxl", False, positional=False),
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
), apply)  # fmt: skip
