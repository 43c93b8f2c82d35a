"""Images as numpy arrays: H×W×3 float32 RGB in 0..1, the lab's one working form, converted to
and from libvips and read from any storage through pixelmill's loader."""

from __future__ import annotations

import numpy as np
import pyvips

from pixelmill import codecs
from pixelmill.config import Settings
from pixelmill.storage import Location


def to_vips(array: np.ndarray) -> pyvips.Image:
    return pyvips.Image.new_from_array(np.ascontiguousarray(array))


def from_vips(image: pyvips.Image) -> np.ndarray:
    """Grey becomes RGB, alpha is dropped; 8- and 16-bit samples are scaled to 0..1."""
    peak = {"uchar": 255.0, "ushort": 65535.0}.get(image.format, 1.0)
    colour = image.extract_band(0, n=codecs.colour_bands(image))
    array = colour.numpy().astype(np.float32) / np.float32(peak)
    array = array.reshape(image.height, image.width, -1)
    return np.repeat(array, 3, axis=2) if array.shape[2] == 1 else array


def from_uint8(array: np.ndarray) -> np.ndarray:
    """An 8-bit grey or RGB array as the working form."""
    rgb = np.repeat(array[..., None], 3, axis=2) if array.ndim == 2 else array[..., :3]
    return rgb.astype(np.float32) / np.float32(255)


def to_uint8(array: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(array * 255), 0, 255).astype(np.uint8)


def quantised(array: np.ndarray) -> np.ndarray:
    """Rounded to the 256 levels of an 8-bit image, as real inputs are."""
    return to_uint8(array).astype(np.float32) / np.float32(255)


def read(loc: Location, settings: Settings) -> np.ndarray:
    """A whole image from any storage, upright and in sRGB."""
    with codecs.open_source(loc, settings) as source:
        return from_vips(codecs.to_srgb(source.decode(random_access=True)))


def write_png(array: np.ndarray, path: str) -> None:
    to_vips(to_uint8(array)).copy(interpretation="srgb").pngsave(path, compression=1)


