"""Formats in and out, with alpha, 16-bit samples, EXIF orientation, ICC profiles and CMYK."""

from __future__ import annotations

import pytest
import pyvips
from conftest import deep, load, photo

import pixelmill
from pixelmill.codecs import encoder_available
from pixelmill.errors import PipelineError

READABLE = {"jpg": {}, "png": {}, "webp": {}, "avif": {}, "tif": {}, "gif": {}}
WRITABLE = ["jpg", "png", "webp", "avif", "tif", "gif"]
LOADERS = {"jpg": "jpeg", "png": "png", "webp": "webp", "avif": "heif", "tif": "tiff", "gif": "gif"}


@pytest.mark.parametrize("src_ext", list(READABLE))
@pytest.mark.parametrize("dst_ext", WRITABLE)
def test_every_format_in_and_out(make_image, tmp_path, src_ext: str, dst_ext: str) -> None:
    source = make_image(f"in.{src_ext}", photo(120, 90))
    result = pixelmill.run(source, tmp_path / f"out.{dst_ext}", "resize:fit:60")
    out = load(result.destination)
    assert out.get("vips-loader").startswith(LOADERS[dst_ext])
    assert (out.width, out.height) == (60, 45)


@pytest.mark.parametrize(("ext", "bands"), [("png", 4), ("webp", 4), ("avif", 4), ("tif", 4)])
def test_alpha_is_kept_where_the_format_holds_it(make_image, tmp_path, ext: str, bands) -> None:
    source = make_image("rgba.png", photo(64, 48, bands=4))
    out = load(pixelmill.run(source, tmp_path / f"out.{ext}", "resize:fit:32").destination)
    assert out.bands == bands and out.hasalpha()
    # the alpha ramp survives: transparent on the left, opaque on the right
    assert out.extract_band(3).crop(0, 0, 2, 24).avg() < 20
    assert out.extract_band(3).crop(30, 0, 2, 24).avg() > 230


def test_gif_keeps_one_bit_alpha(make_image, tmp_path) -> None:
    source = make_image("rgba.png", photo(64, 48, bands=4))
    out = load(pixelmill.run(source, tmp_path / "out.gif").destination)
    assert out.hasalpha()


def test_grey_with_alpha(make_image, tmp_path) -> None:
    source = make_image("ga.png", photo(64, 48, bands=2))
    out = load(pixelmill.run(source, tmp_path / "out.png", "blur:1").destination)
    assert (out.bands, out.interpretation) == (2, "b-w")


def test_alpha_to_jpeg_is_a_clear_error_and_flatten_fixes_it(make_image, tmp_path) -> None:
    source = make_image("rgba.png", photo(64, 48, bands=4))
    with pytest.raises(PipelineError, match=r"jpeg cannot hold an alpha channel; add a flatten"):
        pixelmill.run(source, tmp_path / "out.jpg")
    assert not (tmp_path / "out.jpg").exists()
    out = load(pixelmill.run(source, tmp_path / "out.jpg", "flatten:white").destination)
    assert out.bands == 3
    # fully transparent left edge becomes the white background
    assert out.crop(0, 0, 1, 48).avg() > 240


@pytest.mark.parametrize("src_ext", ["png", "tif"])
@pytest.mark.parametrize("bands", [1, 3, 4])
def test_sixteen_bits_are_kept_in_png_and_tiff(make_image, tmp_path, src_ext, bands) -> None:
    image = deep(photo(64, 48, bands=bands))
    source = make_image(f"deep.{src_ext}", image)
    for dst_ext in ("png", "tif"):
        out = load(pixelmill.run(source, tmp_path / f"o.{dst_ext}", "resize:fit:32").destination)
        assert (out.format, out.bands) == ("ushort", bands)
        assert out.max() > 255  # real 16-bit values, not 8-bit ones in a 16-bit container


def test_sixteen_bits_become_eight_where_the_format_holds_only_eight(make_image, tmp_path):
    image = deep(photo(64, 48))
    source = make_image("deep.png", image)
    out = load(pixelmill.run(source, tmp_path / "o.webp", "encode:webp:lossless=true").destination)
    assert out.format == "uchar"
    expected = image.colourspace("srgb")
    assert abs(out.avg() - expected.avg()) < 0.5


def test_avif_keeps_high_bit_depth_when_asked(make_image, tmp_path) -> None:
    source = make_image("deep.png", deep(photo(64, 48)))
    out = load(pixelmill.run(source, tmp_path / "o.avif", "encode:avif:bitdepth=12").destination)
    assert out.format == "ushort" and out.get("heif-bitdepth") == 12


def test_eight_bits_can_be_widened_on_request(make_image, tmp_path) -> None:
    source = make_image("a.png", photo(32, 24))
    out = load(pixelmill.run(source, tmp_path / "o.png", "encode:png:bitdepth=16").destination)
    assert out.format == "ushort" and out.interpretation == "rgb16"


def test_exif_orientation_is_applied_on_load(make_image, tmp_path) -> None:
    image = (pyvips.Image.black(60, 40, bands=3) + [0, 0, 255]).cast("uchar")
    image = image.draw_rect([255, 0, 0], 0, 0, 10, 10, fill=True).copy(interpretation="srgb")
    image.set_type(pyvips.GValue.gint_type, "orientation", 6)  # 90° clockwise to show upright
    source = make_image("o6.jpg", image, Q=95)
    out = load(pixelmill.run(source, tmp_path / "up.png").destination)
    assert (out.width, out.height) == (40, 60)
    assert out(35, 5)[0] > 200 and out(5, 5)[0] < 50  # the red corner moved to the top right
    assert "orientation" not in out.get_fields() or out.get("orientation") == 1
    kept = pixelmill.run(
        source, tmp_path / "raw.jpg", settings=pixelmill.Settings(autorotate=False)
    )
    raw = load(kept.destination)
    assert (raw.width, raw.height, raw.get("orientation")) == (60, 40, 6)


@pytest.mark.parametrize("ext", ["jpg", "png", "webp", "avif", "tif"])
def test_icc_profiles_are_kept(make_image, tmp_path, ext: str) -> None:
    source = make_image("p3.png", photo(64, 48).icc_transform("p3"))
    profile = load(source).get("icc-profile-data")
    out = load(pixelmill.run(source, tmp_path / f"o.{ext}", "resize:fit:32").destination)
    assert out.get("icc-profile-data") == profile


def test_gif_and_strip_srgb_convert_the_profile_away(make_image, tmp_path) -> None:
    srgb = photo(64, 48)
    source = make_image("p3.png", srgb.icc_transform("p3"))
    for destination, pipeline in (("o.gif", ""), ("o.png", "strip:icc=srgb")):
        out = load(pixelmill.run(source, tmp_path / destination, pipeline).destination)
        assert "icc-profile-data" not in out.get_fields()
        assert abs(out.extract_band(0, n=3).avg() - srgb.avg()) < 3  # colours converted back


def test_cmyk_is_converted_to_srgb(make_image, tmp_path) -> None:
    srgb = photo(64, 48)
    source = make_image("cmyk.jpg", srgb.icc_transform("cmyk"), Q=95)
    assert load(source).interpretation == "cmyk"
    out = load(pixelmill.run(source, tmp_path / "o.png").destination)
    assert (out.bands, out.interpretation) == (3, "srgb")
    assert abs(out.avg() - srgb.avg()) < 8


def test_heic_is_written_or_refused_clearly(make_image, tmp_path) -> None:
    source = make_image("a.png")
    if encoder_available("heic"):
        out = load(pixelmill.run(source, tmp_path / "o.heic").destination)
        assert out.get("heif-compression") == "hevc"
    else:
        with pytest.raises(PipelineError, match="heic encoding is not available .* use .*avif"):
            pixelmill.run(source, tmp_path / "o.heic")
        assert not (tmp_path / "o.heic").exists()


def test_tiff_tiled_pyramid_and_bigtiff(make_image, tmp_path) -> None:
    from PIL import Image

    source = make_image("a.png", photo(600, 400))
    plain = pixelmill.run(source, tmp_path / "plain.tif")
    tiled = pixelmill.run(source, tmp_path / "tiled.tif", "encode:tiff:tile=true:compression=lzw")
    pyramid = pixelmill.run(source, tmp_path / "pyr.tif", "encode:tiff:pyramid=true")
    pixelmill.run(source, tmp_path / "big.tif", "encode:tiff:bigtiff=true")
    with Image.open(plain.destination) as im:
        assert 322 not in im.tag_v2 and im.tag_v2[259] == 8  # strips, deflate
    with Image.open(tiled.destination) as im:
        assert im.tag_v2[322] == 256 and im.tag_v2[259] == 5  # tiles, lzw
    assert load(pyramid.destination).get("n-pages") >= 2
    assert (tmp_path / "big.tif").read_bytes()[:4] == b"II+\x00"
    assert (tmp_path / "plain.tif").read_bytes()[:4] == b"II*\x00"


@pytest.mark.parametrize(
    ("pipeline", "check"),
    [
        ("encode:jpeg:q=40", lambda o: o.get("vips-loader").startswith("jpeg")),
        ("encode:webp:lossless=true:effort=6", lambda o: o.get("vips-loader").startswith("webp")),
        ("encode:avif:q=30:effort=2", lambda o: o.get("heif-compression") == "av1"),
        ("encode:png:effort=9", lambda o: o.get("vips-loader").startswith("png")),
        ("encode:tiff:compression=jpeg:q=70", lambda o: o.get("vips-loader").startswith("tiff")),
        ("encode:gif:effort=1", lambda o: o.get("vips-loader").startswith("gif")),
    ],
)
def test_encoder_options(make_image, tmp_path, pipeline: str, check) -> None:
    source = make_image("a.png")
    fmt = pipeline.split(":")[1]
    out = load(pixelmill.run(source, tmp_path / f"o.{fmt}", pipeline).destination)
    assert check(out)


def test_quality_changes_the_size(make_image, tmp_path) -> None:
    source = make_image("a.png", photo(400, 300))
    low = pixelmill.run(source, tmp_path / "low.jpg", "encode:jpeg:q=20").bytes_written
    high = pixelmill.run(source, tmp_path / "high.jpg", "encode:jpeg:q=95").bytes_written
    assert high > 2 * low
