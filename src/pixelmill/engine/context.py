"""What one run gives its steps besides the image: its settings, a place for what must outlive
the graph's construction, notes, progress, its clock, and what the steps before left for those
after (the input given to the last step, quality verdicts, model runs)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyvips

    from pixelmill.config import Settings
    from pixelmill.engine.watchdog import Watch
    from pixelmill.storage import Location


class Clock:
    """Seconds by stage: each lap is the time since the previous one, less what was set aside
    (quality gates inside the graph's construction)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.monotonic()
        self._aside = 0.0

    def lap(self, stage: str) -> None:
        now = time.monotonic()
        self.add(stage, now - self._last - self._aside)
        self._last, self._aside = now, 0.0

    def aside(self, stage: str, seconds: float) -> None:
        """Count ``seconds`` of the current lap under ``stage`` instead."""
        self.add(stage, seconds)
        self._aside += seconds

    def add(self, stage: str, seconds: float) -> None:
        self.seconds[stage] = round(self.seconds.get(stage, 0.0) + seconds, 6)


@dataclass
class Context:
    """One run, as its steps see it."""

    settings: Settings
    stack: contextlib.ExitStack
    """Where a step leaves what must outlive the graph's construction (spools, streams)."""
    notes: list[str]
    progress: Callable[[float], None] | None
    """Who hears the run's progress: taken by a step that streams (a model), else the
    encoder's."""
    source: Location
    clock: Clock
    watch: Watch
    built: list[pyvips.Image]
    """Each step's output, so that stopping the run stops all of them."""
    reference: pyvips.Image | None = None
    """The run's reference image for quality gates, if given."""
    given: pyvips.Image | None = None
    """The input of the last step that was not a gate (the decoded source before any)."""
    random_after: bool = False
    """Whether a step after the one being built reads out of order."""
    private: bool = False
    """Whether a step hides content later in the run: nothing may be spooled to disk."""
    strip: bool = False
    """Whether the output is written without metadata (set by a step)."""
    verdicts: list[Any] = field(default_factory=list)
    """Quality verdicts, in order (:class:`pixelmill.engine.qc.Verdict`)."""
    found: list[tuple[Any, Any]] = field(default_factory=list)
    """What detectors found, with the image each looked at
    (:data:`pixelmill.engine.detection.Seen`)."""
    classes: list[dict[str, Any]] = field(default_factory=list)
    """What classifiers said (``{"model", "top": [{"class", "score"}]}``)."""
    encode: dict[str, Any] | None = None
    """How a target encode chose its quality (:mod:`pixelmill.compress`)."""
    models: list[Any] = field(default_factory=list)
    """Model runs (:class:`pixelmill.engine.tiled.ModelRun`), for their timings."""
