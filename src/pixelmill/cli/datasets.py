"""``pixelmill datasets …`` and ``pixelmill drift``: the memory of every image (see
docs/datasets.md)."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from pixelmill.cli.main import cli, settings_of
from pixelmill.errors import UsageError

OWNER = click.option("--owner", default="", metavar="KEY",
                     help="The API key whose datasets these are (default: the command line's).")


@cli.group()
def datasets() -> None:
    """Datasets: images remembered with their header, features, embedding and history."""


def _store(ctx: click.Context) -> Any:
    from pixelmill.datasets import Store

    return Store.of(settings_of(ctx))


@datasets.command("list")
@OWNER
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def list_(ctx: click.Context, owner: str, as_json: bool) -> None:
    """The datasets, with their number of items."""
    found = [{"name": d.name, "items": n, "embedder": d.embedder, "version": d.seq,
              "drift": d.drift} for d, n in _store(ctx).list(owner)]  # fmt: skip
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    for row in found:
        click.echo(f"{row['name']:30} {row['items']:>10,} items  embedder {row['embedder']}")


@datasets.command()
@click.argument("name")
@click.argument("sources", nargs=-1, required=True)
@click.option("-j", "--jobs", default=2, show_default=True, type=click.IntRange(1, 64),
              help="Images analysed at once.")
@click.option("--tag", "tags", multiple=True, metavar="TAG", help="Tag every added item.")
@click.option("--embedder", metavar="NAME",
              help="An ONNX model with task 'embed', for a new dataset (default: the built-in "
                   "embedding; an existing dataset keeps its own).")
@OWNER
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.pass_context
def add(ctx: click.Context, name: str, sources: tuple[str, ...], jobs: int, tags: tuple[str, ...],
        embedder: str | None, owner: str, as_json: bool, quiet: bool) -> None:  # fmt: skip
    """Add the images of SOURCES (files, folders, prefixes) to the dataset NAME, made when
    missing. Re-running skips what is there, so a stopped ingest resumes."""
    from pixelmill.cli.progress import ingest_display
    from pixelmill.datasets import add as ingest
    from pixelmill.datasets import embedder as embedder_of
    from pixelmill.datasets.store import checked

    settings = settings_of(ctx)
    for tag in tags:
        checked(tag, "tag")
    store = _store(ctx)
    dataset = store.create(name, owner, embedder)
    embed = embedder_of(dataset.embedder, settings)
    with ingest_display(quiet or as_json, f"adding to {name}") as tell:
        summary = ingest(store, dataset, sources, settings, embed, jobs=jobs, tags=tags,
                         on_item=tell)  # fmt: skip
    if as_json:
        click.echo(json.dumps(summary.to_json(), indent=2))
    elif not quiet:
        failed = ", ".join(f"{n} {kind}" for kind, n in sorted(summary.failed.items()))
        click.echo(f"added {summary.added:,}, skipped {summary.skipped:,}, failed "
                   f"{sum(summary.failed.values()):,}{f' ({failed})' if failed else ''} in "
                   f"{summary.seconds:.1f} s", err=True)  # fmt: skip


@datasets.command()
@click.argument("ref", metavar="NAME[@VERSION]")
@click.argument("expression", default="")
@click.option("--sort", metavar="[-]FIELD", help="Order by a field (- for descending).")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--offset", default=0, type=click.IntRange(0))
@OWNER
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of items.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV.")
@click.option("--embedding", is_flag=True, help="Include the embeddings (JSON).")
@click.pass_context
def query(ctx: click.Context, ref: str, expression: str, sort: str | None, limit: int,
          offset: int, owner: str, as_json: bool, as_csv: bool, embedding: bool) -> None:  # fmt: skip
    """Items of a dataset (or a version) matching EXPRESSION, e.g.
    'width >= 4000 and format = "jpeg" and sharpness < p10'."""
    store = _store(ctx)
    found = store.query(store.view(ref, owner), expression, sort=sort, limit=limit,
                        offset=offset, embedding=embedding)  # fmt: skip
    if as_json:
        click.echo(json.dumps(found, indent=2, ensure_ascii=False))
    elif as_csv:
        from pixelmill.datasets.export import COLUMNS, write_csv

        write_csv(found, sys.stdout, tuple(c for c in COLUMNS if embedding or c != "embedding"))
    else:
        for item in found:
            click.echo(f"{item['uri']}  {item['format']} {item['width']}×{item['height']}  "
                       f"{' '.join(item['tags'])}")  # fmt: skip


@datasets.command()
@click.argument("name")
@click.option("--tag", metavar="TAG", help="The version's tag (default: v1, v2, …).")
@OWNER
@click.pass_context
def snapshot(ctx: click.Context, name: str, tag: str | None, owner: str) -> None:
    """Freeze the items of NAME, their labels and features, as the version NAME@TAG."""
    store = _store(ctx)
    made = store.snapshot(store.get(name, owner), tag)
    click.echo(f"{made['version']}: {made['items']:,} items")


@datasets.command()
@click.argument("name")
@OWNER
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def snapshots(ctx: click.Context, name: str, owner: str, as_json: bool) -> None:
    """The versions of NAME."""
    store = _store(ctx)
    found = store.snapshots(store.get(name, owner))
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    for row in found:
        click.echo(f"{row['version']:30} {row['items']:>10,} items")


@datasets.command()
@click.argument("old", metavar="NAME@V1")
@click.argument("new", metavar="NAME@V2")
@OWNER
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def diff(ctx: click.Context, old: str, new: str, owner: str, as_json: bool) -> None:
    """What was added, removed and relabelled from one version to another (NAME alone is the
    items now)."""
    store = _store(ctx)
    found = store.diff(store.view(old, owner), store.view(new, owner))
    if as_json:
        click.echo(json.dumps(found.to_json(), indent=2))
        return
    for uri in found.added:
        click.echo(f"+ {uri}")
    for uri in found.removed:
        click.echo(f"- {uri}")
    for change in found.relabelled:
        tags = [f"+{t}" for t in change["added"]] + [f"-{t}" for t in change["removed"]]
        click.echo(f"~ {change['uri']}  {' '.join(tags)}")


@datasets.command()
@click.argument("ref", metavar="NAME[@VERSION]")
@click.argument("destination")
@click.option("--where", "expression", default="", metavar="EXPRESSION",
              help="Export only the matching items.")
@OWNER
@click.pass_context
def export(ctx: click.Context, ref: str, destination: str, expression: str, owner: str) -> None:
    """Write one row per item, with every field and the embedding, to a .parquet, .csv or
    .jsonl file (or URL)."""
    from pixelmill.datasets.export import export as write

    store = _store(ctx)
    count = write(store.rows(store.view(ref, owner), expression), destination)
    click.echo(f"wrote {count:,} items to {destination}", err=True)


@datasets.command()
@click.argument("ref", metavar="NAME[@VERSION]")
@click.argument("expression", default="")
@click.option("--add", "added", multiple=True, metavar="TAG", help="Tag to add.")
@click.option("--remove", "removed", multiple=True, metavar="TAG", help="Tag to remove.")
@OWNER
@click.pass_context
def tag(ctx: click.Context, ref: str, expression: str, added: tuple[str, ...],
        removed: tuple[str, ...], owner: str) -> None:  # fmt: skip
    """Add or remove tags on the items matching EXPRESSION (every item when empty)."""
    if not added and not removed:
        raise UsageError("give --add TAG or --remove TAG")
    store = _store(ctx)
    changed = store.label(store.view(ref, owner), expression, added, removed)
    click.echo(f"relabelled {changed:,} items", err=True)


@datasets.command()
@click.argument("ref", metavar="NAME")
@click.argument("expression")
@OWNER
@click.pass_context
def remove(ctx: click.Context, ref: str, expression: str, owner: str) -> None:
    """Take the items matching EXPRESSION out of the dataset (its versions keep them)."""
    store = _store(ctx)
    click.echo(f"removed {store.remove(store.view(ref, owner), expression):,} items", err=True)


@datasets.command()
@click.argument("name")
@OWNER
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def failures(ctx: click.Context, name: str, owner: str, as_json: bool) -> None:
    """The images an ingest could not read, with the reason."""
    store = _store(ctx)
    found = store.failures(store.get(name, owner))
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    for row in found:
        click.echo(f"{row['kind']:10} {row['message']}")


@datasets.command()
@click.argument("ref", metavar="NAME[@VERSION]")
@click.argument("expression", default="")
@click.option("--top", default=20, show_default=True, type=click.IntRange(1))
@OWNER
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, most anomalous first.")
@click.pass_context
def anomalies(ctx: click.Context, ref: str, expression: str, top: int, owner: str,
              as_json: bool) -> None:  # fmt: skip
    """The items that stand out most, with the features that make them stand out."""
    from pixelmill.datasets import insight

    store = _store(ctx)
    found = insight.anomalies(store, store.view(ref, owner), expression, top)
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    for item in found:
        click.echo(f"{item['score']:8.3f}  {item['uri']}  {'; '.join(item['reasons'])}")


@datasets.command()
@click.argument("ref", metavar="NAME[@VERSION]")
@click.argument("expression", default="")
@click.option("-k", "--k", "count", required=True, type=click.IntRange(1, 100_000),
              help="How many items to pick.")
@click.option("--strategy", default="diverse", show_default=True,
              type=click.Choice(["diverse", "uncertain", "mixed"]))
@click.option("--into", metavar="NAME2", help="Copy the picked items into this dataset.")
@click.option("--tag", metavar="TAG", help="Tag the picked items.")
@OWNER
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def select(ctx: click.Context, ref: str, expression: str, count: int, strategy: str,
           into: str | None, tag: str | None, owner: str, as_json: bool) -> None:  # fmt: skip
    """Pick the K items most worth a human's time or a retraining."""
    from pixelmill.datasets import insight

    store = _store(ctx)
    found = insight.select(store, store.view(ref, owner), count, strategy, expression,
                           into=into, tag=tag, owner=owner)  # fmt: skip
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    for item in found:
        margin = "" if item["margin"] is None else f"  margin {item['margin']:.4g}"
        click.echo(f"{item['uri']}{margin}")


@datasets.command()
@click.argument("name")
@click.option("--reference", metavar="NAME@V", help="The version to compare with.")
@click.option("--window", default="24h", show_default=True, help="Items added within it.")
@click.option("--every", default="1h", show_default=True, help="How often serve checks.")
@click.option("--webhook", metavar="URL", help="Called when a verdict turns to drift.")
@click.option("--off", is_flag=True, help="Stop watching.")
@OWNER
@click.pass_context
def watch(ctx: click.Context, name: str, reference: str | None, window: str, every: str,
          webhook: str | None, off: bool, owner: str) -> None:  # fmt: skip
    """Have `pixelmill serve` check NAME for drift on a schedule."""
    from pixelmill.datasets import insight

    store = _store(ctx)
    dataset = store.get(name, owner)
    if off:
        store.configure(dataset, None)
        click.echo(f"{name}: no longer watched", err=True)
        return
    if reference is None:
        raise UsageError("give --reference NAME@VERSION (or --off)")
    store.view(reference, owner)  # it exists
    for duration in (window, every):
        insight.seconds(duration)  # it is a duration
    store.configure(dataset, {"reference": reference, "window": window, "every": every,
                              "webhook": webhook})  # fmt: skip
    click.echo(f"{name}: drift against {reference} over the last {window}, every {every}",
               err=True)  # fmt: skip


@cli.command()
@click.argument("name")
@click.option("--reference", required=True, metavar="NAME@V", help="The version to compare with.")
@click.option("--since", metavar="DURATION", help="Compare the items added within, e.g. 24h.")
@click.option("--current", metavar="NAME@V2", help="Compare this version instead.")
@click.option("--alpha", default=0.05, show_default=True, type=click.FloatRange(0, 1,
              min_open=True, max_open=True), help="Significance level, all tests together.")
@click.option("--html", "html_path", metavar="FILE", help="Write the HTML report there.")
@OWNER
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def drift(ctx: click.Context, name: str, reference: str, since: str | None, current: str | None,
          alpha: float, html_path: str | None, owner: str, as_json: bool) -> None:  # fmt: skip
    """Compare the items of NAME (all, the last --since, or --current) with a version of it,
    feature by feature, over the embedding and the categories; exit 0 either way."""
    from pixelmill.datasets import insight

    settings = settings_of(ctx)
    store = _store(ctx)
    found = insight.check_drift(store, name, reference, since=since, current=current,
                                owner=owner, alpha=alpha)  # fmt: skip
    if html_path:
        from pixelmill import storage

        with storage.atomic_output(storage.locate(html_path)) as path, \
                open(path, "w", encoding="utf-8") as handle:  # fmt: skip
            handle.write(found.html(settings))
    report = found.to_json()
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(f"{'DRIFT' if report['drift'] else 'no drift'}: {report['current']} "
               f"({report['n_current']}) against {report['reference']} ({report['n_reference']})")
    for test, values in report["features"].items():
        p = values["p_value"]
        click.echo(f"  {test:16} {values['verdict']:12} statistic {values['statistic']:.4g}"
                   f"{'' if p is None else f'  p {p:.3g}'}  effect {values['effect']:.3g}")
