"""Analysing images for datasets: header fields, pixel features read from a small proxy, the
built-in embedding and model embeddings, on real photographs and generated files."""

from __future__ import annotations

import hashlib
import json
import math
import struct
from pathlib import Path

import hostile
import numpy as np
import pytest
import pyvips
from skimage import data

from pixelmill.codecs import open_source
from pixelmill.config import Settings
from pixelmill.datasets.analyse import Analysis, analyse
from pixelmill.datasets.embed import BUILTIN, embedder
from pixelmill.datasets.features import PROXY, proxy
from pixelmill.datasets.fields import FEATURES, HEADER
from pixelmill.errors import InputError, LimitError, ModelError, PixelmillError
from pixelmill.models import toy
from pixelmill.models.manifest import Manifest
from pixelmill.storage import locate

SETTINGS = Settings()


def vips(array: np.ndarray) -> pyvips.Image:
    return pyvips.Image.new_from_array(np.ascontiguousarray(array)).copy(interpretation="srgb")


ASTRONAUT, CHELSEA, COFFEE = (vips(make()) for make in (data.astronaut, data.chelsea,
                                                        data.coffee))  # fmt: skip


def screenshot(seed: int, width: int = 480, height: int = 360) -> pyvips.Image:
    """A synthetic screenshot: flat colours, a title bar, a sidebar and lines of 'words'."""
    rng = np.random.default_rng(seed)
    pixels = np.full((height, width, 3), 245, np.uint8)
    pixels[:28] = rng.integers(0, 256, 3)
    pixels[28:, :90] = 225
    for y in range(40, height - 10, 14):
        x = 100
        while x < width - 40:
            length = int(rng.integers(10, 60))
            pixels[y : y + 8, x : x + length] = 30
            x += length + 6
    return vips(pixels)


def run(path: Path, settings: Settings = SETTINGS, name: str | None = None) -> Analysis:
    return analyse(locate(path), settings, embedder(name, settings))


def write(tmp_path: Path, name: str, image: pyvips.Image, **options) -> Path:
    path = tmp_path / name
    image.write_to_file(str(path), **options)
    return path


def distance(a: Analysis, b: Analysis) -> float:
    return float(np.linalg.norm(a.embedding - b.embedding))


def test_every_field_is_there_and_plain(tmp_path) -> None:
    path = write(tmp_path, "a.png", ASTRONAUT)
    found = run(path)
    assert list(found.fields) == [*HEADER, *FEATURES]
    assert found.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert found.fields["format"] == "png" and found.fields["file_size"] == path.stat().st_size
    assert (found.fields["width"], found.fields["height"]) == (512, 512)
    assert found.fields["jpeg_quality"] is None and found.fields["camera_make"] is None
    for name in FEATURES:
        value = found.fields[name]
        assert value is None or (type(value) is float and math.isfinite(value)), name
    assert 0 < found.fields["mean_luma"] < 1 and 0 < found.fields["contrast"] < 0.5
    assert 6 < found.fields["entropy"] <= 8 and found.fields["aspect"] == 1.0


def test_images_in_storage_are_analysed_alike(tmp_path) -> None:
    import fsspec

    path = write(tmp_path, "a.jpg", CHELSEA, Q=80)
    memory = fsspec.filesystem("memory")
    memory.pipe("/pm-analyse/a.jpg", path.read_bytes())
    try:
        remote = analyse(locate("memory://pm-analyse/a.jpg"), SETTINGS, embedder(None, SETTINGS))
    finally:
        memory.rm("/pm-analyse", recursive=True)
    local = run(path)
    assert (remote.uri, remote.sha256) == ("memory://pm-analyse/a.jpg", local.sha256)
    assert remote.fields.keys() == local.fields.keys()
    for name, value in local.fields.items():  # libvips sums in threads: the last digits vary
        assert remote.fields[name] == (pytest.approx(value, rel=1e-9)
                                       if isinstance(value, float) else value), name
    assert np.allclose(remote.embedding, local.embedding, atol=1e-6)


def test_features_follow_what_was_done_to_the_image(tmp_path) -> None:
    base = run(write(tmp_path, "base.png", ASTRONAUT)).fields
    blurred = run(write(tmp_path, "blur.png", ASTRONAUT.gaussblur(2))).fields
    noisy = (ASTRONAUT + pyvips.Image.gaussnoise(512, 512, sigma=12, mean=0)).cast("uchar")
    grainy = run(write(tmp_path, "noise.png", noisy)).fields
    dark = run(write(tmp_path, "dark.png", (ASTRONAUT * 0.3).cast("uchar"))).fields
    assert blurred["sharpness"] < base["sharpness"] / 3
    assert grainy["noise"] > base["noise"] + 5
    assert dark["mean_luma"] < base["mean_luma"] / 2 and dark["clipped_black"] > 0
    assert run(write(tmp_path, "grey.png", ASTRONAUT.colourspace("b-w"))).fields[
        "colourfulness"] < 1 < base["colourfulness"]  # fmt: skip


@pytest.mark.parametrize("quality", [30, 75, 95])
def test_jpeg_quality_is_read_from_the_tables(tmp_path, quality) -> None:
    found = run(write(tmp_path, "q.jpg", COFFEE, Q=quality)).fields
    assert abs(found["jpeg_quality"] - quality) <= 3


def test_heavy_compression_shows_blocks(tmp_path) -> None:
    low = run(write(tmp_path, "q30.jpg", ASTRONAUT, Q=30)).fields["blockiness"]
    high = run(write(tmp_path, "q95.jpg", ASTRONAUT, Q=95)).fields["blockiness"]
    assert low > high + 0.1


def test_large_images_are_measured_on_a_proxy(tmp_path) -> None:
    found = run(write(tmp_path, "big.jpg", CHELSEA.resize(4), Q=85)).fields
    assert (found["width"], found["height"]) == (1804, 1200)
    assert found["aspect"] == 1804 / 1200
    assert found["jpeg_quality"] == 85


@pytest.mark.parametrize(
    ("name", "image", "bands", "depth", "space", "whitened"),
    [
        ("alpha.png", CHELSEA.bandjoin(128), 4, 8, "srgb", 128 / 255),
        ("deep.png", CHELSEA.colourspace("rgb16"), 3, 16, "rgb16", 0),
        ("grey.jpg", CHELSEA.colourspace("b-w"), 1, 8, "b-w", 0),
        ("cmyk.jpg", CHELSEA.icc_transform("cmyk"), 4, 8, "cmyk", 0),
    ],
)
def test_every_kind_of_pixel_is_measured(tmp_path, name, image, bands, depth, space,
                                         whitened) -> None:  # fmt: skip
    """``whitened``: the share of white that alpha, flattened onto white, puts in."""
    found = run(write(tmp_path, name, image))
    fields = found.fields
    assert (fields["width"], fields["height"]) == (451, 300)
    assert (fields["bands"], fields["bit_depth"], fields["colour_space"]) == (bands, depth, space)
    luma = run(write(tmp_path, "rgb.png", CHELSEA)).fields["mean_luma"]
    assert fields["mean_luma"] == pytest.approx(luma + (1 - luma) * whitened, abs=0.03)
    assert found.embedding.shape == (64,)


def test_exif_orientation_camera_and_capture_time(tmp_path) -> None:
    image = CHELSEA.copy()
    image.set_type(pyvips.GValue.gint_type, "orientation", 6)
    image.set_type(pyvips.GValue.gstr_type, "exif-ifd0-Make", "Canon")
    image.set_type(pyvips.GValue.gstr_type, "exif-ifd0-Model", "EOS R5")
    image.set_type(pyvips.GValue.gstr_type, "exif-ifd2-DateTimeOriginal", "2021:06:01 12:34:56")
    fields = run(write(tmp_path, "exif.jpg", image)).fields
    assert (fields["width"], fields["height"], fields["orientation"]) == (300, 451, 6)
    assert fields["aspect"] == 300 / 451
    assert (fields["camera_make"], fields["camera_model"]) == ("Canon", "EOS R5")
    assert fields["captured"] == 1622550896.0


def test_exif_text_is_read_as_written(tmp_path) -> None:
    """Values with brackets (libvips cuts them at " (" when it writes, so Pillow writes them)
    and a time that is not one."""
    from PIL import Image

    exif = Image.Exif()
    exif[0x0110] = "EOS R5 (mark 1)"  # Model
    exif.get_ifd(0x8769)[0x9003] = "0000:00:00 00:00:00"  # DateTimeOriginal
    path = tmp_path / "pillow.jpg"
    Image.fromarray(data.chelsea()).save(path, exif=exif)
    fields = run(path).fields
    assert (fields["camera_make"], fields["camera_model"]) == (None, "EOS R5 (mark 1)")
    assert fields["captured"] is None


def test_the_builtin_embedding(tmp_path) -> None:
    original = run(write(tmp_path, "a.png", ASTRONAUT))
    assert original.embedding.shape == (64,) and original.embedding.dtype == np.float32
    assert np.linalg.norm(original.embedding) == pytest.approx(1, abs=1e-5)
    near = distance(original, run(write(tmp_path, "a95.jpg", ASTRONAUT, Q=95)))
    assert near < 0.03
    for changed in (ASTRONAUT.gaussblur(2), (ASTRONAUT * 0.4).cast("uchar"), COFFEE):
        assert distance(original, run(write(tmp_path, "b.png", changed))) > 5 * near


def test_photos_and_screenshots_lie_apart(tmp_path) -> None:
    photos = [run(write(tmp_path, f"p{i}.jpg", p, Q=90))
              for i, p in enumerate((ASTRONAUT, CHELSEA, COFFEE))]  # fmt: skip
    shots = [run(write(tmp_path, f"s{i}.png", screenshot(i))) for i in range(3)]
    shots.append(run(write(tmp_path, "s0.jpg", screenshot(0), Q=95)))
    between = min(distance(p, s) for p in photos for s in shots)
    among = max(distance(a, b) for a in shots for b in shots)
    assert between > 2 * among


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (ASTRONAUT.jpegsave_buffer(Q=90)[:20000], InputError),
        (b"", InputError),
        (hostile.progressive_jpeg(20000, 20000), LimitError),
        (hostile.cut_jpeg_scan(), InputError),
        (hostile.gif_frames((20000, 20000), (20000, 20000)), LimitError),
        (hostile.png_header(22000, 22000, interlace=1), LimitError),
        (hostile.svg_bomb(), InputError),
        (hostile.bad_ihdr_crc(), InputError),
    ],
    ids=[
        "truncated",
        "empty",
        "progressive-20000",
        "cut-scan",
        "gif-20000",
        "png-22000",
        "svg",
        "bad-crc",
    ],
)
def test_broken_and_hostile_files_raise_pixelmill_errors(tmp_path, content, error) -> None:
    path = tmp_path / "bad.jpg"
    path.write_bytes(content)
    with pytest.raises(error):
        run(path)


def test_a_huge_declared_size_meets_the_pixel_limit(tmp_path) -> None:
    small = ASTRONAUT.jpegsave_buffer(Q=80)
    at = small.index(b"\xff\xc0")  # SOF0: marker, length, precision, height, width
    path = tmp_path / "huge.jpg"
    path.write_bytes(small[: at + 5] + struct.pack(">HH", 20000, 20000) + small[at + 9 :])
    with pytest.raises(LimitError, match="max_pixels"):
        run(path, Settings(max_pixels=100_000_000))


def test_the_time_limit_stops_decoding(tmp_path) -> None:
    path = write(tmp_path, "big.jpg", COFFEE.resize(6), Q=90)
    with pytest.raises(LimitError, match="time_limit"):
        run(path, Settings(time_limit=1e-9))


def embedding_model(folder: Path, name: str, spatial: bool, width: int = 8) -> None:
    """An embedding model: a 1×1 convolution to ``width`` channels, then (unless ``spatial``)
    global average pooling and a flatten."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = np.random.default_rng(0).normal(size=(width, 3, 1, 1)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["image", "w"], ["features"])]
    if not spatial:
        nodes += [helper.make_node("GlobalAveragePool", ["features"], ["pooled"]),
                  helper.make_node("Flatten", ["pooled"], ["vector"])]  # fmt: skip
    out = ["n", width, "h", "w"] if spatial else ["n", width]
    graph = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, out)],
        [numpy_helper.from_array(weights, "w")],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(model, folder / f"{name}.onnx")
    manifest = Manifest(name=name, version="1", task="embed", scale=1, channels=3, colour="rgb",
                        receptive_field=0, tile=64, value_range=(-1.0, 1.0))  # fmt: skip
    (folder / f"{name}.json").write_text(manifest.to_json())


@pytest.mark.parametrize("spatial", [False, True], ids=["vector", "feature-map"])
def test_an_onnx_embedder_is_chosen_by_name(tmp_path, spatial) -> None:
    settings = Settings(models_dir=str(tmp_path / "models"))
    embedding_model(tmp_path / "models", "tiny-embed", spatial, width=12)
    chosen = embedder("tiny-embed", settings)
    assert (chosen.name, chosen.dim) == ("tiny-embed", 12)
    assert embedder("tiny-embed", settings) is chosen
    found = run(write(tmp_path, "a.jpg", ASTRONAUT), settings, "tiny-embed")
    assert found.embedding.shape == (12,) and found.embedding.dtype == np.float32
    assert np.linalg.norm(found.embedding) == pytest.approx(1, abs=1e-5)


def test_models_that_do_not_embed_are_refused(tmp_path) -> None:
    settings = Settings(models_dir=str(tmp_path / "models"))
    toy.build(tmp_path / "models", "sharp-x2", scale=2)
    with pytest.raises(ModelError, match="task is 'super-resolution', not 'embed'"):
        embedder("sharp-x2", settings)
    with pytest.raises(ModelError, match="unknown model 'nothing'"):
        embedder("nothing", settings)
    assert embedder(None, settings) is embedder(BUILTIN, settings)


@pytest.mark.parametrize(("scale", "size"), [(0.5, (226, 150)), (3, (PROXY, 341))])
def test_the_proxy_is_bounded_and_never_enlarged(tmp_path, scale, size) -> None:
    path = write(tmp_path, "a.jpg", CHELSEA.resize(scale))
    with open_source(locate(path), SETTINGS) as source:
        image = proxy(source)
    assert (image.width, image.height, image.bands, image.format) == (*size, 3, "uchar")


@pytest.mark.parametrize(("width", "height"), [(1, 1), (2, 3), (1, 3000), (3000, 2)])
def test_images_too_thin_for_the_masks(tmp_path, width, height) -> None:
    image = pyvips.Image.gaussnoise(width, height, mean=128, sigma=30).cast("uchar")
    found = run(write(tmp_path, "thin.png", image.colourspace("srgb")))
    assert found.fields["sharpness"] is None and found.fields["noise"] is None
    assert found.fields["aspect"] == width / height
    assert np.linalg.norm(found.embedding) == pytest.approx(1, abs=1e-5)


def test_errors_are_never_raw_libvips_errors(tmp_path) -> None:
    path = tmp_path / "noise.jpg"
    path.write_bytes(b"\xff\xd8\xff\xdb" + bytes(range(256)) * 8)
    with pytest.raises(PixelmillError):
        run(path)


def test_models_add_accepts_an_embedding_model_and_a_dataset_uses_it(tmp_path, cli,
                                                                     monkeypatch) -> None:  # fmt: skip
    embedding_model(tmp_path / "made", "tiny-embed", spatial=False, width=12)
    monkeypatch.setenv("PIXELMILL_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("PIXELMILL_DB", f"sqlite:///{tmp_path / 'jobs.db'}")
    code, _, err = cli("models", "add", tmp_path / "made" / "tiny-embed.onnx")
    assert code == 0, err
    folder = tmp_path / "in"
    folder.mkdir()
    write(folder, "a.jpg", ASTRONAUT)
    assert cli("datasets", "add", "vectors", folder, "--embedder", "tiny-embed", "-q")[0] == 0
    code, out, _ = cli("datasets", "query", "vectors", "--embedding", "--json")
    assert code == 0 and len(json.loads(out)[0]["embedding"]) == 12
    write(folder, "b.jpg", CHELSEA)
    assert cli("datasets", "add", "vectors", folder, "-q")[0] == 0  # the dataset's embedder
    code, out, _ = cli("datasets", "query", "vectors", "--embedding", "--json")
    assert [len(item["embedding"]) for item in json.loads(out)] == [12, 12]
    code, _, err = cli("datasets", "add", "vectors", folder, "--embedder", "builtin")
    assert code == 2 and "holds embeddings of 'tiny-embed'" in err
