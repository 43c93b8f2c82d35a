"""``pixelmill compare``, ``metrics``, ``bench`` and ``bench-images``: measuring quality."""

from __future__ import annotations

import json
from pathlib import Path

import click

from pixelmill.cli.main import cli, settings_of


@cli.command()
@click.argument("reference")
@click.argument("image")
@click.option("-m", "--metrics", metavar="NAMES",
              help="Comma-separated metrics (default: the full-reference ones, or consistency "
                   "when IMAGE is an upscale of REFERENCE); pixelmill metrics lists them.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def compare(ctx: click.Context, reference: str, image: str, metrics: str | None,
            as_json: bool) -> None:  # fmt: skip
    """Measure IMAGE against REFERENCE: PSNR, SSIM, MS-SSIM, FSIM, SSIMULACRA 2, CIEDE2000,
    no-reference indicators, and round-trip consistency for upscales."""
    from pixelmill import api
    from pixelmill.quality import metric

    names = [n for n in metrics.split(",") if n.strip()] if metrics else None
    settings = settings_of(ctx)
    scores = api.compare(reference, image, names, settings=settings)
    sizes = [(info["width"], info["height"]) for info in
             (api.info(path, settings=settings) for path in (reference, image))]  # fmt: skip
    if sizes[0] != sizes[1] and names is None:
        click.echo(f"the images differ in size ({sizes[0][0]}×{sizes[0][1]} and "
                   f"{sizes[1][0]}×{sizes[1][1]}): measuring round-trip consistency and "
                   "no-reference indicators (name full-reference metrics with -m to compare "
                   "them at one size)", err=True)  # fmt: skip
    if as_json:
        click.echo(json.dumps(scores, indent=2))
        return
    for name, value in scores.items():
        found = metric(name)
        click.echo(f"{name:14} {value:12.4f} {found.unit:8} ({_BETTER[found.higher_is_better]}) "
                   f"{found.doc}")  # fmt: skip

_BETTER = {True: "higher is better", False: "lower is better", None: "a description"}

@cli.command()
def metrics() -> None:
    """List the metrics of compare, qc gates and bench: name, kind, which way is better, unit."""
    from pixelmill.quality import metrics as every_metric

    for found in every_metric().values():
        origin = "" if found.origin == "pixelmill" else f" (from {found.origin})"
        click.echo(f"{found.name:14} {found.kind:12} {_BETTER[found.higher_is_better]:17} "
                   f"{found.unit:10} {found.doc}{origin}")  # fmt: skip

@cli.command()
@click.argument("more", nargs=-1, metavar="[PIPELINE]...")
@click.option("-p", "--pipelines", "first", multiple=True, metavar="PIPELINE",
              help="A pipeline to compare (repeatable; more may follow as arguments).")
@click.option("--images", required=True, metavar="DIR|URL",
              help="Folder or storage prefix of images (pixelmill bench-images makes a set).")
@click.option("--degrade", metavar="PIPELINE",
              help="Turn each image into the input with this pipeline (e.g. scale:0.5/encode:"
                   "jpeg:q=40) and score outputs against the original.")
@click.option("-m", "--metrics", metavar="NAMES", help="Comma-separated metrics to measure.")
@click.option("--rank", metavar="METRIC",
              help="Rank by this metric, or mp-per-s (default: ssimulacra2 with --degrade, "
                   "else speed).")
@click.option("--repeats", default=1, show_default=True, type=click.IntRange(1),
              help="Timed runs of each pipeline per image (the median is kept).")
@click.option("--out", default="bench-report", show_default=True, metavar="DIR",
              help="Folder for report.html and report.json.")
@click.option("-q", "--quiet", is_flag=True, help="Print only errors.")
@click.pass_context
def bench(ctx: click.Context, more: tuple[str, ...], first: tuple[str, ...], images: str,
          degrade: str | None, metrics: str | None, rank: str | None, repeats: int, out: str,
          quiet: bool) -> None:  # fmt: skip
    """Run pipelines over a set of images, measure quality, speed and bytes, rank them, and
    write a self-contained HTML report with tables, plots and crops at 100 %, plus JSON."""
    import tempfile

    from pixelmill.bench import measure, report
    from pixelmill.cli.progress import bench_with_progress

    names = [n for n in metrics.split(",") if n.strip()] if metrics else None
    with tempfile.TemporaryDirectory(prefix="pixelmill-bench-") as work:
        done = bench_with_progress(quiet, lambda on_start, on_result: measure.run(
            [*first, *more], images, Path(work), degrade=degrade, metrics=names, rank_by=rank,
            repeats=repeats, settings=settings_of(ctx), on_start=on_start, on_result=on_result))
        page, data = report.write(done, Path(out))
    if not quiet:
        for place, row in enumerate(done.summary(), 1):
            click.echo(f"{place}. {row['pipeline']}", err=True)
        click.echo(f"wrote {page} and {data}", err=True)

@cli.command("bench-images")
@click.argument("folder")
@click.option("--large/--no-large", default=True, show_default=True,
              help="Include the 6000×4000 image.")
def bench_images(folder: str, large: bool) -> None:
    """Write the benchmark image set into FOLDER: photographs, synthetic textures, graphics
    and text, and a large image, with their licences."""
    from pixelmill.bench import images

    written = images.write(Path(folder), large=large)
    click.echo(f"wrote {len(written)} images and LICENCES.txt into {folder}", err=True)
