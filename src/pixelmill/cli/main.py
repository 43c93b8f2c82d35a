"""The ``pixelmill`` command's group, its shared options and its entry point, :func:`main`; the
commands are in the modules beside this one, one per group (see :mod:`pixelmill.cli`).

A command only parses arguments, calls :mod:`pixelmill.api` (or a service, or
:mod:`pixelmill.lab`, imported by its commands alone) and reports. Errors become one line on
stderr and an exit code (0 ok, 1 internal, 2 usage or pipeline, 3 bad input image, 4 limit
exceeded, 5 storage); tracebacks only with ``--debug``. Heavy imports wait until a command needs
them, so a one-image run starts fast.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

import click

from pixelmill import __version__
from pixelmill.errors import Cancelled, PixelmillError, UsageError

COMMANDS = {
    "batch": "batch", "bench": "quality", "bench-images": "quality", "compare": "quality",
    "datasets": "datasets", "drift": "datasets", "formats": "ops", "info": "run",
    "keys": "service", "lab": "lab", "metrics": "quality", "models": "models", "ops": "ops",
    "optimize": "optimize", "review": "review", "reviewers": "reviewers", "run": "run",
    "sample": "run", "serve": "service", "sign": "service", "submit": "submit",
    "usage": "usage", "worker": "service",
}  # fmt: skip
"""Each command and the module of :mod:`pixelmill.cli` that defines it: a command's module is
imported when the command is called (or listed), so a one-image run imports none of the
others."""


class Commands(click.Group):
    """The group whose commands are imported on first use, from :data:`COMMANDS`."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.commands and name in COMMANDS:
            importlib.import_module(f"pixelmill.cli.{COMMANDS[name]}")
        return self.commands.get(name)


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pixelmill")
@click.option("--debug", is_flag=True, envvar="PIXELMILL_DEBUG", help="Show tracebacks.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="TOML settings file (else PIXELMILL_CONFIG).")
@click.pass_context
def cli(ctx: click.Context, debug: bool, config_file: str | None) -> None:
    """pixelmill: run image pipelines over files, folders and storage URLs."""
    ctx.obj = {"debug": debug, "config": config_file}

def settings_of(ctx: click.Context, **overrides: Any):
    from pixelmill.config import Settings

    return Settings.load(ctx.obj["config"]).replace(**overrides)

def pipeline_text(value: str) -> str:
    """``-p @file`` reads the pipeline (text or JSON) from a file."""
    if value.startswith("@"):
        try:
            with open(value[1:], encoding="utf-8-sig") as handle:
                return handle.read()
        except OSError as exc:
            raise UsageError(f"cannot read pipeline file {value[1:]}: {exc.strerror}") from None
    return value


STOPPED_BY: list[int] = []
"""The signals that stopped this process."""
ON_STOP: list[Callable[[], None]] = []
"""What else a signal stops (a worker's loop)."""

def _stop(signum: int, frame: object) -> None:
    """SIGINT or SIGTERM: cancel every image in progress. Raising here would not do, as the
    handler may run inside a libvips callback that swallows exceptions."""
    from pixelmill.engine import cancel

    STOPPED_BY.append(signum)
    cancel()
    for then in ON_STOP:
        then()

def main(argv: list[str] | None = None) -> None:
    """Entry point: run the command, turning every failure into a message and an exit code."""
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    debug = "--debug" in (argv or sys.argv[1:]) or os.environ.get("PIXELMILL_DEBUG", "").lower() in (
        "1", "true", "yes", "on",
    )  # fmt: skip
    try:
        code = cli.main(args=argv, prog_name="pixelmill", standalone_mode=False)
    except Cancelled as exc:
        click.echo(f"pixelmill: stopped: {exc}", err=True)
        code = 128 + STOPPED_BY[0] if STOPPED_BY else exc.exit_code
    except PixelmillError as exc:
        if debug:
            raise
        click.echo(f"pixelmill: {exc.kind} error: {exc}", err=True)
        code = exc.exit_code
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.ClickException as exc:
        exc.show()
        code = exc.exit_code
    except click.Abort:
        click.echo("pixelmill: interrupted", err=True)
        code = 130
    except Exception as exc:  # a bug: one line, traceback with --debug
        if debug:
            raise
        click.echo(f"pixelmill: internal error: {type(exc).__name__}: {exc} "
                   "(run with --debug for the traceback)", err=True)  # fmt: skip
        code = 1
    sys.exit(code or 0)
