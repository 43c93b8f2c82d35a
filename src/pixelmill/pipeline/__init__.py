"""The pipeline grammar: step declarations and the parser, formatter and schema built on them."""

from pixelmill.pipeline.grammar import Pipeline, Step, signature
from pixelmill.pipeline.spec import STEPS

__all__ = ["STEPS", "Pipeline", "Step", "signature"]
