"""Gates tuned by people: for every QC metric measured on a queue's decided items, the threshold
that best agrees with the reviewers, as a gate ready to paste into a ``qc`` step.

A gate predicts "rejected" when an item's value lies on the bad side of the threshold (below it
for metrics where higher is better). Every value seen is tried as the threshold; the best one
catches rejections with the highest F1 (precision and recall balanced), ties going to the
higher agreement, then to the more lenient gate.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pixelmill.pipeline.kinds import GATE, number
from pixelmill.quality.metrics import metrics
from pixelmill.review.store import Item


@dataclass(frozen=True)
class Threshold:
    """The gate on one metric that best agrees with the reviewers."""

    metric: str
    threshold: float
    """The value where the gate starts to fail items, rounded as in :attr:`gate`."""
    gate: str
    """e.g. ``ssim>=0.9312``: passes what reviewers would approve."""
    precision: float
    """Of the items the gate fails, the share reviewers rejected."""
    recall: float
    """Of the items reviewers rejected, the share the gate fails."""
    f1: float
    agreement: float
    """Share of items on which the gate and the reviewers agree."""
    n: int
    rejected: int

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def calibrate(decided: Sequence[tuple[Item, str]]) -> list[Threshold]:
    """The best gate on each metric measured on the decided items (each with its outcome,
    ``approved`` or ``rejected``), by metric name; metrics whose direction is unknown are left
    out."""
    values: dict[str, list[tuple[float, bool]]] = {}
    directions: dict[str, bool] = {}
    for item, outcome in decided:
        seen: dict[str, float] = {}
        for verdict in item.qc:
            seen.update(verdict.get("values", {}))
            for gate in verdict.get("gates", ()):
                if found := GATE.fullmatch(gate):
                    directions.setdefault(found.group(1), found.group(2).startswith(">"))
        for metric, value in seen.items():
            values.setdefault(metric, []).append((float(value), outcome == "rejected"))
    catalogue = metrics()
    found = []
    for metric, pairs in sorted(values.items()):
        known = catalogue.get(metric)
        higher = known.higher_is_better if known is not None else None
        higher = directions.get(metric) if higher is None else higher
        if higher is not None:
            found.append(best(metric, pairs, higher))
    return found


def best(metric: str, pairs: Sequence[tuple[float, bool]], higher: bool) -> Threshold:
    """The threshold on ``metric`` that best separates rejected from approved values."""
    values = np.array([value for value, _ in pairs])
    rejected = np.array([bad for _, bad in pairs])
    sign = 1.0 if higher else -1.0  # fail below the threshold (above for lower-is-better)
    scored = []
    for threshold in np.unique(values):
        fails = sign * values < sign * threshold
        caught = int(np.sum(fails & rejected))
        precision = caught / max(int(fails.sum()), 1)
        recall = caught / max(int(rejected.sum()), 1)
        f1 = 2 * precision * recall / (precision + recall) if caught else 0.0
        agreement = float(np.mean(fails == rejected))
        scored.append((f1, agreement, -sign * threshold, float(threshold), precision, recall))
    f1, agreement, _, threshold, precision, recall = max(scored)
    threshold = _rounded(threshold, values, higher)
    gate = f"{metric}{'>=' if higher else '<='}{number(threshold)}"
    return Threshold(metric, threshold, gate, precision, recall, f1, agreement, len(values),
                     int(rejected.sum()))  # fmt: skip


def _rounded(threshold: float, values: np.ndarray, higher: bool) -> float:
    """``threshold`` to the fewest significant digits (4 or more) that classify ``values`` the
    same way."""
    sign = 1.0 if higher else -1.0
    wanted = sign * values < sign * threshold
    for digits in range(4, 17):
        shorter = float(f"{threshold:.{digits}g}")
        if np.array_equal(sign * values < sign * shorter, wanted):
            return shorter
    return threshold
