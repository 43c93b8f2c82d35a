"""Progress display for the command line (rich), kept apart so one-image runs without a
terminal never import it."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from pixelmill.api import TreeReport, run_tree
from pixelmill.config import Settings
from pixelmill.pipeline import Pipeline

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

T = TypeVar("T")


@contextlib.contextmanager
def bar_for_one(src: str, quiet: bool) -> Iterator[Callable[[float], None] | None]:
    """A transient percentage bar for one image, only on an interactive terminal."""
    if quiet or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
        TimeRemainingColumn(), console=Console(stderr=True), transient=True,
    ) as bar:  # fmt: skip
        task = bar.add_task(src.rsplit("/", 1)[-1], total=100)
        yield lambda percent: bar.update(task, completed=percent)


def counting_bar(console: Console, quiet: bool, *middle: str, transient: bool = False) -> Progress:
    """A rich bar counting steps: description, bar, count, ``middle`` text columns (task
    fields in rich's format), time spent and time left."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )  # fmt: skip

    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        *map(TextColumn, middle), TimeElapsedColumn(), TimeRemainingColumn(), console=console,
        disable=quiet, transient=transient,
    )  # fmt: skip


def training_display(quiet: bool) -> Callable[..., contextlib.AbstractContextManager[Any]]:
    """A training's display (see ``pixelmill.lab.train.Display``): a bar on stderr with the
    loss, the time spent and the time left, and the training's log lines above it, each with
    the seconds since the start; nothing when quiet."""

    @contextlib.contextmanager
    def display(name: str, start: int, total: int) -> Iterator[tuple[Callable, Callable]]:
        from rich.console import Console

        console = Console(stderr=True, highlight=False, quiet=quiet)
        began = time.monotonic()
        with counting_bar(console, quiet, "loss {task.fields[loss]:.5f}") as bar:
            task = bar.add_task(name, total=total, completed=start, loss=float("nan"))

            def say(text: str) -> None:
                console.print(f"[{time.monotonic() - began:7.1f} s] {text}", markup=False)

            yield (lambda loss: bar.update(task, advance=1, loss=loss)), say

    return display


def run_tree_with_progress(
    src: str, dst: str, pipeline: Pipeline, jobs: int, settings: Settings, quiet: bool
) -> TreeReport:
    """Run a folder with a bar counting images, then print a summary and every failure."""
    from rich.console import Console

    console = Console(stderr=True, highlight=False)
    with counting_bar(console, quiet, transient=True) as bar:
        task = bar.add_task("images", total=None)
        report = run_tree(
            src, dst, pipeline, jobs=jobs, settings=settings,
            on_start=lambda total: bar.update(task, total=total),
            on_result=lambda result: bar.advance(task),
        )  # fmt: skip
    for failure in report.failed:
        console.print(f"failed ({failure.kind}): {failure.message}", markup=False, soft_wrap=True)
    for flagged in report.flagged:
        console.print(f"flagged for review: {flagged.destination} "
                      f"({'; '.join(v.describe() for v in flagged.qc)})", markup=False,
                      soft_wrap=True)  # fmt: skip
    if not quiet or report.failed:
        console.print(
            f"{len(report.done)} done"
            + (f" ({len(report.flagged)} flagged for review)" if report.flagged else "")
            + ", "
            f"{len(report.failed)} failed, of "
            f"{len(report.done) + len(report.failed)} images "
            f"in {report.seconds:.1f} s",
            markup=False,
            soft_wrap=True,
        )
    return report


def bench_with_progress(quiet: bool, run: Callable[..., T]) -> T:
    """Call ``run(on_start, on_result)`` (a benchmark) with a bar counting pipeline runs."""
    from rich.console import Console

    console = Console(stderr=True, highlight=False)
    with counting_bar(console, quiet, transient=True) as bar:
        task = bar.add_task("bench", total=None)
        return run(lambda total: bar.update(task, total=total),
                   lambda result: bar.advance(task))  # fmt: skip


@contextlib.contextmanager
def ingest_display(quiet: bool, name: str) -> Iterator[Callable[[str], None]]:
    """A counter of the images an ingest has done (its listing is lazy, so no total), with
    how many were added, skipped and failed, and the rate."""
    from rich.console import Console

    console = Console(stderr=True, highlight=False)
    counts = {"added": 0, "skipped": 0, "failed": 0}
    fields = "added {task.fields[added]:,} · skipped {task.fields[skipped]:,} · " \
             "failed {task.fields[failed]:,} · {task.speed:.1f}/s"  # fmt: skip
    with counting_bar(console, quiet, fields, transient=True) as bar:
        task = bar.add_task(name, total=None, **counts)

        def tell(status: str) -> None:
            counts[status] += 1
            bar.update(task, advance=1, **counts)

        yield tell
