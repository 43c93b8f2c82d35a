"""What a step is to the engine: its declaration and its implementation behind one protocol,
and the registry the executor looks steps up in. The executor knows steps only through these
fields, never by name.

A step is one module (``pixelmill/engine/steps/NAME.py``, or a plugin's, see
``docs/plugins.md``) that makes an :class:`Op` of its declaration and implementation and
exposes it as ``OP``; :mod:`pixelmill.engine.steps` registers the built-in ones, and plugins'
through their entry points.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pixelmill.errors import UsageError
from pixelmill.pipeline import Pipeline, Step
from pixelmill.pipeline.spec import STEPS, StepSpec

if TYPE_CHECKING:
    import pyvips

    from pixelmill.codecs import Source
    from pixelmill.config import Settings
    from pixelmill.engine.context import Context

Size = tuple[int, int]
Apply = Callable[["pyvips.Image", Step, "Context"], "pyvips.Image"]


def _never(step: Step, source: Source) -> bool:
    return False


def whole(step: Step, source: Source) -> bool:
    """``random_access`` of a step that reads the whole image before the steps after it do
    (a gate's metrics, a detector, a classifier)."""
    return True


def _same(step: Step, width: int, height: int, settings: Settings) -> Size:
    return width, height


def _plain(step: Step) -> float:
    return 1.0


def _none(step: Step) -> tuple[str, ...]:
    return ()


@dataclass(frozen=True)
class Op:
    """A step: its declaration, and what the engine needs to run it and to cost it."""

    spec: StepSpec
    apply: Apply
    """The step's lazy libvips operations over the image (``ctx``: the run's context)."""
    random_access: Callable[[Step, Source], bool] = _never
    """Whether it reads its input out of order (a rotation, a smart crop, a gate's metrics),
    given the source (its orientation, its settings)."""
    size: Callable[[Step, int, int, Settings], Size] = _same
    """The size of its output for an input of that size, worked out before anything is built."""
    weight: Callable[[Step], float] = _plain
    """Work per output pixel, in plain passes (neighbourhoods and models cost more)."""
    on_load: Callable[[Source, Step], pyvips.Image] | None = None
    """How it decodes the source itself when it is the first step (shrink-on-load)."""
    gate: bool = False
    """It judges the image and passes it on unchanged (a quality gate): the step before it
    keeps being the one whose input is "given"."""
    models: Callable[[Step], tuple[str, ...]] = _none
    """The models it runs (their versions are part of what a cached render depends on)."""
    private: bool = False
    """It hides content (redaction): what comes before it must never reach a disk, so the
    source is decoded into memory and no step before it spools to a file."""

    @property
    def name(self) -> str:
        return self.spec.name


OPS: dict[str, Op] = {}
"""Every registered step's implementation, by name (filled with :data:`STEPS`)."""


NAME = re.compile(r"[a-z][a-z0-9_-]{0,39}")
"""What a step may be called: a word of the grammar (no ``:``, ``/`` or ``=``)."""


def register(op: Op) -> None:
    """Add a step, whose name must be a new word of the grammar."""
    if not NAME.fullmatch(op.name):
        raise UsageError(f"step name {op.name!r} of {op.spec.origin}: a step is called by a "
                         "lower-case word of letters, digits, '-' and '_'")  # fmt: skip
    if op.name in STEPS:
        raise UsageError(f"step {op.name!r} of {op.spec.origin} has the name of a step of "
                         f"{STEPS[op.name].origin}")  # fmt: skip
    STEPS[op.name] = op.spec
    OPS[op.name] = op


def op_for(step: Step) -> Op:
    """The implementation of a parsed step."""
    return OPS[step.op]


def models_of(pipeline: Pipeline) -> list[str]:
    """The models the pipeline's steps run, in step order."""
    return [name for step in pipeline.steps for name in op_for(step).models(step)]
