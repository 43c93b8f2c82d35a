"""Image helpers that several steps share: resampling with centres kept, placing a box by
gravity, backgrounds and alpha."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pyvips

from pixelmill.codecs import colour_bands
from pixelmill.pipeline.kinds import rgba

if TYPE_CHECKING:
    from pixelmill.config import Settings
    from pixelmill.engine.detection import Seen
    from pixelmill.models.detect import Detection

Size = tuple[int, int]
INTERESTING = {"centre": "centre", "smart": "attention", "entropy": "entropy"}
"""Gravities that libvips places itself (smartcrop, thumbnail crop)."""
SMART = ("smart", "entropy", "faces")
"""Gravities that look at the whole image (random access)."""
Finder = Callable[["pyvips.Image"], list]
"""What finds the faces in an image (:func:`face_finder`)."""


def face_finder(settings: Settings, seen: Seen) -> Finder:
    """What finds the faces in an image: what ``detect:faces`` found in that very image, else
    the face detector run on it. Detection (numpy, onnxruntime) is imported when faces are
    first looked for, so the steps that may look for them cost a run that does not nothing."""

    def faces(image: pyvips.Image) -> list[Detection]:
        from pixelmill.engine.detection import FACES, find
        from pixelmill.models.detect import detector_for

        for looked_at, found in seen:
            if looked_at is image and found.model == FACES:
                return [d for d in found.detections if d.label == "face"]
        return find(image, detector_for(FACES, settings), labels=("face",))

    return faces


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


def place(image: pyvips.Image, width: int, height: int, gravity: str,
          faces: Finder | None = None) -> pyvips.Image:  # fmt: skip
    """Cut ``width`` × ``height`` (clipped to the image) placed by gravity; ``faces`` finds
    the faces that gravity ``faces`` keeps in frame (``smart`` where there are none)."""
    width, height = min(width, image.width), min(height, image.height)
    if (width, height) == (image.width, image.height):
        return image
    if gravity == "faces":
        found = faces(image) if faces is not None else []
        if found:
            x, y = around([d.box for d in found], image.width, image.height, width, height)
            return image.crop(x, y, width, height)
        gravity = "smart"
    if gravity in SMART:
        return image.smartcrop(width, height, interesting=INTERESTING[gravity])
    spare_x, spare_y = image.width - width, image.height - height
    x = 0 if "west" in gravity else spare_x if "east" in gravity else spare_x // 2
    y = 0 if "north" in gravity else spare_y if "south" in gravity else spare_y // 2
    return image.crop(x, y, width, height)


def around(boxes: list[tuple[float, float, float, float]], image_width: int, image_height: int,
           width: int, height: int) -> tuple[int, int]:
    """Where a ``width`` × ``height`` box goes to hold all ``boxes`` when they fit in it (else
    the largest one, then as many of the others as fit around it), centred on them and kept
    inside the image."""
    boxes = sorted(boxes, key=lambda b: -(b[2] - b[0]) * (b[3] - b[1]))
    x0, y0, x1, y1 = boxes[0]
    for box in boxes[1:]:
        grown = (min(x0, box[0]), min(y0, box[1]), max(x1, box[2]), max(y1, box[3]))
        if grown[2] - grown[0] <= width and grown[3] - grown[1] <= height:
            x0, y0, x1, y1 = grown
    x = round((x0 + x1) / 2 - width / 2)
    y = round((y0 + y1) / 2 - height / 2)
    return min(max(x, 0), image_width - width), min(max(y, 0), image_height - height)
