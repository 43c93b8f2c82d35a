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
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyvips

from pixelmill import codecs, storage
from pixelmill.codecs import Source
from pixelmill.config import Settings
from pixelmill.engine import bandsink, cost, qc, tiled
from pixelmill.engine.ops import OPS, thumbnail_with
from pixelmill.engine.watchdog import Watch, runs_in_progress, watchdog
from pixelmill.errors import Cancelled, LimitError, PixelmillError, QualityError, UsageError
from pixelmill.pipeline import Pipeline, Step
from pixelmill.pipeline.formats import AUTO, FORMATS, Format, format_for_path, negotiate
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

    @property
    def flagged(self) -> bool:
        """Whether a quality gate marked the output for review."""
        return any(verdict.outcome == "flag" for verdict in self.qc)


def settle_format(pipeline: Pipeline, source: str, accept: str = "",
                  destination: str | None = None) -> Pipeline:  # fmt: skip
    """The pipeline with ``encode:auto`` made concrete: the format the destination's name
    gives, else the one negotiated from ``accept`` (see :func:`formats.negotiate`)."""
    encode = pipeline.find("encode")
    if encode is None or encode["format"] != AUTO:
        return pipeline
    chosen = destination and format_for_path(destination) or negotiate(accept, source)
    quality = encode["q"] if chosen.quality is not None else None  # PNG takes none
    concrete = Step.make("encode", format=chosen.name, q=quality)
    return Pipeline(tuple(concrete if step is encode else step for step in pipeline.steps))


def output_format(pipeline: Pipeline, destination: Location | None) -> Format:
    """The format from ``encode``, else from the destination's suffix; both must agree."""
    encode = pipeline.find("encode")
    if destination is None:
        if encode is None:
            raise UsageError("an output rendered into memory needs an encode step")
        return FORMATS[encode["format"]]
    named = format_for_path(destination.name)
    if encode is None:
        if named is None:
            suffixes = ", ".join(e for f in FORMATS.values() for e in f.extensions)
            raise UsageError(
                f"{destination}: cannot tell the output format from the name; use one of "
                f"{suffixes} or add an encode step"
            )
        return named
    fmt = FORMATS[encode["format"]]
    if named is not None and named is not fmt:
        raise UsageError(
            f"{destination}: the name says {named.name} but the pipeline encodes {fmt.name}; "
            f"name it *{fmt.extensions[0]}"
        )
    return fmt


def output_suffix(pipeline: Pipeline, source: str) -> str:
    """The suffix for a pipeline's output named after ``source``: its encode step's format,
    else the source's own suffix when pixelmill writes that format, else .png."""
    encode = settle_format(pipeline, source).find("encode")
    if encode is not None:
        return FORMATS[encode["format"]].extensions[0]
    return os.path.splitext(source)[1] if format_for_path(source) else ".png"


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
    steps = [s for s in pipeline.steps if s.op != "encode"]
    if settings.autorotate:
        steps = [s for s in steps if s.op != "autorotate"]  # done on load
    if _CANCELLED.is_set() or stop is not None and stop.is_set():
        raise Cancelled(f"{source}: cancelled before it started")
    notes: list[str] = []
    clock = _Clock()
    opened: list[Source] = []
    built: list[pyvips.Image] = []

    def stop_computing() -> None:
        """Make every computation of the run fail at its next region: the sources' and each
        step's output (killing the sources alone lets the steps' buffers grow meanwhile)."""
        for src in opened:
            src.kill()
        for image in built:
            image.set_kill(True)

    with contextlib.ExitStack() as stack:
        watch = stack.enter_context(watchdog(
            settings.time_limit - (time.monotonic() - started), stop_computing, stop,
            settings.max_memory))  # fmt: skip
        try:
            src = stack.enter_context(codecs.open_source(source, settings))
            opened.append(src)
            _ACTIVE.add(src)
            clock.lap("open")
            _stop_if_interrupted(watch, source, settings)
            cost.check(steps, src.upright_size, settings, source)
            ctx = _Context(settings, stack, notes, progress, source, clock, watch, built)
            if reference is not None:
                truth = stack.enter_context(codecs.open_source(reference, settings))
                opened.append(truth)
                ctx.reference = truth.decode(random_access=True)
            image = _graph(src, steps, ctx)
            _check_size(image.width, image.height, settings, source)
            strip = pipeline.find("strip") is not None
            image, options = codecs.prepare(image, fmt, pipeline.find("encode"), strip=strip)
            clock.lap("graph")
            data = None
            if destination is None:
                data = codecs.write_buffer(image, fmt, options)
                _stop_if_interrupted(watch, source, settings)
                size = len(data)
                clock.lap("render")
            else:
                with storage.atomic_output(destination, settings.tmp_dir) as spool:
                    codecs.write(image, fmt, options, spool, ctx.progress)
                    _stop_if_interrupted(watch, source, settings)
                    size = os.path.getsize(spool)
                    clock.lap("render")
                clock.lap("store")
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
        src.size, data,
    )  # fmt: skip


class _Clock:
    """Seconds by stage: each lap is the time since the previous one, less what was set aside
    (quality gates inside the graph's construction)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.monotonic()
        self._aside = 0.0

    def lap(self, stage: str) -> None:
        now = time.monotonic()
        self.add(stage, now - self._last - self._aside)
        self._last, self._aside = now, 0.0

    def aside(self, stage: str, seconds: float) -> None:
        """Count ``seconds`` of the current lap under ``stage`` instead."""
        self.add(stage, seconds)
        self._aside += seconds

    def add(self, stage: str, seconds: float) -> None:
        self.seconds[stage] = round(self.seconds.get(stage, 0.0) + seconds, 6)


@dataclass
class _Context:
    """What steps beyond plain libvips operations need: settings, a place for what must
    outlive the graph's construction, notes, and progress (taken by a streaming model step,
    else left to the encoder)."""

    settings: Settings
    stack: contextlib.ExitStack
    notes: list[str]
    progress: Callable[[float], None] | None
    source: Location
    clock: _Clock
    watch: Watch
    built: list[pyvips.Image]
    """Each step's output, so that stopping the run stops all of them."""
    reference: pyvips.Image | None = None
    """The run's reference image for quality gates, if given."""
    verdicts: list[qc.Verdict] = field(default_factory=list)
    models: list[tiled.ModelRun] = field(default_factory=list)


def _graph(src: Source, steps: list[Step], ctx: _Context) -> pyvips.Image:
    """The lazy graph of the steps over the source, opened for random access only if needed;
    model steps run here, eagerly, through the tiled executor."""
    orientation = src.orientation

    def random_after(index: int) -> bool:
        return any(s.op == "qc" or s.op in OPS and OPS[s.op].random_access(s, orientation)
                   for s in steps[index:])  # fmt: skip

    first = 0
    if steps and steps[0].op == "thumbnail":
        image = thumbnail_with(src.thumbnail, src.upright_size, steps[0])
        first = 1
        if random_after(1):
            image = image.copy_memory()  # shrink-on-load streams; later steps need the whole
    else:
        image = src.decode(random_access=random_after(0))
    given = image  # the input of the last step (the decoded source before any)
    if first:  # that of a shrink-on-load thumbnail: the source as it is
        given = src.decode(random_access=True) if random_after(1) else image
    for index in range(first, len(steps)):
        _stop_if_interrupted(ctx.watch, ctx.source, ctx.settings)  # building takes time too
        step = steps[index]
        if step.op == "qc":
            _gate(image, given, step, ctx)
            continue
        given = image
        if step.op == "model":
            image = _model(image, step, ctx, random_after(index + 1))
        else:
            image = OPS[step.op].apply(image, step)
        ctx.built.append(image)
    return image


def _gate(image: pyvips.Image, given: pyvips.Image, step: Step, ctx: _Context) -> None:
    """Judge a quality gate; a failure stops the run before anything is written."""
    began = time.monotonic()
    verdict = qc.judge(image, given if ctx.reference is None else ctx.reference, step)
    ctx.clock.aside("qc", time.monotonic() - began)
    ctx.verdicts.append(verdict)
    ctx.notes.append(verdict.describe())
    if verdict.outcome == "fail":
        raise QualityError(f"{ctx.source}: {verdict.describe()}; nothing was written")


def _model(image: pyvips.Image, step: Step, ctx: _Context, random: bool) -> pyvips.Image:
    """The model's output as a lazy image: streamed while the steps after it run, or spooled
    to disk first when one of them needs random access."""
    from pixelmill.models.runtime import session_for

    session = session_for(step["name"], ctx.settings)
    plan = tiled.plan_for(session.manifest, session.working_bytes, image.width, step["tile"], step["overlap"], step["batch"])
    ctx.notes.append(f"{plan.describe(step['name'])} on {session.providers[0]}")
    run = tiled.ModelRun(image, session, plan)
    ctx.models.append(run)
    if random:
        spool = ctx.stack.enter_context(
            tempfile.TemporaryDirectory(prefix="pixelmill-model-", dir=ctx.settings.tmp_dir)
        )
        return bandsink.spooled(run, Path(spool) / "model.png", ctx.progress)
    progress, ctx.progress = ctx.progress, None
    return ctx.stack.enter_context(bandsink.Stream(run, str(ctx.source), progress))


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
