"""Executes parsed pipelines: the libvips graph of steps between a source and a destination."""

from pixelmill.engine.execute import Outcome, cancel, cancelled, execute
from pixelmill.engine.output import output_format, output_suffix, settle_format

__all__ = ["Outcome", "cancel", "cancelled", "execute", "output_format", "output_suffix",
           "settle_format"]
