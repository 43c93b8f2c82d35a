"""The manifest of a model: what the tiled engine must know to run it correctly."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from typing import Any

from pixelmill.errors import ModelError

COLOURS = ("rgb", "gray")
LAYOUTS = ("yolo", "mtcnn")
"""The output layouts of detectors (task ``detect``) that :mod:`pixelmill.models.detect`
decodes."""
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
"""What a model may be called: its files are NAME.onnx and NAME.json in a models folder."""


@dataclass(frozen=True)
class Manifest:
    """A model's description, stored as JSON beside its ONNX file (``NAME.json``)."""

    name: str
    version: str
    task: str
    """What it does, e.g. super-resolution, denoise, dejpeg, filter; ``embed`` for a model that
    gives one vector per image (:mod:`pixelmill.models.vectors`); ``detect`` for one that
    finds boxes (:mod:`pixelmill.models.detect`); ``classify`` for one that gives a score per
    label (:mod:`pixelmill.models.classify`)."""
    scale: int
    """Output size over input size (1 for restoration models)."""
    channels: int
    """Colour channels in and out (1 or 3); alpha is handled beside the model."""
    colour: str
    """Colour space of those channels: rgb or gray."""
    receptive_field: int
    """Radius in input pixels that one output pixel depends on: the overlap tiling needs."""
    tile: int = 256
    """Preferred tile side in input pixels."""
    value_range: tuple[float, float] = (0.0, 1.0)
    """Values that stand for black and white at the model's input and output."""
    labels: tuple[str, ...] = ()
    """Class names of a detector or classifier, in the order of its outputs."""
    layout: str = ""
    """How a detector's outputs are laid out (one of :data:`LAYOUTS`)."""
    fp16: bool = False
    """Whether the model may run in half precision on a GPU."""
    provenance: str = ""
    licence: str = ""
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not NAME.fullmatch(self.name):
            raise ModelError(f"model name {self.name!r}: a name of 1 to 100 letters, digits, "
                             "'.', '_' or '-', starting with a letter or digit (no folders)")
        problems = []
        if self.scale not in (1, 2, 3, 4, 8):
            problems.append(f"scale {self.scale} is not one of 1, 2, 3, 4, 8")
        if self.channels not in (1, 3):
            problems.append(f"channels {self.channels} is not 1 or 3")
        if self.colour not in COLOURS or (self.colour == "gray") != (self.channels == 1):
            problems.append(f"colour {self.colour!r} does not fit {self.channels} channel(s)")
        if not 0 <= self.receptive_field <= 512:
            problems.append(f"receptive_field {self.receptive_field} is not within 0..512")
        if not 16 <= self.tile <= 8192:
            problems.append(f"tile {self.tile} is not within 16..8192")
        if self.task == "detect" and self.layout not in LAYOUTS:
            problems.append(f"layout {self.layout!r} of a detector is not one of "
                            f"{', '.join(LAYOUTS)}")  # fmt: skip
        if self.task in ("detect", "classify") and not self.labels:
            problems.append(f"a {self.task} model needs labels (its class names)")
        if problems:
            raise ModelError(f"model {self.name}: manifest: {'; '.join(problems)}")

    @classmethod
    def from_json(cls, text: str, origin: str) -> Manifest:
        try:
            data = json.loads(text)
            data["value_range"] = tuple(data.get("value_range", (0.0, 1.0)))
            data["labels"] = tuple(data.get("labels", ()))
            return cls(**data)
        except ModelError:
            raise
        except (ValueError, TypeError) as exc:
            raise ModelError(f"{origin}: not a valid model manifest: {exc}") from None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    def describe(self) -> dict[str, Any]:
        return asdict(self)
