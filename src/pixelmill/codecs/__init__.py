"""Formats and limits: opening images safely and encoding them."""

from pixelmill.codecs.info import describe
from pixelmill.codecs.load import Source, open_source
from pixelmill.codecs.save import (
    encoder_available,
    prepare,
    without_fields,
    without_icc,
    write,
)

__all__ = [
    "Source",
    "describe",
    "encoder_available",
    "open_source",
    "prepare",
    "without_fields",
    "without_icc",
    "write",
]
