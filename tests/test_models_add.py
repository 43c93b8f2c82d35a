"""Bringing a model: ``pixelmill models add MODEL.onnx`` without a manifest probes the model,
checks tiled against whole-image output, and refuses what it cannot run with the measured
reason; the manifest's schema is published and its errors name the field."""

from __future__ import annotations

import json

import jsonschema
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import pyvips
from onnx import TensorProto, helper

import pixelmill
from pixelmill.models import toy
from pixelmill.models.manifest import FIELDS, Manifest, problems, schema
from pixelmill.models.registry import BUNDLED


@pytest.fixture
def models_dir(tmp_path, monkeypatch):
    folder = tmp_path / "models"
    monkeypatch.setenv("PIXELMILL_MODELS_DIR", str(folder))
    return folder


def without_manifest(path):
    path.with_suffix(".json").unlink()
    return path


def picture(path, width, height, bands=3):
    """A photograph-like test picture: smooth gradients, edges and noise."""
    rng = np.random.default_rng(width * height)
    y, x = np.mgrid[0:height, 0:width]
    planes = [128 + 80 * np.sin(x / (7 + 3 * b)) * np.cos(y / (11 - 2 * b)) + 30 * (x > width / 2)
              + rng.normal(0, 8, (height, width)) for b in range(bands)]  # fmt: skip
    pixels = np.clip(np.stack(planes, axis=2), 0, 255).astype(np.uint8)
    pyvips.Image.new_from_array(pixels, interpretation="srgb" if bands == 3 else "b-w").write_to_file(
        str(path))
    return path


def pixels_of(path):
    image = pyvips.Image.new_from_file(str(path))
    return image.numpy().astype(np.int32).reshape(image.height, image.width, image.bands)


def test_a_model_without_a_manifest_is_probed_installed_and_run(cli, tmp_path,
                                                                models_dir) -> None:  # fmt: skip
    path = without_manifest(toy.build(tmp_path / "in", "bare-x2", scale=2, layers=4))
    status, out, err = cli("models", "add", path, "--range", "0,1")
    assert status == 0, err
    written = json.loads(out)
    assert (written["scale"], written["channels"], written["value_range"]) == (2, 3, [0.0, 1.0])
    assert 4 <= written["receptive_field"] <= 8  # measured 4, widened by the safety margin
    assert json.loads((models_dir / "bare-x2.json").read_text()) == written
    assert "manifest probed, value range given" in err
    source = picture(tmp_path / "a.png", 67, 45)
    assert cli("run", source, tmp_path / "b.png", "-p", "model:bare-x2:tile=16")[0] == 0
    assert pyvips.Image.new_from_file(str(tmp_path / "b.png")).width == 134


def test_the_value_range_is_read_from_the_graph_or_asked_for(cli, tmp_path, models_dir) -> None:
    path = without_manifest(toy.build(tmp_path / "in", "in-255", in_255=True))
    status, out, err = cli("models", "add", path)
    assert status == 0 and json.loads(out)["value_range"] == [0.0, 255.0]
    assert "its first operation is Div by 255" in err
    bare = without_manifest(toy.build(tmp_path / "in", "unsure"))
    status, _, err = cli("models", "add", bare)
    assert status == 2 and "cannot tell its value range" in err and "give --range" in err
    assert not (models_dir / "unsure.onnx").exists()


def test_a_strided_model_gets_its_alignment_and_tiles_like_the_whole(cli, tmp_path,
                                                                     models_dir) -> None:  # fmt: skip
    path = without_manifest(toy.build(tmp_path / "in", "strided", scale=2, down=2, layers=3))
    status, out, _ = cli("models", "add", path, "--range", "0,1")
    assert status == 0 and json.loads(out)["align"] == 2
    source = picture(tmp_path / "odd.png", 101, 77)  # odd sides: padded to the step, then cut
    whole = pixelmill.run(source, tmp_path / "whole.png", "model:strided:tile=1024")
    tiled = pixelmill.run(source, tmp_path / "tiled.png", "model:strided:tile=31")
    assert (whole.width, whole.height) == (tiled.width, tiled.height) == (202, 154)
    assert "model strided: tile 32, overlap" in " ".join(tiled.notes)  # whole steps of 2
    assert np.abs(pixels_of(tmp_path / "whole.png") - pixels_of(tmp_path / "tiled.png")).max() <= 1


def test_the_image_output_of_a_multi_output_model_is_picked(cli, tmp_path, models_dir) -> None:
    path = without_manifest(toy.build(tmp_path / "in", "two-outputs", score_first=True))
    status, out, _ = cli("models", "add", path, "--range", "0,1")
    assert status == 0 and json.loads(out)["outputs"] == "output"
    source = picture(tmp_path / "a.png", 40, 30)
    assert pixelmill.run(source, tmp_path / "b.png", "model:two-outputs").width == 80


def test_a_model_that_depends_on_the_whole_image_is_refused(cli, tmp_path, models_dir) -> None:
    path = without_manifest(toy.build(tmp_path / "in", "global", global_mean=True))
    status, _, err = cli("models", "add", path, "--range", "0,1")
    assert status == 2 and "changing one pixel changes the whole output" in err
    assert "cannot be tiled" in err and not models_dir.joinpath("global.onnx").exists()


def test_a_manifest_that_understates_the_receptive_field_is_refused(cli, tmp_path,
                                                                    models_dir) -> None:  # fmt: skip
    path = toy.build(tmp_path / "in", "understated", scale=2, layers=6)
    manifest = json.loads(path.with_suffix(".json").read_text())
    path.with_suffix(".json").write_text(json.dumps({**manifest, "receptive_field": 0}))
    status, _, err = cli("models", "add", path)
    assert status == 2
    assert "tiled output (tile 32, overlap 0) differs from whole-image output by up to" in err
    assert "the receptive field looks like 6, not 0: set receptive_field to 6" in err
    assert not models_dir.exists() or list(models_dir.iterdir()) == []


def test_a_name_is_never_a_path(cli, tmp_path, models_dir) -> None:
    path = without_manifest(toy.build(tmp_path / "in", "plain"))
    status, _, err = cli("models", "add", path, "--range", "0,1", "--name", "../../escaped")
    assert status == 2 and "field 'name': '../../escaped' is not a model name (a string matching" in err
    assert not list(tmp_path.glob("**/escaped*"))


def test_a_name_given_renames_a_model_with_a_manifest(cli, tmp_path, models_dir) -> None:
    path = toy.build(tmp_path / "in", "plain")
    status, out, err = cli("models", "add", path, "--name", "renamed")
    assert status == 0, err
    assert json.loads(out)["name"] == "renamed" and (models_dir / "renamed.onnx").exists()
    assert json.loads((models_dir / "renamed.json").read_text())["name"] == "renamed"
    status, _, err = cli("models", "add", path, "--name", "sub/x")
    assert status == 2 and "manifest --name: field 'name': 'sub/x' is not a model name" in err


def test_a_channels_last_model_is_refused_with_the_layout(cli, tmp_path, models_dir) -> None:
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])], "nhwc",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", "h", "w", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", "h", "w", 3])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]),
              tmp_path / "nhwc.onnx")  # fmt: skip
    status, _, err = cli("models", "add", tmp_path / "nhwc.onnx", "--range", "0,1")
    assert status == 2 and "N×H×W×3 (channels last); export it with channels first" in err


def unit_to_255(path):
    """A model giving its 0..1 input back in 0..255."""
    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "peak"], ["y"])], "unit-to-255",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [onnx.numpy_helper.from_array(np.float32(255.0), "peak")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


@pytest.mark.parametrize(("ranges", "identity"), [
    ({"range_in": [0, 1], "range_out": [0, 255]}, True),
    ({"value_range": [0, 1]}, False),
])  # fmt: skip
def test_input_and_output_ranges_may_differ(cli, tmp_path, models_dir, ranges, identity) -> None:
    path = unit_to_255(tmp_path / "scaler.onnx")
    path.with_suffix(".json").write_text(json.dumps({
        "name": "scaler", "version": "1", "task": "filter", "scale": 1, "channels": 3,
        "colour": "rgb", "receptive_field": 0, **ranges}))  # fmt: skip
    assert cli("models", "add", path)[0] == 0
    source = picture(tmp_path / "a.png", 48, 40)
    pixelmill.run(source, tmp_path / "b.png", "model:scaler")
    same = np.array_equal(pixels_of(source), pixels_of(tmp_path / "b.png"))
    assert same is identity


def test_a_luma_model_runs_on_y_and_resizes_chroma(cli, tmp_path, models_dir) -> None:
    path = toy.build(tmp_path / "in", "luma-x2", scale=2, channels=1, layers=3)
    manifest = json.loads(path.with_suffix(".json").read_text())
    path.with_suffix(".json").write_text(json.dumps({**manifest, "channels": "y",
                                                     "colour": "rgb"}))  # fmt: skip
    status, _out, err = cli("models", "add", path)
    assert status == 0, err
    source = picture(tmp_path / "a.png", 70, 52)
    pixelmill.run(source, tmp_path / "whole.png", "model:luma-x2:tile=1024")
    pixelmill.run(source, tmp_path / "tiled.png", "model:luma-x2:tile=16")
    whole, tiled = pixels_of(tmp_path / "whole.png"), pixels_of(tmp_path / "tiled.png")
    assert whole.shape == (104, 140, 3) and np.abs(whole - tiled).max() <= 1
    rgb = pixels_of(source).astype(np.float32) / 255
    luma = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    expected = session.run(None, {"input": luma[None, None]})[0][0, 0] * 255
    found = whole.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    assert np.abs(found - expected).mean() < 1.0  # rounding of R, G and B only
    grey = pyvips.Image.new_from_file(str(source)).colourspace("b-w")
    grey.write_to_file(str(tmp_path / "grey.png"))
    assert pixelmill.run(tmp_path / "grey.png", tmp_path / "g2.png", "model:luma-x2").width == 140


def test_the_schema_is_published_and_agrees_with_the_check(cli) -> None:
    status, out, _ = cli("models", "schema")
    published = json.loads(out)
    assert status == 0 and published == schema()
    jsonschema.Draft202012Validator.check_schema(published)
    validator = jsonschema.Draft202012Validator(published)
    for path in sorted(BUNDLED.glob("*.json")):
        if not path.name.endswith(".card.json"):
            data = json.loads(path.read_text())
            assert not list(validator.iter_errors(data)) and not problems(data), path.name
    good = {"name": "m", "version": "1", "task": "denoise", "scale": 1, "channels": 3,
            "colour": "rgb", "receptive_field": 4}  # fmt: skip
    assert type(Manifest.from_dict({**good, "scale": 2.0}, "here").scale) is int  # as JSON
    wrong = [{"scale": 5}, {"scale": 2.5}, {"scale": True}, {"channels": "rgb"}, {"channels": 2},
             {"receptive_field": -1}, {"tile": 9000}, {"value_range": [0, 1, 2]},
             {"value_range": ["0", 1]}, {"outputs": 1.5}, {"fp16": "yes"}, {"name": "a/b"},
             {"task": "Super Resolution"}, {"labels": [1]}, {"layout": "ssd"}, {"colour": "cmyk"},
             {"extra": 1}, {"align": 0}]  # fmt: skip
    for change in wrong:
        data = {**good, **change}
        assert list(validator.iter_errors(data)) and problems(data), change
    for key in FIELDS:
        assert FIELDS[key]["description"], key
    for missing in ("scale", "receptive_field"):
        data = {k: v for k, v in good.items() if k != missing}
        assert list(validator.iter_errors(data))
        assert problems(data) == [(f"missing required field {missing!r} "
                                  f"({'one of 1, 2, 3, 4, 8' if missing == 'scale' else 'an integer from 0 to 512'})")]  # fmt: skip
    assert Manifest.from_dict(good, "here").receptive_field == 4


def test_errors_blame_the_manifest_and_name_the_field(cli, tmp_path, models_dir) -> None:
    path = toy.build(tmp_path / "in", "blamed")
    path.with_suffix(".json").write_text(json.dumps({"name": "blamed", "scale": "2"}))
    status, _, err = cli("models", "add", path)
    assert status == 2 and "manifest " in err and "blamed.json" in err
    assert "field 'scale': '2' is not one of 1, 2, 3, 4, 8" in err
    assert "missing required field 'version'" in err and "pixelmill models schema" in err
    path.with_suffix(".json").write_text("{not json")
    status, _, err = cli("models", "add", path)
    assert status == 2 and "blamed.json: not JSON" in err


def spandrel_works() -> bool:
    try:
        import spandrel  # noqa: F401
    except Exception:  # noqa: BLE001  # a torchvision built for another torch raises RuntimeError
        return False
    return True


@pytest.mark.skipif(spandrel_works(), reason="spandrel imports here: the import itself is tested")
def test_a_checkpoint_without_spandrel_is_refused_with_the_fix(cli, tmp_path, models_dir) -> None:
    (tmp_path / "net.pth").write_bytes(b"not read")
    status, _, err = cli("models", "add", tmp_path / "net.pth")
    assert status == 2 and "PyTorch checkpoints need spandrel" in err
    assert "pip install 'pixelmill[import]'" in err


@pytest.mark.skipif(not spandrel_works(), reason="spandrel (pixelmill[import]) does not import: "
                    "it needs a torchvision built for the installed torch")  # fmt: skip
@pytest.mark.parametrize("architecture", ["compact", "esrgan"])
def test_a_pytorch_checkpoint_is_exported_probed_and_matches_pytorch(cli, tmp_path, models_dir,
                                                                     architecture) -> None:  # fmt: skip
    import torch
    from spandrel.architectures.Compact import Compact
    from spandrel.architectures.ESRGAN import ESRGAN

    torch.manual_seed(0)
    net = (Compact(num_in_ch=3, num_out_ch=3, num_feat=16, num_conv=4, upscale=2)
           if architecture == "compact" else
           ESRGAN(in_nc=3, out_nc=3, num_filters=8, num_blocks=1, scale=2)).eval()  # fmt: skip
    torch.save(net.state_dict(), tmp_path / f"{architecture}.pth")
    status, out, err = cli("models", "add", tmp_path / f"{architecture}.pth")
    assert status == 0, err
    assert json.loads(out)["scale"] == 2 and "spandrel: " in err
    source = picture(tmp_path / "a.png", 61, 47)
    pixelmill.run(source, tmp_path / "b.png", f"model:{architecture}:tile=24")
    with torch.no_grad():
        tensor = torch.from_numpy(pixels_of(source).astype(np.float32) / 255).permute(2, 0, 1)
        expected = net(tensor[None]).clamp(0, 1)[0].permute(1, 2, 0).numpy() * 255
    assert np.abs(pixels_of(tmp_path / "b.png") - np.rint(expected)).max() <= 1
