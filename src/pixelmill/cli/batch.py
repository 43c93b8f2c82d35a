"""``pixelmill batch``: a pipeline over a whole folder or bucket prefix, on this machine or a Ray
cluster, resumable."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from pixelmill.cli.main import cli, pipeline_text, settings_of

if TYPE_CHECKING:
    from rich.console import Console

    from pixelmill.batch import Summary


@cli.command()
@click.argument("src")
@click.argument("dst")
@click.option("-p", "--pipeline", default="", metavar="PIPELINE",
              help="Steps, e.g. 'thumbnail:512/encode:webp', JSON, or @file.")
@click.option("--engine", type=click.Choice(["local", "ray"]),
              help="Where items run: this process's threads, or Ray actors (default: ray when "
                   "installed, else local).")  # fmt: skip
@click.option("--address", metavar="auto|HOST:PORT|ray://HOST:PORT",
              help="The Ray cluster to join (default: start one on this machine for the run).")
@click.option("--workers", type=click.IntRange(1, 4096),
              help="Threads (local) or actors (ray) at once (default: 1 local, one per CPU of "
                   "the cluster on Ray).")  # fmt: skip
@click.option("--gpus-per-task", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Share of a GPU each Ray actor takes.")
@click.option("--dataset", metavar="NAME", help="Remember each source and output in a dataset.")
@click.option("--run-id", metavar="ID", help="Name the run (default: a new id, printed).")
@click.option("--resume", is_flag=True,
              help="Finish the run --run-id: skip what succeeded, redo the rest.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
@click.pass_context
def batch(ctx: click.Context, src: str, dst: str, pipeline: str, engine: str | None,
          address: str | None, workers: int | None, gpus_per_task: float, dataset: str | None,
          run_id: str | None, resume: bool, quiet: bool, as_json: bool) -> None:  # fmt: skip
    """Run PIPELINE over every image below SRC into the same places below DST (folders or
    URLs such as s3://bucket/prefix), recording each item in the run's manifest.

    A failing image is recorded with its reason and never stops the run. After a crash (the
    driver killed, a node lost), run the same command with --run-id ID --resume: only what did
    not succeed runs again. Exits 0 when every item succeeded, 1 when some failed.

    \b
    Examples:
      pixelmill batch s3://photos/ s3://thumbs/ -p 'thumbnail:512/encode:webp' --engine ray
      pixelmill batch photos/ out/ -p 'model:sr-x2' --run-id up --resume
    """
    from rich.console import Console

    from pixelmill import batch as batches
    from pixelmill.cli.progress import counting_bar

    settings = settings_of(ctx)
    engine = engine or ("ray" if batches.available() else "local")
    if engine == "local" and (address or gpus_per_task):
        raise click.UsageError("--address and --gpus-per-task are for --engine ray")
    runner = (batches.Ray(address, workers, gpus_per_task) if engine == "ray"
              else batches.Local(workers or 1))  # fmt: skip
    console = Console(stderr=True, highlight=False)
    text = pipeline_text(pipeline)
    with counting_bar(console, quiet or as_json, "{task.fields[rate]}", transient=True) as bar:
        task = bar.add_task("images", total=None, rate="")
        _count_in_background(src, dst, text, lambda total: bar.update(task, total=total))
        began = time.monotonic()

        def heard(state: str) -> None:
            done = bar.tasks[0].completed + 1
            bar.update(task, advance=1, rate=f"{done / max(time.monotonic() - began, 1e-9):.1f}/s")

        summary = batches.run(src, dst, text, engine=runner, settings=settings, run_id=run_id,
                              resume=resume, dataset=dataset, on_item=heard)  # fmt: skip
    if as_json:
        click.echo(json.dumps(summary.to_json()))
    else:
        _print(console, summary)
    ctx.exit(summary.exit_code)


def _count_in_background(src: str, dst: str, pipeline: str, heard: Callable[[int], None]
                         ) -> None:  # fmt: skip
    """Count the images with a second listing while the run goes on, for the bar's ETA."""
    from pixelmill import api

    def count() -> None:
        try:
            heard(sum(1 for _ in api.mirror(src, dst, pipeline)))
        except Exception:  # noqa: BLE001, S110  # the run reports listing errors itself
            pass

    threading.Thread(target=count, name="batch-count", daemon=True).start()


def _print(console: Console, summary: Summary) -> None:
    from rich.table import Table

    for failure in summary.failures:
        console.print(f"failed ({failure.error_kind}): {failure.error}", markup=False,
                      soft_wrap=True)  # fmt: skip
    facts = summary.to_json()
    table = Table(title=f"run {summary.run_id} (attempt {summary.attempt}, {summary.engine})")
    table.add_column("items")
    table.add_column("count", justify="right")
    table.add_row("succeeded", f"{summary.succeeded:,}")
    table.add_row("skipped (done before)", f"{summary.skipped:,}")
    for kind, count in facts["failed_by_kind"].items():
        table.add_row(f"failed: {kind}", f"{count:,}")
    table.add_row("seconds", f"{summary.seconds:,.1f}")
    table.add_row("images a second", f"{facts['images_per_second']:,.2f}")
    console.print(table)
