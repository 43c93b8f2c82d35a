"""Bad input gets one clear line and its exit code, and leaves nothing behind."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from conftest import photo

import pixelmill
from pixelmill.errors import LimitError


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` × ``height`` but which holds almost no data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) +
            chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b""))  # fmt: skip


def corpus(folder: Path) -> dict[str, Path]:
    """Generated bad inputs, by name."""
    folder.mkdir(exist_ok=True)
    jpeg = photo(400, 300).write_to_buffer(".jpg", Q=90)
    png = photo(400, 300).write_to_buffer(".png")
    files = {
        "truncated.jpg": jpeg[: len(jpeg) // 2],
        "truncated.png": png[: len(png) // 2],
        "empty.png": b"",
        "random.jpg": bytes(range(256)) * 40,
        "huge.png": png_claiming(100_000, 100_000),
        "text.jpg": b"hello, this is a note and not a photograph\n" * 10,
        "bitmap.png": b"BM" + bytes(200),
        "document.png": b"%PDF-1.4\n" + bytes(200),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return {name: folder / name for name in files}


CASES = [
    ("truncated.jpg", 3, "image data is corrupt or truncated: VipsJpeg: premature end of JPEG"),
    ("truncated.png", 3, "image data is corrupt or truncated: vipspng: libpng read error"),
    ("empty.png", 3, "empty file (0 bytes)"),
    ("random.jpg", 3, "named .jpg but its content is not a recognised image format"),
    ("huge.png", 4, ("100000×100000 = 10,000,000,000 pixels is over the limit of 1,000,000,000 "
                     "(max_pixels)")),
    ("text.jpg", 3, "named .jpg but it is a text file, not an image"),
    ("bitmap.png", 3, "BMP data is corrupt or truncated"),
    ("document.png", 3, "PDF files are not supported (supported: jpeg, png, webp"),
]


@pytest.mark.parametrize(("name", "code", "message"), CASES)
def test_each_bad_input_gives_its_code_and_one_line(cli, tmp_path, name, code, message) -> None:
    source = corpus(tmp_path / "bad")[name]
    out_dir = tmp_path / "out"
    status, stdout, stderr = cli("run", source, out_dir / "result.png", "-p", "resize:fit:100")
    assert status == code
    assert stderr.count("\n") == 1 and message in stderr and str(source) in stderr
    assert "Traceback" not in stderr and stdout == ""
    assert not out_dir.exists()  # no partial output, not even the folder


def test_a_real_process_prints_no_traceback(tmp_path) -> None:
    source = corpus(tmp_path / "bad")["truncated.jpg"]
    done = subprocess.run(
        [sys.executable, "-m", "pixelmill", "run", str(source), str(tmp_path / "o.png")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 3
    assert done.stderr.startswith("pixelmill: input error: ") and "Traceback" not in done.stderr
    debug = subprocess.run(
        [sys.executable, "-m", "pixelmill", "--debug", "run", str(source), str(tmp_path / "o.png")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_a_wrongly_named_image_is_read_by_its_content(make_image, tmp_path) -> None:
    source = make_image("really-a-png.jpg", photo(40, 30))
    source.write_bytes(photo(40, 30).write_to_buffer(".png"))
    out = pixelmill.run(source, tmp_path / "o.webp")
    assert (out.width, out.height) == (40, 30)


def test_info_refuses_bad_input_the_same_way(cli, tmp_path) -> None:
    files = corpus(tmp_path / "bad")
    assert cli("info", files["huge.png"])[0] == 4
    assert cli("info", files["text.jpg"])[0] == 3
    assert cli("info", tmp_path / "missing.png")[0] == 5


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--max-pixels", "1000"], 4, "100×100 = 10,000 pixels is over the limit of 1,000"),
        (["--max-bytes", "100"], 4, "bytes is over the limit of 100 (max_bytes)"),
    ],
)
def test_limits_from_the_command_line(cli, make_image, tmp_path, args, code, message) -> None:
    source = make_image("a.jpg", photo(100, 100))
    status, _, stderr = cli("run", source, tmp_path / "o.png", *args)
    assert status == code and message in stderr
    assert not (tmp_path / "o.png").exists()


def test_time_limit_stops_a_slow_image_and_writes_nothing(cli, make_image, tmp_path) -> None:
    source = make_image("big.png", photo(3000, 3000))
    status, _, stderr = cli("run", source, tmp_path / "o.png", "-p", "blur:40", "--time-limit",
                            "0.05")  # fmt: skip
    assert status == 4 and "took longer than the limit of 0.05 s (time_limit)" in stderr
    assert sorted(os.listdir(tmp_path)) == ["big.png"]


def test_limits_from_environment_and_config_file(make_image, tmp_path, monkeypatch) -> None:
    source = make_image("a.png", photo(100, 100))
    monkeypatch.setenv("PIXELMILL_MAX_PIXELS", "9_999")
    with pytest.raises(LimitError, match="max_pixels"):
        pixelmill.run(source, tmp_path / "o.png")
    monkeypatch.delenv("PIXELMILL_MAX_PIXELS")
    config = tmp_path / "pixelmill.toml"
    config.write_text("[pixelmill]\nmax_bytes = 10\n")
    monkeypatch.setenv("PIXELMILL_CONFIG", str(config))
    with pytest.raises(LimitError, match="max_bytes"):
        pixelmill.run(source, tmp_path / "o.png")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("max_pixel = 5\n", "unknown setting 'max_pixel'"),
        ("max_pixels = 'many'\n", "setting max_pixels: 'many' is not a valid int"),
        ("max_pixels = -1\n", "setting max_pixels must be positive"),
        ("fail_on = 'sometimes'\n", "setting fail_on 'sometimes' is not one of"),
        ("max_pixels = \n", "is not valid TOML"),
    ],
)
def test_bad_settings_are_usage_errors(cli, make_image, tmp_path, content, message) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(content)
    status, _, stderr = cli("--config", config, "run", make_image("a.png"), tmp_path / "o.png")
    assert status == 2 and message in stderr


@pytest.mark.parametrize(
    ("dst", "pipeline", "code", "message"),
    [
        ("o.xyz", "", 2, "cannot tell the output format from the name"),
        ("o.jpg", "encode:webp", 2, "the name says jpeg but the pipeline encodes webp"),
        ("o.png", "resize:fitt:1", 2, "resize: mode 'fitt' is not one of fit, fill, force"),
        ("folder/", "", 2, "is a folder; give the output file name"),
        ("file.txt/o.png", "", 5, "file.txt/o.png"),
    ],
)
def test_wrong_destinations_and_pipelines(cli, make_image, tmp_path, dst, pipeline, code,
                                          message) -> None:  # fmt: skip
    source = make_image("a.png")
    (tmp_path / "folder").mkdir()
    (tmp_path / "file.txt").write_text("not a folder")
    status, _, stderr = cli("run", source, str(tmp_path / dst), "-p", pipeline)
    assert status == code and message in stderr


def test_missing_source_is_a_storage_error(cli, tmp_path) -> None:
    status, _, stderr = cli("run", tmp_path / "nope.jpg", tmp_path / "o.png")
    assert status == 5 and f"{tmp_path / 'nope.jpg'}: not found" in stderr


def test_sigterm_leaves_no_partial_output(make_image, tmp_path) -> None:
    import signal
    import time

    source = make_image("big.png", photo(3000, 3000))
    out = tmp_path / "out"
    child = subprocess.Popen(
        [sys.executable, "-m", "pixelmill", "run", str(source), str(out / "o.png"), "-p",
         "blur:60/sharpen:3"], stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not (out.exists() and os.listdir(out)) and time.monotonic() < deadline:
        time.sleep(0.01)  # wait until the spool file exists
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=60) == 143
    assert "pixelmill: stopped: " in child.stderr.read()
    assert not out.exists() or os.listdir(out) == []


@pytest.mark.parametrize("pipeline", ["thumbnail:64", "resize:fit:64"])
def test_a_truncated_jpeg_fails_through_shrink_on_load_too(cli, tmp_path, pipeline) -> None:
    """libvips' thumbnail hands ``fail_on`` to the loader only in its option string: passed
    as a plain option, the cut image came out whole with a grey bottom."""
    source = corpus(tmp_path / "bad")["truncated.jpg"]
    status, _, stderr = cli("run", source, tmp_path / "out.png", "-p", pipeline)
    assert status == 3 and "premature end of JPEG" in stderr
    assert not (tmp_path / "out.png").exists()
