"""The statistics of a dataset put to work: drift between two windows of it, its most anomalous
items, and the items most worth a human's time; each reads the items from the store and hands
the arrays to :mod:`drift`, :mod:`anomalies` or :mod:`select`."""

from __future__ import annotations

import base64
import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyvips

from pixelmill import codecs, storage
from pixelmill.config import Settings
from pixelmill.datasets import anomalies as outliers
from pixelmill.datasets import drift, report
from pixelmill.datasets import select as choose
from pixelmill.datasets.features import proxy
from pixelmill.datasets.store import Columns, Record, Store, View, checked
from pixelmill.errors import PixelmillError, UsageError

STRATEGIES = ("diverse", "uncertain", "mixed")
DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
EXAMPLES = 4
"""Example images shown from each tail of a drifting feature."""


def seconds(duration: str) -> float:
    """``90s``, ``15m``, ``24h``, ``7d``, ``2w`` in seconds."""
    match = DURATION.fullmatch(duration.strip())
    if match is None:
        raise UsageError(f"duration {duration!r}: a number and a unit, s, m, h, d or w (e.g. 24h)")
    return float(match[1]) * UNITS[match[2]]


@dataclass
class Drift:
    """A drift check: the comparison, and the two windows it compared."""

    comparison: drift.Comparison
    reference: Columns
    current: Columns
    reference_name: str
    current_name: str

    def to_json(self) -> dict[str, Any]:
        found = self.comparison.to_json()
        found.update(reference=self.reference_name, current=self.current_name,
                     n_reference=len(self.reference.uris), n_current=len(self.current.uris))
        return found

    def html(self, settings: Settings) -> str:
        """The report, with example images from the tails of each drifting feature."""
        examples = {}
        for test in self.comparison.tests:
            values = self.current.features.get(test.name)
            if test.verdict != "drift" or values is None:
                continue
            order = [i for i in np.argsort(values) if not math.isnan(values[i])]
            tails = order[:EXAMPLES] + order[-EXAMPLES:] if len(order) > 2 * EXAMPLES else order
            examples[test.name] = [(f"{self.current.uris[i]} ({test.name} {values[i]:.4g})",
                                    uri) for i in tails
                                   if (uri := thumbnail(self.current.uris[i], settings))]
        return report.render(self.comparison, _sample(self.reference), _sample(self.current),
                             title=f"Drift of {self.current_name} against {self.reference_name}",
                             examples=examples)  # fmt: skip


def check_drift(store: Store, name: str, reference: str, *, since: str | None = None,
                current: str | None = None, owner: str = "", alpha: float = 0.05) -> Drift:
    """Compare the items of ``name`` added in the last ``since`` (or the version ``current``,
    or all of its items now) with the version ``reference``."""
    if since is not None and current is not None:
        raise UsageError("give --since or --current, not both")
    base = store.view(reference, owner)
    if base.dataset.name != name.partition("@")[0]:
        raise UsageError(f"the reference {reference} is not a version of {name}")
    now = store.view(current or name, owner)
    start = None if since is None else store.clock() - seconds(since)
    old, new = store.columns(base), store.columns(now, since=start)
    comparison = drift.compare(_sample(old), _sample(new), alpha=alpha)
    label = current or (name if since is None else f"{name} (last {since})")
    return Drift(comparison, old, new, str(base), label)


def anomalies(store: Store, view: View, where: str = "", top: int | None = 20) -> list[dict[str, Any]]:
    """The items of a view ranked by how much they stand out, most anomalous first."""
    found = store.columns(view, where)
    ranked = outliers.rank(found.features, found.embeddings, top=top)
    return [{"uri": found.uris[a.index], "sha256": found.sha256[a.index],
             "score": round(float(a.score), 6), "reasons": a.reasons} for a in ranked]  # fmt: skip


def select(store: Store, view: View, k: int, strategy: str = "diverse", where: str = "", *,
           into: str | None = None, tag: str | None = None, owner: str = "") -> list[dict[str, Any]]:  # fmt: skip
    """The ``k`` items most worth a look: ``diverse`` (k-centre greedy over embeddings),
    ``uncertain`` (QC values nearest their gates' thresholds) or ``mixed``; copied into the
    dataset ``into`` or tagged ``tag`` when asked."""
    if strategy not in STRATEGIES:
        raise UsageError(f"strategy {strategy!r} is not one of {', '.join(STRATEGIES)}")
    if k < 1:
        raise UsageError(f"k must be at least 1, not {k}")
    if tag is not None:
        checked(tag, "tag")
    found = store.columns(view, where)
    gates = store.margins(view, where)
    margins = np.array([min((choose.margin(v, g) for v, g in gates.get(sha, ())),
                            default=np.nan) for sha in found.sha256])  # fmt: skip
    if strategy == "diverse":
        picked = choose.diverse(found.embeddings, k)
    elif strategy == "uncertain":
        picked = choose.uncertain(margins, k)
    else:
        picked = choose.mixed(found.embeddings, margins, k)
    chosen = [{"uri": found.uris[i], "sha256": found.sha256[i],
               "margin": None if math.isnan(margins[i]) else round(float(margins[i]), 6)}
              for i in picked]  # fmt: skip
    hashes = {item["sha256"] for item in chosen}
    if tag is not None and hashes:
        store.label(View(view.dataset), "", add=[tag], hashes=hashes)
    if into is not None:
        target = store.create(into, owner, view.dataset.embedder)
        store.add(target, [Record(row["uri"], row["sha256"], row, row["embedding"], row["role"],
                                  row["parent"], tuple(row["tags"]))
                           for row in store.rows(view, hashes=hashes)])  # fmt: skip
    return chosen


def thumbnail(uri: str, settings: Settings, side: int = 160) -> str | None:
    """A small JPEG of an item as a data URI, or None when it cannot be read any more."""
    try:
        with codecs.open_source(storage.locate(uri), settings) as source:
            data = proxy(source).thumbnail_image(side, height=side).jpegsave_buffer(Q=80)
    except (PixelmillError, pyvips.Error):  # gone or broken since: the report goes on without
        return None
    return "data:image/jpeg;base64," + base64.b64encode(data).decode()


def _sample(columns: Columns) -> drift.Sample:
    return drift.Sample(columns.features, columns.embeddings, columns.categories)
