"""Adding a model to the user folder: copied from any path or URL, then checked by loading it
(apart from the registry because the check needs the runtime, which needs the registry)."""

from __future__ import annotations

from pathlib import Path

from pixelmill import storage
from pixelmill.config import Settings
from pixelmill.errors import ModelError
from pixelmill.models.manifest import Manifest
from pixelmill.models.registry import ModelFile, user_dir
from pixelmill.models.runtime import load_session
from pixelmill.models.vectors import TASK, VectorModel


def add(url: str, settings: Settings) -> ModelFile:
    """Copy ``NAME.onnx`` and its ``NAME.json`` from any storage URL into the user folder,
    after checking that the model loads and matches its manifest (an image model on a tile, an
    embedding model on a blank image)."""
    if not url.endswith(".onnx"):
        raise ModelError(f"{url}: give the .onnx file (its manifest .json must lie beside it)")
    target = user_dir(settings)
    target.mkdir(parents=True, exist_ok=True)
    staged: list[Path] = []
    try:
        for suffix in (".onnx", ".json"):
            source = storage.locate(url[: -len(".onnx")] + suffix)
            data = storage.read_bytes(source)
            part = target / f".{source.name}.adding"
            part.write_bytes(data)
            staged.append(part)
        manifest = Manifest.from_json(staged[1].read_text(), url)
        candidate = ModelFile(manifest, staged[0], "user")
        if manifest.task == TASK:
            VectorModel(candidate, settings)
        else:
            load_session(candidate, settings)
        final = target / f"{manifest.name}.onnx"
        staged[0].replace(final)
        staged[1].replace(final.with_suffix(".json"))
        return ModelFile(manifest, final, "user")
    finally:
        for part in staged:
            part.unlink(missing_ok=True)
