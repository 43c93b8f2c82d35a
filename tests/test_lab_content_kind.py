"""The content-kind classifier: its generators, a tiny training run exported to ONNX, and the
bundled model on fresh generated images and real photographs."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
import torch

from pixelmill.errors import UsageError
from pixelmill.lab import classifier, kinds, photos
from pixelmill.models.manifest import Manifest
from pixelmill.models.registry import BUNDLED

torch.set_num_threads(1)
SIDE = classifier.SIDE
FRESH_SEED = 12345
"""A seed the bundled model was neither trained nor tested on."""


@pytest.mark.parametrize("kind", kinds.KINDS)
def test_a_generator_is_a_function_of_its_seed(kind: str) -> None:
    first = kinds.generate(kind, 3, 0)
    assert first.dtype == np.uint8 and first.ndim == 3 and first.shape[2] == 3
    assert min(first.shape[:2]) >= 16
    assert np.array_equal(first, kinds.generate(kind, 3, 0))
    others = [kinds.generate(kind, 3, 1), kinds.generate(kind, 4, 0),
              kinds.generate(kind, 3, 0, "test")]  # fmt: skip
    assert all(other.shape != first.shape or not np.array_equal(other, first)
               for other in others)  # fmt: skip


def test_the_kinds_differ_and_bad_names_are_refused() -> None:
    thumbs = {kind: kinds.thumbnail(kinds.generate(kind, 0, 2), SIDE) for kind in kinds.KINDS}
    assert all(t.shape == (SIDE, SIDE, 3) and t.dtype == np.uint8 for t in thumbs.values())
    for a in kinds.KINDS:
        for b in kinds.KINDS:
            if a < b:
                assert not np.array_equal(thumbs[a], thumbs[b])
    with pytest.raises(UsageError, match="kind 'poster'"):
        kinds.generate("poster", 0, 0)
    with pytest.raises(UsageError, match="split 'valid'"):
        kinds.generate("photo", 0, 0, "valid")


def test_photos_never_come_from_the_held_out_photographs() -> None:
    assert not set(kinds.PHOTOS) & set(photos.HELD_OUT)


def test_the_thumbnail_forces_the_whole_image_and_flattens_alpha() -> None:
    wide = np.zeros((40, 400, 4), np.uint8)
    wide[:, :200, :3] = 255  # left half white, right half transparent black
    small = kinds.thumbnail(wide, 32)
    assert small.shape == (32, 32, 3)
    assert small.min() >= 250  # transparent pixels are white
    grey = kinds.thumbnail(np.full((50, 70), 77, np.uint8), 16)
    assert grey.shape == (16, 16, 3) and np.all(grey == 77)


def test_a_tiny_training_exports_a_loadable_model(tmp_path) -> None:
    plan = classifier.Plan(steps=3, images=4, test=2, batch=8, side=32, photo_crops=2)
    card = classifier.build(plan, tmp_path, workers=0, threads=1, shown_out="runs")
    path = tmp_path / "content-kind.onnx"
    manifest = Manifest.from_json(path.with_suffix(".json").read_text(), str(path))
    assert manifest.name == "content-kind" and manifest.task == "classify"
    assert manifest.labels == ("photo", "graphic", "screenshot", "scan")
    assert (manifest.tile, manifest.receptive_field, manifest.scale) == (32, 0, 1)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch in (1, 5):
        logits = session.run(None, {"input": np.random.rand(batch, 3, 32, 32).astype(
            np.float32)})[0]  # fmt: skip
        assert logits.shape == (batch, 4) and logits.dtype == np.float32
    saved = json.loads((tmp_path / "content-kind.card.json").read_text())
    assert saved["command"] == "pixelmill lab content-kind --out runs --steps 3 --seed 0 --images 4"
    assert np.array(saved["test"]["confusion"]).sum() == 8
    assert "## Commands" in (tmp_path / "content-kind.card.md").read_text()
    assert card["speed"]["single"] > 0


def test_scores_count_the_confusions() -> None:
    result = classifier.scores(np.array([0, 0, 1, 2, 3, 3]), np.array([0, 1, 1, 2, 3, 0]))
    assert result["accuracy"] == pytest.approx(4 / 6)
    assert result["confusion"][0] == [1, 1, 0, 0] and result["confusion"][3] == [1, 0, 0, 1]
    assert result["labels"]["photo"] == {"precision": 0.5, "recall": 0.5, "images": 2}


@pytest.fixture(scope="module")
def bundled() -> classifier.Classifier:
    path = BUNDLED / "content-kind.onnx"
    assert path.stat().st_size < 2 * 1024 * 1024
    return classifier.Classifier(path)


def test_the_bundled_model_knows_fresh_images_of_every_kind(bundled) -> None:
    images, truth = classifier.dataset(25, FRESH_SEED, "train", bundled.side)
    result = classifier.scores(truth, bundled.logits(images).argmax(1))
    assert result["accuracy"] >= 0.9, result["confusion"]
    assert all(v["recall"] >= 0.7 for v in result["labels"].values()), result["confusion"]


@pytest.mark.parametrize("name", ["astronaut", "coffee"])
def test_the_bundled_model_calls_photographs_photos(bundled, name: str) -> None:
    label, chance = bundled.label(photos.load(name) * 255)
    assert label == "photo", (name, label, chance)


def test_the_bundled_manifest_and_card() -> None:
    manifest = Manifest.from_json((BUNDLED / "content-kind.json").read_text(), "bundled")
    assert manifest.labels == classifier.LABELS and manifest.task == "classify"
    assert 128 <= manifest.tile <= 256 and manifest.value_range == (0.0, 1.0)
    card = (BUNDLED / "content-kind.card.md").read_text()
    assert "pixelmill lab content-kind --out src/pixelmill/models/bundled" in card
    assert "/" + "work" not in card and "/home/" not in card
