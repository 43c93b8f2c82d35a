"""Edge cases found in review: each was a real failure once."""

from __future__ import annotations

import functools
import http.server
import os
import threading
from pathlib import Path

import pytest
import pyvips
from conftest import load, photo

import pixelmill
from pixelmill.errors import InputError, LimitError, PipelineError, UsageError


@pytest.mark.parametrize(
    ("pipeline", "size"),
    [
        ("thumbnail:1000/rotate:90", (750, 1000)),
        ("thumbnail:1999/flip:vertical", (1999, 1499)),
        ("thumbnail:1500/crop:100:100:smart", (100, 100)),
    ],
)
def test_shrink_on_load_then_out_of_order_steps(make_image, tmp_path, pipeline, size) -> None:
    # big enough that libvips' read-ahead cannot hide an out-of-order read
    source = make_image("big.jpg", photo(2000, 1500), Q=90)
    out = load(pixelmill.run(source, tmp_path / "o.jpg", pipeline).destination)
    assert (out.width, out.height) == size


def test_time_limit_holds_when_the_output_is_tiny(make_image, tmp_path) -> None:
    source = make_image("big.png", photo(3000, 3000))
    with pytest.raises(LimitError, match="took longer than the limit of 0.2 s"):
        pixelmill.run(source, tmp_path / "o.png", "blur:30/resize:fit:10",
                      settings=pixelmill.Settings(time_limit=0.2))  # fmt: skip
    assert not (tmp_path / "o.png").exists()


def test_time_limit_holds_during_a_smart_crop(make_image, tmp_path) -> None:
    source = make_image("big.png", photo(3000, 3000))
    with pytest.raises(LimitError):
        pixelmill.run(source, tmp_path / "o.png", "blur:30/crop:100:100:smart",
                      settings=pixelmill.Settings(time_limit=0.2))  # fmt: skip


def test_corrupt_data_met_while_the_graph_is_built_is_an_input_error(tmp_path) -> None:
    data = photo(800, 600).write_to_buffer(".jpg")
    (tmp_path / "t.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="corrupt or truncated"):
        pixelmill.run(tmp_path / "t.jpg", tmp_path / "o.png", "crop:100:100:smart")


def test_flatten_ignores_the_colours_alpha(make_image, tmp_path) -> None:
    source = make_image("rgba.png", photo(32, 24, bands=4))
    out = load(pixelmill.run(source, tmp_path / "o.png", "flatten:#ff000080").destination)
    assert out.bands == 3 and out(0, 0) == [255.0, 0.0, 0.0]


def test_thumbnail_force_does_not_enlarge_unless_asked(make_image, tmp_path) -> None:
    source = make_image("small.png", photo(60, 40))
    out = pixelmill.run(source, tmp_path / "o.png", "thumbnail:100:100:mode=force")
    assert (out.width, out.height) == (60, 40)
    out = pixelmill.run(source, tmp_path / "o.png", "thumbnail:100:100:mode=force:upscale=true")
    assert (out.width, out.height) == (100, 100)


@pytest.mark.parametrize("bands", [1, 2, 3])
def test_tiff_with_webp_compression_takes_any_input(make_image, tmp_path, bands) -> None:
    image = photo(64, 48, bands=bands).colourspace("grey16" if bands < 3 else "rgb16")
    source = make_image("deep.png", image)
    out = load(pixelmill.run(source, tmp_path / "o.tif", "encode:tiff:compression=webp").destination)
    assert out.format == "uchar"
    with pytest.raises(PipelineError, match="holds 8 bits only"):
        pixelmill.run(source, tmp_path / "o.tif", "encode:tiff:compression=jpeg:bitdepth=16")


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (pyvips.Image.black(8, 8).cast("float") + 0.5, "float samples are not supported"),
        (pyvips.Image.black(8, 8).cast("char"), "char samples are not supported"),
        (pyvips.Image.black(8, 8, bands=5).cast("uchar"), "5-band"),
    ],
)
def test_unsupported_sample_formats_are_refused_not_guessed(make_image, tmp_path, image, message):
    source = make_image("odd.tif", image)
    with pytest.raises(InputError, match=message):
        pixelmill.run(source, tmp_path / "o.png")


def test_output_size_is_limited_before_computing(make_image, tmp_path) -> None:
    source = make_image("tiny.png", photo(10, 10))
    with pytest.raises(LimitError, match=r"step 2 \(scale:1000\) would make a 10000000×10000000 "
                       r"image, .* \(max_output_pixels\)"):  # fmt: skip
        pixelmill.run(source, tmp_path / "o.png", "scale:1000/scale:1000")


def test_missing_spool_folder_is_a_storage_error(make_image, cli, monkeypatch) -> None:
    monkeypatch.setenv("PIXELMILL_TMP_DIR", "/nonexistent-pixelmill-spool")
    status, _, stderr = cli("run", make_image("a.png"), "memory://pm-spool/a.png")
    assert status == 5 and "nonexistent-pixelmill-spool" in stderr


def test_folder_runs_refuse_colliding_names(make_image, tmp_path) -> None:
    make_image("src/a.jpg")
    make_image("src/a.png")
    with pytest.raises(UsageError, match=r"a.jpg and a.png would both be written to .*a.webp"):
        pixelmill.run_tree(tmp_path / "src", tmp_path / "dst", "encode:webp")
    assert not (tmp_path / "dst").exists()


def test_folder_runs_skip_their_own_output_inside_the_source(make_image, tmp_path) -> None:
    make_image("src/a.png")
    for _ in range(2):
        report = pixelmill.run_tree(tmp_path / "src", tmp_path / "src/out", "thumbnail:10")
        assert len(report.done) == 1
    assert sorted(p.name for p in (tmp_path / "src").rglob("*")) == ["a.png", "a.png", "out"]
    with pytest.raises(UsageError, match="holds the source folder"):
        pixelmill.run_tree(tmp_path / "src", tmp_path, "thumbnail:10")


def test_folder_run_into_a_file_is_a_usage_error(make_image, tmp_path) -> None:
    make_image("src/a.png")
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="is a file"):
        pixelmill.run_tree(tmp_path / "src", tmp_path / "file")


def test_interrupting_a_folder_run_drops_the_queue(make_image, tmp_path) -> None:
    for index in range(12):
        make_image(f"src/{index:02}.png", photo(200, 200))

    def interrupt(result: object) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        pixelmill.run_tree(tmp_path / "src", tmp_path / "dst", "blur:2", jobs=1,
                           on_result=interrupt)  # fmt: skip
    assert len(os.listdir(tmp_path / "dst")) <= 2


@pytest.fixture
def http_root(tmp_path: Path):
    """A real HTTP server on loopback serving tmp_path/www."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_http_sources_and_chained_urls(http_root, tmp_path) -> None:
    root, base = http_root
    photo(300, 200).write_to_file(str(root / "p.jpg"))
    out = pixelmill.run(f"{base}/p.jpg", tmp_path / "o.png", "thumbnail:30")
    assert (out.width, out.height) == (30, 20)
    cached = pixelmill.run(f"simplecache::{base}/p.jpg", tmp_path / "c.png", "resize:fit:60")
    assert (cached.width, cached.height) == (60, 40)
    with pytest.raises(pixelmill.StorageError, match="not found"):
        pixelmill.run(f"{base}/missing.jpg", tmp_path / "m.png")


def test_small_ergonomics(cli, make_image, tmp_path, monkeypatch) -> None:
    source = make_image("a.png")
    (tmp_path / "bom.txt").write_text("\ufeffflip\n", encoding="utf-8")
    assert cli("run", source, tmp_path / "o.png", "-p", f"@{tmp_path / 'bom.txt'}")[0] == 0
    monkeypatch.setenv("PIXELMILL_DEBUG", "0")
    status, _, stderr = cli("run", source, tmp_path / "o.png", "-p", "resize:fitt:1")
    assert status == 2 and "Traceback" not in stderr
    config = tmp_path / "c.toml"
    config.write_text("max_pixels = true\n")
    assert cli("--config", config, "run", source, tmp_path / "o.png")[0] == 2


@pytest.mark.parametrize(("pipeline", "orientation", "shrink", "box"), [
    ("thumbnail:512", 1, 4, {}),                   # 1/8 of 4000 is 500: less than 512
    ("thumbnail:400", 1, 8, {}),                   # 500×375 still holds 400×300
    ("thumbnail:400:mode=fill", 1, 4, {"crop": "centre"}),  # filling 400×400 needs 533×400
    ("thumbnail:600:100:mode=force", 1, 4, {"size": "force"}),  # 600 of 4000 wide: 1/4
    ("thumbnail:300", 6, 8, {}),                   # upright: 3000×4000 → 225×300
    ("thumbnail:3000", 1, 1, {}),
])  # fmt: skip
def test_jpeg_thumbnails_decode_at_the_smallest_scale_holding_the_box(
        make_image, tmp_path, pipeline, orientation, shrink, box) -> None:  # fmt: skip
    """As Pillow's draft (Thumbor's engine) picks it; then one Lanczos 3 reduction. The output
    is libvips' thumbnail of the photo decoded at that scale, of the size the step announces."""
    from pixelmill.engine.steps.thumbnail import OP
    from pixelmill.pipeline import Pipeline

    image = photo(4000, 3000)
    image.set_type(pyvips.GValue.gint_type, "orientation", orientation)
    source = make_image("big.jpg", image, Q=90)
    out = pixelmill.run(source, tmp_path / "o.png", pipeline)
    step = Pipeline.parse(pipeline).steps[0]
    upright = (3000, 4000) if orientation == 6 else (4000, 3000)
    assert (out.width, out.height) == OP.size(step, *upright, pixelmill.Settings())
    decoded = pyvips.Image.new_from_file(str(source), shrink=shrink)
    expected = decoded.thumbnail_image(step["width"], height=step["height"] or step["width"],
                                       **box)  # fmt: skip
    assert (load(out.destination) - expected).abs().max() == 0
