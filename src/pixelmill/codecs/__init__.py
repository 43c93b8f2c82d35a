"""Formats and limits: opening images safely and encoding them."""

from pixelmill.codecs import decoder_warnings
from pixelmill.codecs.colour import colour_bands, to_srgb, without_fields
from pixelmill.codecs.errors import classify
from pixelmill.codecs.info import describe
from pixelmill.codecs.load import Source, open_source
from pixelmill.codecs.save import encoder_available, prepare, write, write_buffer

__all__ = [
    "Source",
    "classify",
    "colour_bands",
    "decoder_warnings",
    "describe",
    "encoder_available",
    "open_source",
    "prepare",
    "to_srgb",
    "without_fields",
    "write",
    "write_buffer",
]
