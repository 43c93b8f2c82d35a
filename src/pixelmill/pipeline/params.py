"""Parameters that several steps share, declared once: sides, gravities, kernels, colours."""

from __future__ import annotations

from pixelmill.pipeline.kinds import Choice, Colour, Float, Int, Names
from pixelmill.pipeline.spec import Param

MAX_SIDE = 10_000_000
"""Largest side a step accepts, in pixels."""
GRAVITIES = (
    "centre", "north", "south", "east", "west",
    "northeast", "northwest", "southeast", "southwest", "smart", "entropy", "faces",
)  # fmt: skip
KERNELS = ("lanczos3", "lanczos2", "mitchell", "cubic", "linear", "nearest")

side = Int(1, MAX_SIDE)
gravity = Choice(GRAVITIES, {"center": "centre"})
threshold = Param("threshold", Float(0.0, 1.0), "lowest detector score kept (default: the "
                  "model's layout's: 0.7 for mtcnn faces, 0.25 for yolo)", positional=False)
classes = Param("classes", Names(), "only these classes of the detector, e.g. "
                "classes=person,car", positional=False)  # fmt: skip
kernel = Param("kernel", Choice(KERNELS), "resampling kernel", "lanczos3", positional=False)
background = Param(
    "background", Colour(), "fill colour (default: transparent with alpha, else white)",
    positional=False,
)  # fmt: skip
