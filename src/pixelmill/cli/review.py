"""``pixelmill review …``: review queues, what feeds them from datasets, and what their verdicts
say of the gates (see docs/review.md)."""

from __future__ import annotations

import json
from typing import Any

import click

from pixelmill.cli.main import cli, settings_of
from pixelmill.errors import UsageError

MAX_PUSH = 10_000
"""Items one push adds at most, unless --limit says otherwise."""


@cli.group()
def review() -> None:
    """Review queues: items people judge in the review app of pixelmill serve."""


def _reviews(ctx: click.Context) -> Any:
    from pixelmill.review import Reviews

    return Reviews.of(settings_of(ctx))


def _share(text: str | None) -> float | None:
    """``1%`` or ``0.01``."""
    if text is None:
        return None
    try:
        return float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise UsageError(f"--sample {text!r}: give a share such as 1% or 0.01") from None


@review.command()
@click.argument("queue")
@click.option("--instructions", type=click.File("r"), metavar="FILE|-",
              help="Markdown shown to reviewers on the review screen.")
@click.option("--labels", metavar="A,B,…", help="Labels reviewers tick (keys 1-9), e.g. "
              "artefacts,colour-shift,face-damaged.")
@click.option("--reviewers", type=click.IntRange(1, 10),
              help="Verdicts each item wants, each from another person (default 1).")
@click.option("--on-reject", metavar="nothing|withhold|rerun:PIPELINE",
              help="What a rejection does (default nothing).")
@click.option("--sample", metavar="SHARE", help="Spot-check this share of finished jobs, "
              "e.g. 1% (0 stops).")
@click.option("--pipeline", metavar="PIPELINE", help="Only spot-check jobs of this pipeline.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def create(ctx: click.Context, queue: str, instructions: Any, labels: str | None,
           reviewers: int | None, on_reject: str | None, sample: str | None,
           pipeline: str | None, as_json: bool) -> None:  # fmt: skip
    """Make the review queue QUEUE, or change it."""
    made = _reviews(ctx).configure(
        queue, instructions=instructions.read() if instructions else None,
        labels=labels.split(",") if labels is not None else None, reviewers=reviewers,
        on_reject=on_reject, sample=_share(sample), sample_pipeline=pipeline)  # fmt: skip
    if as_json:
        click.echo(json.dumps(made.to_json(), indent=2))
        return
    sampled = (f", spot-checks {made.sample:.2%} of "
               f"{'jobs of ' + made.sample_pipeline if made.sample_pipeline else 'all jobs'}"
               if made.sample else "")  # fmt: skip
    click.echo(f"{made.name}: labels {', '.join(made.labels) or 'none'}, {made.reviewers} "
               f"reviewer(s) per item, on reject {made.on_reject}{sampled}")


@review.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def list_(ctx: click.Context, as_json: bool) -> None:
    """The queues with their counts and the reviewers' agreement (Fleiss' kappa)."""
    reviews = _reviews(ctx)
    found = [{**queue.to_json(), "counts": counts.to_json(),
              "agreement": reviews.agreement(queue.name)}
             for queue, counts in reviews.queues()]  # fmt: skip
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    grid = Table()
    for column in ("queue", "waiting", "in review", "done", "approved", "rejected", "held",
                   "agreement κ"):  # fmt: skip
        grid.add_column(column, justify="left" if column == "queue" else "right")
    for row in found:
        counts, kappa = row["counts"], row["agreement"]["kappa"]["fleiss"]
        grid.add_row(row["name"], *(str(counts[k]) for k in ("waiting", "in_review", "done",
                                                              "approved", "rejected", "held")),
                     "—" if kappa is None else f"{kappa:.2f}")  # fmt: skip
    Console().print(grid)


@review.command()
@click.argument("queue")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def show(ctx: click.Context, queue: str, as_json: bool) -> None:
    """A queue's settings, counts and agreement, overall and per label."""
    reviews = _reviews(ctx)
    reviews.queue(queue)  # refuses an unknown one
    found, counts = reviews.queues([queue])[0]
    agreement = reviews.agreement(queue)
    if as_json:
        click.echo(json.dumps({**found.to_json(), "counts": counts.to_json(),
                               "agreement": agreement}, indent=2))  # fmt: skip
        return
    click.echo(f"{found.name}: labels {', '.join(found.labels) or 'none'}; {found.reviewers} "
               f"reviewer(s) per item; on reject {found.on_reject}; spot checks "
               f"{found.sample:.2%}")  # fmt: skip
    click.echo("  " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in counts.to_json().items()))
    click.echo(f"  agreement over {agreement['items']} items judged twice or more: "
               f"{_kappas(agreement['kappa'])}")  # fmt: skip
    for label, kappas in agreement["labels"].items():
        click.echo(f"    {label}: {_kappas(kappas)}")


def _kappas(kappas: dict[str, float | None]) -> str:
    return ", ".join(f"{name} {'—' if value is None else f'{value:.2f}'}"
                     for name, value in kappas.items())  # fmt: skip


@review.command()
@click.argument("queue")
@click.option("--dataset", "ref", required=True, metavar="NAME[@VERSION]",
              help="The dataset (or version) whose items to push.")
@click.option("--query", "where", default="", metavar="EXPR",
              help="Only the items matching this filter (docs/datasets.md).")
@click.option("--select", "strategy", type=click.Choice(["diverse", "uncertain", "mixed",
                                                         "anomalous"]),
              help="Push the K items most worth a look instead of all that match.")
@click.option("-k", "--k", "count", default=50, show_default=True, type=click.IntRange(1),
              help="How many items --select picks.")
@click.option("--limit", default=MAX_PUSH, show_default=True, type=click.IntRange(1),
              help="Push at most this many items.")
@click.option("--owner", default="", metavar="KEY", help="The API key whose dataset it is.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def push(ctx: click.Context, queue: str, ref: str, where: str, strategy: str | None, count: int,
         limit: int, owner: str, as_json: bool) -> None:  # fmt: skip
    """Push items of a dataset to QUEUE: those matching --query, or the K that --select picks
    (diverse, uncertain, mixed, or the most anomalous)."""
    from pixelmill.datasets import Store, insight

    store, reviews = Store.of(settings_of(ctx)), _reviews(ctx)
    view = store.view(ref, owner)
    if strategy == "anomalous":
        picked = insight.anomalies(store, view, where, count)
    elif strategy is not None:
        picked = insight.select(store, view, count, strategy, where)
    else:
        picked = store.query(view, where, limit=limit)
    added = 0
    for row in picked[:limit]:
        _, new = reviews.push(queue, key=f"item:{view.dataset.id}:{row['sha256']}",
                              origin="push", source_uri=row["uri"], sha256=row["sha256"],
                              dataset=view.dataset.name, dataset_owner=owner,
                              qc=_recorded_qc(store, view.dataset, row["sha256"]),
                              reason=f"pushed from {view}" + (f" ({strategy})" if strategy
                                                                else ""))  # fmt: skip
        added += new
    found = {"queue": queue, "added": added, "queued_before": min(len(picked), limit) - added}
    if as_json:
        click.echo(json.dumps(found))
        return
    click.echo(f"{queue}: {added} items added, {found['queued_before']} queued before")


def _recorded_qc(store: Any, dataset: Any, sha256: str) -> list[dict[str, Any]]:
    """The QC values last recorded on the item in its dataset, as a verdict of the queue's
    items holds them (for calibrate)."""
    values = next((event["qc"] for event in reversed(store.history(dataset, sha256))
                   if event["qc"]), None)  # fmt: skip
    return [{"outcome": "recorded", "values": values, "gates": [], "failed": []}] if values else []


@review.command()
@click.argument("queue")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def calibrate(ctx: click.Context, queue: str, as_json: bool) -> None:
    """For every QC metric measured on QUEUE's decided items, the threshold that best agrees
    with the reviewers, as a gate ready to paste into a qc step."""
    from pixelmill.review.calibrate import calibrate as tune

    reviews = _reviews(ctx)
    reviews.queue(queue)
    decided = reviews.decided(queue)
    if not decided:
        raise UsageError(f"queue {queue} has no decided items yet: nothing to calibrate on")
    found = tune(decided)
    if not found:
        raise UsageError(f"queue {queue}: its {len(decided)} decided items have no QC values")
    if as_json:
        click.echo(json.dumps([threshold.to_json() for threshold in found], indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    grid = Table(title=f"{queue}: {len(decided)} decided items", title_justify="left")
    for column in ("metric", "gate", "precision", "recall", "F1", "agreement", "items",
                   "rejected"):  # fmt: skip
        grid.add_column(column, justify="left" if column in ("metric", "gate") else "right")
    for t in found:
        grid.add_row(t.metric, f"qc:{t.gate}:on_fail=hold:queue={queue}", f"{t.precision:.2f}",
                     f"{t.recall:.2f}", f"{t.f1:.2f}", f"{t.agreement:.2f}", str(t.n),
                     str(t.rejected))  # fmt: skip
    Console(width=max(120, Console().width)).print(grid)


@review.command()
@click.argument("queue")
@click.option("--out", required=True, metavar="FILE.jsonl|.parquet|.csv",
              help="Where to write one row per verdict.")
@click.pass_context
def export(ctx: click.Context, queue: str, out: str) -> None:
    """Every verdict of QUEUE with its item, for other tools."""
    from pixelmill.datasets.export import export as write
    from pixelmill.review.store import EXPORT_COLUMNS

    written = write(_reviews(ctx).export(queue), out, EXPORT_COLUMNS)
    click.echo(f"wrote {written:,} verdicts to {out}", err=True)
