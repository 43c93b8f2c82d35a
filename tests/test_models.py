"""The model registry and runtime: listing, adding, and refusing models that do not fit."""

from __future__ import annotations

import json

import pytest

from pixelmill.models import toy


@pytest.fixture
def models_dir(tmp_path, monkeypatch):
    folder = tmp_path / "models"
    monkeypatch.setenv("PIXELMILL_MODELS_DIR", str(folder))
    return folder


def test_add_list_and_info(cli, tmp_path, models_dir) -> None:
    toy.build(tmp_path / "incoming", "sharp-x2", scale=2)
    status, _, stderr = cli("models", "add", tmp_path / "incoming" / "sharp-x2.onnx")
    assert status == 0 and "added sharp-x2 1" in stderr
    assert sorted(p.name for p in models_dir.iterdir()) == ["sharp-x2.json", "sharp-x2.onnx"]
    status, listing, _ = cli("models", "list")
    assert status == 0 and "sharp-x2" in listing and "×2" in listing
    status, described, _ = cli("models", "info", "sharp-x2")
    details = json.loads(described)
    assert details["scale"] == 2 and details["receptive_field"] == 3
    assert details["providers"][-1] == "CPUExecutionProvider"
    assert json.loads(cli("models", "list", "--json")[1])["sharp-x2"]["origin"] == "user"


def test_add_from_a_storage_url(cli, tmp_path, models_dir) -> None:
    import fsspec

    toy.build(tmp_path / "incoming", "mem-x1", scale=1)
    memory = fsspec.filesystem("memory")
    for suffix in (".onnx", ".json"):
        memory.pipe(f"/pm-models/mem-x1{suffix}", (tmp_path / "incoming" / f"mem-x1{suffix}")
                    .read_bytes())  # fmt: skip
    assert cli("models", "add", "memory://pm-models/mem-x1.onnx")[0] == 0
    assert (models_dir / "mem-x1.onnx").exists()
    memory.rm("/pm-models", recursive=True)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m.update(scale=4), ("a 14×14 input gives 28×28 with 3 band(s); the manifest "
                                       "(scale 4, 3 band(s)) means 56×56")),
        (lambda m: m.update(channels=1, colour="gray"), "input shape"),
        (lambda m: m.update(scale=5), "field 'scale': 5 is not one of 1, 2, 3, 4, 8"),
        (lambda m: m.update(colour="cmyk"), "field 'colour': 'cmyk' is not one of \"rgb\", \"gray\""),
        (lambda m: m.update(colour="gray"), "field 'colour': 'gray' does not fit channels 3"),
        (lambda m: m.pop("receptive_field"),
         "missing required field 'receptive_field' (an integer from 0 to 512)"),
        (lambda m: m.update(value_range=[1, 1]), "field 'value_range': [1, 1] must give black below white"),
        (lambda m: m.update(tile="big"), "field 'tile': 'big' is not an integer from 16 to 8192"),
        (lambda m: m.update(stride=2), "unknown field 'stride'"),
        (lambda m: m.update(outputs="nope"), "field 'outputs': 'nope' is not one of the model's outputs"),
        (lambda m: m.update(name="../../etc/evil"), "field 'name': '../../etc/evil' is not a model name (a string matching"),
    ],
)
def test_models_that_do_not_match_their_manifest_are_refused(cli, tmp_path, models_dir, change,
                                                             message) -> None:  # fmt: skip
    path = toy.build(tmp_path / "incoming", "odd", scale=2)
    manifest = json.loads(path.with_suffix(".json").read_text())
    change(manifest)
    path.with_suffix(".json").write_text(json.dumps(manifest))
    status, _, stderr = cli("models", "add", path)
    assert status == 2 and message in stderr
    assert not models_dir.exists() or list(models_dir.iterdir()) == []


def test_a_corrupt_model_file_is_refused(cli, tmp_path, models_dir) -> None:
    path = toy.build(tmp_path / "incoming", "broken", scale=2)
    path.write_bytes(path.read_bytes()[:100])
    status, _, stderr = cli("models", "add", path)
    assert status == 2 and "model broken: cannot load its ONNX file: Error parsing message" in stderr
    path.write_bytes(b"")
    status, _, stderr = cli("models", "add", path)
    assert status == 2 and "broken.onnx: the file is empty" in stderr
    assert not models_dir.exists() or list(models_dir.iterdir()) == []


def test_unknown_model_in_a_pipeline(cli, make_image, tmp_path, models_dir) -> None:
    status, _, stderr = cli("run", make_image("a.png"), tmp_path / "o.png", "-p", "model:nope")
    assert status == 2 and "unknown model 'nope'" in stderr
    assert not (tmp_path / "o.png").exists()


def test_adding_a_missing_model_is_a_storage_error(cli, tmp_path, models_dir) -> None:
    status, _, stderr = cli("models", "add", tmp_path / "absent.onnx")
    assert status == 5 and "absent.onnx: not found" in stderr
