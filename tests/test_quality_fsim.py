"""FSIM and FSIMc against the authors' FeatureSIM.m (values recorded with GNU Octave)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import pyvips

from pixelmill.errors import UsageError
from pixelmill.quality.fsim import fsim, fsimc

DATA = Path(__file__).parent / "data"
REFERENCE = json.loads((DATA / "quality-reference.json").read_text())
IMAGES = DATA / "ssimulacra2"
TOLERANCE = 1e-6  # measured: at most 1.4e-8 (the float32 working images of images.pair)


def load(name: str) -> pyvips.Image:
    return pyvips.Image.new_from_file(str(IMAGES / name))


@pytest.mark.parametrize("entry", REFERENCE["pairs"], ids=lambda e: e["distorted"])
def test_agrees_with_featuresim_m(entry: dict) -> None:
    reference, distorted = load(entry["reference"]), load(entry["distorted"])
    assert fsim(reference, distorted) == pytest.approx(entry["fsim"], abs=TOLERANCE)
    assert fsimc(reference, distorted) == pytest.approx(entry["fsimc"], abs=TOLERANCE)


def test_identical_images_score_one() -> None:
    image = load("motorcycle.png")
    assert fsim(image, image) == pytest.approx(1.0, abs=1e-12)
    assert fsimc(image, image) == pytest.approx(1.0, abs=1e-12)
    array = image.numpy()  # numpy input takes the same path
    assert fsimc(array, array) == pytest.approx(1.0, abs=1e-12)


def test_flat_identical_images_score_one() -> None:
    flat = np.full((64, 80, 3), 128, np.uint8)
    assert fsim(flat, flat) == pytest.approx(1.0, abs=1e-12)
    assert fsimc(flat, flat) == pytest.approx(1.0, abs=1e-12)


def test_size_mismatch_is_refused() -> None:
    with pytest.raises(UsageError):
        fsim(np.zeros((32, 32, 3), np.uint8), np.zeros((32, 33, 3), np.uint8))
    with pytest.raises(UsageError):
        fsimc(np.zeros((32, 32, 3), np.uint8), np.zeros((33, 32, 3), np.uint8))


def test_more_distortion_scores_lower() -> None:
    reference = load("astronaut.png")
    jpeg = [fsim(reference, load(f"astronaut_jpeg{q}.png")) for q in (85, 60, 30)]
    assert 1.0 > jpeg[0] > jpeg[1] > jpeg[2]
    pixels = reference.numpy().astype(np.float64)
    noise = np.random.default_rng(7).standard_normal(pixels.shape)
    noisy = [np.clip(np.round(pixels + s * noise), 0, 255).astype(np.uint8) for s in (3, 10, 30)]
    scores = [fsimc(reference, image) for image in noisy]
    assert 1.0 > scores[0] > scores[1] > scores[2]


def test_grey_images_give_fsimc_equal_to_fsim() -> None:
    reference = load("ihc.png").colourspace("b-w")
    distorted = load("ihc_jpeg30.png").colourspace("b-w")
    assert fsimc(reference, distorted) == pytest.approx(fsim(reference, distorted), abs=1e-12)


def test_memory_is_bounded_on_a_large_image() -> None:
    # A 6000×4000 (24 MP) pair made lazily by libvips, scored in a child process whose peak RSS
    # is read from the child's VmHWM. A full-size float pipeline would hold, per image, 24e6 px
    # × 3 bands × 4 B = 288 MB as float32 (what images.pair yields; 576 MB for the pair) or 576 MB
    # as the float64 Y, I, Q of FeatureSIM.m (1.15 GB for the pair). Here only the 375×250
    # reduction (F = 16) reaches numpy: measured peak about 120-150 MiB, of which about 36 MiB
    # is the interpreter with numpy and pyvips. The bound, 240 MiB (252 MB), is below one
    # image's float32 copy alone.
    child = textwrap.dedent(
        """
        import pyvips
        from pixelmill.quality.fsim import fsim
        xy = pyvips.Image.xyz(6000, 4000)
        x, y = xy[0], xy[1]
        ref = ((x ^ y) & 255).bandjoin([x & 255, y & 255])
        dist = (((x + 1) ^ y) & 255).bandjoin([x & 255, (y * 3) & 255])
        ref, dist = (i.cast("uchar").copy(interpretation="srgb") for i in (ref, dist))
        score = fsim(ref, dist)
        status = open("/proc/self/status").read()  # VmHWM: ru_maxrss starts at the parent's
        print(score, next(l for l in status.splitlines() if l.startswith("VmHWM")).split()[1])
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", child], capture_output=True, text=True, timeout=300, check=True
    )
    score, peak_kib = result.stdout.split()
    assert 0.0 < float(score) < 1.0
    assert int(peak_kib) / 1024 < 240, f"peak RSS {int(peak_kib) / 1024:.0f} MiB"
