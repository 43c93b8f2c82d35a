"""Running pipelines over images and measuring each result: quality, speed and bytes.

With a degradation (itself a pipeline, seeded where it is random: ``scale:0.5/noise:5/encode:
jpeg:q=40``) each image is the ground truth: it is degraded into the pipelines' input and their
outputs are scored against it with full-reference metrics. Without one, the outputs are scored
with no-reference indicators, and upscales by their consistency with the input.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyvips

from pixelmill import api, codecs, storage
from pixelmill.config import Settings
from pixelmill.engine import output_suffix
from pixelmill.errors import UsageError
from pixelmill.pipeline import Pipeline
from pixelmill.quality import compare, metric

WITH_TRUTH = ("psnr-y", "ssim", "ms-ssim", "ssimulacra2", "ciede2000")
"""Metrics against the ground truth when a degradation is given."""
WITHOUT_TRUTH = ("sharpness", "noise", "blockiness", "colourfulness")
"""No-reference indicators otherwise (plus consistency for upscales)."""


@dataclass(frozen=True)
class Result:
    """One pipeline on one image."""

    image: str
    pipeline: str
    seconds: float
    megapixels: float
    """Of the pipeline's input."""
    bytes: int
    width: int
    height: int
    metrics: dict[str, float]

    @property
    def mp_per_s(self) -> float:
        return self.megapixels / self.seconds


@dataclass
class Bench:
    """Everything a report needs: what ran, on what, and every result; the files (truth,
    input, outputs) stay in ``work`` for the crops."""

    pipelines: list[str]
    images: list[str]
    degrade: str | None
    metrics: list[str]
    rank_by: str
    work: Path
    results: list[Result] = field(default_factory=list)
    files: dict[tuple[str, str], Path] = field(default_factory=dict)
    """(image, pipeline or "truth" or "input") → file."""

    def summary(self) -> list[dict[str, Any]]:
        """Per pipeline: mean of each metric, median MP/s, mean bytes; best first."""
        rows = []
        for pipeline in self.pipelines:
            mine = [r for r in self.results if r.pipeline == pipeline]
            if not mine:
                continue
            names = [n for n in self.metrics if all(n in r.metrics for r in mine)]
            rows.append({
                "pipeline": pipeline,
                "metrics": {n: statistics.fmean(r.metrics[n] for r in mine) for n in names},
                "mp_per_s": statistics.median(r.mp_per_s for r in mine),
                "bytes": statistics.fmean(r.bytes for r in mine),
            })  # fmt: skip
        return sorted(rows, key=self._score, reverse=True)

    def _score(self, row: dict[str, Any]) -> float:
        if self.rank_by == "mp-per-s":
            return row["mp_per_s"]
        value = row["metrics"].get(self.rank_by, float("nan"))
        return value if metric(self.rank_by).higher_is_better is not False else -value

    def to_json(self) -> dict[str, Any]:
        return {
            "pipelines": self.pipelines, "images": self.images, "degrade": self.degrade,
            "metrics": self.metrics, "rank_by": self.rank_by, "ranking": self.summary(),
            "results": [r.__dict__ | {"mp_per_s": r.mp_per_s} for r in self.results],
        }  # fmt: skip


def run(pipelines: Sequence[str], images: str, work: Path, *, degrade: str | None = None,
        metrics: Sequence[str] | None = None, rank_by: str | None = None, repeats: int = 1,
        settings: Settings | None = None, on_start: Callable[[int], None] | None = None,
        on_result: Callable[[Result], None] | None = None) -> Bench:  # fmt: skip
    """Run every pipeline on every image below ``images`` (a folder or storage prefix),
    ``repeats`` times for the timing (the median is kept), measuring each output."""
    settings = settings or Settings.load()
    parsed = [Pipeline.parse(p) for p in pipelines]
    if not parsed:
        raise UsageError("give at least one pipeline")
    truth = Pipeline.parse(degrade) if degrade else None
    chosen = list(metrics or (WITH_TRUTH if truth else WITHOUT_TRUTH))
    for name in chosen:
        if metric(name).kind == "reference" and truth is None:
            raise UsageError(f"metric {name} needs a ground truth: give a degradation")
    rank = rank_by or ("ssimulacra2" if truth and "ssimulacra2" in chosen else
                       chosen[0] if truth else "mp-per-s")  # fmt: skip
    if rank != "mp-per-s" and rank not in chosen:
        raise UsageError(f"cannot rank by {rank}: it is not measured ({', '.join(chosen)})")
    sources = api.images_below(images)
    bench = Bench([str(p) for p in parsed], [s.name for s in sources], str(truth) if truth
                  else None, chosen, rank, work)  # fmt: skip
    if on_start is not None:
        on_start(len(sources) * len(parsed))
    for index, source in enumerate(sources):
        folder = work / f"{index:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        if truth is None:
            given = folder / "input.png"
            api.run(source, given, "", settings=settings)
        else:
            original, given = folder / "truth.png", folder / f"input{_suffix(truth)}"
            api.run(source, original, "", settings=settings)
            api.run(original, given, truth, settings=settings)
            bench.files[(source.name, "truth")] = original
        bench.files[(source.name, "input")] = given
        for number, pipeline in enumerate(parsed):
            output = folder / f"p{number}{_suffix(pipeline)}"
            seconds = []
            for _ in range(repeats):
                began = time.perf_counter()
                outcome = api.run(given, output, pipeline, settings=settings)
                seconds.append(time.perf_counter() - began)
            bench.files[(source.name, str(pipeline))] = output
            result = Result(
                source.name, str(pipeline), statistics.median(seconds), _megapixels(given),
                outcome.bytes_written, outcome.width, outcome.height,
                _measure(output, bench.files.get((source.name, "truth")), given, chosen,
                         settings),
            )  # fmt: skip
            bench.results.append(result)
            if on_result is not None:
                on_result(result)
    return bench


def _suffix(pipeline: Pipeline) -> str:
    return output_suffix(pipeline, "image.png")


def _megapixels(path: Path) -> float:
    image = pyvips.Image.new_from_file(str(path))
    return image.width * image.height / 1e6


def _measure(output: Path, truth: Path | None, given: Path, metrics: list[str],
             settings: Settings) -> dict[str, float]:  # fmt: skip
    """The metrics of ``output`` against the truth (or its input), and its consistency with
    the input when it is an upscale with no truth."""
    with contextlib.ExitStack() as stack:

        def load(path: Path) -> pyvips.Image:
            source = stack.enter_context(codecs.open_source(storage.locate(path), settings))
            return codecs.to_srgb(source.decode(random_access=True))

        image, small = load(output), load(given)
        values = compare(load(truth) if truth else small, image, metrics, resample=True)
        if truth is None and (image.width, image.height) != (small.width, small.height):
            values |= compare(small, image, ["consistency"])
        return values
