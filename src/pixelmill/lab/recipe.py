"""Recipes: everything a training run needs, read from YAML and checked before anything runs.

A recipe is a bundled name (``sr-x2``: ``pixelmill/lab/recipes/sr-x2.yaml``) or a YAML file.
Every section is a frozen dataclass; keys are checked against its fields and values against
their types, and a bad recipe is refused with the key and value that are wrong.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from pixelmill.errors import UsageError
from pixelmill.lab.augment import Augment
from pixelmill.lab.degrade import STAGES, Degradation, Range
from pixelmill.lab.nets import NetSpec
from pixelmill.pipeline.kinds import Name

BUNDLED = Path(str(files("pixelmill"))) / "lab" / "recipes"
TASKS = {"super-resolution": (2, 3, 4, 8), "denoise": (1,), "dejpeg": (1,)}
"""Tasks the lab trains, with the scales each allows."""
LOSSES = ("l1", "mse", "charbonnier")
SCHEDULES = ("cosine", "constant")


@dataclass(frozen=True)
class Data:
    """Where target images come from: weights of the mix of dead leaves, procedural textures
    and photographs (the bundled training photographs, any folders or storage prefixes, and
    single images, e.g. a dataset's approved items). The first two are named as the
    generators of :mod:`pixelmill.lab.synthetic`."""

    dead_leaves: float = 0.4
    textures: float = 0.2
    photos: float = 0.4
    bundled: bool = True
    folders: tuple[str, ...] = ()
    images: tuple[str, ...] = ()
    photo_scale: Range = (0.5, 1.0)
    """Photographs are shrunk by a random factor in this range before cropping, which cleans
    their noise and blur: targets should be sharper than what the model will meet."""

    def __post_init__(self) -> None:
        weights = (self.dead_leaves, self.textures, self.photos)
        if min(weights) < 0 or sum(weights) <= 0:
            raise UsageError(f"dead_leaves, textures, photos {list(weights)} must be weights "
                             "of zero or more, not all zero")  # fmt: skip
        if self.photos and not (self.bundled or self.folders or self.images):
            raise UsageError(f"photos {self.photos}: give folders or images, or bundled: true")
        if not 0.05 <= self.photo_scale[0] <= self.photo_scale[1] <= 1.0:
            raise UsageError(f"photo_scale {list(self.photo_scale)} is not a range within 0.05..1")


@dataclass(frozen=True)
class Train:
    """How long and how: steps, batches of patches, the learning rate and its schedule, the
    loss, checkpoints, and the seed of everything random."""

    steps: int = 10_000
    batch: int = 16
    patch: int = 48
    """Side of the input patches; targets are ``patch`` × scale."""
    lr: float = 1e-3
    schedule: str = "cosine"
    """cosine (to zero at the last step) or constant, after ``warmup`` steps rising linearly."""
    warmup: int = 0
    loss: str = "l1"
    checkpoint_every: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        for name, low in (("steps", 1), ("batch", 1), ("patch", 8), ("warmup", 0),
                          ("checkpoint_every", 1), ("seed", 0)):  # fmt: skip
            if getattr(self, name) < low:
                raise UsageError(f"{name} {getattr(self, name)} must be {low} or more")
        if not 0 < self.lr < 1:
            raise UsageError(f"lr {self.lr} is not within 0..1")
        if self.schedule not in SCHEDULES:
            raise UsageError(f"schedule {self.schedule!r} is not one of {', '.join(SCHEDULES)}")
        if self.loss not in LOSSES:
            raise UsageError(f"loss {self.loss!r} is not one of {', '.join(LOSSES)}")


@dataclass(frozen=True)
class Teacher:
    """A model the student also learns from (distillation): a lab run folder or checkpoint
    (``.pt``), or the name of an installed ONNX model; ``weight`` is the share of the loss
    measured against the teacher's output rather than the target."""

    model: str
    weight: float = 0.5

    def __post_init__(self) -> None:
        if not 0 <= self.weight <= 1:
            raise UsageError(f"weight {self.weight} is not within 0..1")


@dataclass(frozen=True)
class Export:
    """What the exported model's manifest and ONNX file say."""

    tile: int = 256
    """Largest tile side written into the manifest."""
    fp16: bool = False
    """Whether the manifest allows half precision on a GPU."""
    opset: int = 18

    def __post_init__(self) -> None:
        if not 16 <= self.tile <= 8192:
            raise UsageError(f"tile {self.tile} is not within 16..8192")
        if not 17 <= self.opset <= 23:
            raise UsageError(f"opset {self.opset} is not within 17..23")


@dataclass(frozen=True)
class Recipe:
    """A whole recipe; ``name`` is also the exported model's."""

    name: str
    task: str
    scale: int
    net: NetSpec
    degradation: Degradation
    data: Data = dataclasses.field(default_factory=Data)
    augment: Augment = dataclasses.field(default_factory=Augment)
    train: Train = dataclasses.field(default_factory=Train)
    export: Export = dataclasses.field(default_factory=Export)
    teacher: Teacher | None = None
    version: str = "1"
    description: str = ""
    licence: str = "Apache-2.0"
    init: str | None = None
    """A run folder or checkpoint whose net training starts from, pruned to ``net``'s widths
    when they are narrower (see :mod:`pixelmill.lab.prune`); None: random weights."""
    follows: tuple[str, ...] = ()
    """Installed restoration models the degraded inputs go through, in order, before this
    net sees them: it learns from their outputs and runs after them, as in the pipeline
    ``model:A/model:NAME`` (models trained in sequence)."""

    def with_steps(self, steps: int | None) -> Recipe:
        """The same recipe trained for another number of steps (None: unchanged)."""
        if steps is None:
            return self
        return dataclasses.replace(self, train=dataclasses.replace(self.train, steps=steps))

    def on_images(self, images: Sequence[str], name: str) -> Recipe:
        """The same recipe named ``name``, its photographs being ``images`` alone (URIs)."""
        if not images:
            raise UsageError(f"recipe {name}: no images to train on")
        data = dataclasses.replace(self.data, bundled=False, folders=(), images=tuple(images),
                                   photos=self.data.photos or 1.0)  # fmt: skip
        return dataclasses.replace(self, name=name, data=data)

    def to_dict(self) -> dict[str, Any]:
        """The recipe as the mapping of its YAML form: ``parse(r.to_dict(), …) == r``."""
        data = dataclasses.asdict(self)
        data["net"] = {"arch": self.net.arch, "widths": self.net.widths}
        data["degradation"] = [{_STAGE_NAMES[type(stage)]: dataclasses.asdict(stage)}
                               for stage in self.degradation.stages]  # fmt: skip
        return _plain(data)


def bundled() -> list[str]:
    """Names of the recipes shipped with pixelmill."""
    return sorted(p.stem for p in BUNDLED.glob("*.yaml"))


def load(name_or_path: str) -> Recipe:
    """A bundled recipe by name, or a YAML file."""
    import yaml

    path = Path(name_or_path)
    if not path.is_file():
        if name_or_path not in bundled():
            raise UsageError(f"recipe {name_or_path!r} is neither a file nor a bundled recipe "
                             f"({', '.join(bundled())})")  # fmt: skip
        path = BUNDLED / f"{name_or_path}.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"recipe {path}: cannot be read: {exc}") from None
    return parse(data, f"recipe {path.name}")


def parse(data: Any, origin: str) -> Recipe:
    """A recipe from the mapping of its YAML."""
    if not isinstance(data, dict):
        raise UsageError(f"{origin}: not a mapping of keys")
    known = [f.name for f in dataclasses.fields(_Top)] + list(_SECTIONS)
    unknown = sorted(set(data) - set(known), key=str)
    if unknown:
        raise UsageError(f"{origin}: unknown key {unknown[0]!r}; known: {', '.join(known)}")
    top = _build(_Top, {k: v for k, v in data.items() if k not in _SECTIONS}, origin)
    if top.task not in TASKS:
        raise UsageError(f"{origin}: task {top.task!r} is not one of {', '.join(TASKS)}")
    if top.scale not in TASKS[top.task]:
        allowed = ", ".join(map(str, TASKS[top.task]))
        raise UsageError(f"{origin}: scale {top.scale} does not suit {top.task} ({allowed})")
    try:
        Name().parse(top.name)
    except ValueError as exc:
        raise UsageError(f"{origin}: name {top.name!r} {exc}") from None
    net = _section(data, "net", origin)
    if "scale" in net:
        raise UsageError(f"{origin}: net: scale is set at the top of the recipe, not here")
    teacher = data.get("teacher")
    return Recipe(
        **dataclasses.asdict(top),
        net=_build(NetSpec, {**net, "scale": top.scale}, f"{origin}: net"),
        degradation=_degradation(data.get("degradation"), top.scale, f"{origin}: degradation"),
        data=_build(Data, _section(data, "data", origin), f"{origin}: data"),
        augment=_build(Augment, _section(data, "augment", origin), f"{origin}: augment"),
        train=_build(Train, _section(data, "train", origin), f"{origin}: train"),
        export=_build(Export, _section(data, "export", origin), f"{origin}: export"),
        teacher=None if teacher is None else _build(Teacher, teacher, f"{origin}: teacher"),
    )  # fmt: skip


@dataclass(frozen=True)
class _Top:
    """The top-level keys that are not sections."""

    name: str
    task: str
    scale: int
    version: str = "1"
    description: str = ""
    licence: str = "Apache-2.0"
    init: str | None = None
    follows: tuple[str, ...] = ()


_SECTIONS = ("net", "degradation", "data", "augment", "train", "export", "teacher")
_STAGE_NAMES = {cls: name for name, cls in STAGES.items()}


def _plain(value: Any) -> Any:
    """Tuples as lists, all the way down, as YAML and JSON hold them."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _section(data: dict[str, Any], key: str, origin: str) -> dict[str, Any]:
    value = data.get(key) or {}
    if not isinstance(value, dict):
        raise UsageError(f"{origin}: {key}: expected a mapping of keys, not {value!r}")
    return value


def _degradation(value: Any, scale: int, where: str) -> Degradation:
    """Stages from a list whose items are a stage's name, or a one-key mapping of a stage's
    name to its settings (``- noise: {sigma: [1, 25]}``)."""
    if not isinstance(value, list) or not value:
        raise UsageError(f"{where}: give a list of stages ({', '.join(STAGES)})")
    stages = []
    for index, item in enumerate(value):
        if isinstance(item, str):
            name, settings = item, {}
        elif isinstance(item, dict) and len(item) == 1:
            ((name, settings),) = item.items()
        else:
            name, settings = None, None
        if name not in STAGES:
            raise UsageError(f"{where}[{index}]: {item!r} is not one of {', '.join(STAGES)}, "
                             "alone or with its settings")  # fmt: skip
        stages.append(_build(STAGES[name], settings, f"{where}[{index}].{name}"))
    try:
        return Degradation(tuple(stages), scale)
    except UsageError as exc:
        raise UsageError(f"{where}: {exc}") from None


def _build(cls: type, value: Any, where: str) -> Any:
    """An instance of the dataclass ``cls`` from a mapping, each value checked against its
    field's type; errors name the key and the value."""
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise UsageError(f"{where}: expected a mapping of keys, not {value!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(value) - set(fields))
    if unknown:
        raise UsageError(f"{where}: unknown key {unknown[0]!r}; known: {', '.join(fields)}")
    missing = [name for name, f in fields.items() if name not in value
               and f.default is f.default_factory is dataclasses.MISSING]  # fmt: skip
    if missing:
        raise UsageError(f"{where}: {missing[0]} is required")
    hints = typing.get_type_hints(cls)
    values = {key: _convert(hints[key], item, f"{where}.{key}") for key, item in value.items()}
    try:
        return cls(**values)
    except UsageError as exc:
        raise UsageError(f"{where}: {exc}") from None


def _convert(kind: Any, value: Any, where: str) -> Any:
    """``value`` as the type ``kind``: bool, int, float, str, ``X | None``, ``tuple[X, ...]``
    (one item or a list) or a (low, high) range (one number or two)."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        return _convert(next(a for a in args if a is not type(None)), value, where)
    if origin is tuple:
        if args[-1] is Ellipsis:
            items = value if isinstance(value, list) else [value]
            return tuple(_convert(args[0], item, f"{where}[{i}]") for i, item in enumerate(items))
        pair = value if isinstance(value, list) else [value, value]
        if len(pair) != 2:
            raise UsageError(f"{where}: {value!r} is not one number or a range [low, high]")
        return tuple(_convert(float, item, where) for item in pair)
    if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if kind is str and isinstance(value, str | int | float) and not isinstance(value, bool):
        return str(value)
    if kind in (int, bool) and type(value) is kind:
        return value
    raise UsageError(f"{where}: {value!r} is not a {getattr(kind, '__name__', kind)}")
