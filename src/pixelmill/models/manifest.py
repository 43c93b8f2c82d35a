"""The manifest of a model: what the tiled engine must know to run it correctly.

Every field is declared once, in :data:`FIELDS`, as a JSON Schema fragment with its description:
:func:`schema` publishes them (``pixelmill models schema``) and :func:`problems` checks a manifest
against them. The check is written here rather than done with ``jsonschema`` because importing
that library costs about 90 ms on every model run, and the fragments use only ``type``,
``enum``, ``pattern``, ``minimum``, ``maximum`` and two-item arrays of numbers; the tests check
that ``jsonschema`` agrees with it.
"""

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
RANGE = {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}
FIELDS: dict[str, dict[str, Any]] = {
    "name": {"type": "string", "pattern": f"^{NAME.pattern}$",
             "description": "What the model is called in pipelines (model:NAME); its files are "
                            "NAME.onnx and NAME.json in a models folder. Never a path."},
    "version": {"type": "string", "description": "The model's version, free text."},
    "task": {"type": "string", "pattern": "^[a-z][a-z0-9-]{0,39}$",
             "description": "What it does: super-resolution, denoise, dejpeg, filter, …; embed "
                            "(one vector per image), detect (boxes), classify (a score per "
                            "label)."},
    "scale": {"type": "integer", "enum": [1, 2, 3, 4, 8],
              "description": "Output size over input size (1 for restoration models)."},
    "channels": {"enum": [1, 3, "y"],
                 "description": "What the network sees: 3 (colour), 1 (one grey plane; a "
                                "colour image runs plane by plane) or \"y\" (luma only: the "
                                "network runs on Y, chroma is resized with a cubic kernel)."},
    "colour": {"type": "string", "enum": list(COLOURS),
               "description": "Colour space of the image: gray for channels 1, else rgb."},
    "receptive_field": {"type": "integer", "minimum": 0, "maximum": 512,
                        "description": "Radius in input pixels that one output pixel depends "
                                       "on: the overlap tiling needs (pixelmill models add "
                                       "measures it)."},
    "tile": {"type": "integer", "minimum": 16, "maximum": 8192, "default": 256,
             "description": "Largest tile side the planner may choose, in input pixels."},
    "align": {"type": "integer", "minimum": 1, "maximum": 64, "default": 1,
              "description": "Tiles start at, and measure, multiples of this many pixels: "
                             "the product of a strided or pooling network's strides."},
    "value_range": {**RANGE, "default": [0.0, 1.0],
                    "description": "Values that stand for black and white at the model's input "
                                   "and output, low first."},
    "range_in": {**RANGE, "description": "value_range of the input, where it differs."},
    "range_out": {**RANGE, "description": "value_range of the output, where it differs."},
    "outputs": {"type": ["string", "integer"], "default": 0,
                "description": "Which output of a multi-output network is the image: its name "
                               "or its index."},
    "labels": {"type": "array", "items": {"type": "string"}, "default": [],
               "description": "Class names of a detector or classifier, in output order."},
    "layout": {"type": "string", "enum": ["", *LAYOUTS], "default": "",
               "description": "How a detector's outputs are laid out."},
    "fp16": {"type": "boolean", "default": False,
             "description": "Whether the model may run in half precision on a GPU."},
    "provenance": {"type": "string", "default": "", "description": "Where the weights come from."},
    "licence": {"type": "string", "default": "", "description": "The weights' licence."},
    "description": {"type": "string", "default": "", "description": "One line for people."},
}
REQUIRED = ("name", "version", "task", "scale", "channels", "colour", "receptive_field")
_TYPES: dict[str, tuple[type, ...]] = {"string": (str,), "integer": (int,), "number": (int, float),
                                       "boolean": (bool,), "array": (list, tuple)}  # fmt: skip


@dataclass(frozen=True)
class Manifest:
    """A model's description, stored as JSON beside its ONNX file (``NAME.json``); each field
    is described in :data:`FIELDS`."""

    name: str
    version: str
    task: str
    scale: int
    channels: int | str
    colour: str
    receptive_field: int
    tile: int = 256
    align: int = 1
    value_range: tuple[float, float] = (0.0, 1.0)
    range_in: tuple[float, float] | None = None
    range_out: tuple[float, float] | None = None
    outputs: str | int = 0
    labels: tuple[str, ...] = ()
    layout: str = ""
    fp16: bool = False
    provenance: str = ""
    licence: str = ""
    description: str = ""

    def __post_init__(self) -> None:
        found = problems(self.describe())
        if found:
            raise ModelError(f"model {self.name!r}: manifest: {'; '.join(found)}")

    @property
    def bands(self) -> int:
        """Bands of the image the model takes and gives (3 for a luma-only model)."""
        return 1 if self.channels == 1 else 3

    @property
    def planes(self) -> int:
        """Channels of the network's own input tensor."""
        return 3 if self.channels == 3 else 1

    @property
    def overlap(self) -> int:
        """Input pixels a tile must read past its core so that tiled equals whole: the
        receptive field (at least the cubic kernel's reach of 2 where a luma model's chroma is
        resized), rounded up to a multiple of ``align``."""
        reach = max(self.receptive_field, 2 if self.channels == "y" and self.scale > 1 else 0)
        return -(-reach // self.align) * self.align

    @property
    def input_range(self) -> tuple[float, float]:
        return tuple(self.range_in or self.value_range)  # type: ignore[return-value]

    @property
    def output_range(self) -> tuple[float, float]:
        return tuple(self.range_out or self.value_range)  # type: ignore[return-value]

    @classmethod
    def from_json(cls, text: str, origin: str) -> Manifest:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ModelError(f"manifest {origin}: not JSON: {exc}") from None
        return cls.from_dict(data, origin)

    @classmethod
    def from_dict(cls, data: object, origin: str) -> Manifest:
        """The manifest in ``data``, or an error that blames ``origin`` and names each wrong
        field, its value and what is allowed."""
        if not isinstance(data, dict):
            raise ModelError(f"manifest {origin}: a JSON object is needed, not "
                             f"{type(data).__name__}")  # fmt: skip
        found = problems(data)
        if found:
            raise ModelError(f"manifest {origin}: {'; '.join(found)} "
                             "(every field: pixelmill models schema)")  # fmt: skip
        # every number outside a list is an integer field, and 2.0 is an integer in JSON
        known = {k: tuple(v) if isinstance(v, list) else int(v) if isinstance(v, float) else v
                 for k, v in data.items()}  # fmt: skip
        return cls(**known)

    def to_json(self) -> str:
        return json.dumps(self.describe(), indent=2)

    def describe(self) -> dict[str, Any]:
        """The fields as JSON values, without the optional ones left at their defaults (the
        tile and value range are always given)."""
        values = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}
        return {k: v for k, v in values.items() if v is not None and (
            k in ("tile", "value_range") or v != FIELDS[k].get("default", None))}  # fmt: skip


def schema() -> dict[str, Any]:
    """The manifest's JSON Schema."""
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "https://pixelmill.dev/schemas/model-manifest.json",
            "title": "pixelmill model manifest", "type": "object",
            "required": list(REQUIRED), "properties": FIELDS,
            "additionalProperties": False}  # fmt: skip


def problems(data: dict[str, Any]) -> list[str]:
    """What is wrong with a manifest given as JSON values: unknown, missing and ill-typed
    fields, then the rules between fields."""
    found = [f"unknown field {key!r}" for key in data if key not in FIELDS]
    found += [f"missing required field {key!r} ({_allowed(FIELDS[key])})"
              for key in REQUIRED if key not in data]  # fmt: skip
    for key, value in data.items():
        if key in FIELDS and value is not None and not _fits(value, FIELDS[key]):
            found.append(f"field {key!r}: {value!r} is not {_allowed(FIELDS[key])}")
    if found:
        return found
    channels, colour = data["channels"], data["colour"]
    if (colour == "gray") != (channels == 1):
        found.append(f"field 'colour': {colour!r} does not fit channels {channels!r} "
                     "(gray for 1, rgb for 3 and \"y\")")  # fmt: skip
    for key in ("value_range", "range_in", "range_out"):
        low, high = data.get(key) or (0.0, 1.0)
        if not low < high:
            found.append(f"field {key!r}: {[low, high]!r} must give black below white")
    if data.get("tile", 256) % data.get("align", 1):
        found.append(f"field 'tile': {data['tile']} is not a multiple of align {data['align']}")
    task = data["task"]
    if task == "detect" and data.get("layout") not in LAYOUTS:
        found.append(f"field 'layout': {data.get('layout', '')!r} of a detector is not one of "
                     f"{', '.join(LAYOUTS)}")  # fmt: skip
    if task in ("detect", "classify") and not data.get("labels"):
        found.append(f"field 'labels': a {task} model needs its class names")
    return found


def _fits(value: object, spec: dict[str, Any]) -> bool:
    kinds = spec.get("type", [])
    kinds = [kinds] if isinstance(kinds, str) else kinds
    if kinds and not any(_is(value, kind) for kind in kinds):
        return False
    if "enum" in spec and not any(value == v and isinstance(value, str) == isinstance(v, str)
                                  and isinstance(value, bool) == isinstance(v, bool)
                                  for v in spec["enum"]):  # fmt: skip
        return False
    if "pattern" in spec and not re.search(spec["pattern"], value):  # type: ignore[arg-type]
        return False
    if isinstance(value, (int, float)) and not spec.get("minimum", value) <= value <= spec.get(
            "maximum", value):  # fmt: skip
        return False
    if isinstance(value, (list, tuple)):
        if not spec.get("minItems", 0) <= len(value) <= spec.get("maxItems", len(value)):
            return False
        return all(_fits(item, spec["items"]) for item in value)
    return True


def _is(value: object, kind: str) -> bool:
    """Whether a JSON value is of a JSON Schema type (2.0 is an integer, true is not)."""
    if isinstance(value, bool):
        return kind == "boolean"
    if kind == "integer":
        return isinstance(value, int) or isinstance(value, float) and value.is_integer()
    return isinstance(value, _TYPES[kind])


def _allowed(spec: dict[str, Any]) -> str:
    """What a field may be, in words."""
    if "enum" in spec:
        return "one of " + ", ".join(json.dumps(v) for v in spec["enum"])
    kinds = spec["type"] if isinstance(spec["type"], list) else [spec["type"]]
    text = " or ".join(f"a{'n' if k[0] in 'aeiou' else ''} {k}" for k in kinds)
    if "minimum" in spec:
        text += f" from {spec['minimum']} to {spec['maximum']}"
    if "pattern" in spec:
        text += f" matching {spec['pattern']}"
    if spec is FIELDS["name"]:
        text = f"a model name ({text}), never a path"
    if spec.get("minItems") == 2:
        text = "two numbers [low, high]"
    elif "items" in spec:
        text += f" of {spec['items']['type']}s"
    return text
