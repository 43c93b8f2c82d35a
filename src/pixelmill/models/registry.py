"""Where models are found: bundled with the package, or in a user folder.

A model is ``NAME.onnx`` with its manifest ``NAME.json`` beside it. User models shadow bundled
ones of the same name.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

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
