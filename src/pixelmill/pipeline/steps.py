"""The steps of the pipeline grammar, each declared once.

Declarations only: what a step is called, what it takes and what it does in one line. The engine
implements them (:mod:`pixelmill.engine.ops`), one function per step.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pixelmill.pipeline.formats import AUTO, FORMAT_ALIASES, FORMATS, TIFF_COMPRESSIONS
from pixelmill.pipeline.kinds import Bool, Choice, Colour, Float, Gates, Int, IntChoice, Name
from pixelmill.pipeline.spec import REQUIRED, Param, declare
from pixelmill.quality.metrics import METRICS

MAX_SIDE = 10_000_000
"""Largest side a step accepts, in pixels."""

GRAVITIES = (
    "centre", "north", "south", "east", "west",
    "northeast", "northwest", "southeast", "southwest", "smart", "entropy",
)  # fmt: skip
KERNELS = ("lanczos3", "lanczos2", "mitchell", "cubic", "linear", "nearest")

_side = Int(1, MAX_SIDE)
_gravity = Choice(GRAVITIES, {"center": "centre"})
_kernel = Param("kernel", Choice(KERNELS), "resampling kernel", "lanczos3", positional=False)
_background = Param(
    "background", Colour(), "fill colour (default: transparent with alpha, else white)",
    positional=False,
)  # fmt: skip


def _needs_a_side(args: Mapping[str, Any]) -> str | None:
    if args["width"] is None and args["height"] is None:
        return "give width, height or both"
    if args["mode"] in ("fill", "force") and None in (args["width"], args["height"]):
        return f"mode {args['mode']} needs both width and height"
    return _gravity_for_fill(args)


def _gravity_for_fill(args: Mapping[str, Any]) -> str | None:
    if args["mode"] != "fill" and args["gravity"] != "centre":
        return f"gravity applies to mode fill only, not {args['mode']}"
    return None


def _box_or_gravity(args: Mapping[str, Any]) -> str | None:
    if (args["x"] is None) != (args["y"] is None):
        return "give both x and y for a box, or neither to place by gravity"
    if args["x"] is not None and args["gravity"] is not None:
        return "give either x and y or a gravity, not both"
    return None


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


declare("autorotate", "rotate upright by the EXIF orientation (also done on load by default)")
declare(
    "resize",
    "resize to a box: fit inside, fill and crop, or force both sides; never enlarges unless asked",
    Param("mode", Choice(("fit", "fill", "force")), "how the image meets the box", REQUIRED),
    Param("width", _side, "box width in pixels (omit to follow the height)"),
    Param("height", _side, "box height in pixels (omit to follow the width)"),
    _kernel,
    Param("gravity", _gravity, "which part fill keeps", "centre", positional=False),
    Param("upscale", Bool(), "allow enlarging", False, positional=False),
    check=_needs_a_side,
)
declare(
    "scale",
    "resize by a factor (below 1 shrinks, above 1 enlarges)",
    Param("factor", Float(0.0001, 1000.0), "scale factor", REQUIRED),
    _kernel,
)
declare(
    "thumbnail",
    "fast resize to a box, decoding at reduced size (shrink-on-load) when it is the first step",
    Param("width", _side, "box width in pixels", REQUIRED),
    Param("height", _side, "box height in pixels (default: the width)"),
    Param("mode", Choice(("fit", "fill", "force")), "how the image meets the box", "fit",
          positional=False),
    Param("gravity", _gravity, "which part fill keeps", "centre", positional=False),
    Param("upscale", Bool(), "allow enlarging", False, positional=False),
    check=_gravity_for_fill,
)  # fmt: skip
declare(
    "crop",
    "cut out width × height, placed by gravity (smart: most interesting part) or at x, y",
    Param("width", _side, "width in pixels (clipped to the image)", REQUIRED),
    Param("height", _side, "height in pixels (clipped to the image)", REQUIRED),
    Param("gravity", _gravity, "where the box sits (default centre)"),
    Param("x", Int(0, MAX_SIDE), "left edge of a box", positional=False),
    Param("y", Int(0, MAX_SIDE), "top edge of a box", positional=False),
    check=_box_or_gravity,
)
declare(
    "rotate",
    "rotate clockwise by degrees; multiples of 90 are exact, others enlarge the canvas",
    Param("angle", Float(-360.0, 360.0), "degrees clockwise", REQUIRED),
    _background,
)
declare(
    "flip",
    "mirror horizontally (left-right) or vertically (top-bottom)",
    Param("direction", Choice(("horizontal", "vertical"), {"h": "horizontal", "v": "vertical"}),
          "which way", "horizontal"),
)  # fmt: skip
declare("blur", "Gaussian blur", Param("sigma", Float(0.01, 1000.0), "radius in pixels", REQUIRED))
declare(
    "noise",
    "add seeded Gaussian noise (film grain, or a repeatable degradation for benchmarks)",
    Param("sigma", Float(0.0, 255.0), "standard deviation in 8-bit levels", REQUIRED),
    Param("seed", Int(0, 2**31 - 1), "random seed (the same seed gives the same noise)", 0,
          positional=False),
)  # fmt: skip
declare(
    "sharpen",
    "unsharp mask on lightness",
    Param("sigma", Float(0.1, 100.0), "radius of the mask in pixels", 0.5),
    Param("amount", Float(0.0, 100.0), "strength on edges", 3.0, positional=False),
)
declare("grayscale", "convert to grey, keeping alpha and bit depth")
declare(
    "pad",
    "add borders, CSS order: top, right, bottom, left (omitted sides repeat the opposite one)",
    Param("top", Int(0, MAX_SIDE), "pixels above", REQUIRED),
    Param("right", Int(0, MAX_SIDE), "pixels right (default: top)"),
    Param("bottom", Int(0, MAX_SIDE), "pixels below (default: top)"),
    Param("left", Int(0, MAX_SIDE), "pixels left (default: right)"),
    _background,
)
declare(
    "flatten",
    "remove alpha by blending onto a background colour",
    Param("background", Colour(), "colour under transparent parts", "white"),
)
declare(
    "strip",
    "remove metadata (EXIF, XMP, IPTC, comments); the ICC profile is kept, or applied with srgb",
    Param("icc", Choice(("keep", "srgb")), "keep the profile, or convert to sRGB and drop it",
          "keep"),
)  # fmt: skip
declare(
    "model",
    "run an ONNX model over the image in tiles (any size, bounded memory, no seams)",
    Param("name", Name(), "model name (pixelmill models list)", REQUIRED),
    Param("tile", Int(16, 8192), "tile side in pixels (default: the model's, within free memory)",
          positional=False),
    Param("overlap", Int(0, 512), "pixels each tile reads past its core (default: the model's "
          "receptive field, which makes tiled output equal whole-image output)", positional=False),
    Param("batch", Int(1, 256), "tiles per inference call (default: up to 16 per band)",
          positional=False),
)  # fmt: skip
declare(
    "qc",
    "quality gate: measure the image against the previous step's input (or the run's "
    "reference) and pass, flag it for review, or fail without writing",
    Param("gates", Gates(tuple(METRICS)), "conditions on metrics, e.g. ssim>=0.92:"
          "consistency>=35 (pixelmill metrics lists them)", REQUIRED),
    Param("on_fail", Choice(("fail", "flag")), "a failed condition stops the run and writes "
          "nothing (fail), or writes and marks the output for review (flag)", "fail",
          positional=False),
)  # fmt: skip
declare(
    "encode",
    "choose the output format and its options (without it, the destination's suffix decides)",
    Param("format", Choice((*FORMATS, AUTO), FORMAT_ALIASES), "output format; auto: AVIF or "
          "WebP when the client takes it (on-demand URLs), else JPEG, or PNG for sources that "
          "may have alpha", REQUIRED),
    Param("q", Int(1, 100), "quality (default per format: jpeg 85, webp 80, avif/heic 60)",
          positional=False),
    Param("effort", Int(0, 10), "encoder effort (webp 0-6, avif/heic 0-9, png 0-9, gif 1-10)",
          positional=False),
    Param("lossless", Bool(), "lossless webp, avif, heic", False, positional=False),
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
)  # fmt: skip
