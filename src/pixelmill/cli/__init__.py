"""The ``pixelmill`` command: one module per command group, each adding its commands to the
group of :mod:`pixelmill.cli.main` when imported; :data:`pixelmill.cli.main.COMMANDS` says which
module holds which command, and imports it on first use (a new command is a new line there)."""

from pixelmill.cli.main import cli, main

__all__ = ["cli", "main"]
