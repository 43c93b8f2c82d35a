"""The pipeline grammar: text form, JSON form, canonical formatting and JSON schema.

Text form: steps separated by ``/``; a step is its name followed by ``:``-separated arguments,
given by position or as ``name=value``; an empty positional argument means its default. A
variadic argument (the gates of ``qc``) gathers every argument of its form wherever it is::

    autorotate/resize:fit:1024:768/sharpen:0.6/encode:webp:q=80
    model:sr-x2/qc:consistency>=35:ssimulacra2>=60:on_fail=flag

JSON form: ``[{"op": "resize", "mode": "fit", "width": 1024, "height": 768}, ...]``.

The canonical text form gives required and leading set arguments by position and the rest of the
set ones as ``name=value``, defaults omitted, so ``Pipeline.parse(str(p)) == p``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pixelmill.errors import PipelineError
from pixelmill.pipeline.spec import StepSpec
from pixelmill.pipeline.spec import steps as all_steps

MAX_STEPS = 64
"""Most steps a pipeline may have: each adds buffers and work to one graph, and no sensible
pipeline comes near it."""


@dataclass(frozen=True)
class Step:
    """One validated step: its name and the value of every parameter (defaults filled in)."""

    op: str
    args: tuple[tuple[str, Any], ...]

    @classmethod
    def make(cls, op: str, **values: Any) -> Step:
        """Build a step from typed values, validating them like parsed ones."""
        return _build(_spec(op), {k: (v, _checked) for k, v in values.items()})

    @property
    def spec(self) -> StepSpec:
        return all_steps()[self.op]

    def __getitem__(self, name: str) -> Any:
        for key, value in self.args:
            if key == name:
                return value
        raise KeyError(f"{self.op} has no argument {name!r}")

    def explicit(self) -> dict[str, Any]:
        """The arguments whose values differ from their defaults."""
        return {p.name: v for p, (_, v) in zip(self.spec.params, self.args) if v != p.default}

    def __str__(self) -> str:
        parts = [self.op]
        positional = True
        for param, (_, value) in zip(self.spec.params, self.args):
            if positional and param.positional and (param.required or value != param.default):
                parts.append(param.kind.format(value))
                continue
            positional = False
            if value != param.default:
                parts.append(f"{param.name}={param.kind.format(value)}")
        return ":".join(parts)

    def to_json(self) -> dict[str, Any]:
        kinds = {param.name: param.kind for param in self.spec.params}
        return {"op": self.op,
                **{name: kinds[name].to_json(value) for name, value in self.explicit().items()}}


@dataclass(frozen=True)
class Pipeline:
    """An ordered, validated list of steps."""

    steps: tuple[Step, ...] = ()

    @classmethod
    def parse(cls, source: str | Iterable[Mapping[str, Any]] | Pipeline | None) -> Pipeline:
        """Parse the text form, the JSON form (a list, or a string starting with ``[``), or
        return a Pipeline unchanged."""
        if source is None:
            return cls()
        if isinstance(source, Pipeline):
            return source
        if isinstance(source, str):
            text = source.strip()
            if text.startswith(("[", "{")):
                import json

                try:
                    source = json.loads(text)
                except ValueError as exc:
                    raise PipelineError(f"pipeline JSON is invalid: {exc}") from None
                except RecursionError:
                    raise PipelineError("pipeline JSON is nested too deeply") from None
            else:
                return cls._validated(_parse_text_step(t) for t in _counted(_split(text)))
        if isinstance(source, Mapping) or not isinstance(source, Iterable):
            raise PipelineError(
                "pipeline JSON must be a list of steps, e.g. [{\"op\": \"resize\", ...}]"
            )
        return cls._validated(_parse_json_step(s, i) for i, s in enumerate(_counted(source)))

    @classmethod
    def _validated(cls, steps: Iterable[Step]) -> Pipeline:
        steps = tuple(steps)
        for index, step in enumerate(steps):
            if step.spec.encodes and index != len(steps) - 1:
                raise PipelineError(f"{step.op}: must be the last step and appear once")
        return cls(steps)

    def __str__(self) -> str:
        return "/".join(map(str, self.steps))

    def to_json(self) -> list[dict[str, Any]]:
        return [step.to_json() for step in self.steps]

    def find(self, op: str) -> Step | None:
        """The first step of that name, if any."""
        return next((s for s in self.steps if s.op == op), None)

    def encoder(self) -> Step | None:
        """The step that encodes the output, if any (the last)."""
        return next((s for s in self.steps if s.spec.encodes), None)

    @staticmethod
    def json_schema() -> dict[str, Any]:
        """JSON schema of the JSON form (the text form is also accepted as a string)."""
        return {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "pixelmill pipeline",
            "oneOf": [
                {"type": "string", "description": "text form, e.g. resize:fit:512/encode:webp"},
                {"type": "array", "items": {"oneOf": [_step_schema(s) for s in all_steps().values()]}},
            ],
        }


def _step_schema(spec: StepSpec) -> dict[str, Any]:
    properties: dict[str, Any] = {"op": {"const": spec.name}}
    for param in spec.params:
        properties[param.name] = {**param.kind.schema(), "description": param.doc}
        if not param.required and param.default is not None:
            properties[param.name]["default"] = param.default
    return {
        "type": "object",
        "description": spec.doc,
        "properties": properties,
        "required": ["op"] + [p.name for p in spec.params if p.required],
        "additionalProperties": False,
    }


def _counted(steps: Iterable[Any]) -> list[Any]:
    """The steps, refused past :data:`MAX_STEPS` (without reading more than one past it)."""
    listed = list(itertools.islice(steps, MAX_STEPS + 1))
    if len(listed) > MAX_STEPS:
        raise PipelineError(f"a pipeline has at most {MAX_STEPS} steps; this one has more")
    return listed


def _split(text: str) -> list[str]:
    if not text:
        return []
    parts = text.split("/")
    for index, part in enumerate(parts):
        if not part.strip():
            raise PipelineError(f"step {index + 1} is empty (pipeline {text!r})")
    return [p.strip() for p in parts]


def _spec(op: str) -> StepSpec:
    known = all_steps()
    spec = known.get(op.lower()) if isinstance(op, str) else None
    if spec is None:
        import difflib

        close = difflib.get_close_matches(str(op).lower(), known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise PipelineError(f"unknown step {op!r}{hint} (steps: {', '.join(known)})")
    return spec


def _parse_text_step(text: str) -> Step:
    name, *raw_args = text.split(":")
    spec = _spec(name.strip())
    given: dict[str, tuple[Any, Any]] = {}
    gatherer = next((p for p in spec.params if getattr(p.kind, "variadic", False)), None)
    gathered = [raw for raw in raw_args if gatherer and gatherer.kind.matches(raw)]
    if gatherer and gathered:
        given[gatherer.name] = (":".join(gathered), _parsed)
        raw_args = [raw for raw in raw_args if raw not in gathered]
    positional = [p for p in spec.params if p.positional and p is not gatherer]
    seen_keyword = False
    for position, raw in enumerate(raw_args):
        key, sep, value = raw.partition("=")
        if sep:
            seen_keyword = True
            param_name = key.strip().lower()
        else:
            if seen_keyword:
                raise PipelineError(f"{spec.name}: positional argument {raw!r} after name=value")
            if position >= len(positional):
                raise PipelineError(
                    f"{spec.name}: too many arguments ({len(raw_args)}); it takes "
                    f"{_signature(spec)}"
                )
            param_name, value = positional[position].name, raw
            if value == "":
                continue
        if param_name in given:
            raise PipelineError(f"{spec.name}: {param_name} given twice")
        given[param_name] = (value, _parsed)
    return _build(spec, given)


def _parse_json_step(item: Any, index: int) -> Step:
    if not isinstance(item, Mapping) or "op" not in item:
        raise PipelineError(f"step {index + 1} must be an object with \"op\", not {item!r}")
    spec = _spec(item["op"])
    return _build(spec, {k: (v, _checked) for k, v in item.items() if k != "op"})


def _parsed(kind: Any, value: Any) -> Any:
    return kind.parse(value)


def _checked(kind: Any, value: Any) -> Any:
    return kind.check(value)


def _build(spec: StepSpec, given: Mapping[str, tuple[Any, Any]]) -> Step:
    values: dict[str, Any] = {}
    unknown = [k for k in given if spec.param(k) is None]
    if unknown:
        names = ", ".join(p.name for p in spec.params) or "no arguments"
        raise PipelineError(f"{spec.name}: unknown argument {unknown[0]!r} (allowed: {names})")
    for param in spec.params:
        if param.name not in given:
            if param.required:
                raise PipelineError(
                    f"{spec.name}: missing {param.name} ({param.kind.describe()}); "
                    f"usage: {_signature(spec)}"
                )
            values[param.name] = param.default
            continue
        value, convert = given[param.name]
        if value is None and not param.required:
            values[param.name] = param.default
            continue
        try:
            values[param.name] = convert(param.kind, value)
        except ValueError as exc:
            import json

            shown = value if isinstance(value, str) else json.dumps(value)
            raise PipelineError(f"{spec.name}: {param.name} '{shown}' {exc}") from None
    if spec.check and (problem := spec.check(values)):
        raise PipelineError(f"{spec.name}: {problem}")
    return Step(spec.name, tuple(values.items()))


def _signature(spec: StepSpec, keywords: bool = True) -> str:
    """Usage line of a step, e.g. ``resize:MODE[:WIDTH][:HEIGHT][:kernel=…]`` (without the
    arguments given only by name unless ``keywords``)."""
    parts = [spec.name]
    for p in spec.params:
        if getattr(p.kind, "variadic", False):
            parts.append(f"{p.name.upper()}…")
        elif p.positional:
            parts.append(p.name.upper() if p.required else f"[{p.name.upper()}]")
        elif keywords:
            parts.append(f"[{p.name}=…]")
    return ":".join(parts)


def signature(op: str, keywords: bool = True) -> str:
    """Usage line of a step by name, as ``pixelmill ops`` prints it."""
    return _signature(_spec(op), keywords)
