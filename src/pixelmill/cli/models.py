"""``pixelmill models``: list, describe and add ONNX models."""

from __future__ import annotations

import json

import click

from pixelmill.cli.main import cli, settings_of

RANGES = {"0,1": (0.0, 1.0), "0,255": (0.0, 255.0), "-1,1": (-1.0, 1.0)}
CHECKPOINTS = (".pth", ".pt", ".ckpt", ".safetensors")


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
@click.option("--name", default="", help="Name of the model (default: the file's name).")
@click.option("--range", "value_range", type=click.Choice(sorted(RANGES)), default=None,
              help="Values for black and white at the model's input and output, where its "
                   "graph does not tell.")  # fmt: skip
@click.pass_context
def models_add(ctx: click.Context, url: str, name: str, value_range: str | None) -> None:
    """Install MODEL.onnx (with its MODEL.json beside it, or a manifest found by probing the
    model) or a PyTorch checkpoint (.pth, .pt, .ckpt, .safetensors; needs pixelmill[import]),
    once its tiled output is found to equal its whole-image output. Prints the manifest."""
    from pixelmill.api import add_model

    settings = settings_of(ctx)
    if url.lower().endswith(CHECKPOINTS):
        from pixelmill.lab.pytorch import exported

        with exported(url, name) as (onnx_path, described, align):
            model, origin = add_model(onnx_path, name=name or onnx_path.stem, align=align,
                                      value_range=RANGES[value_range or "0,1"],
                                      settings=settings)  # fmt: skip
        origin = f"{described}; {origin}"
    else:
        model, origin = add_model(url, name=name, settings=settings,
                                  value_range=RANGES[value_range] if value_range else None)
    click.echo(model.manifest.to_json())
    click.echo(f"added {model.manifest.name} {model.manifest.version} to {model.path.parent} "
               f"({origin})", err=True)  # fmt: skip


@models.command("schema")
def models_schema() -> None:
    """Print the JSON Schema of a model manifest: every field, its type and allowed values."""
    from pixelmill.models.manifest import schema

    click.echo(json.dumps(schema(), indent=2, ensure_ascii=False))
