"""What each step does to real pixels, through the whole engine."""

from __future__ import annotations

import pytest
import pyvips
from conftest import deep, load, photo

import pixelmill
from pixelmill.engine.step import OPS
from pixelmill.errors import PipelineError
from pixelmill.pipeline import steps


def run(make_image, tmp_path, pipeline: str, image: pyvips.Image | None = None,
        name: str = "out.png") -> pyvips.Image:  # fmt: skip
    source = make_image("in.png", image if image is not None else photo(320, 240))
    return load(pixelmill.run(source, tmp_path / name, pipeline).destination)


def same(a: pyvips.Image, b: pyvips.Image, tolerance: float = 0.0) -> bool:
    return (a.width, a.height, a.bands) == (b.width, b.height, b.bands) and (
        (a.cast("float") - b.cast("float")).abs().max() <= tolerance
    )


def test_every_declared_step_has_an_implementation() -> None:
    declared = steps()
    assert list(OPS) == list(declared) and all(op.spec is declared[n] for n, op in OPS.items())


@pytest.mark.parametrize(
    ("pipeline", "size"),
    [
        ("resize:fit:100", (100, 75)),
        ("resize:fit::60", (80, 60)),
        ("resize:fit:100:100", (100, 75)),
        ("resize:fill:100:100", (100, 100)),
        ("resize:fill:100:100:gravity=smart", (100, 100)),
        ("resize:force:100:50", (100, 50)),
        ("resize:fit:1000", (320, 240)),
        ("resize:fit:1000:upscale=true", (1000, 750)),
        ("resize:fill:1000:100", (320, 100)),
        ("scale:0.5", (160, 120)),
        ("scale:2:kernel=nearest", (640, 480)),
        ("thumbnail:100", (100, 75)),
        ("thumbnail:100:100:mode=fill", (100, 100)),
        ("thumbnail:100:100:mode=fill:gravity=north", (100, 100)),
        ("thumbnail:100:50:mode=force", (100, 50)),
        ("thumbnail:1000", (320, 240)),
        ("grayscale/thumbnail:100", (100, 75)),
        ("thumbnail:100/rotate:90", (75, 100)),
        ("crop:100:50", (100, 50)),
        ("crop:1000:50:smart", (320, 50)),
        ("crop:100:100:x=300:y=200", (20, 40)),
        ("rotate:90", (240, 320)),
        ("rotate:-90", (240, 320)),
        ("rotate:180", (320, 240)),
        ("rotate:360", (320, 240)),
        ("pad:10", (340, 260)),
        ("pad:1:2:3:4", (326, 244)),
        ("pad:1:2", (324, 242)),
    ],
)
def test_geometry(make_image, tmp_path, pipeline: str, size: tuple[int, int]) -> None:
    out = run(make_image, tmp_path, pipeline)
    assert (out.width, out.height) == size


def test_fill_keeps_the_part_gravity_names(make_image, tmp_path) -> None:
    image = photo(300, 100)
    north = run(make_image, tmp_path, "resize:fill:100:100:gravity=west", image)
    expected = image.resize(1.0).crop(0, 0, 100, 100)
    assert same(north, expected, tolerance=1)


def test_crop_by_gravity_and_by_box_cut_the_right_pixels(make_image, tmp_path) -> None:
    image = photo(320, 240)
    assert same(run(make_image, tmp_path, "crop:100:50", image), image.crop(110, 95, 100, 50))
    assert same(run(make_image, tmp_path, "crop:60:40:southeast", image), image.crop(260, 200, 60, 40))
    assert same(run(make_image, tmp_path, "crop:30:20:x=7:y=9", image), image.crop(7, 9, 30, 20))


def test_crop_box_outside_the_image_is_an_error(make_image, tmp_path) -> None:
    with pytest.raises(PipelineError, match=r"crop: the box at x=400, y=0 lies outside the 320×240"):
        run(make_image, tmp_path, "crop:10:10:x=400:y=0")
    assert not (tmp_path / "out.png").exists()


def test_rotate_and_flip_move_pixels(make_image, tmp_path) -> None:
    image = photo(32, 24)
    assert same(run(make_image, tmp_path, "rotate:90", image), image.rot90())
    assert same(run(make_image, tmp_path, "flip", image), image.fliphor())
    assert same(run(make_image, tmp_path, "flip:vertical", image), image.flipver())


def test_arbitrary_rotation_fills_corners_with_background(make_image, tmp_path) -> None:
    out = run(make_image, tmp_path, "rotate:30:background=#ff0000", photo(100, 100))
    assert out.width > 100 and out(0, 0) == [255.0, 0.0, 0.0]
    with_alpha = run(make_image, tmp_path, "rotate:30", photo(100, 100, bands=4))
    assert with_alpha(0, 0)[3] == 0  # transparent corners by default on images with alpha


def test_blur_smooths_and_sharpen_adds_edges(make_image, tmp_path) -> None:
    image = photo(200, 150)
    energy = lambda im: im.colourspace("b-w").sobel().avg()
    assert energy(run(make_image, tmp_path, "blur:2", image)) < 0.7 * energy(image)
    assert energy(run(make_image, tmp_path, "sharpen:1:amount=5", image)) > energy(image)


def test_resizing_alpha_does_not_darken_edges(make_image, tmp_path) -> None:
    # opaque red on the left, transparent *black* on the right: premultiplied resampling keeps
    # the half-transparent edge pixels red instead of mixing in the hidden black
    red = (pyvips.Image.black(64, 64, bands=4) + [255, 0, 0, 255]).cast("uchar")
    clear = pyvips.Image.black(64, 64, bands=4).cast("uchar")
    image = red.join(clear, "horizontal").copy(interpretation="srgb")
    out = run(make_image, tmp_path, "resize:fit:37", image)
    edge = [out(x, 10) for x in range(out.width) if 20 < out(x, 10)[3] < 235]
    assert edge and all(pixel[0] > 240 for pixel in edge)


@pytest.mark.parametrize(("image", "bands", "fmt"), [
    (photo(64, 48), 1, "uchar"),
    (photo(64, 48, bands=4), 2, "uchar"),
    (deep(photo(64, 48)), 1, "ushort"),
])  # fmt: skip
def test_grayscale_keeps_alpha_and_depth(make_image, tmp_path, image, bands: int, fmt) -> None:
    out = run(make_image, tmp_path, "grayscale", image)
    assert (out.bands, out.format) == (bands, fmt)


def test_pad_fills_with_white_or_transparent(make_image, tmp_path) -> None:
    out = run(make_image, tmp_path, "pad:5", photo(20, 20))
    assert out(0, 0) == [255.0, 255.0, 255.0]
    clear = run(make_image, tmp_path, "pad:5:background=transparent", photo(20, 20))
    assert clear.bands == 4 and clear(0, 0)[3] == 0 and clear(10, 10)[3] == 255
    deep_pad = run(make_image, tmp_path, "pad:5", deep(photo(20, 20)))
    assert deep_pad(0, 0) == [65535.0] * 3


def test_flatten_blends_onto_the_background(make_image, tmp_path) -> None:
    out = run(make_image, tmp_path, "flatten:#0000ff", photo(64, 48, bands=4))
    assert out.bands == 3 and out(0, 0) == [0.0, 0.0, 255.0]
    assert run(make_image, tmp_path, "flatten", photo(64, 48)).bands == 3  # no alpha: unchanged


def test_strip_removes_metadata_but_keeps_the_profile(make_image, tmp_path) -> None:
    image = photo(64, 48).icc_transform("p3")
    image.set_type(pyvips.GValue.gint_type, "orientation", 1)
    source = make_image("meta.jpg", image)
    assert "exif-data" in load(source).get_fields()
    kept = load(pixelmill.run(source, tmp_path / "kept.jpg").destination)
    assert "exif-data" in kept.get_fields()
    stripped = load(pixelmill.run(source, tmp_path / "s.jpg", "strip").destination)
    assert "exif-data" not in stripped.get_fields()
    assert stripped.get("icc-profile-data") == load(source).get("icc-profile-data")


def test_sixteen_bit_survives_every_sample_step(make_image, tmp_path) -> None:
    out = run(make_image, tmp_path, "resize:fit:50/blur:1/sharpen/rotate:45/pad:2/crop:40:40",
              deep(photo(64, 48, bands=4)))  # fmt: skip
    assert (out.format, out.bands, out.interpretation) == ("ushort", 4, "rgb16")


@pytest.mark.parametrize("pipeline", ["scale:2", "scale:3:kernel=linear", "scale:1.5",
                                      "resize:fit:64:upscale=true"])  # fmt: skip
def test_enlarging_keeps_pixel_centres(make_image, tmp_path, pipeline) -> None:
    """A bright column stays centred where it was (x + 0.5) · factor − 0.5, as in Pillow, not a
    quarter of a pixel to the right as libvips' resize puts it."""
    import numpy as np

    line = np.zeros((16, 16), np.uint8)
    line[:, 8] = 255
    source = make_image("line.png", pyvips.Image.new_from_array(line))
    out = load(pixelmill.run(source, tmp_path / "o.png", pipeline).destination)
    factor = out.width / 16
    row = np.frombuffer(out.write_to_memory(), np.uint8).reshape(out.height, out.width)[0]
    centre = (np.arange(out.width) * row.astype(float)).sum() / row.sum()
    assert centre == pytest.approx(8.5 * factor - 0.5, abs=0.05)
