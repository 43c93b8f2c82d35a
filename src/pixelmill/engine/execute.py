"""Running one pipeline from one source to one destination, as a single lazy libvips graph.

The source is opened (header checked against the limits), the pipeline's cost is checked from
the header (:mod:`pixelmill.engine.cost`), the steps are chained without computing anything,
and the encoder pulls pixels through the graph into an atomic output, so memory follows the
width of the image and the steps' windows, not its area. The watchdog
(:mod:`pixelmill.engine.watchdog`) enforces the time limit from the header's read to the last
byte written, and the memory budget, by killing the run's computations; :func:`cancel` does the
same for every run in the process (on a signal).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pyvips

from pixelmill import codecs, storage
from pixelmill.codecs import Source
from pixelmill.config import Settings
from pixelmill.engine import cost, qc
from pixelmill.engine.context import Clock, Context
from pixelmill.engine.output import output_format, settle_format
from pixelmill.engine.step import op_for
from pixelmill.engine.watchdog import Watch, runs_in_progress, watchdog
from pixelmill.errors import Cancelled, LimitError, PixelmillError
from pixelmill.pipeline import Pipeline, Step
from pixelmill.pipeline.formats import Format
from pixelmill.storage import Location

_CANCELLED = threading.Event()
_ACTIVE: set[Source] = set()


def cancel() -> None:
    """Stop every run in this process: running images fail with :class:`Cancelled` and write
    nothing, later ones refuse to start. Safe to call from a signal handler (no locks)."""
    _CANCELLED.set()
    for src in list(_ACTIVE):
        src.kill()


def cancelled() -> bool:
    """Whether :func:`cancel` has been called in this process (long work outside the engine,
    such as training, checks it between steps)."""
    return _CANCELLED.is_set()


@dataclass(frozen=True)
class Outcome:
    """What one run produced."""

    source: str
    destination: str
    format: str
    width: int
    height: int
    bands: int
    bytes_written: int
    seconds: float
    notes: tuple[str, ...] = ()
    """What was chosen on the way (e.g. a model's tile size and batch)."""
    qc: tuple[qc.Verdict, ...] = ()
    """The verdict of each quality gate, in order."""
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds by stage: ``open`` (header read and checked), ``graph`` (steps chained; spooled
    model steps run here), ``qc`` (quality gates), ``render`` (pixels pulled through the graph
    and encoded: libvips fuses decoding, operations and encoding, and streamed model steps run
    here too), ``store`` (the output committed), and ``model:NAME`` (inference alone, within
    ``graph`` or ``render``)."""
    bytes_read: int | None = None
    """Size of the source, when its storage tells."""
    data: bytes | None = None
    """The encoded output, when it was rendered into memory (no destination)."""
    detections: tuple[dict, ...] = ()
    """What ``detect`` steps found (``{"box": [x0, y0, x1, y1], "score", "class",
    "landmarks"?, "model"}``), boxes in the source's pixels after autorotation (scaled from
    the image each step looked at: exact when only resizes came before it)."""
    classes: tuple[dict, ...] = ()
    """What ``classify`` steps said: ``{"model", "top": [{"class", "score"}, …]}`` each."""
    encode: dict | None = None
    """How a target encode chose its quality: ``{"format", "quality", "score", "target",
    "met", "trials", …}``."""

    def to_json(self) -> dict:
        """The outcome as ``pixelmill run --json`` prints it and a job's result holds it."""
        return {
            "source": self.source, "destination": self.destination, "format": self.format,
            "width": self.width, "height": self.height, "bands": self.bands,
            "bytes": self.bytes_written, "bytes_read": self.bytes_read,
            "seconds": round(self.seconds, 6), "notes": list(self.notes),
            "qc": [verdict.to_json() for verdict in self.qc], "timings": self.timings,
            "detections": list(self.detections), "classes": list(self.classes),
            "encode": self.encode,
        }  # fmt: skip

    @property
    def flagged(self) -> bool:
        """Whether a quality gate sent the output to review (flagged or held)."""
        return any(verdict.outcome in ("flag", "hold") for verdict in self.qc)

    @property
    def held(self) -> bool:
        """Whether a quality gate holds the output back until a reviewer approves it."""
        return any(verdict.outcome == "hold" for verdict in self.qc)


def execute(
    pipeline: Pipeline,
    source: Location,
    destination: Location | None,
    settings: Settings,
    progress: Callable[[float], None] | None = None,
    reference: Location | None = None,
    stop: threading.Event | None = None,
) -> Outcome:
    """Run ``pipeline`` from ``source`` to ``destination`` (None: into memory, the outcome's
    ``data``); nothing is written on failure.
    ``reference`` is what quality gates measure against instead of each one's previous step's
    input (a ground truth). Setting ``stop`` (from any thread) cancels this run alone."""
    started = time.monotonic()
    pipeline = settle_format(pipeline, source.name,
                             destination=destination.name if destination else None)  # fmt: skip
    fmt = output_format(pipeline, destination)
    steps = list(pipeline.steps)
    if _CANCELLED.is_set() or stop is not None and stop.is_set():
        raise Cancelled(f"{source}: cancelled before it started")
    notes: list[str] = []
    clock = Clock()
    opened: list[Source] = []
    built: list[pyvips.Image] = []
    with contextlib.ExitStack() as stack:
        watch = stack.enter_context(watchdog(
            settings.time_limit - (time.monotonic() - started), _stopper(opened, built), stop,
            settings.max_memory))  # fmt: skip
        try:
            src = _open(stack, source, settings, opened)
            clock.lap("open")
            _stop_if_interrupted(watch, source, settings)
            cost.check(steps, src.upright_size, settings, source)
            ctx = Context(settings, stack, notes, progress, source, clock, watch, built)
            if reference is not None:
                truth = _open(stack, reference, settings, opened)
                ctx.reference = truth.decode(random_access=True)
            image = _graph(src, steps, ctx)
            _check_size(image.width, image.height, settings, source)
            encode = pipeline.encoder()
            if encode is not None and encode["target"] is not None:
                clock.lap("graph")
                from pixelmill.engine import targeted  # faces, regions, trials: only here

                fmt, size, data = targeted.render(image, encode, destination, ctx)
            else:
                assert fmt is not None  # only a target encode leaves the format open
                image, options = codecs.prepare(image, fmt, encode, strip=ctx.strip)
                clock.lap("graph")
                size, data = _render(image, fmt, options, destination, ctx)
        except pyvips.Error as exc:
            _stop_if_interrupted(watch, source, settings)
            alone = runs_in_progress() == 1  # whose warnings they were is known
            warned = codecs.decoder_warnings.since(started) if alone else []
            raise codecs.classify(str(exc), str(source), warned=warned) from None
        except PixelmillError:  # a model's thread that met the killed source, say
            _stop_if_interrupted(watch, source, settings)
            raise
        finally:
            _ACTIVE.difference_update(opened)
    for run in ctx.models:
        clock.add(f"model:{run.session.manifest.name}", run.seconds)
    return Outcome(
        str(source), str(destination or ""), fmt.name, image.width, image.height, image.bands,
        size, time.monotonic() - started, tuple(notes), tuple(ctx.verdicts), clock.seconds,
        src.size, data, _in_source(ctx, src.upright_size), tuple(ctx.classes), ctx.encode,
    )  # fmt: skip


def _in_source(ctx: Context, upright: tuple[int, int]) -> tuple[dict, ...]:
    """What the detectors found, in the source's pixels after autorotation."""
    width, height = upright
    return tuple(
        {**d.moved(width / found.width, height / found.height).to_json(), "model": found.model}
        for _, found in ctx.found for d in found.detections
    )  # fmt: skip


def _open(stack: contextlib.ExitStack, loc: Location, settings: Settings,
          opened: list[Source]) -> Source:  # fmt: skip
    """A source opened for the run (a signal's :func:`cancel` reaches it)."""
    src = stack.enter_context(codecs.open_source(loc, settings))
    opened.append(src)
    _ACTIVE.add(src)
    return src


def _stopper(opened: list[Source], built: list[pyvips.Image]) -> Callable[[], None]:
    """What makes every computation of a run fail at its next region: killing its sources and
    each step's output (the sources alone would let the steps' buffers grow meanwhile)."""

    def stop_computing() -> None:
        for src in opened:
            src.kill()
        for image in built:
            image.set_kill(True)

    return stop_computing


def _render(image: pyvips.Image, fmt: Format, options: dict, destination: Location | None,
            ctx: Context) -> tuple[int, bytes | None]:  # fmt: skip
    """Pull the pixels through the graph into the destination, atomically, or into memory
    (None); the size written and, in memory, the bytes."""
    if destination is None:
        data = codecs.write_buffer(image, fmt, options)
        _stop_if_interrupted(ctx.watch, ctx.source, ctx.settings)
        ctx.clock.lap("render")
        return len(data), data
    with storage.atomic_output(destination, ctx.settings.tmp_dir) as spool:
        codecs.write(image, fmt, options, spool, ctx.progress)
        _stop_if_interrupted(ctx.watch, ctx.source, ctx.settings)
        size = os.path.getsize(spool)
        ctx.clock.lap("render")
    ctx.clock.lap("store")
    return size, None


def _graph(src: Source, steps: list[Step], ctx: Context) -> pyvips.Image:
    """The lazy graph of the steps over the source, opened for random access only if a step
    needs it; a first step that can decodes the source itself (shrink-on-load)."""
    ops = [op_for(step) for step in steps]
    later = [False] * (len(steps) + 1)  # whether a step from there on reads out of order
    for index in reversed(range(len(steps))):
        later[index] = later[index + 1] or ops[index].random_access(steps[index], src)
    first = 0
    ctx.private = private = any(op.private for op in ops)
    if steps and ops[0].on_load is not None:
        image = ops[0].on_load(src, steps[0])
        first = 1
        if later[1]:
            image = image.copy_memory()  # shrink-on-load streams; later steps need the whole
        ctx.given = src.decode(random_access=True, in_memory=private) if later[1] else image
    else:
        image = ctx.given = src.decode(random_access=later[0], in_memory=private)
    for index in range(first, len(steps)):
        _stop_if_interrupted(ctx.watch, ctx.source, ctx.settings)  # building takes time too
        step, op = steps[index], ops[index]
        if not op.gate:
            ctx.given = image
        ctx.random_after = later[index + 1]
        image = op.apply(image, step, ctx)
        ctx.built.append(image)
    return image


def _stop_if_interrupted(watch: Watch, source: Location, settings: Settings) -> None:
    if _CANCELLED.is_set() or watch.stop is not None and watch.stop.is_set():
        raise Cancelled(f"{source}: cancelled; nothing was written")
    if watch.reason == "time":
        raise LimitError(
            f"{source}: processing took longer than the limit of {settings.time_limit:g} s "
            "(time_limit)"
        )
    if watch.reason == "memory":
        raise LimitError(
            f"{source}: processing held more memory than the limit of "
            f"{settings.max_memory / 2**20:,.0f} MiB (max_memory); nothing was written"
        )


def _check_size(width: int, height: int, settings: Settings, source: Location) -> None:
    pixels, limit = width * height, settings.max_output_pixels
    if pixels > limit:
        raise LimitError(
            f"{source}: the output would be {width}×{height} = {pixels:,} pixels, "
            f"over the limit of {limit:,} (max_output_pixels)"
        )
