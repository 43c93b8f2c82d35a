"""The hostile set: every input and pipeline that once took a process to gigabytes, past its
time limit, into a segfault or a traceback, or that came out as silent garbage. Each gets its
documented exit code and one line naming the cause, writes nothing, and stays within
``max_memory`` plus a documented constant of resident memory.

All cases run in one child process, whose peak resident memory (VmHWM) is reset before each
(``/proc/self/clear_refs``), so each case's peak is its own and the suite pays one start-up."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import hostile
import pytest

from pixelmill.config import MEMORY_MARGIN

SLACK = 2 * MEMORY_MARGIN
"""What a case may hold over ``max_memory`` above the process's resident memory before it:
the margin at which the watchdog stops a run, and as much again for the work in flight when it
stops (measured: about 150 MiB past the margin, on two cores)."""
MAX_MEMORY = 512 * 1024**2
"""The budget the cases run with (less than the default, so that a miss shows sooner)."""

PROBE = """
import contextlib, io, json, sys
from pixelmill.cli import main

def status(field):
    line = next(l for l in open("/proc/self/status") if l.startswith(field))
    return int(line.split()[1]) * 1024

results = {}
for name, args in json.loads(sys.argv[1]):
    open("/proc/self/clear_refs", "w").write("5")
    before = status("VmRSS")
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            main(args)
        except SystemExit as stop:
            code = stop.code or 0
    results[name] = {"code": code, "stderr": err.getvalue(), "held": status("VmHWM") - before}
print(json.dumps(results))
"""


def steps(step: str, count: int) -> str:
    return "/".join([step] * count)


CASES = [
    # name, source, pipeline, exit code, what the one line says
    ("svg named .jpg", "svg-named.jpg", "resize:fit:100", 3,
     "its content is SVG, which pixelmill does not read"),
    ("libvips .v named .jpg", "native.jpg", "resize:fit:100", 3, "its content is libvips' own .v"),
    ("truncated .v", "native-truncated.v", "resize:fit:100", 3, "libvips' own .v"),
    ("43-byte GIF of 20000²", "gif-20000.jpg", "resize:fit:100", 4,
     "decoding a GIF frame of 20000×20000 holds the whole image at once"),
    ("GIF whose frame outgrows its screen", "gif-screen-1x1.gif", "resize:fit:100", 4,
     "a GIF frame of 20000×20000"),
    ("GIF whose second frame claims 20000²", "gif-second-frame.gif", "resize:fit:100", 0, ""),
    ("progressive JPEG claiming 30000²", "progressive-30000.jpg", "resize:fit:100", 4,
     "decoding a progressive JPEG of 30000×30000"),
    ("interlaced PNG of 22000²", "interlaced-22000.png", "resize:fit:100", 4,
     "decoding an interlaced PNG of 22000×22000"),
    ("AVIF whose ispe claims 30000²", "ispe-30000.avif", "resize:fit:100", 4,
     "decoding a HEIF/AVIF image of 30000×30000"),
    ("HEIC (HEVC) cut short", "hevc-cut.heic", "resize:fit:100", 3,
     "corrupt or truncated"),
    ("PPM claiming 100000²", "ppm-100000.ppm", "resize:fit:100", 4, "(max_pixels)"),
    ("TGA claiming 65535²", "tga-65535.tga", "resize:fit:100", 4, "(max_pixels)"),
    ("PSD claiming 30000²", "psd-30000.psd", "resize:fit:100", 4,
     "a PSD image (read through Pillow)"),
    ("TIFF cut half way", "tiff-half.tif", "resize:fit:100", 3, "StripByteCounts"),
    ("TIFF compression 60000", "tiff-compression-60000.tif", "resize:fit:100", 3,
     "Compression scheme 60000"),
    ("TIFF with a short strip", "tiff-short-strip.tif", "resize:fit:100", 3, "Read error"),
    ("TIFF strip past libtiff's limit", "tiff-one-strip.tif", "resize:fit:100", 4,
     "the decoder's own limit refused it"),
    ("JPEG with a cut scan", "jpeg-cut-scan.jpg", "resize:fit:100", 3,
     "premature end of data segment"),
    ("PNG with a bad IHDR CRC", "png-bad-ihdr-crc.png", "resize:fit:100", 3, "IHDR: CRC error"),
    ("0×0 GIF", "gif-0x0.gif", "resize:fit:100", 3, "the header declares a 0×0 image"),
    ("sharpen ×400", "photo.jpg", steps("sharpen", 400), 2, "at most 64 steps"),
    ("flip ×10000", "photo.jpg", steps("flip", 10000), 2, "at most 64 steps"),
    ("rotate:45 ×51", "photo.jpg", steps("rotate:45", 51), 4, "(rotate:45) would make a"),
    ("model:sr-x4 ×5", "photo.jpg", steps("model:sr-x4", 5), 4, "(model:sr-x4) would make a"),
    ("blur:5 ×64", "photo.jpg", steps("blur:5", 64), 4, "held more memory than the limit"),
    ("a JPEG of 1×60000", "tall-1x60000.jpg", "resize:fit:100", 0, ""),
    ("a PNG of 500000×1", "wide-500000x1.png", "resize:fit:100", 0, ""),
    ("a PNG of 1×500000", "tall-1x500000.png", "resize:fit:100", 0, ""),
]


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    folder = tmp_path_factory.mktemp("hostile")
    sources = hostile.write(folder / "in")
    runs = [(name, ["run", str(sources[source]), str(folder / "out" / name / "o.png"), "-p",
                    pipeline, "--max-memory", str(MAX_MEMORY)])
            for name, source, pipeline, *_ in CASES]  # fmt: skip
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(runs)], check=False,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout)
    for name, *_ in CASES:
        results[name]["out"] = folder / "out" / name
    return results


@pytest.mark.parametrize(("name", "code", "says"), [(c[0], c[3], c[4]) for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_each_hostile_case_gets_its_code_one_line_and_bounded_memory(outcomes, name, code,
                                                                    says) -> None:  # fmt: skip
    result = outcomes[name]
    lines = result["stderr"].splitlines()
    assert result["code"] == code, result["stderr"]
    if code:
        assert len(lines) == 1 and says in lines[0], result["stderr"]
        assert "Traceback" not in result["stderr"] and "internal error" not in result["stderr"]
        assert not Path(result["out"]).exists()  # nothing written, not even the folder
    else:
        assert (Path(result["out"]) / "o.png").exists()
    assert result["held"] <= MAX_MEMORY + SLACK, f"{result['held'] / 2**20:.0f} MiB"


def test_on_demand_urls_answer_each_hostile_file_with_its_status(tmp_path) -> None:
    """The same files behind signed URLs, rendered in the API's own process: ``400`` for a
    bad image, ``413`` past a limit, and the process goes on serving."""
    from fastapi.testclient import TestClient

    from pixelmill.config import Settings
    from pixelmill.service.app import create_app
    from pixelmill.service.ondemand import signed_path

    settings = Settings(data_dir=str(tmp_path / "data"), signing_keys="k", max_memory=MAX_MEMORY)
    sources = hostile.write(Path(settings.storage_root) / "in")
    status = {3: 400, 4: 413}
    with TestClient(create_app(settings)) as client:
        for name, source, pipeline, code, says in CASES:
            if pipeline != "resize:fit:100" or code not in status:
                continue
            answer = client.get(signed_path("k", "resize:fit:100/encode:png",
                                            str(sources[source])))  # fmt: skip
            assert answer.status_code == status[code], (name, answer.text)
            assert says in answer.json()["detail"]["message"]
        fine = client.get(signed_path("k", "resize:fit:100/encode:png", str(sources["photo.jpg"])))
        assert fine.status_code == 200


def test_the_default_strictness_and_what_each_level_lets_through(cli, tmp_path) -> None:
    """``fail_on``: the default (warning) refuses a cut JPEG scan that ``error`` lets through
    as a grey bottom; ``error`` still refuses an unknown TIFF compression that ``truncated``
    would decode as black."""
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(hostile.cut_jpeg_scan())
    odd = tmp_path / "odd.tif"
    odd.write_bytes(hostile.BUILDERS["tiff-compression-60000.tif"]())
    assert cli("run", cut, tmp_path / "a.png")[0] == 3
    assert cli("--config", _config(tmp_path, "error"), "run", cut, tmp_path / "b.png")[0] == 0
    assert cli("--config", _config(tmp_path, "error"), "run", odd, tmp_path / "c.png")[0] == 3
    assert cli("--config", _config(tmp_path, "truncated"), "run", odd, tmp_path / "d.png")[0] == 0


def _config(folder: Path, level: str) -> Path:
    path = folder / f"{level}.toml"
    path.write_text(f'fail_on = "{level}"\n')
    return path
