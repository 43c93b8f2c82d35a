"""Model cards: one row per variant of a model (float32, distilled, pruned, int8, float16) with
its parameters, ONNX file size, speed on a CPU through the tiled engine and scores on the
held-out photographs, the commands that give each figure, and the training data and recipe;
written as Markdown and JSON to ship beside the model.

Speed is input megapixels per second of ``pixelmill run`` with the model step alone, on a
fixed synthetic image (dead leaves) read and written as uncompressed TIFF: the median of
several runs after one that loads the model, the models taking turns, with a stated number
of onnxruntime threads.
Scores are those of :func:`pixelmill.lab.evaluate.evaluate`, the same as ``pixelmill lab eval``.
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pixelmill import api
from pixelmill.config import Settings
from pixelmill.errors import UsageError
from pixelmill.lab import photos, pixels
from pixelmill.lab.evaluate import evaluate
from pixelmill.lab.export import DISTILLED
from pixelmill.lab.nets import BICUBIC
from pixelmill.lab.prune import PRUNED
from pixelmill.lab.recipe import Recipe, load
from pixelmill.lab.synthetic import GENERATORS
from pixelmill.lab.train import RECIPE

SIDE = 512
"""Side of the square image speed is measured on."""
REPEATS = 5
THREADS = 1
SEED = 0
"""Seed of the dead leaves speed is measured on."""
PRECISIONS = {"INT8": "int8", "UINT8": "int8", "FLOAT16": "fp16", "FLOAT": "fp32"}
"""The precision a model's convolution weights are stored in, by ONNX data type."""


@dataclass(frozen=True)
class Row:
    """One variant's figures."""

    model: str
    variant: str
    parameters: int
    """Learned weights and biases (the fixed bicubic base left out)."""
    file_bytes: int
    mp_per_s: float
    """Input megapixels per second on the CPU, through the engine."""
    psnr: float
    ssim: float
    provenance: str


def weights(path: Path) -> tuple[int, str]:
    """The number of learned weights and biases of an ONNX model's convolutions (traced back
    through dequantization and casts to their initializers) and the precision they are
    stored in."""
    import onnx
    from onnx import TensorProto

    graph = onnx.load(path).graph
    stored = {tensor.name: tensor for tensor in graph.initializer}
    made_by = {output: node for node in graph.node for output in node.output}

    def source(name: str) -> onnx.TensorProto | None:
        while name not in stored and name in made_by and made_by[name].op_type in (
                "DequantizeLinear", "Cast"):  # fmt: skip
            name = made_by[name].input[0]
        return stored.get(name)

    tensors = [source(name) for node in graph.node if node.op_type == "Conv"
               for name in node.input[1:3] if name]  # fmt: skip
    learned = [t for t in tensors if t is not None and t.name != BICUBIC]
    if not learned:
        raise UsageError(f"{path}: has no convolution weights to count")
    kinds = {TensorProto.DataType.Name(t.data_type) for t in learned if len(t.dims) > 1}
    precision = next((PRECISIONS[k] for k in PRECISIONS if k in kinds), "fp32")
    return sum(math.prod(t.dims) for t in learned), precision


def variant(provenance: str, precision: str) -> str:
    """How a variant was made: distilled, pruned, both or neither, and its precision."""
    made = [name for name, mark in (("distilled", DISTILLED), ("pruned", PRUNED))
            if mark in provenance]  # fmt: skip
    return " + ".join([*made, precision])


def speeds(models: list[str], settings: Settings, side: int = SIDE,
           repeats: int = REPEATS) -> list[float]:  # fmt: skip
    """Input megapixels per second of each ``model:NAME`` run by the engine on a ``side``²
    image of dead leaves, uncompressed TIFF in and out: the median of ``repeats`` runs, after
    one that loads the model. The models take turns, so a change in the machine's load
    weighs on all of them alike."""
    image = GENERATORS["dead_leaves"](side, np.random.default_rng(SEED))
    with tempfile.TemporaryDirectory(prefix="pixelmill-card-", dir=settings.tmp_dir) as work:
        source, target = Path(work) / "input.tif", Path(work) / "output.tif"
        pixels.to_vips(pixels.to_uint8(image)).copy(interpretation="srgb").tiffsave(str(source))
        pipelines = [f"model:{model}/encode:tiff:compression=none" for model in models]
        times: list[list[float]] = [[] for _ in models]
        for turn in range(repeats + 1):
            for pipeline, spent in zip(pipelines, times):
                began = time.perf_counter()
                api.run(source, target, pipeline, settings=settings)
                if turn:
                    spent.append(time.perf_counter() - began)
    return [side * side / 1e6 / statistics.median(spent) for spent in times]


def make(models: list[str], *, follows: tuple[str, ...] = (), recipe: str | None = None,
         track: str = "classic", threads: int = THREADS, repeats: int = REPEATS,
         side: int = SIDE, settings: Settings | None = None) -> dict[str, Any]:  # fmt: skip
    """The card of installed ``models`` (the first is the reference of the speed-ups and PSNR
    gaps) as the mapping its JSON holds; each is scored after the models it ``follows``, its
    speed is its own. ``recipe`` (a bundled name, a YAML file or a run folder) adds the
    training data and the recipe."""
    import onnxruntime

    from pixelmill.models import find

    if not models:
        raise UsageError("give at least one model")
    settings = settings or Settings.load()
    trained = recipe_of(recipe) if recipe else None
    chain = "".join(f" --follows {name}" for name in follows)
    command = (f"pixelmill lab card {' '.join(models)}{chain} --track {track} --threads "
               f"{threads} --repeats {repeats} --side {side}"
               + (f" --recipe {recipe}" if recipe else ""))  # fmt: skip
    found = [find(name, settings) for name in models]
    rates = speeds(models, settings.replace(threads=threads), side, repeats)
    scores = [evaluate(name, follows=follows, tracks=(track,), settings=settings)
              for name in models]  # fmt: skip
    rows = []
    for model, rate, result in zip(found, rates, scores):
        count, precision = weights(model.path)
        means = result["tracks"][track]["mean"]
        rows.append(Row(
            model=model.manifest.name, variant=variant(model.manifest.provenance, precision),
            parameters=count, file_bytes=model.path.stat().st_size, mp_per_s=rate,
            psnr=means["model"]["psnr"], ssim=means["model"]["ssim"],
            provenance=model.manifest.provenance,
        ))  # fmt: skip
    first = rows[0]
    baselines = {k: v for k, v in scores[0]["tracks"][track]["mean"].items() if k != "model"}
    return {
        "title": first.model, "description": found[0].manifest.description, "track": track,
        "follows": list(follows), "images": scores[0]["images"],
        "rows": [asdict(row) | {
            "speedup": row.mp_per_s / first.mp_per_s, "psnr_gap": row.psnr - first.psnr,
            "commands": {"scores": f"pixelmill lab eval {row.model}{chain} --track {track} "
                                   "--json",
                         "speed": command},
        } for row in rows],
        "baselines": baselines,
        "speed": {
            "image": f"{side}×{side} dead leaves (seed {SEED}), uncompressed TIFF in and out",
            "threads": threads, "repeats": repeats, "cpu": cpu_name(), "cores": os.cpu_count(),
            "onnxruntime": onnxruntime.__version__,
        },
        "command": command,
        "training_data": training_data(trained) if trained else None,
        "recipe": trained.to_dict() if trained else None,
    }  # fmt: skip


def recipe_of(source: str) -> Recipe:
    """A recipe by bundled name or YAML file, or the one a run folder was trained from."""
    folder = Path(source)
    return load(str(folder / RECIPE) if folder.is_dir() else source)


def training_data(recipe: Recipe) -> str:
    """A short description of what a recipe trains on."""
    data, train = recipe.data, recipe.train
    mix = {"dead leaves": data.dead_leaves, "procedural textures (noise, stripes, checkers, "
           "glyphs)": data.textures, "photographs": data.photos}  # fmt: skip
    total = sum(mix.values())
    lines = ["Targets: " + ", ".join(f"{name} {weight / total:.0%}"
                                     for name, weight in mix.items() if weight) + "."]  # fmt: skip
    if data.photos:
        sources = [f"the images below {', '.join(data.folders)}"] if data.folders else []
        if data.bundled:
            sources.insert(0, f"the bundled training photographs ({', '.join(photos.TRAINING)};"
                              " scikit-image)")  # fmt: skip
        low, high = data.photo_scale
        lines.append(f"Photographs: {' and '.join(sources)}, shrunk by {low:g}–{high:g} "
                     "before cropping.")  # fmt: skip
    augment = recipe.augment
    kinds = [name for name, on in (("flips", augment.flip), ("quarter turns", augment.rotate),
                                   (f"colour jitter ±{augment.jitter:g}", augment.jitter))
             if on]  # fmt: skip
    if kinds:
        lines.append(f"Augmentation: {', '.join(kinds)}.")
    stages = " → ".join(next(iter(stage)) for stage in recipe.to_dict()["degradation"])
    chain = "".join(f", then restored by the installed {name}" for name in recipe.follows)
    lines.append(f"Inputs: the targets degraded by {stages} (settings in the recipe){chain}, "
                 f"in {train.patch}-pixel patches, batches of {train.batch}, {train.steps:,} "
                 "steps.")  # fmt: skip
    lines.append(f"Never trained on: the held-out photographs {', '.join(photos.HELD_OUT)} "
                 "(checked before training).")  # fmt: skip
    return " ".join(lines)


HEADER = ("| model | variant | parameters | ONNX size | MP/s (CPU) | speed-up | PSNR-Y dB "
          "| SSIM-Y | PSNR gap dB |\n|---|---|--:|--:|--:|--:|--:|--:|--:|")  # fmt: skip


def markdown(card: dict[str, Any]) -> str:
    """The card as Markdown."""
    import yaml

    speed = card["speed"]
    table = [HEADER]
    for row in card["rows"]:
        table.append(f"| {row['model']} | {row['variant']} | {row['parameters']:,} | "
                     f"{row['file_bytes'] / 1024:.1f} KiB | {row['mp_per_s']:.2f} | "
                     f"{row['speedup']:.2f}× | {row['psnr']:.2f} | {row['ssim']:.4f} | "
                     f"{row['psnr_gap']:+.3f} |")  # fmt: skip
    for method, score in card["baselines"].items():
        table.append(f"| {method} (baseline) | | | | | | {score['psnr']:.2f} | "
                     f"{score['ssim']:.4f} | |")  # fmt: skip
    scores = (f"**Scores**: mean PSNR and SSIM on luma (Y of BT.601, 16..235; upscalers with "
              f"`scale` pixels shaved from each border) over the held-out photographs "
              f"{', '.join(card['images'])}, degraded by the {card['track']} track and run "
              "through the tiled engine"
              + "".join(f" after `model:{name}`" for name in card.get("follows", ()))
              + ". The PSNR gap and speed-up are against the first row.")  # fmt: skip
    timing = (f"**Speed**: input megapixels per second of `pixelmill run` with the model step "
              f"on a {speed['image']}; median of {speed['repeats']} runs after a warm-up, the "
              "models taking turns, "
              f"{speed['threads']} onnxruntime thread(s), on {speed['cpu']} ({speed['cores']} "
              f"cores), onnxruntime {speed['onnxruntime']}.")  # fmt: skip
    sections = [f"# Model card: {card['title']}", card["description"], "\n".join(table),
                scores, timing, "## Variants",
                "\n".join(f"- **{row['model']}** ({row['variant']}): {row['provenance']}"
                          for row in card["rows"]),
                "## Commands",
                "\n".join([f"- the whole card, speeds included: `{card['command']}`"]
                          + [f"- scores of {row['model']}: `{row['commands']['scores']}`"
                             for row in card["rows"]])]  # fmt: skip
    if card["training_data"]:
        sections += ["## Training data", card["training_data"]]
    if card["recipe"]:
        recipe = yaml.safe_dump(card["recipe"], sort_keys=False, allow_unicode=True)
        sections += ["## Recipe", f"```yaml\n{recipe.rstrip()}\n```"]
    return "\n\n".join(section for section in sections if section) + "\n"


def write(card: dict[str, Any], path: Path, as_json: bool) -> list[Path]:
    """Write the card as Markdown to ``path``, and as JSON beside it when ``as_json``."""
    beside = path.with_suffix(".json")
    if as_json and beside == path:
        raise UsageError(f"{path}: name the Markdown file; the JSON goes beside it")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(markdown(card), encoding="utf-8")
    if not as_json:
        return [path]
    beside.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return [path, beside]


def cpu_name() -> str:
    """The CPU's model name, where the system says it."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
