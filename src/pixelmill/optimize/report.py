"""The HTML report of ``pixelmill optimize``: the summary, each image's choice, score and size,
and two plots drawn as inline SVG (bytes before and after per image, and chosen qualities), so
the report is one self-contained file with no scripts."""

from __future__ import annotations

from html import escape
from typing import Any

WIDTH = 640


def html(summary: dict[str, Any]) -> str:
    items = [i for i in summary["items"] if not i["error"]]
    rows = "".join(
        f"<tr><td>{escape(i['source'])}</td><td>{escape(i['encode']['format'])}</td>"
        f"<td>{'lossless' if i['encode'].get('lossless') else i['encode'].get('quality')}</td>"
        f"<td>{i['encode']['score']:.2f}</td><td>{'yes' if i['encode']['met'] else 'NO'}</td>"
        f"<td>{i['encode']['trials']}</td><td>{i['bytes_before']:,}</td>"
        f"<td>{i['bytes_after']:,}</td><td>{_count(i['fixed_bytes'])}</td></tr>"
        for i in items
    )
    failed = "".join(f"<li>{escape(i['source'])}: {escape(i['error'])}</li>"
                     for i in summary["items"] if i["error"])  # fmt: skip
    fixed = summary.get("fixed") or {}
    facts = [
        ("target", summary["target"]), ("formats", ", ".join(summary["formats"])),
        ("images", summary["images"]), ("missed the target", summary["missed"]),
        ("bytes before", f"{summary['bytes_before']:,}"),
        ("bytes after", f"{summary['bytes_after']:,}"),
        ("saved", "" if summary["saved"] is None else f"{summary['saved']:.1%}"),
        ("fixed baseline", f"{fixed['format']} q {fixed['quality']} ({fixed['bytes']:,} bytes; "
                           f"{fixed['saved_against']:.1%} saved against it)"
         if fixed.get("bytes") else "none"),
        ("encodes per image", summary["encodes_per_image"]),
        ("images per second", summary["images_per_second"]),
    ]  # fmt: skip
    table = "".join(f"<tr><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>" for k, v in facts)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>pixelmill optimize</title>
<style>body{{font:14px system-ui,sans-serif;margin:2em;color:#222}}
table{{border-collapse:collapse}}td,th{{padding:2px 8px;border-bottom:1px solid #ddd;
text-align:right}}td:first-child,th{{text-align:left}}</style></head><body>
<h1>Encoded to {escape(summary["target"])}</h1>
<table>{table}</table>
<h2>Bytes per image</h2>{_sizes(items)}
<h2>Chosen qualities</h2>{_qualities(items)}
<h2>Images</h2>
<table><tr><th>source</th><th>format</th><th>quality</th><th>score</th><th>met</th>
<th>encodes</th><th>bytes before</th><th>bytes after</th><th>fixed quality</th></tr>{rows}</table>
{f"<h2>Failed</h2><ul>{failed}</ul>" if failed else ""}
</body></html>
"""


def _count(value: int | None) -> str:
    return "" if value is None else f"{value:,}"


def _sizes(items: list[dict[str, Any]]) -> str:
    """Bars per image: before (grey), after (blue) and at the fixed quality (orange tick)."""
    if not items:
        return "<p>none</p>"
    peak = max(max(i["bytes_before"], i["bytes_after"], i["fixed_bytes"] or 0) for i in items)
    row = 14
    bars = []
    for n, i in enumerate(items):
        y = n * row
        bars.append(f'<rect x="0" y="{y}" width="{WIDTH * i["bytes_before"] / peak:.1f}" '
                    f'height="{row - 4}" fill="#ccc"><title>{escape(i["source"])}</title></rect>')
        bars.append(f'<rect x="0" y="{y + 3}" width="{WIDTH * i["bytes_after"] / peak:.1f}" '
                    f'height="{row - 10}" fill="#2a6fdb"/>')  # fmt: skip
        if i["fixed_bytes"]:
            x = WIDTH * i["fixed_bytes"] / peak
            bars.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y}" y2="{y + row - 4}" '
                        'stroke="#e8711a" stroke-width="2"/>')
    return (f'<svg width="{WIDTH}" height="{len(items) * row}" role="img" '
            f'aria-label="bytes per image">{"".join(bars)}</svg>'
            "<p>grey: before, blue: after, orange: at the fixed quality</p>")


def _qualities(items: list[dict[str, Any]]) -> str:
    """A histogram of the chosen qualities (lossless ones apart)."""
    counts = [0] * 20
    for i in items:
        quality = i["encode"].get("quality")
        if quality is not None:
            counts[min(19, (quality - 1) // 5)] += 1
    peak = max(counts) or 1
    width = WIDTH / 20
    bars = "".join(
        f'<rect x="{n * width:.1f}" y="{100 - 100 * c / peak:.1f}" width="{width - 2:.1f}" '
        f'height="{100 * c / peak:.1f}" fill="#2a6fdb"><title>q {n * 5 + 1}-{n * 5 + 5}: {c}'
        "</title></rect>"
        for n, c in enumerate(counts)
    )
    return (f'<svg width="{WIDTH}" height="110" role="img" aria-label="chosen qualities">{bars}'
            "</svg><p>qualities 1 to 100, in steps of 5</p>")
