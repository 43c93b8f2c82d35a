"""Declarations of steps: a name, typed parameters with defaults, and one line of documentation.

Everything else about a step's surface (parser, canonical formatter, JSON schema, ``pixelmill
ops``, the README's table) is generated from these declarations by
:mod:`pixelmill.pipeline.grammar`. A step is declared in the module that implements it
(``pixelmill/engine/steps/``, or a plugin's), above this layer: the registry here is filled
when steps are first looked up (:func:`steps`), by importing :data:`PROVIDER` by name.
"""

from __future__ import annotations

import functools
import importlib
import threading
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
    encodes: bool = False
    """It encodes the output: the last step, at most once, never part of the image's graph."""
    origin: str = "pixelmill"
    """The package it comes from."""

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
"""Every registered step, by name, in the order registered (use :func:`steps`)."""
PROVIDER = "pixelmill.engine.steps"
"""The module whose ``load()`` registers the built-in steps and those of plugins."""


def declare(name: str, doc: str, *params: Param, check: Check | None = None,
            encodes: bool = False) -> StepSpec:  # fmt: skip
    """A step's declaration (registered with its implementation, see
    :func:`pixelmill.engine.step.register`)."""
    return StepSpec(name, doc, params, check, encodes)


def steps() -> dict[str, StepSpec]:
    """Every step, by name; the built-in ones and plugins' are loaded on first use."""
    _load()
    return STEPS


_LOADING = threading.RLock()


@functools.cache
def _load() -> None:
    with _LOADING:  # functools.cache lets two threads' first calls in at once
        if not STEPS:
            importlib.import_module(PROVIDER).load()
