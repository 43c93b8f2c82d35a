"""Detection: the bundled face detector, tiled results against whole-image ones, the layouts'
checks, and the steps that use what was found (detect, gravity=faces, redact, qc faces)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import onnx
import pytest
import pyvips
import skimage.data
from onnx import TensorProto, helper

from pixelmill import api
from pixelmill.config import Settings
from pixelmill.engine.detection import find
from pixelmill.errors import ModelError
from pixelmill.models.detect import Detection, Detector, detector_for, nms
from pixelmill.models.manifest import Manifest
from pixelmill.models.registry import ModelFile
from pixelmill.pipeline import Pipeline

ASTRONAUT_FACE = (179, 60, 268, 174)
"""Where the astronaut's face is in scikit-image's photograph (found by eye)."""


@pytest.fixture(scope="module")
def faces() -> Detector:
    return detector_for("faces", Settings())


@pytest.fixture(scope="module")
def portrait(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("portrait") / "astronaut.png"
    pyvips.Image.new_from_array(skimage.data.astronaut(), interpretation="srgb").write_to_file(
        str(path))
    return path


def mosaic(seed: int = 1) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Twelve astronauts on a grey canvas at jittered places (so faces straddle tile edges)."""
    face = skimage.data.astronaut()
    rng = np.random.default_rng(seed)
    canvas = np.full((1800, 2300, 3), 90, np.uint8)
    places = []
    for i in range(3):
        for j in range(4):
            y, x = 50 + i * 560 + int(rng.integers(0, 30)), 40 + j * 550 + int(rng.integers(0, 30))
            canvas[y : y + 512, x : x + 512] = face
            places.append((x, y))
    return canvas, places


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union


def test_the_bundled_detector_finds_the_astronaut_with_landmarks(faces: Detector) -> None:
    found = faces.find(skimage.data.astronaut())
    assert len(found) == 1
    face = found[0]
    assert face.label == "face" and face.score > 0.95
    assert iou(face.box, ASTRONAUT_FACE) > 0.8
    (lx, ly), (rx, ry) = face.landmarks[:2]  # eyes, left then right, above the mouth corners
    assert lx < rx and ly < face.landmarks[3][1] and ry < face.landmarks[4][1]


def test_no_face_in_a_photo_without_one(faces: Detector) -> None:
    assert faces.find(skimage.data.coffee()) == []


@pytest.mark.parametrize("tile", [256, 400, 700])
def test_tiled_detection_equals_whole_image_detection(faces: Detector, tile: int) -> None:
    canvas, places = mosaic()
    image = pyvips.Image.new_from_array(canvas, interpretation="srgb")
    whole = [d for d in find(image, faces, tile=4000) if d.score >= 0.9]
    tiled = [d for d in find(image, faces, tile=tile) if d.score >= 0.9]
    assert len(whole) == len(places) == len(tiled)
    for d in whole:
        best = max(tiled, key=lambda t: iou(t.box, d.box))
        assert iou(best.box, d.box) > 0.85


def test_faces_larger_than_a_tile_are_found_on_a_shrunk_level(faces: Detector) -> None:
    big = pyvips.Image.new_from_array(skimage.data.astronaut(), interpretation="srgb").resize(4)
    found = find(big, faces, tile=128)  # a face of ~400 px, tiles of 128
    assert max(iou(d.box, tuple(v * 4 for v in ASTRONAUT_FACE)) for d in found) > 0.7


def test_nms_keeps_the_best_of_overlapping_boxes() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]], float)
    assert nms(boxes, np.array([0.5, 0.9, 0.7]), 0.5).tolist() == [1, 2]
    assert nms(boxes, np.array([0.5, 0.9, 0.7]), 0.9).tolist() == [1, 2, 0]


def _yolo_model(folder: Path, outputs: list[int], name: str = "boxes") -> ModelFile:
    """A tiny 'detector': an ONNX graph whose output is a constant tensor (one box)."""
    side = 64
    value = np.zeros(outputs, np.float32)
    if outputs[1] == 6:  # v8 layout 1×(4+2)×A: the first anchor is a box of class 1
        value[0, :, 0] = [32, 32, 16, 16, 0.1, 0.9]
    graph = helper.make_graph(
        [helper.make_node("Constant", [], ["out"], value=onnx.numpy_helper.from_array(value))],
        "g", [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, side, side])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, outputs)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = folder / f"{name}.onnx"
    onnx.save(model, str(path))
    manifest = Manifest(name=name, version="1", task="detect", scale=1, channels=3, colour="rgb",
                        receptive_field=0, tile=side, labels=("cat", "dog"), layout="yolo")
    path.with_suffix(".json").write_text(manifest.to_json())
    return ModelFile(manifest, path, "user")


def test_a_yolo_layout_is_decoded(tmp_path: Path) -> None:
    detector = Detector(_yolo_model(tmp_path, [1, 6, 10]), Settings())
    found = detector.find(np.zeros((64, 64, 3), np.uint8))
    assert [(d.label, d.box) for d in found] == [("dog", (24.0, 24.0, 40.0, 40.0))]


def test_a_detector_that_fits_no_layout_is_refused_with_what_was_expected(tmp_path: Path
                                                                          ) -> None:  # fmt: skip
    with pytest.raises(ModelError, match=r"do not match the yolo layout, which expects .*4\+C"):
        Detector(_yolo_model(tmp_path, [1, 9, 3, 3], "odd"), Settings())


def test_a_manifest_of_a_detector_names_a_known_layout() -> None:
    with pytest.raises(ModelError, match="field 'layout': 'ssd' is not one of \"\", \"yolo\", \"mtcnn\""):
        Manifest(name="x", version="1", task="detect", scale=1, channels=3, colour="rgb",
                 receptive_field=0, labels=("a",), layout="ssd")


def test_detections_go_in_the_outcome_in_source_pixels(portrait: Path, tmp_path: Path,
                                                       cli) -> None:  # fmt: skip
    code, out, _ = cli("run", portrait, tmp_path / "small.png", "-p",
                       "resize:fit:256/detect:faces", "--json")
    assert code == 0
    outcome = json.loads(out)
    [face] = outcome["detections"]
    assert face["class"] == "face" and face["model"] == "faces" and len(face["landmarks"]) == 5
    assert iou(tuple(face["box"]), ASTRONAUT_FACE) > 0.75  # found at 256, told at 512


def test_gravity_faces_keeps_the_face_in_frame(portrait: Path, tmp_path: Path) -> None:
    for pipeline in ("crop:200:200:gravity=faces", "resize:fill:300:120:gravity=faces"):
        out = tmp_path / "cut.png"
        api.run(portrait, out, Pipeline.parse(pipeline))
        cut = np.asarray(pyvips.Image.new_from_file(str(out)).numpy())
        assert len(detector_for("faces", Settings()).find(cut[..., :3])) == 1, pipeline


def test_gravity_faces_falls_back_to_smart_without_faces(tmp_path: Path) -> None:
    source = tmp_path / "coffee.png"
    pyvips.Image.new_from_array(skimage.data.coffee(), interpretation="srgb").write_to_file(
        str(source))
    smart, faces = tmp_path / "smart.png", tmp_path / "faces.png"
    api.run(source, smart, Pipeline.parse("crop:150:150:gravity=smart"))
    api.run(source, faces, Pipeline.parse("crop:150:150:gravity=faces"))
    assert smart.read_bytes() == faces.read_bytes()


def _face_pixels(path: Path) -> np.ndarray:
    x0, y0, x1, y1 = ASTRONAUT_FACE
    return np.asarray(pyvips.Image.new_from_file(str(path)).numpy())[y0:y1, x0:x1, :3]


@pytest.mark.parametrize("mode", ["blur", "pixelate", "fill"])
def test_redaction_makes_the_face_unfindable(portrait: Path, tmp_path: Path, mode: str) -> None:
    out = tmp_path / f"{mode}.png"
    outcome = api.run(portrait, out, Pipeline.parse(f"redact:faces:mode={mode}"))
    assert "redact faces: 1 box(es)" in " ".join(outcome.notes)
    redacted = np.asarray(pyvips.Image.new_from_file(str(out)).numpy())
    assert detector_for("faces", Settings()).find(redacted) == []
    face = _face_pixels(out).astype(float)
    original = skimage.data.astronaut()[60:174, 179:268].astype(float)
    assert np.abs(np.diff(face, axis=1)).mean() < np.abs(np.diff(original, axis=1)).mean() / 3
    untouched = np.asarray(pyvips.Image.new_from_file(str(out)).numpy())[300:, :100]
    assert np.array_equal(untouched, skimage.data.astronaut()[300:, :100])


def test_redaction_keeps_sixteen_bits_and_alpha(tmp_path: Path) -> None:
    rgb = skimage.data.astronaut().astype(np.uint16) * 257
    alpha = np.full((512, 512, 1), 50000, np.uint16)
    source = tmp_path / "deep.png"
    pyvips.Image.new_from_array(np.concatenate([rgb, alpha], axis=2),
                                interpretation="rgb16").write_to_file(str(source))  # fmt: skip
    out = tmp_path / "deep-redacted.png"
    api.run(source, out, Pipeline.parse("redact:faces:mode=pixelate"))
    result = pyvips.Image.new_from_file(str(out))
    assert (result.format, result.bands) == ("ushort", 4)
    pixels = np.asarray(result.numpy())
    assert (pixels[..., 3] == 50000).all()
    x0, y0, x1, y1 = ASTRONAUT_FACE
    assert np.abs(pixels[y0:y1, x0:x1, :3].astype(float) - rgb[y0:y1, x0:x1]).mean() > 1000


def test_redaction_writes_nothing_unredacted_to_disk(portrait: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """The source is decoded into memory, not a temporary file, and a model before the
    redaction keeps its output in memory: nothing lands in the temporary folders."""
    spool = tmp_path / "tmp"
    spool.mkdir()
    monkeypatch.setenv("TMPDIR", str(spool))
    seen: list[str] = []
    original = pyvips.Image.write_to_file

    def watched(image: pyvips.Image, path: str, **kwargs: object) -> object:
        seen.append(path)
        return original(image, path, **kwargs)

    monkeypatch.setattr(pyvips.Image, "write_to_file", watched)
    settings = Settings().replace(tmp_dir=str(spool))
    out = tmp_path / "out.png"
    api.run(portrait, out, Pipeline.parse("model:denoise/rotate:90/redact:faces"),
            settings=settings)  # fmt: skip
    assert seen == [] and os.listdir(spool) == []
    redacted = np.asarray(pyvips.Image.new_from_file(str(out)).numpy())
    assert detector_for("faces", Settings()).find(redacted) == []


def test_a_faces_gate_counts_faces(portrait: Path, tmp_path: Path, cli) -> None:
    code, _, err = cli("run", portrait, tmp_path / "a.png", "-p", "detect:faces/qc:faces>=2")
    assert code == 6 and "failed faces>=2" in err and not (tmp_path / "a.png").exists()
    code, _, err = cli("run", portrait, tmp_path / "b.png", "-p", "qc:faces>=1")
    assert code == 0 and "faces 1" in err


def test_detect_refuses_classes_the_model_lacks(portrait: Path, tmp_path: Path, cli) -> None:
    code, _, err = cli("run", portrait, tmp_path / "a.png", "-p", "detect:faces:classes=cat")
    assert code != 0 and "has no class cat (its classes: face)" in err


def test_moving_a_detection_scales_box_and_landmarks() -> None:
    d = Detection((10, 20, 30, 40), 0.9, "face", ((15, 25),))
    assert d.moved(2, 3, 1, 1) == Detection((21, 61, 61, 121), 0.9, "face", ((31, 76),))



def test_a_job_result_keeps_what_was_found(queue, portrait: Path, tmp_path: Path) -> None:
    from pixelmill.jobs.worker import Worker

    job = queue.submit({"source": str(portrait), "destination": str(tmp_path / "o.webp"),
                        "pipeline": "detect:faces/encode:webp:target=ssimulacra2>=70"})
    Worker(queue, Settings(), name="w1").run_one()
    done = queue.get(job.id)
    assert done.state == "succeeded", done.error
    [face] = done.result["detections"]
    assert face["class"] == "face" and iou(tuple(face["box"]), ASTRONAUT_FACE) > 0.8
    assert done.result["encode"]["met"] and done.result["encode"]["regions"]["tiles"]["face"]
    described = done.describe()
    assert described["detections"] == done.result["detections"]
    assert described["encode"]["quality"] == done.result["encode"]["quality"]


@pytest.mark.parametrize("pipeline", ["detect:faces/resize:fit:256",
                                      "detect:faces"])  # an output equal to its source
def test_a_dataset_keeps_what_was_found(portrait: Path, tmp_path: Path, cli, pipeline: str,
                                        monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    from pixelmill.datasets import Store

    db = f"sqlite:///{tmp_path / 'jobs.db'}"
    monkeypatch.setenv("PIXELMILL_DB", db)
    code, _, err = cli("run", portrait, tmp_path / "o.png", "-p", pipeline, "--dataset",
                       "people", "-q")  # fmt: skip
    assert code == 0, err
    store = Store(db)
    found = {item["role"]: item for item in store.query(store.view("people"))}
    assert "detected:face" in found["source"]["tags"]
    events = store.history(store.get("people"), found["source"]["sha256"])
    event = events[0]
    assert event["found"]["detections"][0]["class"] == "face"
    assert store.count(store.view("people"), 'tag = "detected:face"') == 1
    store.close()


def test_the_lab_exports_mtcnn_weights_from_a_wheel(tmp_path: Path, cli) -> None:
    """`pixelmill lab faces` reads the three nets from a facenet-pytorch-shaped wheel (here with
    seeded random weights) into one ONNX file whose P-Net answers as the PyTorch one does."""
    import io
    import zipfile

    import onnxruntime as ort
    import torch

    from pixelmill.lab import faces as lab_faces

    torch.manual_seed(0)
    nets = lab_faces.networks()
    wheel = tmp_path / "facenet_pytorch-0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for part, net in nets.items():
            theirs = {ours: name for name, ours in lab_faces._RENAME[part].items()}
            state = {f"{theirs[key.rsplit('.', 1)[0]]}.{key.rsplit('.', 1)[1]}": value
                     for key, value in net.state_dict().items()}  # fmt: skip
            data = io.BytesIO()
            torch.save(state, data)
            archive.writestr(f"facenet_pytorch/data/{part}.pt", data.getvalue())
    code, _, err = cli("lab", "faces", wheel, "--out", tmp_path / "models")
    assert code == 0, err
    path = tmp_path / "models" / "faces.onnx"
    manifest = Manifest.from_json(path.with_suffix(".json").read_text(), str(path))
    assert (manifest.task, manifest.layout, manifest.licence) == ("detect", "mtcnn", "MIT")
    Detector(ModelFile(manifest, path, "user"), Settings())  # loads and passes its probe
    image = torch.rand(1, 3, 37, 53) * 2 - 1
    with torch.no_grad():
        expected = [t.numpy() for t in nets["pnet"].eval()(image)]
    got = ort.InferenceSession(str(path)).run(["pnet_box", "pnet_prob"], {"pnet": image.numpy()})
    for ours, theirs in zip(got, expected, strict=True):
        np.testing.assert_allclose(ours, theirs, atol=1e-4)

    (tmp_path / "broken.whl").write_bytes(b"not a zip")
    code, _, err = cli("lab", "faces", tmp_path / "broken.whl")
    assert code == 2 and "give a facenet-pytorch wheel" in err and "BadZipFile" in err
