"""The drift report: one self-contained HTML page (inline CSS, inline SVG plots, pictures as data
URIs, no script and nothing fetched) that says whether a dataset drifted and shows how.

A summary, a table of every test (drifting ones first), then a section per drifting test: the
two distributions over one another (a histogram of a numeric feature, the shares of each
category of a categorical field, the two samples' embeddings projected on the line through
their means) and the example images the caller passes for it. Every string is
escaped: captions and names may come from users.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence

import numpy as np

from pixelmill.datasets import drift
from pixelmill.datasets.drift import Comparison, Sample, Test

REFERENCE, CURRENT = "#4c72b0", "#dd8452"
"""The colours of the two samples in every plot."""
WIDTH, HEIGHT, LEFT, RIGHT, PAD = 640, 240, 60, 30, 44
"""The plots' size, and their margins left, right and below."""
BINS = 30
POINTS = 400
"""The most points of each sample the embedding plot draws."""
ORDER = {"drift": 0, "stable": 1, "insufficient": 2}
STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }
th:nth-child(-n+2), td:nth-child(-n+2) { text-align: left; }
tr.drift td { background: #fdecea; font-weight: bold; }
tr.insufficient td { color: #888; }
.verdict { display: inline-block; padding: 2px 10px; border-radius: 4px; color: #fff; }
.verdict.drift { background: #c62828; } .verdict.stable { background: #2e7d32; }
code { background: #f3f3f3; padding: 1px 4px; }
svg.plot { display: block; max-width: 100%; height: auto; margin: 0.5em 0; }
.examples { display: flex; flex-wrap: wrap; gap: 12px; margin-bottom: 2em; }
figure { margin: 0; }
figure img { border: 1px solid #999; display: block; max-width: 200px; }
figcaption { font-size: 12px; max-width: 200px; word-break: break-all; }
"""


def render(comparison: Comparison, reference: Sample, current: Sample, *, title: str,
           examples: dict[str, list[tuple[str, str]]] | None = None) -> str:  # fmt: skip
    """The report as one HTML page. ``examples`` maps a test's name to (caption, image data
    URI) pairs shown under its plot; pictures that are not ``data:image/…`` URIs are left out,
    so the page never fetches anything."""
    examples = examples or {}
    tests = sorted(comparison.tests, key=lambda t: (ORDER.get(t.verdict, 3), _sort_p(t)))
    drifting = [t for t in tests if t.verdict == "drift"]
    sections = [f"<h1>{_e(title)}</h1>", _summary(comparison, reference, current),
                "<h2>Every test</h2>", _table(tests), _method(comparison.alpha)]  # fmt: skip
    if drifting:
        sections.append("<h2>What drifted</h2>")
    for test in drifting:
        sections.append(f"<section id='{_e(_anchor(test.name))}'><h3>{_e(test.name)}</h3>"
                        f"{_plot(test, reference, current)}"
                        f"{_examples(examples.get(test.name, []))}</section>")  # fmt: skip
    return ("<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
            f"<title>{_e(title)}</title><style>{STYLE}</style></head>"
            f"<body>{''.join(sections)}</body></html>")  # fmt: skip


def _summary(comparison: Comparison, reference: Sample, current: Sample) -> str:
    verdict = "drift" if comparison.drift else "stable"
    drifting = [t.name for t in comparison.tests if t.verdict == "drift"]
    what = (f"{len(drifting)} of {len(comparison.tests)} tests drifted: "
            + ", ".join(f"<a href='#{_e(_anchor(n))}'>{_e(n)}</a>" for n in drifting)
            if drifting else f"none of {len(comparison.tests)} tests drifted")  # fmt: skip
    return (f"<p id=summary><span class='verdict {verdict}'>{verdict}</span> {what}.</p>"
            f"<p>Reference: {_size(reference):,} items; current: {_size(current):,} items. "
            f"Alpha {comparison.alpha:g}, after Holm's correction over the "
            f"{sum(t.p_value is not None for t in comparison.tests)} tests with enough values."
            "</p>")


def _table(tests: Sequence[Test]) -> str:
    rows = [f"<tr class='{_e(t.verdict)}'><td>{_e(t.name)}</td><td>{_e(_kind(t.kind))}</td>"
            f"<td>{_number(t.statistic)}</td><td>{_number(t.p_value)}</td>"
            f"<td>{_number(t.effect)}</td><td>{_number(t.psi)}</td>"
            f"<td>{t.n_reference:,}</td><td>{t.n_current:,}</td><td>{_e(t.verdict)}</td></tr>"
            for t in tests]  # fmt: skip
    return ("<table id=tests><tr><th>test</th><th>kind</th><th>statistic</th><th>p (Holm)</th>"
            "<th>effect</th><th>PSI</th><th>n reference</th><th>n current</th><th>verdict</th>"
            f"</tr>{''.join(rows)}</table>")  # fmt: skip


def _method(alpha: float) -> str:
    return (f"<p>A test drifts when its p-value, adjusted by Holm's method over every test "
            f"above, is below {alpha:g} and its effect is at least small: for a numeric "
            f"feature, the Kolmogorov–Smirnov D ≥ {drift.SMALL_D:g} and the population "
            f"stability index ≥ {drift.SMALL_PSI:g}; for a categorical field (χ² test), "
            f"Cramér's V ≥ {drift.SMALL_V:g}; for the embeddings, an MMD² (Gaussian kernel) "
            f"above its permutation threshold. A side with fewer than {drift.MIN_COUNT} values "
            "is <i>insufficient</i>.</p>")


def _plot(test: Test, reference: Sample, current: Sample) -> str:
    if test.kind == "ks":
        return _histogram(test.name, _values(reference.features.get(test.name)),
                          _values(current.features.get(test.name)))  # fmt: skip
    if test.kind == "chi2":
        return _shares(test.name, reference.categories.get(test.name) or [],
                       current.categories.get(test.name) or [])  # fmt: skip
    return _projection(reference.embeddings, current.embeddings)


def _histogram(name: str, ref: np.ndarray, cur: np.ndarray) -> str:
    """Both samples' shares of values in common bins, drawn over one another."""
    pooled = np.concatenate([ref, cur])
    low, high = (float(pooled.min()), float(pooled.max())) if pooled.size else (0.0, 1.0)
    if high <= low:
        low, high = low - 0.5, high + 0.5
    edges = np.linspace(low, high, BINS + 1)
    shares = [np.histogram(side, edges)[0] / max(len(side), 1) for side in (ref, cur)]
    top = max(float(max(s.max() for s in shares)), 1e-9)
    x = _scale(low, high, LEFT, WIDTH - RIGHT)
    y = _scale(0.0, top, HEIGHT - PAD, 16)
    bars = []
    for colour, share in zip((REFERENCE, CURRENT), shares):
        for left, right, value in zip(edges[:-1], edges[1:], share):
            if value > 0:
                bars.append(f"<rect x='{x(left):.1f}' y='{y(value):.1f}' "
                            f"width='{max(x(right) - x(left) - 0.5, 0.5):.1f}' "
                            f"height='{y(0) - y(value):.1f}' fill='{colour}' "
                            "fill-opacity='0.5'/>")  # fmt: skip
    ticks = _ticks(low, high, x, HEIGHT - PAD, horizontal=True)
    ticks += _ticks(0.0, top, y, LEFT, horizontal=False)
    return _svg(f"histograms of {name}", bars + ticks, name, "share of the items")


def _shares(name: str, ref: Sequence[str | None], cur: Sequence[str | None]) -> str:
    """Both samples' share of each category (the 12 commonest), side by side."""
    ref_l = [drift.MISSING if v is None else str(v) for v in ref]
    cur_l = [drift.MISSING if v is None else str(v) for v in cur]
    counts: dict[str, list[int]] = {}
    for side, values in enumerate((ref_l, cur_l)):
        for value in values:
            counts.setdefault(value, [0, 0])[side] += 1
    levels = sorted(counts, key=lambda k: -sum(counts[k]))[:12]
    totals = max(len(ref_l), 1), max(len(cur_l), 1)
    top = max((counts[k][s] / totals[s] for k in levels for s in (0, 1)), default=1.0)
    y = _scale(0.0, top, HEIGHT - PAD, 16)
    step = (WIDTH - LEFT - 10) / max(len(levels), 1)
    parts = []
    for i, level in enumerate(levels):
        left = LEFT + i * step
        for side, colour in enumerate((REFERENCE, CURRENT)):
            value = counts[level][side] / totals[side]
            parts.append(f"<rect x='{left + 4 + side * (step - 8) / 2:.1f}' y='{y(value):.1f}' "
                         f"width='{(step - 8) / 2:.1f}' height='{y(0) - y(value):.1f}' "
                         f"fill='{colour}'/>")  # fmt: skip
        parts.append(f"<text x='{left + step / 2:.1f}' y='{HEIGHT - PAD + 14}' "
                     f"text-anchor='middle'>{_e(level[:14])}</text>")  # fmt: skip
    parts += _ticks(0.0, top, y, LEFT, horizontal=False)
    return _svg(f"category shares of {name}", parts, name, "share of the items")


def _projection(ref: np.ndarray, cur: np.ndarray) -> str:
    """Both samples' embeddings on the line through their two means (across) and on the main
    direction of spread square to it (up)."""
    sides = [_embedding_rows(side)[:POINTS] for side in (ref, cur)]
    if min(len(side) for side in sides) < 2 or sides[0].shape[1] != sides[1].shape[1]:
        return "<p>(no embeddings to draw)</p>"
    pooled = np.concatenate(sides)
    centred = pooled - pooled.mean(axis=0)
    across = sides[1].mean(axis=0) - sides[0].mean(axis=0)
    across /= max(float(np.linalg.norm(across)), 1e-12)
    rest = centred - np.outer(centred @ across, across)
    up = np.linalg.svd(rest, full_matrices=False)[2][0]
    points = np.column_stack([centred @ across, centred @ up])
    (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
    x = _scale(float(x0), float(max(x1, x0 + 1e-9)), LEFT, WIDTH - RIGHT)
    y = _scale(float(y0), float(max(y1, y0 + 1e-9)), HEIGHT - PAD, 16)
    dots = [f"<circle cx='{x(px):.1f}' cy='{y(py):.1f}' r='2.5' fill='{colour}' "
            "fill-opacity='0.6'/>"
            for colour, group in zip((REFERENCE, CURRENT), np.split(points, [len(sides[0])]))
            for px, py in group]  # fmt: skip
    return _svg("embeddings projected on the line through the two means", dots,
                "along the difference of the means", "main spread across it")  # fmt: skip


def _svg(label: str, parts: list[str], x_label: str, y_label: str) -> str:
    legend = "".join(f"<rect x='{WIDTH - 170 + i * 80}' y='2' width='10' height='10' "
                     f"fill='{c}'/><text x='{WIDTH - 156 + i * 80}' y='11'>{n}</text>"
                     for i, (n, c) in enumerate((("reference", REFERENCE),
                                                 ("current", CURRENT))))  # fmt: skip
    axes = (f"<line x1='{LEFT}' y1='{HEIGHT - PAD}' x2='{WIDTH - RIGHT}' y2='{HEIGHT - PAD}' "
            f"stroke='#333'/><line x1='{LEFT}' y1='16' x2='{LEFT}' y2='{HEIGHT - PAD}' "
            f"stroke='#333'/><text x='{(WIDTH + LEFT) / 2:.0f}' y='{HEIGHT - 6}' "
            f"text-anchor='middle'>{_e(x_label)}</text><text x='12' y='{(HEIGHT - PAD) / 2:.0f}' "
            f"text-anchor='middle' transform='rotate(-90 12 {(HEIGHT - PAD) / 2:.0f})'>"
            f"{_e(y_label)}</text>")  # fmt: skip
    return (f"<svg class=plot role=img aria-label='{_e(label)}' xmlns='http://www.w3.org/2000/svg'"
            f" width='{WIDTH}' height='{HEIGHT}' viewBox='0 0 {WIDTH} {HEIGHT}' "
            f"font-size='11' font-family='system-ui, sans-serif'><title>{_e(label)}</title>"
            f"{''.join(parts)}{axes}{legend}</svg>")  # fmt: skip


def _ticks(low: float, high: float, scale: Callable[[float], float], at: float, *,
           horizontal: bool) -> list[str]:
    marks = []
    for value in np.linspace(low, high, 5):
        position = scale(value)
        if horizontal:
            marks.append(f"<line x1='{position:.1f}' y1='{at}' x2='{position:.1f}' "
                         f"y2='{at + 4}' stroke='#333'/><text x='{position:.1f}' y='{at + 16}' "
                         f"text-anchor='middle'>{value:.3g}</text>")  # fmt: skip
        else:
            marks.append(f"<line x1='{at - 4}' y1='{position:.1f}' x2='{at}' "
                         f"y2='{position:.1f}' stroke='#333'/><text x='{at - 6}' "
                         f"y='{position + 4:.1f}' text-anchor='end'>{value:.2g}</text>")
    return marks


def _scale(low: float, high: float, start: float, end: float) -> Callable[[float], float]:
    span = high - low
    return lambda value: start + (float(value) - low) / span * (end - start)


def _examples(pairs: Sequence[tuple[str, str]]) -> str:
    figures = [f"<figure><img alt='{_e(caption)}' src='{_e(uri)}'>"
               f"<figcaption>{_e(caption)}</figcaption></figure>"
               for caption, uri in pairs if str(uri).startswith("data:image/")]  # fmt: skip
    if not figures:
        return ""
    return ("<p>Items of the current sample at both ends of it:</p>"
            f"<div class=examples>{''.join(figures)}</div>")


def _values(values: np.ndarray | None) -> np.ndarray:
    array = np.asarray([] if values is None else values, dtype=np.float64).ravel()
    return array[np.isfinite(array)]


def _embedding_rows(embeddings: np.ndarray) -> np.ndarray:
    array = np.asarray(embeddings, dtype=np.float64)
    if array.size == 0:
        return np.zeros((0, array.shape[1] if array.ndim == 2 else 0))
    array = array.reshape(len(array), -1)
    return array[np.isfinite(array).all(axis=1)]


def _size(sample: Sample) -> int:
    """How many items a sample holds: the longest of its columns."""
    lengths = [len(v) for v in sample.features.values()]
    lengths += [len(v) for v in sample.categories.values()]
    return max([*lengths, len(np.asarray(sample.embeddings))], default=0)


def _kind(kind: str) -> str:
    return {"ks": "Kolmogorov–Smirnov", "mmd": "MMD² (embeddings)", "chi2": "χ²"}.get(kind, kind)


def _anchor(name: str) -> str:
    return "test-" + "".join(c if c.isalnum() else "-" for c in name)


def _sort_p(test: Test) -> float:
    return 2.0 if test.p_value is None else test.p_value


def _number(value: float | None) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.4g}"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)

