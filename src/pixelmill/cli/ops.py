"""``pixelmill ops`` and ``formats``: the steps of the pipeline grammar, and the formats."""

from __future__ import annotations

import json

import click

from pixelmill.cli.main import cli


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print every step as JSON.")
@click.option("--schema", is_flag=True, help="Print the JSON schema of the JSON pipeline form.")
@click.option("--markdown", is_flag=True, help="Print the README's table of steps.")
def ops(as_json: bool, schema: bool, markdown: bool) -> None:
    """List every step with its arguments, types and defaults."""
    from pixelmill.pipeline import Pipeline, signature, steps

    if schema:
        click.echo(json.dumps(Pipeline.json_schema(), indent=2))
        return
    if as_json:
        click.echo(json.dumps([spec.describe() for spec in steps().values()], indent=2))
        return
    if markdown:
        click.echo("| step | what it does |\n|---|---|")
        for spec in steps().values():
            usage = signature(spec.name, keywords=False).replace("|", "\\|")
            click.echo(f"| `{usage}` | {spec.doc} |")
        return
    for spec in steps().values():
        origin = "" if spec.origin == "pixelmill" else f"  (from {spec.origin})"
        click.echo(f"{signature(spec.name)}{origin}\n    {spec.doc}")
        for param in spec.params:
            default = (
                "required" if param.required
                else "optional" if param.default is None
                else f"default {param.kind.format(param.default)}"
            )  # fmt: skip
            click.echo(f"      {param.name:12} {param.kind.describe()}; {default}. {param.doc}")
        click.echo()


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--markdown", is_flag=True, help="Print the README's table of formats.")
def formats(as_json: bool, markdown: bool) -> None:
    """List the formats pixelmill reads and writes, the library behind each, and whether
    reading streams (a format that does not is decoded whole, within the memory budget)."""
    from pixelmill.codecs import catalogue

    rows = catalogue.formats()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    elif markdown:
        click.echo(catalogue.markdown(rows))
    else:
        for row in rows:
            write = row["write"] or "no"
            click.echo(f"{row['format']:5} read {row['read'] or 'no':8} "
                       f"{'streams' if row['streams'] else 'whole  '}  write {write:8} "
                       f"{' '.join(row['extensions'])}")
