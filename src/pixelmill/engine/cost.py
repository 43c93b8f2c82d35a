"""What a pipeline will cost, worked out from its steps and the source's size before anything
is built, so that a hopeless pipeline is refused at once rather than when it has taken all of
its time or memory.

- Every intermediate image must fit ``max_output_pixels``: ``rotate:45`` fifty times over, or
  ``model:sr-x4`` five times over, is refused naming the step that would pass the limit.
- The work, the output pixels of every step weighted by what one of its pixels costs (a
  Gaussian's by its sigma, a model's a hundred times a plain pass), must stay within
  :data:`WORK_PER_PIXEL` passes over the largest allowed output.

Each step says its output's size and its weight (:class:`pixelmill.engine.step.Op`).
"""

from __future__ import annotations

from pixelmill.config import Settings
from pixelmill.engine.step import op_for
from pixelmill.errors import LimitError
from pixelmill.pipeline import Step
from pixelmill.storage import Location

WORK_PER_PIXEL = 100
"""Weighted passes over ``max_output_pixels`` a pipeline may make at most."""


def check(steps: list[Step], size: tuple[int, int], settings: Settings,
          source: Location) -> None:  # fmt: skip
    """Refuse ``steps`` over a source of ``size`` (width, height, upright) when an
    intermediate image or the whole work would pass the limits."""
    width, height = size
    work, limit = 0.0, settings.max_output_pixels
    for index, step in enumerate(steps, 1):
        op = op_for(step)
        width, height = op.size(step, width, height, settings)
        if width * height > limit:
            raise LimitError(
                f"{source}: step {index} ({step}) would make a {width}×{height} image, "
                f"{width * height:,} pixels, over the limit of {limit:,} (max_output_pixels)"
            )
        work += width * height * op.weight(step)
    if work > WORK_PER_PIXEL * limit:
        raise LimitError(
            f"{source}: the pipeline would process about {work:,.0f} weighted pixels, over "
            f"{WORK_PER_PIXEL} passes over the limit of {limit:,} (max_output_pixels)"
        )
