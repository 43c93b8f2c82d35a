"""``pixelmill models``: list, describe and add ONNX models."""

from __future__ import annotations

import json

import click

from pixelmill.cli.main import cli, settings_of


@cli.group()
def models() -> None:
    """List, describe and add ONNX models."""

@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def models_list(ctx: click.Context, as_json: bool) -> None:
    """Every model: bundled ones and those in the user folder."""
    from pixelmill.models import available

    found = available(settings_of(ctx))
    if as_json:
        click.echo(json.dumps({n: {"origin": m.origin, **m.manifest.describe()}
                               for n, m in sorted(found.items())}, indent=2))  # fmt: skip
        return
    click.echo(f"{'name':20} {'version':8} {'scale':5} {'task':18} origin")
    for name, model in sorted(found.items()):
        m = model.manifest
        click.echo(f"{name:20} {m.version:8} {'×' + str(m.scale):5} {m.task:18} {model.origin}")

@models.command("info")
@click.argument("name")
@click.pass_context
def models_info(ctx: click.Context, name: str) -> None:
    """Load a model, check it against its manifest, and print both."""
    from pixelmill.models.runtime import session_for

    session = session_for(name, settings_of(ctx))
    click.echo(json.dumps({**session.manifest.describe(), "providers": session.providers},
                          indent=2, ensure_ascii=False))  # fmt: skip

@models.command("add")
@click.argument("url")
@click.pass_context
def models_add(ctx: click.Context, url: str) -> None:
    """Copy NAME.onnx and its NAME.json from any path or URL into the user folder, after
    checking that the model loads and matches its manifest."""
    from pixelmill.models.install import add

    model = add(url, settings_of(ctx))
    click.echo(f"added {model.manifest.name} {model.manifest.version} to {model.path.parent}",
               err=True)  # fmt: skip
