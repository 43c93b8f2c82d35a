"""Colour and sample-format conversions shared by loading, the steps and encoding."""

from __future__ import annotations

import pyvips

from pixelmill.errors import InputError

FOREIGN_SPACES = {"lab", "labq", "labs", "lch", "cmc", "xyz", "yxy", "scrgb", "hsv"}
"""Colour spaces converted to sRGB on load."""
SAMPLE_FORMATS = ("uchar", "ushort")
"""Sample formats every step and encoder handles (8 and 16 bits, unsigned)."""


def colour_bands(image: pyvips.Image) -> int:
    """Bands other than alpha."""
    return image.bands - (1 if image.hasalpha() else 0)


def is_deep(image: pyvips.Image) -> bool:
    return image.format == "ushort"


def without_fields(image: pyvips.Image, names: list[str]) -> pyvips.Image:
    """The image without those metadata fields (a copy, so others sharing it keep them)."""
    present = [name for name in names if name in image.get_fields()]
    if not present:
        return image
    image = image.copy()
    for name in present:
        image.remove(name)
    return image


def without_icc(image: pyvips.Image) -> pyvips.Image:
    return without_fields(image, ["icc-profile-data"])


def to_srgb(image: pyvips.Image, input_profile: str = "srgb") -> pyvips.Image:
    """Pixels converted through the embedded ICC profile (else ``input_profile``) to sRGB,
    at the image's depth, with no profile left attached (sRGB is what readers assume)."""
    if input_profile == "srgb" and "icc-profile-data" not in image.get_fields():
        return image
    depth = 16 if is_deep(image) else 8
    converted = image.icc_transform("srgb", embedded=True, input_profile=input_profile, depth=depth)
    return without_icc(converted)


def working_space(image: pyvips.Image, name: str) -> pyvips.Image:
    """CMYK (through its profile, else a standard one) and other colour spaces converted to
    sRGB, so every step and format can take the image; 16 bits stay 16 bits.

    Sample formats other than 8/16-bit unsigned (signed, 32-bit integer, float outside scRGB)
    have no agreed range, so they are refused rather than guessed.
    """
    if image.interpretation == "cmyk":
        image = to_srgb(image, input_profile="cmyk")
    elif image.interpretation in FOREIGN_SPACES:
        image = image.colourspace("rgb16" if is_deep(image) else "srgb")
    if image.format not in SAMPLE_FORMATS:
        raise InputError(
            f"{name}: {image.format} samples are not supported; pixelmill reads 8- and 16-bit "
            "unsigned images (and scRGB float)"
        )
    if colour_bands(image) not in (1, 3):
        raise InputError(
            f"{name}: {image.bands}-band {image.interpretation} images are not supported; "
            "pixelmill reads grey and RGB, with or without alpha, and CMYK"
        )
    return image


def to_depth(image: pyvips.Image, depth: int) -> pyvips.Image:
    """8 or 16 bits per sample (10 and 12 are carried as 16 for the encoder to reduce)."""
    grey = colour_bands(image) == 1
    if depth == 8 and is_deep(image):
        return image.colourspace("b-w" if grey else "srgb")
    if depth > 8 and not is_deep(image):
        return image.colourspace("grey16" if grey else "rgb16")
    return image
