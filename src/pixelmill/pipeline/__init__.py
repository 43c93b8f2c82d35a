"""The pipeline grammar: step declarations and the parser, formatter and schema built on them."""

from pixelmill.pipeline.grammar import Pipeline, Step, signature
from pixelmill.pipeline.spec import steps

__all__ = ["Pipeline", "Step", "signature", "steps"]
