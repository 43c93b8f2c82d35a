"""Declarations of steps: a name, typed parameters with defaults, and one line of documentation.

Everything else about a step's surface (parser, canonical formatter, JSON schema, ``pixelmill
ops``) is generated from these declarations by :mod:`pixelmill.pipeline.grammar`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pixelmill.pipeline.kinds import Kind


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()
"""Default of a parameter that must be given."""


@dataclass(frozen=True)
class Param:
    """One argument of a step."""

    name: str
    kind: Kind
    doc: str
    default: Any = None
    positional: bool = True
    """Whether the text form may give it by position (else only as ``name=value``)."""

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


Check = Callable[[Mapping[str, Any]], str | None]
"""A cross-argument check: returns a message when the combination is invalid."""


@dataclass(frozen=True)
class StepSpec:
    """The declaration of one step."""

    name: str
    doc: str
    params: tuple[Param, ...] = ()
    check: Check | None = None

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)

    def describe(self) -> dict[str, Any]:
        """A JSON-ready description, as ``pixelmill ops --json`` prints it."""
        return {
            "name": self.name,
            "doc": self.doc,
            "params": [
                {
                    "name": p.name,
                    "type": p.kind.describe(),
                    "required": p.required,
                    "default": None if p.required else p.default,
                    "positional": p.positional,
                    "doc": p.doc,
                }
                for p in self.params
            ],
        }


STEPS: dict[str, StepSpec] = {}
"""Every declared step, by name, in declaration order."""


def declare(name: str, doc: str, *params: Param, check: Check | None = None) -> StepSpec:
    """Declare a step once; the grammar picks it up from :data:`STEPS`."""
    if name in STEPS:
        raise ValueError(f"step {name!r} declared twice")
    spec = StepSpec(name, doc, params, check)
    STEPS[name] = spec
    return spec
