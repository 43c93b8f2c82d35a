"""Where models are found: bundled with the package, a user folder, or any storage URL.

A model is ``NAME.onnx`` with its manifest ``NAME.json`` beside it. User models shadow bundled
ones of the same name.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from pixelmill import storage
from pixelmill.config import Settings
from pixelmill.errors import ModelError
from pixelmill.models.manifest import Manifest

BUNDLED = Path(str(files("pixelmill"))) / "models" / "bundled"


@dataclass(frozen=True)
class ModelFile:
    manifest: Manifest
    path: Path
    origin: str
    """bundled or user."""


def user_dir(settings: Settings) -> Path:
    if settings.models_dir:
        return Path(settings.models_dir)
    return Path(settings.data_folder) / "models"


def _scan(folder: Path, origin: str) -> dict[str, ModelFile]:
    found: dict[str, ModelFile] = {}
    if not folder.is_dir():
        return found
    for manifest_path in sorted(folder.glob("*.json")):
        model = manifest_path.with_suffix(".onnx")
        if model.is_file():
            manifest = Manifest.from_json(manifest_path.read_text(), str(manifest_path))
            found[manifest.name] = ModelFile(manifest, model, origin)
    return found


def available(settings: Settings) -> dict[str, ModelFile]:
    """Every model, by name (user models shadow bundled ones)."""
    return _scan(BUNDLED, "bundled") | _scan(user_dir(settings), "user")


def find(name: str, settings: Settings) -> ModelFile:
    models = available(settings)
    if name not in models:
        known = ", ".join(sorted(models)) or "none installed"
        raise ModelError(f"model: unknown model {name!r} (available: {known}); "
                         "add one with `pixelmill models add`")  # fmt: skip
    return models[name]


def add(url: str, settings: Settings) -> ModelFile:
    """Copy ``NAME.onnx`` and its ``NAME.json`` from any storage URL into the user folder,
    after checking that the model loads and matches its manifest."""
    from pixelmill.models.runtime import load_session

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
        load_session(candidate, settings)
        final = target / f"{manifest.name}.onnx"
        staged[0].replace(final)
        staged[1].replace(final.with_suffix(".json"))
        return ModelFile(manifest, final, "user")
    finally:
        for part in staged:
            part.unlink(missing_ok=True)
