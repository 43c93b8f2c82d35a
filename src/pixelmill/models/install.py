"""Adding a model to the user folder: copied from any path or URL with its manifest, or with
one found by probing it (:mod:`pixelmill.models.probe`), then checked by loading it (apart
from the registry because the check needs the runtime, which needs the registry)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pixelmill import storage
from pixelmill.config import Settings
from pixelmill.errors import ModelError
from pixelmill.models.manifest import Manifest
from pixelmill.models.probe import probe
from pixelmill.models.registry import ModelFile, user_dir
from pixelmill.models.runtime import load_session
from pixelmill.models.vectors import TASK, VectorModel

IMAGE_TASKS = ("embed", "detect", "classify")
"""Tasks whose output is not an image, so not checked by tiling."""


def add(url: str, settings: Settings, *, name: str = "",
        value_range: tuple[float, float] | None = None, align: int = 1,
        check: Callable[[ModelFile, Settings], None] | None = None) -> tuple[ModelFile, str]:  # fmt: skip
    """Copy ``NAME.onnx`` from any storage URL into the user folder with its ``NAME.json``
    lying beside it, or, where there is none, a manifest found by probing the model (with
    ``value_range`` and at least ``align`` if given); ``name``, if given, names it either way.
    The model must load and match its manifest, and pass ``check`` when it is an
    image-to-image model. Returns the model and how its manifest came about."""
    if not url.endswith(".onnx"):
        raise ModelError(f"{url}: give the .onnx file (a manifest .json may lie beside it)")
    target = user_dir(settings)
    target.mkdir(parents=True, exist_ok=True)
    source = storage.locate(url)
    staged = target / f".{source.name}.adding"
    beside = storage.locate(url[: -len(".onnx")] + ".json")
    try:
        staged.write_bytes(storage.read_bytes(source))
        if not staged.stat().st_size:
            raise ModelError(f"{url}: the file is empty")
        if storage.exists(beside):
            manifest = Manifest.from_json(storage.read_bytes(beside).decode(), str(beside))
            if name:
                manifest = Manifest.from_dict({**manifest.describe(), "name": name}, "--name")
            origin = f"manifest {beside.name}"
        else:
            manifest, origin = _probed(staged, name or source.name[: -len(".onnx")],
                                       value_range, align, settings)  # fmt: skip
        candidate = ModelFile(manifest, staged, "user")
        if manifest.task == TASK:
            VectorModel(candidate, settings)
        else:
            load_session(candidate, settings)
            if check is not None and manifest.task not in IMAGE_TASKS:
                check(candidate, settings)
        final = target / f"{manifest.name}.onnx"
        staged.replace(final)
        final.with_suffix(".json").write_text(manifest.to_json() + "\n")
        return ModelFile(manifest, final, "user"), origin
    finally:
        staged.unlink(missing_ok=True)


def _probed(path: Path, name: str, value_range: tuple[float, float] | None, align: int,
            settings: Settings) -> tuple[Manifest, str]:  # fmt: skip
    found = probe(path, name, value_range, align, settings.threads)
    manifest = Manifest.from_dict({
        "name": name, "version": "1",
        "task": "super-resolution" if found.scale > 1 else "restoration",
        **found.fields(), "tile": -(-256 // found.align) * found.align,
        "provenance": f"{path.name[1:-len('.adding')]}; manifest found by pixelmill models add",
    }, f"the manifest found for {name}")  # fmt: skip
    return manifest, f"manifest probed, value range {found.range_reason}"
