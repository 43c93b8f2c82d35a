"""The formats read through Pillow (BMP, ICO, TGA, PNM, PSD, SGI, PCX, JPEG 2000, JPEG XL, HEIC
with HEVC) and JPEG XL written through it: real files made on the spot, round trips with alpha,
16-bit, orientation and ICC, the limits checked from the header, and truncated or hostile files
refused with their reason."""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path

import numpy as np
import pillow_jxl  # noqa: F401  (JPEG XL for Pillow, to make the files)
import pytest
import pyvips
from conftest import load, photo
from PIL import Image

from pixelmill import api
from pixelmill.config import Settings
from pixelmill.errors import InputError, LimitError
from pixelmill.pipeline.formats import negotiate

RNG = np.random.default_rng(7)
RGB = RNG.integers(0, 256, (40, 60, 3), dtype=np.uint8)
RGBA = np.dstack([RGB, RNG.integers(0, 256, (40, 60), dtype=np.uint8)])
LOSSLESS = {"bmp": ("BMP", RGB, {}), "tga": ("TGA", RGBA, {}), "ppm": ("PPM", RGB, {}),
            "sgi": ("SGI", RGB, {}), "pcx": ("PCX", RGB, {}),
            "jp2": ("JPEG2000", RGB, {"irreversible": False}),
            "jxl": ("JXL", RGBA, {"lossless": True}), "ico": ("ICO", RGBA, {"sizes": [(60, 40)]})}  # fmt: skip
"""Files Pillow writes without loss: suffix → (Pillow's format, pixels, options)."""


def psd(pixels: np.ndarray) -> bytes:
    """A minimal Photoshop file (version 1, RGB, 8-bit, raw planes) holding ``pixels``: Pillow
    reads PSD but does not write it."""
    height, width, bands = pixels.shape
    header = b"8BPS" + struct.pack(">H6xHIIHH", 1, bands, height, width, 8, 3)
    sections = struct.pack(">III", 0, 0, 0)  # colour mode data, resources, layers: empty
    planes = b"".join(pixels[:, :, band].tobytes() for band in range(bands))
    return header + sections + struct.pack(">H", 0) + planes


def made(folder: Path, suffix: str) -> Path:
    path = folder / f"image.{suffix}"
    if suffix == "psd":
        path.write_bytes(psd(RGB))
        return path
    name, pixels, options = LOSSLESS[suffix]
    Image.fromarray(pixels).save(path, format=name, **options)
    return path


@pytest.mark.parametrize("suffix", [*LOSSLESS, "psd"])
def test_each_format_reads_exactly(tmp_path, cli, suffix) -> None:
    source = made(tmp_path, suffix)
    status, _, err = cli("run", source, tmp_path / "out.png")
    assert status == 0, err
    expected = RGB if suffix not in ("tga", "jxl", "ico") else RGBA
    assert np.array_equal(load(tmp_path / "out.png").numpy(), expected)
    described = json.loads(cli("info", source, "--json")[1])
    assert (described["width"], described["height"]) == (60, 40)
    assert described["decoder"] == "Pillow" and described["streams"] is False


def test_heic_with_hevc_is_read_with_its_orientation(tmp_path, cli) -> None:
    import pillow_heif

    pillow_heif.register_heif_opener()
    exif = Image.Exif()
    exif[0x0112] = 6  # taken on its side: HEIF stores the turn as a transform of the image
    smooth = photo(60, 40).numpy()  # HEVC subsamples colour: noise would not survive it
    Image.fromarray(smooth).save(tmp_path / "phone.heic", quality=95, exif=exif.tobytes())
    described = json.loads(cli("info", tmp_path / "phone.heic", "--json")[1])
    assert described["format"] == "heic" and described["decoder"] == "Pillow"
    assert (described["width"], described["height"]) == (40, 60)
    status, _, err = cli("run", tmp_path / "phone.heic", tmp_path / "out.png")
    assert status == 0, err
    upright = load(tmp_path / "out.png").numpy().astype(int)
    assert upright.shape == (60, 40, 3)  # turned upright
    assert np.abs(upright - np.rot90(smooth, -1)).mean() < 3  # HEVC is lossy


def test_sixteen_bit_grey_and_icc_profiles_are_kept(tmp_path, cli) -> None:
    deep = RNG.integers(0, 65536, (40, 60), dtype=np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.pgm")
    assert cli("run", tmp_path / "deep.pgm", tmp_path / "deep.png")[0] == 0
    read = load(tmp_path / "deep.png")
    assert read.format == "ushort" and np.array_equal(read.numpy(), deep)
    profile = pyvips.Image.black(4, 4, bands=3).copy(interpretation="srgb")
    icc = profile.icc_export(output_profile="srgb").get("icc-profile-data")
    Image.fromarray(RGB).save(tmp_path / "tagged.jxl", lossless=True, icc_profile=icc)
    described = json.loads(cli("info", tmp_path / "tagged.jxl", "--json")[1])
    assert described["icc"]["valid"] and described["icc"]["colour_space"] == "RGB"


def test_limits_are_checked_from_the_header_before_decoding(tmp_path) -> None:
    huge = tmp_path / "huge.bmp"  # a BMP header claiming 100,000 × 100,000 pixels, no pixels
    huge.write_bytes(b"BM" + struct.pack("<IHHI", 54, 0, 0, 54)
                     + struct.pack("<IiiHHIIiiII", 40, 100_000, 100_000, 1, 24, 0, 0, 0, 0, 0, 0))
    with pytest.raises(LimitError, match="max_pixels"):
        api.run(huge, tmp_path / "out.png")
    made(tmp_path, "bmp")
    with pytest.raises(LimitError, match="read through Pillow.*max_memory"):
        api.run(tmp_path / "image.bmp", tmp_path / "out.png",
                settings=Settings(max_memory=10_000))  # fmt: skip
    assert not (tmp_path / "out.png").exists()


@pytest.mark.parametrize("suffix", ["bmp", "jxl", "jp2", "psd", "tga"])
def test_truncated_files_fail_with_their_reason(tmp_path, cli, suffix) -> None:
    whole = made(tmp_path, suffix).read_bytes()
    cut = tmp_path / f"cut.{suffix}"
    cut.write_bytes(whole[: len(whole) // 2])
    status, _, err = cli("run", cut, tmp_path / "out.png")
    assert status == 3 and "Traceback" not in err
    assert "corrupt or truncated" in err or "not a recognised image" in err
    assert not (tmp_path / "out.png").exists()


def test_truncated_heic_fails_with_its_reason(tmp_path) -> None:
    import pillow_heif

    pillow_heif.register_heif_opener()
    buffer = io.BytesIO()
    Image.fromarray(RGB).save(buffer, format="HEIF", quality=90)
    (tmp_path / "cut.heic").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(InputError):
        api.run(tmp_path / "cut.heic", tmp_path / "out.png")


def test_jpeg_xl_is_written_lossy_lossless_and_with_alpha(tmp_path, cli) -> None:
    Image.fromarray(RGBA).save(tmp_path / "in.png")
    assert cli("run", tmp_path / "in.png", tmp_path / "same.jxl", "-p",
               "encode:jxl:lossless=true")[0] == 0  # fmt: skip
    assert np.array_equal(np.asarray(Image.open(tmp_path / "same.jxl")), RGBA)
    status, _, err = cli("run", tmp_path / "in.png", tmp_path / "small.jxl", "-p",
                         "encode:jxl:q=60:effort=3")  # fmt: skip
    assert status == 0, err
    small = Image.open(tmp_path / "small.jxl")
    assert (small.size, small.mode) == ((60, 40), "RGBA")
    assert json.loads(cli("info", tmp_path / "small.jxl", "--json")[1])["alpha"]
    assert cli("run", tmp_path / "in.png", tmp_path / "x.jxl", "-p", "encode:jxl:effort=10")[0] == 2
    assert negotiate("image/jxl,image/avif,*/*", "a.jpg").name == "jxl"
    assert negotiate("image/avif,*/*", "a.jpg").name == "avif"


def test_heic_output_is_refused_clearly(tmp_path, cli) -> None:
    Image.fromarray(RGB).save(tmp_path / "in.png")
    status, _, err = cli("run", tmp_path / "in.png", tmp_path / "out.heic")
    assert status == 2 and "heic encoding is not available" in err and "jxl" in err


def test_folders_pick_up_the_new_formats(tmp_path, cli) -> None:
    (tmp_path / "in").mkdir()
    for suffix in ("bmp", "tga", "ppm"):
        made(tmp_path / "in", suffix).rename(tmp_path / "in" / f"a-{suffix}.{suffix}")
    status, _, err = cli("run", tmp_path / "in", tmp_path / "out", "-p", "encode:png")
    assert status == 0, err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "a-bmp.png", "a-ppm.png", "a-tga.png"]


def test_the_readme_lists_the_formats_as_the_command_prints_them(cli) -> None:
    status, table, _ = cli("formats", "--markdown")
    assert status == 0
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert table.strip() in readme
    rows = {row["format"]: row for row in json.loads(cli("formats", "--json")[1])}
    assert rows["jxl"]["write"] == "Pillow" and rows["heic"]["read"] == "Pillow"
    assert rows["jpeg"]["streams"] and not rows["bmp"]["streams"] and rows["bmp"]["write"] is None
