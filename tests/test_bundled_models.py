"""The models shipped inside the package: small, documented, free of the exporting machine's
traces, and ready to run offline through the tiled engine."""

from __future__ import annotations

import json

import onnx
import pytest
from conftest import load, photo

import pixelmill
from pixelmill.config import Settings
from pixelmill.models.registry import BUNDLED, available

SHIPPED = sorted(p.stem for p in BUNDLED.glob("*.onnx"))
CARDS = {"sr-x2", "sr-x4", "denoise", "dejpeg"}
IMAGE_MODELS = [name for name in SHIPPED if json.loads((BUNDLED / f"{name}.json").read_text())[
    "task"] not in ("detect", "classify", "embed")]
"""The shipped models that turn an image into an image (the ``model`` step's)."""


def test_the_lab_models_ship() -> None:
    assert {"sr-x2", "denoise"} <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_a_shipped_model_is_small_and_carries_no_local_traces(name: str) -> None:
    path = BUNDLED / f"{name}.onnx"
    assert path.stat().st_size <= 2 * 1024 * 1024
    model = onnx.load(path)
    assert all("/" not in entry.value for entry in model.metadata_props)
    assert all(not node.metadata_props and not node.doc_string for node in model.graph.node)
    manifest = json.loads(path.with_suffix(".json").read_text())
    assert manifest["name"] == name and manifest["licence"]
    assert "/" not in manifest["provenance"].replace(" / ", "")


@pytest.mark.parametrize("name", sorted(CARDS & set(SHIPPED)))
def test_a_shipped_model_has_its_card(name: str) -> None:
    card = (BUNDLED / f"{name}.card.md").read_text()
    for part in ("| model |", "## Training data", "## Recipe", f"pixelmill lab eval {name}"):
        assert part in card
    assert "/" + "work" not in card and "/home/" not in card


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_a_shipped_model_runs_through_the_engine(tmp_path, monkeypatch, name: str) -> None:
    monkeypatch.setenv("PIXELMILL_MODELS_DIR", str(tmp_path / "none"))
    model = available(Settings.load())[name]
    assert model.origin == "bundled"
    source = tmp_path / "in.png"
    photo(96, 64).write_to_file(str(source))
    out = load(pixelmill.run(source, tmp_path / "o.png", f"model:{name}").destination)
    scale = model.manifest.scale
    assert (out.width, out.height, out.bands) == (96 * scale, 64 * scale, 3)


def test_models_chain_in_one_pipeline(tmp_path, monkeypatch) -> None:
    """JPEG artefacts removed, then ×2 super-resolution by the upscaler trained on dejpeg's
    outputs: two model steps streaming one into the other, as a pipeline of models."""
    monkeypatch.setenv("PIXELMILL_MODELS_DIR", str(tmp_path / "none"))
    chained = available(Settings.load())["sr-x2-jpeg"].manifest
    assert "trained on the outputs of dejpeg" in chained.provenance
    source = tmp_path / "in.jpg"
    photo(200, 120).write_to_file(str(source), Q=30)
    out = pixelmill.run(source, tmp_path / "o.png", "model:dejpeg/model:sr-x2-jpeg")
    assert (out.width, out.height) == (400, 240)
    assert [note.split(":")[0] for note in out.notes] == ["model dejpeg", "model sr-x2-jpeg"]
