"""Images as every metric takes them: pyvips images of one size, alpha flattened onto white,
converted to sRGB, as float 0..1 (sRGB-encoded, not linear), three bands.

Numpy arrays (H×W or H×W×C; uint8, uint16, or float in 0..1) are accepted too. Nothing here
reads files: the faces load images through the codecs and hand them over.
"""

from __future__ import annotations

import numpy as np
import pyvips

from pixelmill.errors import UsageError

Picture = pyvips.Image | np.ndarray
"""What the metrics accept."""
SIXTEEN_BIT = ("rgb16", "grey16")


def as_vips(picture: Picture) -> pyvips.Image:
    """``picture`` as a pyvips image (arrays wrapped without a copy of their meaning)."""
    if isinstance(picture, pyvips.Image):
        return picture
    array = np.asarray(picture)
    if array.ndim not in (2, 3) or array.size == 0:
        raise UsageError(f"an image array is H×W or H×W×C, not of shape {array.shape}")
    if array.dtype == np.uint8:
        image = pyvips.Image.new_from_array(array, interpretation="srgb" if array.ndim == 3
                                            and array.shape[2] >= 3 else "b-w")  # fmt: skip
    elif array.dtype == np.uint16:
        image = pyvips.Image.new_from_array(array, interpretation="rgb16" if array.ndim == 3
                                            and array.shape[2] >= 3 else "grey16")  # fmt: skip
    elif np.issubdtype(array.dtype, np.floating):
        scaled = np.clip(np.round(array.astype(np.float64) * 65535), 0, 65535).astype(np.uint16)
        return as_vips(scaled)
    else:
        raise UsageError(f"image arrays are uint8, uint16 or float in 0..1, not {array.dtype}")
    return image


def working(picture: Picture) -> pyvips.Image:
    """``picture`` flattened onto white, in sRGB, as three float bands in 0..1."""
    image = as_vips(picture)
    deep = image.interpretation in SIXTEEN_BIT or image.format == "ushort"
    if image.hasalpha():
        image = image.flatten(background=[65535 if deep else 255] * (image.bands - 1))
    if image.bands == 2:  # a grey image with an alpha flatten left as it was
        image = image[0]
    target = "rgb16" if deep else "srgb"
    if image.interpretation != target:
        image = image.colourspace(target)
    return image.cast("float") / (65535.0 if deep else 255.0)


def pair(reference: Picture, distorted: Picture) -> tuple[pyvips.Image, pyvips.Image]:
    """Both images in working form; refused unless they have one size."""
    left, right = working(reference), working(distorted)
    if (left.width, left.height) != (right.width, right.height):
        raise UsageError(f"the reference is {left.width}×{left.height} and the image "
                         f"{right.width}×{right.height}: metrics compare images of one "
                         "size")  # fmt: skip
    return left, right


def shrunk_to(image: pyvips.Image, width: int, height: int) -> pyvips.Image:
    """``image`` resized to exactly ``width`` × ``height`` (bicubic, antialiased when
    shrinking; a rounding row or column repeated)."""
    if (image.width, image.height) == (width, height):
        return image
    resized = image.resize(width / image.width, vscale=height / image.height, kernel="cubic")
    if (resized.width, resized.height) != (width, height):
        resized = resized.gravity("north-west", width, height, extend="copy")
    return resized


def same_size(image: pyvips.Image, reference: pyvips.Image) -> tuple[pyvips.Image, pyvips.Image]:
    """(image, reference), the larger of the two shrunk to the size of the smaller."""
    if image.width * image.height > reference.width * reference.height:
        return shrunk_to(image, reference.width, reference.height), reference
    return image, shrunk_to(reference, image.width, image.height)
