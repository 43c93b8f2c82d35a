"""The libvips implementation of every declared step, as lazy graph operations.

Each step is a function ``(image, step) -> image`` plus whether it must read its input out of
order (rotations, vertical flips, smart crops); the engine opens the source for random access
only when some step needs it, and streams top to bottom otherwise. Each also says what size its
output has and what a pixel of it costs, so a pipeline's cost is known from the source's header
before anything is built (see :mod:`pixelmill.engine.cost`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import pyvips

from pixelmill.codecs import colour_bands, to_srgb, without_fields
from pixelmill.codecs.load import TURNING_ORIENTATIONS
from pixelmill.errors import PipelineError
from pixelmill.pipeline import Step
from pixelmill.pipeline.kinds import rgba
from pixelmill.pipeline.steps import MAX_SIDE

Apply = Callable[[pyvips.Image, Step], pyvips.Image]
Shrink = Callable[..., pyvips.Image]
Size = tuple[int, int]
INTERESTING = {"centre": "centre", "smart": "attention", "entropy": "entropy"}
"""Gravities that libvips places itself (smartcrop, thumbnail crop)."""
METADATA_PREFIXES = (
    "exif-", "xmp-", "iptc-", "png-comment-", "gif-comment", "jpeg-comment", "orientation",
)  # fmt: skip


def _same(step: Step, width: int, height: int) -> Size:
    return width, height


@dataclass(frozen=True)
class Op:
    apply: Apply
    random_access: Callable[[Step, int], bool] = lambda step, orientation: False
    """Whether the step reads out of order, given the source's EXIF orientation."""
    size: Callable[[Step, int, int], Size] = _same
    """The output's width and height for an input of that width and height."""
    weight: Callable[[Step], float] = lambda step: 1.0
    """Work per output pixel, relative to a plain pass (neighbourhoods cost more)."""


# --- helpers shared by several steps ------------------------------------------------------------


def max_value(image: pyvips.Image) -> int:
    return 65535 if image.format == "ushort" else 255


def background(image: pyvips.Image, colour: str | None) -> tuple[pyvips.Image, list[float]]:
    """The image (given an alpha band when the colour is see-through) and the colour as pixel
    values for it. ``None`` means transparent where the image has alpha, else white."""
    if colour is None:
        colour = "transparent" if image.hasalpha() else "white"
    r, g, b, a = rgba(colour)
    if a < 255 and not image.hasalpha():
        image = image.bandjoin_const([max_value(image)])
    scale = max_value(image) / 255
    values = [r, g, b] if colour_bands(image) == 3 else [round(0.2126 * r + 0.7152 * g + 0.0722 * b)]
    if image.hasalpha():
        values.append(a)
    return image, [v * scale for v in values]


def premultiplied(image: pyvips.Image, transform: Callable[[pyvips.Image], pyvips.Image]):
    """Apply a resampling transform with alpha premultiplied, so edges do not darken."""
    if not image.hasalpha():
        return transform(image)
    peak = max_value(image)
    out = transform(image.premultiply(max_alpha=peak)).unpremultiply(max_alpha=peak)
    return out.cast(image.format).copy(interpretation=image.interpretation)


ENLARGING = {"nearest": "nearest", "linear": "bilinear"}
"""The interpolator enlarging uses for a kernel; bicubic for every other kernel."""


def scaled(width: int, height: int, hscale: float, vscale: float) -> Size:
    """The size of an image of ``width`` × ``height`` resized by the factors (at least 1×1)."""
    return max(1, round(width * hscale)), max(1, round(height * vscale))


def rescale(image: pyvips.Image, hscale: float, vscale: float, kernel: str) -> pyvips.Image:
    """Resize by the factors keeping pixel centres in place. libvips' resize reduces with the
    kernel, but enlarges with the top-left pixel corner fixed, which shifts the picture by a
    quarter of an output pixel at ×2; enlarging goes through an affine transform offset by
    half a pixel less half an output pixel instead, as Pillow, OpenCV and Matlab align it.
    No side shrinks below one pixel."""
    width, height = scaled(image.width, image.height, hscale, vscale)
    hscale, vscale = max(hscale, 1 / image.width), max(vscale, 1 / image.height)
    if hscale < 1 or vscale < 1:
        image = image.resize(min(hscale, 1.0), vscale=min(vscale, 1.0), kernel=kernel)
    across, down = width / image.width, height / image.height
    if (across, down) == (1.0, 1.0):
        return image
    return image.affine(
        [across, 0, 0, down], oarea=[0, 0, width, height], extend="copy",
        interpolate=pyvips.Interpolate.new(ENLARGING.get(kernel, "bicubic")),
        idx=(1 - 1 / across) / 2, idy=(1 - 1 / down) / 2,
    )  # fmt: skip


def place(image: pyvips.Image, width: int, height: int, gravity: str) -> pyvips.Image:
    """Cut ``width`` × ``height`` (clipped to the image) placed by gravity."""
    width, height = min(width, image.width), min(height, image.height)
    if (width, height) == (image.width, image.height):
        return image
    if gravity in ("smart", "entropy"):
        return image.smartcrop(width, height, interesting=INTERESTING[gravity])
    spare_x, spare_y = image.width - width, image.height - height
    x = 0 if "west" in gravity else spare_x if "east" in gravity else spare_x // 2
    y = 0 if "north" in gravity else spare_y if "south" in gravity else spare_y // 2
    return image.crop(x, y, width, height)


def _smart(step: Step, orientation: int) -> bool:
    return step["gravity"] in ("smart", "entropy")  # None (crop's default) is centre


def _fill_smart(step: Step, orientation: int) -> bool:
    return step["mode"] == "fill" and _smart(step, orientation)


# --- steps --------------------------------------------------------------------------------------


def autorotate(image: pyvips.Image, step: Step) -> pyvips.Image:
    return image.autorot()


def _resize_scales(step: Step, w: int, h: int) -> tuple[float, float]:
    width, height, mode = step["width"], step["height"], step["mode"]
    fits = [s for s in (width and width / w, height and height / h) if s]
    if mode == "fill":
        hscale = vscale = max(fits)
    elif mode == "force" and width and height:
        hscale, vscale = width / w, height / h
    else:
        hscale = vscale = min(fits)
    if not step["upscale"]:
        hscale, vscale = min(hscale, 1.0), min(vscale, 1.0)
    return hscale, vscale


def resize(image: pyvips.Image, step: Step) -> pyvips.Image:
    hscale, vscale = _resize_scales(step, image.width, image.height)
    if (hscale, vscale) != (1.0, 1.0):
        kernel = step["kernel"]
        image = premultiplied(image, lambda i: rescale(i, hscale, vscale, kernel))
    if step["mode"] == "fill":
        image = place(image, step["width"], step["height"], step["gravity"])
    return image


def _resize_size(step: Step, w: int, h: int) -> Size:
    size = scaled(w, h, *_resize_scales(step, w, h))
    if step["mode"] == "fill":
        return min(step["width"], size[0]), min(step["height"], size[1])
    return size


def scale(image: pyvips.Image, step: Step) -> pyvips.Image:
    factor, kernel = step["factor"], step["kernel"]
    return premultiplied(image, lambda i: rescale(i, factor, factor, kernel))


def _scale_size(step: Step, w: int, h: int) -> Size:
    return scaled(w, h, step["factor"], step["factor"])


def thumbnail_with(shrink: Shrink, size: tuple[int, int], step: Step) -> pyvips.Image:
    """Thumbnail through ``shrink`` (libvips' thumbnail of a file, or of an image), whose input
    is ``size`` (width, height) once upright."""
    width = step["width"]
    height = step["height"] or width
    mode, gravity = step["mode"], step["gravity"]
    fit = "both" if step["upscale"] else "down"
    if mode == "force":
        if not step["upscale"]:
            width, height = min(width, size[0]), min(height, size[1])
        return shrink(width, height=height, size="force")
    if mode == "fit":
        return shrink(width, height=height, size=fit)
    if gravity in INTERESTING:
        return shrink(width, height=height, size=fit, crop=INTERESTING[gravity])
    w, h = size
    if width / w >= height / h:
        cover = shrink(width, height=MAX_SIDE, size=fit)
    else:
        cover = shrink(MAX_SIDE, height=height, size=fit)
    return place(cover, width, height, gravity)


def thumbnail(image: pyvips.Image, step: Step) -> pyvips.Image:
    return thumbnail_with(image.thumbnail_image, (image.width, image.height), step)


def _thumbnail_size(step: Step, w: int, h: int) -> Size:
    width = step["width"]
    height = step["height"] or width
    if step["mode"] == "force":
        return (width, height) if step["upscale"] else (min(width, w), min(height, h))
    fits = (width / w, height / h)
    factor = min(fits) if step["mode"] == "fit" else max(fits)
    factor = factor if step["upscale"] else min(factor, 1.0)
    size = scaled(w, h, factor, factor)
    if step["mode"] == "fill":
        return min(width, size[0]), min(height, size[1])
    return size


def crop(image: pyvips.Image, step: Step) -> pyvips.Image:
    if step["x"] is None:
        return place(image, step["width"], step["height"], step["gravity"] or "centre")
    x, y = step["x"], step["y"]
    if x >= image.width or y >= image.height:
        raise PipelineError(
            f"crop: the box at x={x}, y={y} lies outside the {image.width}×{image.height} image"
        )
    width, height = min(step["width"], image.width - x), min(step["height"], image.height - y)
    return image.crop(x, y, width, height)


def _crop_size(step: Step, w: int, h: int) -> Size:
    x, y = step["x"] or 0, step["y"] or 0
    return max(1, min(step["width"], w - x)), max(1, min(step["height"], h - y))


def rotate(image: pyvips.Image, step: Step) -> pyvips.Image:
    angle = step["angle"] % 360
    if angle == 0:
        return image
    if angle in (90, 180, 270):
        return image.rot(f"d{int(angle)}")
    image, fill = background(image, step["background"])
    return premultiplied(image, lambda i: i.rotate(angle, background=fill))


def _turns(step: Step, orientation: int) -> bool:
    return step["angle"] % 360 != 0


def _rotate_size(step: Step, w: int, h: int) -> Size:
    angle = step["angle"] % 360
    if angle in (0, 180):
        return w, h
    if angle in (90, 270):
        return h, w
    across, down = abs(math.cos(math.radians(angle))), abs(math.sin(math.radians(angle)))
    return math.ceil(w * across + h * down) + 1, math.ceil(w * down + h * across) + 1


def _rotate_weight(step: Step) -> float:
    return 1.0 if step["angle"] % 90 == 0 else 4.0  # interpolated


def _neighbourhood_weight(step: Step) -> float:
    """A Gaussian's mask grows with its sigma."""
    return 1.0 + step["sigma"]


def flip(image: pyvips.Image, step: Step) -> pyvips.Image:
    return image.flip(step["direction"])


def blur(image: pyvips.Image, step: Step) -> pyvips.Image:
    sigma = step["sigma"]
    return premultiplied(image, lambda i: i.gaussblur(sigma)).cast(image.format)


def noise(image: pyvips.Image, step: Step) -> pyvips.Image:
    """Seeded Gaussian noise, independent in each colour band; alpha untouched. libvips draws
    each pixel's noise from its position and the seed, so the result repeats exactly."""
    bands, peak = colour_bands(image), max_value(image)
    sigma = step["sigma"] * peak / 255
    grains = [pyvips.Image.gaussnoise(image.width, image.height, sigma=sigma, mean=0,
                                      seed=step["seed"] + band)
              for band in range(bands)]  # fmt: skip
    noisy = (image[:bands] + grains[0].bandjoin(grains[1:])).clamp(min=0, max=peak)
    if image.bands > bands:
        noisy = noisy.bandjoin(image[bands:])
    return noisy.cast(image.format).copy(interpretation=image.interpretation)


def sharpen(image: pyvips.Image, step: Step) -> pyvips.Image:
    return image.sharpen(sigma=step["sigma"], m2=step["amount"])


def grayscale(image: pyvips.Image, step: Step) -> pyvips.Image:
    if colour_bands(image) == 1:
        return image
    return to_srgb(image).colourspace("grey16" if image.format == "ushort" else "b-w")


def _pad_sides(step: Step) -> tuple[int, int, int, int]:
    """Top, right, bottom and left, the omitted ones filled in CSS's way."""
    top = step["top"]
    right = top if step["right"] is None else step["right"]
    bottom = top if step["bottom"] is None else step["bottom"]
    left = right if step["left"] is None else step["left"]
    return top, right, bottom, left


def _pad_size(step: Step, w: int, h: int) -> Size:
    top, right, bottom, left = _pad_sides(step)
    return w + left + right, h + top + bottom


def pad(image: pyvips.Image, step: Step) -> pyvips.Image:
    top, right, bottom, left = _pad_sides(step)
    image, fill = background(image, step["background"])
    return image.embed(
        left, top, image.width + left + right, image.height + top + bottom,
        extend="background", background=fill,
    )  # fmt: skip


def flatten(image: pyvips.Image, step: Step) -> pyvips.Image:
    if not image.hasalpha():
        return image
    bands = colour_bands(image)
    _, fill = background(image.extract_band(0, n=bands), step["background"])
    return image.flatten(background=fill[:bands], max_alpha=max_value(image)).cast(image.format)


def strip(image: pyvips.Image, step: Step) -> pyvips.Image:
    if step["icc"] == "srgb":
        image = to_srgb(image)
    fields = image.get_fields()
    return without_fields(image, [f for f in fields if f.startswith(METADATA_PREFIXES)])


OPS: dict[str, Op] = {
    "autorotate": Op(autorotate, lambda step, orientation: orientation in TURNING_ORIENTATIONS),
    "resize": Op(resize, _fill_smart, _resize_size),
    "scale": Op(scale, size=_scale_size),
    "thumbnail": Op(thumbnail, _fill_smart, _thumbnail_size),
    "crop": Op(crop, lambda step, orientation: step["x"] is None and _smart(step, orientation),
               _crop_size),
    "rotate": Op(rotate, _turns, _rotate_size, _rotate_weight),
    "flip": Op(flip, lambda step, orientation: step["direction"] == "vertical"),
    "blur": Op(blur, weight=_neighbourhood_weight),
    "noise": Op(noise),
    "sharpen": Op(sharpen, weight=_neighbourhood_weight),
    "grayscale": Op(grayscale),
    "pad": Op(pad, size=_pad_size),
    "flatten": Op(flatten),
    "strip": Op(strip),
}
"""Implementations of every declared step but ``encode``, which the codecs carry out."""
