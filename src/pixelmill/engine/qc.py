"""Quality gates inside a run: the image at a ``qc`` step measured against a reference, every
condition judged, and a verdict (pass, flag, hold or fail) kept with the run's outcome.

The reference is the input of the step before the gate (what that step was given), or the
run's own reference image (a ground truth) when one is passed. Full-reference metrics need one
size: when the two differ, the larger is shrunk to the smaller (bicubic, antialiased), so
``resize:fit:512/qc:ssim>=0.9`` compares the result with an ideal shrink of the original; the
consistency metric compares an upscale with its source as it is.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import pyvips

from pixelmill.pipeline import Step
from pixelmill.quality.metrics import compare

OUTCOMES = ("pass", "flag", "hold", "fail")
COUNTS = {"faces": "faces in the image (what detect:faces found in it, else the bundled faces "
                   "detector's count)"}  # fmt: skip
"""What a gate may count besides the metrics, e.g. ``qc:faces>=1``."""


def gate_names() -> list[str]:
    """What a gate's condition may name: every metric, and :data:`COUNTS`."""
    from pixelmill.quality.metrics import metrics

    return [*metrics(), *COUNTS]


@dataclass(frozen=True)
class Verdict:
    """What one gate found."""

    outcome: str
    """pass; flag (written, sent to review); hold (written, kept from delivery until approved);
    or fail (nothing written)."""
    values: dict[str, float]
    gates: tuple[str, ...]
    failed: tuple[str, ...]
    """The conditions that did not hold."""
    queue: str = "review"
    """The review queue of a flagged or held output."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        shown = ", ".join(f"{name} {value:.4g}" for name, value in self.values.items())
        broken = f"; failed {', '.join(self.failed)}" if self.failed else ""
        return f"qc {self.outcome}: {shown}{broken}"


def judge(image: pyvips.Image, reference: pyvips.Image, step: Step,
          counted: dict[str, float] | None = None) -> Verdict:  # fmt: skip
    """Measure ``image`` against ``reference`` for each gate of ``step`` and judge them
    (``counted``: the values of :data:`COUNTS` the gates name)."""
    gates = step["gates"]
    counted = counted or {}
    measured = [gate.metric for gate in gates if gate.metric not in counted]
    values = compare(reference, image, measured, resample=True) if measured else {}
    values = {gate.metric: counted.get(gate.metric, values.get(gate.metric)) for gate in gates}
    failed = tuple(str(gate) for gate in gates if not gate.passes(values[gate.metric]))
    outcome = "pass" if not failed else step["on_fail"]
    return Verdict(outcome, values, tuple(str(gate) for gate in gates), failed, step["queue"])
