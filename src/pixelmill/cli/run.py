"""``pixelmill run``, ``info`` and ``sample``: one image or a folder through a pipeline."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

import click

from pixelmill.cli.main import cli, pipeline_text, settings_of
from pixelmill.errors import UsageError

if TYPE_CHECKING:
    from pixelmill.config import Settings
    from pixelmill.pipeline import Pipeline


@cli.command()
@click.argument("src")
@click.argument("dst")
@click.option("-p", "--pipeline", default="", metavar="PIPELINE",
              help="Steps, e.g. 'resize:fit:1024:768/encode:webp:q=80', JSON, or @file.")
@click.option("-j", "--jobs", default=1, show_default=True, type=click.IntRange(1, 256),
              help="Images processed at once when SRC is a folder.")
@click.option("--max-pixels", type=click.IntRange(1), help="Largest input in pixels.")
@click.option("--max-bytes", type=click.IntRange(1), help="Largest input file in bytes.")
@click.option("--max-memory", type=click.IntRange(1),
              help="Bytes of memory one image's work may hold.")
@click.option("--time-limit", type=click.FloatRange(0, min_open=True), help="Seconds per image.")
@click.option("--no-autorotate", is_flag=True, help="Keep the stored orientation.")
@click.option("--reference", metavar="REF",
              help="Image quality gates (qc steps) measure against, e.g. a ground truth "
                   "(default: each gate's previous step's input). Single images only.")
@click.option("--dataset", metavar="NAME",
              help="Remember each source and output in this dataset (made when missing).")
@click.option("-q", "--quiet", is_flag=True, help="Print only errors.")
@click.option("--json", "as_json", is_flag=True,
              help="Print each outcome as one JSON object on standard output (detections, "
                   "classes, target encodes, quality verdicts, timings).")
@click.pass_context
def run(ctx: click.Context, src: str, dst: str, pipeline: str, jobs: int, max_pixels: int | None,
        max_bytes: int | None, max_memory: int | None, time_limit: float | None,
        no_autorotate: bool, reference: str | None, dataset: str | None,
        quiet: bool, as_json: bool) -> None:  # fmt: skip
    """Process SRC into DST; both may be files, folders or URLs (s3://, memory://, …).

    Without -p, the image is turned upright (EXIF orientation) and re-encoded in the format
    DST's suffix names, at that format's default quality: a conversion. With a folder, every
    image below it is mirrored into DST, --jobs at a time; a failing image is reported and the
    others go on.

    \b
    Examples:
      pixelmill run photo.heic photo.jpg
      pixelmill run photo.jpg small.webp -p 'thumbnail:512/encode:webp:q=80'
    """
    from pixelmill import api, storage
    from pixelmill.pipeline import Pipeline

    settings = settings_of(ctx, max_pixels=max_pixels, max_bytes=max_bytes, max_memory=max_memory,
                         time_limit=time_limit,
                         autorotate=False if no_autorotate else None)  # fmt: skip
    parsed = Pipeline.parse(pipeline_text(pipeline))
    if dataset:
        from pixelmill.datasets.store import checked

        checked(dataset, "dataset")
    if storage.is_dir(storage.locate(src)):
        from pixelmill.cli.progress import run_tree_with_progress

        if reference is not None:
            raise UsageError("--reference is for a single image, not a folder")
        report = run_tree_with_progress(src, dst, parsed, jobs, settings, quiet or as_json)
        _remember(dataset, report.done, parsed, settings)
        for done in report.done if as_json else ():
            click.echo(json.dumps(done.to_json()))
        ctx.exit(report.exit_code)
    if storage.is_dir(storage.locate(dst)) or dst.endswith(("/", os.sep)):
        raise UsageError(f"{dst}: is a folder; give the output file name (SRC is a single image)")
    from pixelmill.cli.progress import bar_for_one

    with bar_for_one(src, quiet or as_json) as progress:
        outcome = api.run(src, dst, parsed, settings=settings, progress=progress,
                          reference=reference)  # fmt: skip
    _remember(dataset, [outcome], parsed, settings)
    if outcome.flagged:
        click.echo(f"{'held' if outcome.held else 'flagged'} for review: {outcome.destination}",
                   err=True)  # fmt: skip
    if as_json:
        click.echo(json.dumps(outcome.to_json()))
    elif not quiet:
        for note in outcome.notes:
            click.echo(note, err=True)
        click.echo(
            f"wrote {outcome.destination} ({outcome.format}, {outcome.width}×{outcome.height}, "
            f"{outcome.bytes_written:,} bytes) in {outcome.seconds:.2f} s",
            err=True,
        )

def _remember(name: str | None, outcomes: list, pipeline: Pipeline, settings: Settings) -> None:
    """Record runs in the dataset ``name`` (if any), and send the outputs their gates flagged or
    held to review."""
    hashes: list[dict] = [{} for _ in outcomes]
    if name:
        from pixelmill.datasets import Store, record_run

        store = Store.of(settings)
        hashes = [record_run(store, name, outcome.source, outcome, pipeline, settings=settings)
                  for outcome in outcomes]  # fmt: skip
    flagged = [(outcome, found) for outcome, found in zip(outcomes, hashes) if outcome.flagged]
    if flagged:
        import uuid

        from pixelmill.review import Reviews
        from pixelmill.review.intake import Run, intake

        reviews = Reviews.of(settings)
        for outcome, found in flagged:
            intake(reviews, Run(f"run:{uuid.uuid4().hex}", outcome.source, pipeline,
                                dataset=name if found else None, sha256=found.get("source"),
                                output_sha256=found.get("output")),
                   outcome, spot_checks=False)  # fmt: skip


@cli.command()
@click.argument("src")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def info(ctx: click.Context, src: str, as_json: bool) -> None:
    """Describe an image from its header: format, size, depth, colour space, ICC, orientation."""
    from pixelmill import api

    details = api.info(src, settings=settings_of(ctx))
    if as_json:
        click.echo(json.dumps(details, indent=2))
        return
    for key, value in details.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        click.echo(f"{key:13} {value}")

@cli.command()
@click.argument("dst", default="sample.jpg")
def sample(dst: str) -> None:
    """Write the bundled sample photograph (a public-domain NASA portrait) to DST."""
    from importlib.resources import files

    from pixelmill import api

    photo = files("pixelmill") / "data" / "sample.jpg"
    outcome = api.run(str(photo), dst)
    click.echo(f"wrote {outcome.destination} ({outcome.width}×{outcome.height})", err=True)
