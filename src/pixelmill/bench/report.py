"""The benchmark report: one self-contained HTML file (tables, matplotlib plots and side-by-side
crops at 100 % zoom, every picture embedded) and the JSON of every figure.

Crops are cut where the ground truth (or the input) is most interesting (libvips' attention
crop), at the same place in every image, scaled only by each image's own size, and shown pixel
for pixel so a person can judge what the numbers say.
"""

from __future__ import annotations

import base64
import html
import io
import json
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyvips

from pixelmill.bench.measure import Bench
from pixelmill.errors import UsageError
from pixelmill.quality import metric

CROP = 160
"""Side of the crops, in pixels of the ground truth (or input)."""
STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
td.best { font-weight: bold; background: #e8f5e9; }
code { background: #f3f3f3; padding: 1px 4px; }
.crops { display: flex; flex-wrap: wrap; gap: 12px; margin-bottom: 2em; }
figure { margin: 0; }
figure img { image-rendering: pixelated; border: 1px solid #999; display: block; }
figcaption { font-size: 12px; max-width: 320px; word-break: break-all; }
img.plot { max-width: 100%; }
"""


def write(bench: Bench, folder: Path) -> tuple[Path, Path]:
    """Write ``report.html`` and ``report.json`` into ``folder``; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    page, data = folder / "report.html", folder / "report.json"
    data.write_text(json.dumps(bench.to_json(), indent=2), encoding="utf-8")
    page.write_text(render(bench), encoding="utf-8")
    return page, data


def render(bench: Bench) -> str:
    summary = bench.summary()
    sections = [
        f"<h1>pixelmill bench</h1><p>{_about(bench)}</p>",
        "<h2>Ranking</h2>" + _ranking(bench, summary),
        "<h2>Plots</h2>" + _legend(bench) + "".join(
            f'<img class="plot" alt="{html.escape(alt)}" src="{src}">'
            for alt, src in _plots(bench, summary)
        ),
        "<h2>Every image</h2>" + _details(bench),
        "<h2>Crops at 100 %</h2>" + "".join(_crops(bench, image) for image in bench.images),
    ]
    return ("<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>pixelmill bench"
            f"</title><style>{STYLE}</style></head><body>{''.join(sections)}</body></html>")


def _about(bench: Bench) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    truth = (f"ground truth: each image, degraded by <code>{html.escape(bench.degrade)}</code> "
             "into the pipelines' input" if bench.degrade else
             "no ground truth: no-reference indicators, and consistency for upscales")  # fmt: skip
    return (f"{len(bench.pipelines)} pipelines on {len(bench.images)} images; {truth}. "
            f"Ranked by {html.escape(bench.rank_by)}. Speed: input megapixels per second of "
            f"<code>pixelmill run</code>, decoding and encoding included, on {platform.machine()} "
            f"({platform.processor() or platform.system()}); {when}.")  # fmt: skip


def _header(bench: Bench) -> str:
    cells = "".join(f"<th title='{html.escape(metric(n).doc)}'>{n}{_arrow(n)}</th>"
                    for n in bench.metrics)  # fmt: skip
    return f"{cells}<th>MP/s ↑</th><th>bytes</th>"


def _arrow(name: str) -> str:
    better = metric(name).higher_is_better
    return "" if better is None else " ↑" if better else " ↓"


def _ranking(bench: Bench, summary: list[dict[str, Any]]) -> str:
    best = {name: _best(name, [row["metrics"].get(name) for row in summary])
            for name in bench.metrics}  # fmt: skip
    rows = []
    for place, row in enumerate(summary, 1):
        cells = "".join(
            f"<td{' class=best' if _is_best(row, n, best) else ''}>"
            f"{_number(row['metrics'].get(n))}</td>" for n in bench.metrics
        )  # fmt: skip
        rows.append(f"<tr><td>{place}. <code>{html.escape(row['pipeline'])}</code></td>{cells}"
                    f"<td>{row['mp_per_s']:.2f}</td><td>{row['bytes']:,.0f}</td></tr>")  # fmt: skip
    return (f"<table id=ranking><tr><th>pipeline</th>{_header(bench)}</tr>{''.join(rows)}"
            "</table><p>Means over the images; MP/s is the median.</p>")


def _is_best(row: dict[str, Any], name: str, best: dict[str, float | None]) -> bool:
    return best[name] is not None and row["metrics"].get(name) == best[name]


def _best(name: str, values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    better = metric(name).higher_is_better
    if not present or better is None:
        return None
    return max(present) if better else min(present)


def _details(bench: Bench) -> str:
    rows = [f"<tr><td>{html.escape(r.image)}</td><td><code>{html.escape(r.pipeline)}</code></td>"
            + "".join(f"<td>{_number(r.metrics.get(n))}</td>" for n in bench.metrics)
            + f"<td>{r.mp_per_s:.2f}</td><td>{r.bytes:,}</td></tr>"
            for r in bench.results]  # fmt: skip
    return (f"<table id=details><tr><th>image</th><th>pipeline</th>{_header(bench)}</tr>"
            f"{''.join(rows)}</table>")


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:.4g}"


def _legend(bench: Bench) -> str:
    return "<ul>" + "".join(f"<li>P{i}: <code>{html.escape(p)}</code></li>"
                            for i, p in enumerate(bench.pipelines, 1)) + "</ul>"  # fmt: skip


def _plots(bench: Bench, summary: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(alt text, data URL) of each plot: the ranking metric per pipeline, and quality
    against speed and against bytes."""
    try:
        import matplotlib
    except ImportError:
        raise UsageError("the report's plots need matplotlib: pip install 'pixelmill[bench]'"
                         ) from None  # fmt: skip
    matplotlib.use("Agg")
    from matplotlib import pyplot

    labels = [f"P{bench.pipelines.index(row['pipeline']) + 1}" for row in summary]
    quality = bench.rank_by if bench.rank_by != "mp-per-s" else bench.metrics[0]
    values = [row["metrics"].get(quality, float("nan")) for row in summary]
    plots = []
    figure, axes = pyplot.subplots(figsize=(6, 3.2), dpi=100)
    axes.barh(labels[::-1], values[::-1], color="#4c72b0")
    axes.set_xlabel(f"{quality} ({metric(quality).unit})")
    axes.set_title(f"{quality} per pipeline (mean over images)")
    plots.append((f"bar chart of {quality} per pipeline", _png(figure)))
    for key, axis_label in (("mp_per_s", "megapixels per second"), ("bytes", "bytes")):
        figure, axes = pyplot.subplots(figsize=(6, 3.2), dpi=100)
        axes.scatter([row[key] for row in summary], values, color="#dd8452")
        for label, row, value in zip(labels, summary, values):
            axes.annotate(label, (row[key], value), textcoords="offset points", xytext=(4, 4))
        axes.set_xlabel(axis_label)
        axes.set_ylabel(quality)
        axes.set_title(f"{quality} against {axis_label}")
        plots.append((f"{quality} against {axis_label}", _png(figure)))
    return plots


def _png(figure: Any) -> str:
    from matplotlib import pyplot

    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png")
    pyplot.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _crops(bench: Bench, image: str) -> str:
    base_file = bench.files.get((image, "truth")) or bench.files[(image, "input")]
    base = pyvips.Image.new_from_file(str(base_file))
    side = min(CROP, base.width, base.height)
    box = _attention(base, side)
    figures = []
    for label, key in [("ground truth", "truth"), ("input", "input"),
                       *[(f"P{i}: {p}", p) for i, p in enumerate(bench.pipelines, 1)]]:  # fmt: skip
        path = bench.files.get((image, key))
        if path is None:
            continue
        picture = pyvips.Image.new_from_file(str(path))
        figures.append(f"<figure><img alt='{html.escape(label)}' src='{_crop(picture, base, box)}'>"
                       f"<figcaption>{html.escape(label)}</figcaption></figure>")  # fmt: skip
    return f"<h3>{html.escape(image)}</h3><div class=crops>{''.join(figures)}</div>"


def _attention(image: pyvips.Image, side: int) -> tuple[int, int, int, int]:
    """The most interesting ``side``² square of ``image`` (left, top, width, height)."""
    _, opts = image.smartcrop(side, side, interesting="attention", attention_x=True,
                              attention_y=True)  # fmt: skip
    left = max(0, min(opts["attention_x"] - side // 2, image.width - side))
    top = max(0, min(opts["attention_y"] - side // 2, image.height - side))
    return left, top, side, side


def _crop(picture: pyvips.Image, base: pyvips.Image, box: tuple[int, int, int, int]) -> str:
    """``box`` of ``base`` cut from ``picture`` at the same place, scaled by their sizes."""
    sx, sy = picture.width / base.width, picture.height / base.height
    left, top = int(box[0] * sx), int(box[1] * sy)
    width = max(1, min(round(box[2] * sx), picture.width - left))
    height = max(1, min(round(box[3] * sy), picture.height - top))
    cut = picture.crop(left, top, width, height)
    if cut.format != "uchar":  # 16-bit outputs, shown as 8-bit sRGB
        cut = cut.colourspace("srgb").cast("uchar")
    return "data:image/png;base64," + base64.b64encode(cut.pngsave_buffer()).decode()
