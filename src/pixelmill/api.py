"""The public Python API that every face of pixelmill shares: ``run``, ``run_tree``, ``info``."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pyvips

from pixelmill import codecs, storage
from pixelmill.config import Settings
from pixelmill.engine import Outcome, execute, output_suffix
from pixelmill.engine.step import models_of as step_models
from pixelmill.errors import Cancelled, PixelmillError, UsageError
from pixelmill.models.registry import ModelFile
from pixelmill.pipeline import Pipeline
from pixelmill.pipeline.formats import READ_EXTENSIONS
from pixelmill.storage import Location

PipelineLike = str | Iterable[Mapping[str, Any]] | Pipeline | None
PathLike = str | os.PathLike[str] | Location


def run(
    src: PathLike,
    dst: PathLike,
    pipeline: PipelineLike = None,
    *,
    settings: Settings | None = None,
    progress: Callable[[float], None] | None = None,
    reference: PathLike | None = None,
    stop: threading.Event | None = None,
) -> Outcome:
    """Run a pipeline (text, JSON or :class:`Pipeline`) from one image to another; quality
    gates measure against ``reference`` when given (else each one's previous step's input),
    and their verdicts are on the outcome (``outcome.qc``, ``outcome.flagged``). Setting
    ``stop`` from another thread cancels the run (:class:`~pixelmill.errors.Cancelled`).

    Raises a :class:`~pixelmill.errors.PixelmillError` subclass on failure; nothing is written then.
    """
    settings = settings or Settings.load()
    truth = None if reference is None else storage.locate(reference)
    return execute(Pipeline.parse(pipeline), storage.locate(src), storage.locate(dst), settings,
                   progress, truth, stop)  # fmt: skip


def render(
    src: PathLike,
    pipeline: PipelineLike,
    *,
    settings: Settings | None = None,
    stop: threading.Event | None = None,
) -> Outcome:
    """Run a pipeline that ends with an ``encode`` step into memory: the output's bytes are
    ``outcome.data`` (for small outputs served at once, such as on-demand images)."""
    settings = settings or Settings.load()
    return execute(Pipeline.parse(pipeline), storage.locate(src), None, settings, stop=stop)


def models_of(pipeline: PipelineLike) -> list[str]:
    """The models a pipeline's steps run, in step order."""
    return step_models(Pipeline.parse(pipeline))


def add_model(url: PathLike, *, name: str = "", value_range: tuple[float, float] | None = None,
              align: int = 1, settings: Settings | None = None) -> tuple[ModelFile, str]:  # fmt: skip
    """Install an ONNX model into the user models folder, with the manifest beside it or one
    found by probing it (with sides a multiple of at least ``align``), once its tiled output
    is found to equal its whole-image output. Returns the model and how its manifest came
    about."""
    from pixelmill.engine.verify import tiled_matches_whole
    from pixelmill.models.install import add

    return add(os.fspath(url), settings or Settings.load(), name=name, value_range=value_range,
               align=align, check=tiled_matches_whole)


def info(src: PathLike, *, settings: Settings | None = None) -> dict[str, Any]:
    """Format, size, bands, bit depth, colour space, ICC, orientation and pages of an image,
    read from its header (the size limits apply, nothing is decoded)."""
    with codecs.open_source(storage.locate(src), settings or Settings.load()) as source:
        return codecs.describe(source)


def compare(reference: PathLike, image: PathLike, metrics: Iterable[str] | None = None, *,
            settings: Settings | None = None) -> dict[str, float]:  # fmt: skip
    """Metrics of ``image`` against ``reference`` (files or URLs), by name; see
    :func:`pixelmill.quality.compare` for the defaults."""
    from pixelmill import quality

    settings = settings or Settings.load()
    with (codecs.open_source(storage.locate(reference), settings) as left,
          codecs.open_source(storage.locate(image), settings) as right):  # fmt: skip
        pictures = [codecs.to_srgb(s.decode(random_access=True)) for s in (left, right)]
        try:
            return quality.compare(*pictures, metrics)
        except pyvips.Error as exc:  # decoding fails only when the metrics pull the pixels
            names = f"{left.loc} or {right.loc}"
            raise codecs.classify(str(exc), names) from None


def images_below(folder: PathLike) -> list[Location]:
    """Every image file below a folder or storage prefix, in path order; none is an error."""
    loc = storage.locate(folder)
    if not storage.is_dir(loc):
        raise UsageError(f"{folder}: is not a folder or storage prefix of images")
    found = [loc.child(rel) for rel in storage.list_files(loc, READ_EXTENSIONS)]
    if not found:
        raise UsageError(f"{folder}: holds no images")
    return found


@dataclass(frozen=True)
class Failure:
    source: str
    kind: str
    exit_code: int
    message: str


@dataclass
class TreeReport:
    """What a folder run did, image by image."""

    done: list[Outcome] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def flagged(self) -> list[Outcome]:
        """The outputs a quality gate marked for review."""
        return [outcome for outcome in self.done if outcome.flagged]

    @property
    def exit_code(self) -> int:
        """0 when every image succeeded, else the code of the first failure in path order."""
        return self.failed[0].exit_code if self.failed else 0


def plan_tree(src: PathLike, dst: PathLike, pipeline: PipelineLike) -> list[tuple[Location, Location]]:
    """Pairs of (source, destination) mirroring every image below ``src`` into ``dst``, in path
    order (see :func:`mirror`); two sources that would share a destination are refused."""
    pairs: list[tuple[Location, Location]] = []
    claimed: dict[str, str] = {}
    for rel, source, target in mirror(src, dst, pipeline, ordered=True):
        if (other := claimed.setdefault(target.url.casefold(), rel)) != rel:
            raise UsageError(f"{other} and {rel} would both be written to {target}; rename one")
        pairs.append((source, target))
    return pairs


def mirror(src: PathLike, dst: PathLike, pipeline: PipelineLike, *, ordered: bool = False
           ) -> Iterator[tuple[str, Location, Location]]:  # fmt: skip
    """(path below ``src``, source, destination) mirroring every image below ``src`` into ``dst``, listed
    lazily in the store's order (``ordered``: in path order, the whole listing held); with an
    ``encode`` step the destination takes that format's suffix. A destination inside the source
    folder is left out of the listing, so reruns do not feed on their own output."""
    source, target = storage.locate(src), storage.locate(dst)
    if target.contains(source):
        raise UsageError(f"{dst}: the destination folder holds the source folder {src}")
    if not storage.is_dir(target) and storage.exists(target):
        raise UsageError(f"{dst}: is a file; give a folder for the outputs of a folder run")
    encode = Pipeline.parse(pipeline).encoder()
    encode_only = Pipeline((encode,)) if encode is not None else Pipeline()
    listing = storage.list_files if ordered else storage.iter_files
    for rel in listing(source, READ_EXTENSIONS):
        if source.contains(target) and target.contains(source.child(rel)):
            continue
        out = rel
        if encode is not None:
            out = rel.rsplit(".", 1)[0] + output_suffix(encode_only, rel)
        yield rel, source.child(rel), target.child(out)


def run_tree(
    src: PathLike,
    dst: PathLike,
    pipeline: PipelineLike = None,
    *,
    jobs: int = 1,
    settings: Settings | None = None,
    on_start: Callable[[int], None] | None = None,
    on_result: Callable[[Outcome | Failure], None] | None = None,
) -> TreeReport:
    """Run a pipeline over every image below ``src``, mirrored into ``dst``, ``jobs`` at a time;
    ``on_start`` hears how many images were found, ``on_result`` each outcome as it comes.

    A failing image is recorded with its reason and never stops the others; one whose
    destination would leave ``dst`` through a symbolic link fails without being read.
    """
    from concurrent.futures import ThreadPoolExecutor, as_completed

    if jobs < 1:
        raise UsageError(f"jobs must be at least 1, not {jobs}")
    settings = settings or Settings.load()
    parsed = Pipeline.parse(pipeline)
    pairs = plan_tree(src, dst, parsed)
    inside = storage.Scope((storage.locate(dst),))
    if on_start is not None:
        on_start(len(pairs))
    report = TreeReport()
    started = time.monotonic()

    def one(pair: tuple[Location, Location]) -> Outcome | Failure:
        try:
            return execute(parsed, pair[0], inside.check(pair[1], "destination"), settings)
        except Cancelled:
            raise  # stops the whole run, not one image
        except PixelmillError as exc:
            return Failure(str(pair[0]), exc.kind, exc.exit_code, str(exc))
        except Exception as exc:  # noqa: BLE001  # a bug must not stop the other images
            return Failure(str(pair[0]), "internal", 1, f"{pair[0]}: {type(exc).__name__}: {exc}")

    pool = ThreadPoolExecutor(max_workers=jobs)
    try:
        for future in as_completed([pool.submit(one, pair) for pair in pairs]):
            result = future.result()
            (report.done if isinstance(result, Outcome) else report.failed).append(result)
            if on_result is not None:
                on_result(result)
    except BaseException:  # cancelled: drop the queued images
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    report.done.sort(key=lambda o: o.source)
    report.failed.sort(key=lambda f: f.source)
    report.seconds = time.monotonic() - started
    return report
