"""The ``pixelmill`` command: one module per command group, each adding its commands to the
group of :mod:`pixelmill.cli.main` when imported here (a new group is a new module and one line
below)."""

from pixelmill.cli import (  # noqa: F401  (commands)
    batch,
    datasets,
    lab,
    models,
    ops,
    optimize,
    quality,
    review,
    reviewers,
    run,
    service,
    submit,
    usage,
)
from pixelmill.cli.main import cli, main

__all__ = ["cli", "main"]
