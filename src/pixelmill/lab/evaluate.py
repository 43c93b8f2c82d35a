"""Evaluation of an installed model through pixelmill's tiled engine, so it measures what ships.

Each held-out photograph (or each image of a folder) is degraded by a fixed track, written as
PNG, and run through ``model:NAME`` (after the models it follows, as ``model:A/model:NAME``,
for a model trained on their outputs); upscalers are compared with bicubic and Lanczos upscaling,
restoration models with their degraded input. Scores are PSNR and SSIM on luma (Y of BT.601
YCbCr, 16..235, as in super-resolution papers), with ``scale`` pixels shaved from every border
for upscalers.

The baselines come from Pillow, whose bicubic and Lanczos filters enlarge with those very
kernels, pixel centres aligned like the benchmarks' MATLAB ``imresize``; the ``scale`` step
enlarges by bicubic interpolation whatever its kernel.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pixelmill import api, storage
from pixelmill.config import Settings
from pixelmill.errors import UsageError
from pixelmill.lab import photos, pixels
from pixelmill.lab.degrade import EVAL_SEED, TRACKS, track
from pixelmill.lab.recipe import TASKS

UPSCALERS = {"bicubic": "BICUBIC", "lanczos": "LANCZOS"}
"""Baselines of super-resolution: Pillow's resampling filters by name."""


@dataclass(frozen=True)
class Score:
    psnr: float
    ssim: float


def luma(image: np.ndarray) -> np.ndarray:
    """Y of BT.601 YCbCr (16..235) of a working-form image."""
    from skimage.color import rgb2ycbcr

    return rgb2ycbcr(image)[..., 0]


def score(output: np.ndarray, reference: np.ndarray, shave: int) -> Score:
    """PSNR and SSIM (Gaussian window, σ 1.5, as Wang et al.) on luma, borders shaved."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    inner = (slice(shave, -shave or None),) * 2
    mine, theirs = luma(output)[inner], luma(reference)[inner]
    return Score(
        float(peak_signal_noise_ratio(theirs, mine, data_range=255)),
        float(structural_similarity(theirs, mine, data_range=255, gaussian_weights=True,
                                    sigma=1.5, use_sample_covariance=False)),
    )  # fmt: skip


def evaluate(model: str, *, follows: tuple[str, ...] = (),
             images: str | Sequence[str] | None = None,
             tracks: tuple[str, ...] = TRACKS, settings: Settings | None = None
             ) -> dict[str, Any]:  # fmt: skip
    """Scores of ``model`` (run after the restoration models ``follows``) and its baselines on
    every image and track, with their means. ``images``: a folder of reference images, or
    their URIs (default: the held-out photographs)."""
    from pixelmill.models import find

    settings = settings or Settings.load()
    for name in (*follows, model):
        manifest = find(name, settings).manifest
        if manifest.task not in TASKS or manifest.bands != 3:
            raise UsageError(f"model {name}: task {manifest.task!r} with {manifest.channels} "
                             f"channels; the lab evaluates RGB {', '.join(TASKS)} models")
        if name != model and manifest.scale != 1:
            raise UsageError(f"model {name}: ×{manifest.scale}; a followed model keeps the size")
    scale = manifest.scale  # the last one's: ``model``'s
    pipeline = "/".join(f"model:{name}" for name in (*follows, model))
    references = _references(images, settings)
    result: dict[str, Any] = {
        "model": model, "follows": list(follows), "pipeline": pipeline, "task": manifest.task,
        "scale": scale, "images": [name for name, _ in references], "tracks": {},
    }  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="pixelmill-eval-", dir=settings.tmp_dir) as work:
        for name in tracks:
            degradation = track(name, manifest.task, scale)
            per_image = {}
            for index, (image, reference) in enumerate(references):
                reference = reference[: reference.shape[0] // scale * scale,
                                      : reference.shape[1] // scale * scale]  # fmt: skip
                degraded = degradation(reference, np.random.default_rng([EVAL_SEED, index]))
                outputs = _outputs(pipeline, scale, degraded, Path(work), settings)
                shave = scale if scale > 1 else 0
                per_image[image] = {
                    k: asdict(score(v, reference, shave)) for k, v in outputs.items()
                }
            result["tracks"][name] = {"mean": _means(per_image), "images": per_image}
    return result


def _references(images: str | Sequence[str] | None,
                settings: Settings) -> list[tuple[str, np.ndarray]]:  # fmt: skip
    if images is None:
        return [(name, photos.load(name)) for name in photos.HELD_OUT]
    found = (api.images_below(images) if isinstance(images, str)
             else [storage.locate(uri) for uri in images])  # fmt: skip
    return [(loc.name, pixels.read(loc, settings)) for loc in found]


def _outputs(pipeline: str, scale: int, degraded: np.ndarray, work: Path,
             settings: Settings) -> dict[str, np.ndarray]:  # fmt: skip
    """The model's output, run through the engine from a PNG, and the baselines'."""
    source, target = work / "input.png", work / "output.png"
    pixels.write_png(degraded, str(source))
    api.run(source, target, pipeline, settings=settings)
    outputs = {"model": pixels.read(storage.locate(target), settings)}
    if scale == 1:
        return outputs | {"input": degraded}
    return outputs | {name: upscale(degraded, scale, name) for name in UPSCALERS}


def upscale(image: np.ndarray, scale: int, method: str) -> np.ndarray:
    """``image`` enlarged ``scale`` times by a Pillow filter named in :data:`UPSCALERS`."""
    from PIL import Image

    height, width = image.shape[:2]
    filter_ = getattr(Image.Resampling, UPSCALERS[method])
    enlarged = Image.fromarray(pixels.to_uint8(image)).resize((width * scale, height * scale),
                                                              filter_)  # fmt: skip
    return pixels.from_uint8(np.asarray(enlarged))


def _means(per_image: dict[str, dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    methods = next(iter(per_image.values()))
    return {
        method: {metric: float(np.mean([s[method][metric] for s in per_image.values()]))
                 for metric in ("psnr", "ssim")}
        for method in methods
    }  # fmt: skip


def comparison(results: Sequence[dict[str, Any]]) -> Any:
    """The mean scores of several models evaluated on the same images, as a rich table, with
    each one's PSNR gain over the first."""
    from rich.table import Table

    first = results[0]
    grid = Table(title=f"{len(first['images'])} images: {', '.join(first['images'][:8])}"
                       + (" …" if len(first["images"]) > 8 else ""), title_justify="left")  # fmt: skip
    for column in ("track", "model", "PSNR-Y dB", "SSIM-Y", f"gain over {first['model']} dB"):
        grid.add_column(column, justify="left" if column in ("track", "model") else "right")
    for name in first["tracks"]:
        reference = first["tracks"][name]["mean"]["model"]["psnr"]
        for result in results:
            mean = result["tracks"][name]["mean"]["model"]
            gain = "" if result is first else f"{mean['psnr'] - reference:+.2f}"
            grid.add_row(name, result["pipeline"], f"{mean['psnr']:.2f}", f"{mean['ssim']:.4f}",
                         gain)  # fmt: skip
    return grid


def table(result: dict[str, Any]) -> Any:
    """The mean scores as a rich table, with the model's PSNR gain over each baseline."""
    from rich.table import Table

    title = (f"{result['pipeline']} ({result['task']} ×{result['scale']}) on "
             f"{len(result['images'])} images: {', '.join(result['images'])}")  # fmt: skip
    grid = Table(title=title, title_justify="left")
    for column in ("track", "method", "PSNR-Y dB", "SSIM-Y", "model's gain dB"):
        grid.add_column(column, justify="left" if column in ("track", "method") else "right")
    for name, scores in result["tracks"].items():
        ours = scores["mean"]["model"]["psnr"]
        for method, mean in scores["mean"].items():
            gain = "" if method == "model" else f"{ours - mean['psnr']:+.2f}"
            grid.add_row(name, method, f"{mean['psnr']:.2f}", f"{mean['ssim']:.4f}", gain)
    return grid
