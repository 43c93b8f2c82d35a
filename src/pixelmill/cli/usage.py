"""``pixelmill usage``: the work done and what it cost, from the job database."""

from __future__ import annotations

import json

import click

from pixelmill.cli.main import cli, settings_of

COLUMNS = (("work", "work", "{:,}"), ("failed", "failed", "{:,}"),
           ("cpu_seconds", "cpu s", "{:,.1f}"), ("gpu_seconds", "gpu s", "{:,.1f}"),
           ("peak_memory", "peak MiB", "{:,.0f}"), ("bytes_read", "read MB", "{:,.1f}"),
           ("bytes_written", "written MB", "{:,.1f}"), ("bytes_served", "served MB", "{:,.1f}"),
           ("cost", "cost", "{:,.4f}"))  # fmt: skip
"""The table's columns: field, heading, format."""
SCALE = {"peak_memory": 2**20, "bytes_read": 1e6, "bytes_written": 1e6, "bytes_served": 1e6}


@cli.command()
@click.option("--since", "since_", default="30d", show_default=True, metavar="SPAN",
              help="Start of the period: 30d, 12h, 2w, month (this month) or YYYY-MM-DD.")
@click.option("--by", default="key", show_default=True,
              type=click.Choice(["key", "pipeline", "day", "dataset", "origin"]),
              help="What to group by.")  # fmt: skip
@click.option("--key", metavar="NAME", help="One API key's usage alone.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (as GET /v1/usage answers).")
@click.option("--db", metavar="URL", help="Job database (default: SQLite in the data folder).")
@click.option("--data-dir", metavar="DIR", help="Data folder.")
@click.pass_context
def usage(ctx: click.Context, since_: str, by: str, key: str | None, as_json: bool,
          db: str | None, data_dir: str | None) -> None:  # fmt: skip
    """Report the work done (jobs, on-demand renders, batch items) and its cost by the price
    table (settings cost.*), with this month's budgets of the API keys."""
    from pixelmill.usage import Usage, since

    ledger = Usage.of(settings_of(ctx, db=db, data_dir=data_dir))
    report = ledger.report(since(since_, ledger.clock()), by, key)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
        return
    rows = [[_group(row, by), *(_cell(row, name, shown) for name, _, shown in COLUMNS)]
            for row in report.rows]  # fmt: skip
    rows.append(["total", *(_cell(report.total, name, shown) for name, _, shown in COLUMNS)])
    heading = [by, *(title for _, title, _ in COLUMNS)]
    widths = [max(len(str(line[i])) for line in (heading, *rows)) for i in range(len(heading))]
    for line in (heading, *rows):
        click.echo("  ".join([str(line[0]).ljust(widths[0]),
                              *(str(c).rjust(w) for c, w in zip(line[1:], widths[1:], strict=True))]))
    for standing in report.budgets:
        click.echo(f"budget {standing['key']}: {standing['spent']:.2f} of {standing['budget']:g} "
                   f"in {standing['month']} ({standing['ratio']:.0%}"
                   f"{', soft' if standing['soft'] else ''})")  # fmt: skip


def _group(row: dict, by: str) -> str:
    if by == "pipeline":
        return f"{row['group']} {row['pipeline'][:60]}"
    return row["group"] or "-"


def _cell(row: dict, name: str, shown: str) -> str:
    return shown.format(row[name] / SCALE.get(name, 1))
