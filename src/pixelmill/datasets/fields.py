"""The fields of a dataset item: one catalogue that the table, the filter language, the exports,
the statistics and the docs all read.

An item is one image in storage (never a copy of its bytes): where it is and what it holds
(``item``), what its header says (``header``), and cheap statistics of its pixels
(``feature``, computed by :mod:`pixelmill.datasets.features`). Times are seconds since the
epoch (UTC).
"""

from __future__ import annotations

from dataclasses import dataclass

KINDS = ("int", "float", "text", "time")


@dataclass(frozen=True)
class Field:
    name: str
    kind: str
    """int, float, text or time."""
    group: str
    """item, header or feature."""
    doc: str


FIELDS: tuple[Field, ...] = (
    Field("uri", "text", "item", "where the image is: a path or storage URL"),
    Field("sha256", "text", "item", "SHA-256 of the file's bytes, in hex: the item's identity"),
    Field("role", "text", "item", "source, output (of a job or run) or image (added as is)"),
    Field("parent", "text", "item", "for an output: the sha256 of the source it was made from"),
    Field("created", "time", "item", "when the item entered the dataset"),
    Field("updated", "time", "item", "when its labels or fields last changed"),
    Field("format", "text", "header", "jpeg, png, webp, tiff, gif, heic, avif…"),
    Field("width", "int", "header", "width in pixels, upright (EXIF orientation applied)"),
    Field("height", "int", "header", "height in pixels, upright"),
    Field("bands", "int", "header", "channels, alpha included"),
    Field("bit_depth", "int", "header", "bits per channel (8, 16, 32)"),
    Field("colour_space", "text", "header", "libvips interpretation: srgb, b-w, cmyk, rgb16…"),
    Field("icc", "text", "header", "description of the embedded ICC profile, if any"),
    Field("pages", "int", "header", "pages or frames in the file"),
    Field("orientation", "int", "header", "EXIF orientation (1: upright … 8)"),
    Field("camera_make", "text", "header", "EXIF camera make, if any"),
    Field("camera_model", "text", "header", "EXIF camera model, if any"),
    Field("captured", "time", "header", "EXIF capture time (DateTimeOriginal), if any"),
    Field("file_size", "int", "header", "bytes of the file"),
    Field("mean_luma", "float", "feature", "mean full-range BT.601 luma, 0..1"),
    Field("contrast", "float", "feature", "standard deviation of luma, 0..1 (RMS contrast)"),
    Field("colourfulness", "float", "feature", "Hasler–Süsstrunk M on 0..255 RGB"),
    Field("sharpness", "float", "feature", "variance of the Laplacian of luma (0..255 scale)"),
    Field("noise", "float", "feature", "Immerkær's estimate of the noise σ in luma, 0..255"),
    Field("blockiness", "float", "feature", "luma steps across the 8×8 grid over those inside blocks (1: none)"),
    Field("jpeg_quality", "float", "feature", "IJG quality (1..100) estimated from a JPEG's quantisation tables; empty for other formats"),
    Field("clipped_black", "float", "feature", "share of pixels with every channel at 0"),
    Field("clipped_white", "float", "feature", "share of pixels with every channel at full scale"),
    Field("entropy", "float", "feature", "Shannon entropy of the luma histogram, bits (0..8)"),
    Field("aspect", "float", "feature", "width over height"),
)  # fmt: skip
BY_NAME = {f.name: f for f in FIELDS}
FEATURES = tuple(f.name for f in FIELDS if f.group == "feature")
"""The numeric statistics of an item's pixels, in a fixed order."""
HEADER = tuple(f.name for f in FIELDS if f.group == "header")
