"""``pixelmill optimize``: images encoded to a perceptual target, with a summary and an HTML
report."""

from __future__ import annotations

import json
from pathlib import Path

import click

from pixelmill.cli.main import cli, settings_of


@cli.command()
@click.argument("src")
@click.argument("dst")
@click.option("--target", default="ssimulacra2>=80", show_default=True, metavar="CONDITION",
              help="What every output must meet against its source, e.g. 'ssimulacra2>=80'.")
@click.option("--formats", default="avif,webp,jpeg", show_default=True,
              help="Formats to choose from (the smallest that meets the target wins).")
@click.option("--background", type=float, metavar="VALUE",
              help="Relaxed target for smooth, low-saliency tiles (faces and edges keep the "
                   "target).")
@click.option("--lossless", is_flag=True, help="Lossless where even the highest quality misses.")
@click.option("--report", metavar="HTML", help="Write an HTML report of every choice.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.pass_context
def optimize(ctx: click.Context, src: str, dst: str, target: str, formats: str,
             background: float | None, lossless: bool, report: str | None,
             as_json: bool) -> None:  # fmt: skip
    """Encode SRC (a file, folder or prefix) into DST at the lowest quality, in the smallest of
    --formats, that meets --target: each output takes its format's suffix.

    \b
    Examples:
      pixelmill optimize photos/ small/ --target 'ssimulacra2>=80'
      pixelmill optimize shot.png shot --formats webp,png --report report.html
    """
    from pixelmill.optimize.report import html
    from pixelmill.optimize.run import Item
    from pixelmill.optimize.run import optimize as run_optimize
    from pixelmill.pipeline import Pipeline

    settings = settings_of(ctx)
    step = {"op": "encode", "format": "auto", "target": target,
            "formats": [f.strip() for f in formats.split(",") if f.strip()],
            "lossless": lossless}  # fmt: skip
    if background is not None:
        step["background"] = background
    pipeline = Pipeline.parse([step])

    def shown(item: Item) -> None:
        if as_json:
            return
        if item.error:
            click.echo(f"failed {item.source}: {item.error}", err=True)
            return
        e = item.encode
        quality = "lossless" if e.get("lossless") else f"q {e.get('quality')}"
        state = "met" if e.get("met") else "MISSED"
        click.echo(f"{item.output}: {e['format']} {quality}, {e['target']} {state} "
                   f"({e['score']:.1f}), {item.bytes_before:,} → {item.bytes_after:,} bytes"
                   f"{' (cached)' if item.cached else ''}", err=True)  # fmt: skip

    summary = run_optimize(src, dst, pipeline, settings, shown)
    found = summary.to_json()
    if report:
        from pixelmill import storage

        with storage.atomic_output(storage.locate(report), settings.tmp_dir) as spool:
            Path(spool).write_text(html(found), encoding="utf-8")
    if as_json:
        click.echo(json.dumps(found))
    else:
        fixed = found["fixed"]
        against = (f"; {fixed['saved_against']:.1%} smaller than {fixed['format']} at the fixed "
                   f"q {fixed['quality']} that meets it for {fixed['share']:.0%} of the images"
                   if fixed.get("bytes") else "")  # fmt: skip
        saved = "" if found["saved"] is None else f" ({found['saved']:.1%} saved)"
        click.echo(
            f"{found['images']} image(s), {found['failed']} failed, {found['missed']} missed the "
            f"target: {found['bytes_before']:,} → {found['bytes_after']:,} bytes{saved}"
            f"{against}; {found['encodes_per_image']} encodes per image, "
            f"{found['images_per_second']} images/s", err=True)  # fmt: skip
    ctx.exit(1 if found["failed"] else 0)
