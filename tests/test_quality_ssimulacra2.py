"""SSIMULACRA 2 against the reference C++ tool's scores, and its edge cases (its memory on a
24-megapixel pair is checked with every metric's, in ``test_quality_memory``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import pyvips

from pixelmill.errors import UsageError
from pixelmill.quality.ssimulacra2 import ssimulacra2

DATA = Path(__file__).parent / "data" / "ssimulacra2"
SCORES = json.loads((DATA / "scores.json").read_text())
TOLERANCE = 0.5


def load(name: str) -> pyvips.Image:
    return pyvips.Image.new_from_file(str(DATA / name))


@pytest.fixture(scope="module")
def differences(request: pytest.FixtureRequest) -> Iterator[dict[str, float]]:
    """Each pair's difference to the reference score; the largest is reported at the end."""
    seen: dict[str, float] = {}
    yield seen
    plugins = request.config.pluginmanager
    reporter, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin("capturemanager")
    if seen and reporter is not None and capture is not None:
        name = max(seen, key=lambda key: abs(seen[key]))
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"\nSSIMULACRA 2: largest difference to the reference tool over "
                                f"{len(seen)} pairs: {seen[name]:+.4f} ({name})")  # fmt: skip


@pytest.mark.parametrize("name", sorted(SCORES))
def test_agrees_with_the_reference_implementation(name: str, differences: dict[str, float]) -> None:
    expected = SCORES[name]["ssimulacra2"]
    score = ssimulacra2(load(SCORES[name]["reference"]), load(name))
    differences[name] = score - expected
    assert abs(score - expected) <= TOLERANCE, f"{name}: {score:.4f}, reference {expected}"


def test_identical_images_score_100() -> None:
    image = load("motorcycle.png")
    assert ssimulacra2(image, image) == 100.0
    assert ssimulacra2(image.numpy(), image.copy_memory()) == 100.0


def test_arrays_and_16_bits_score_as_8_bit_images() -> None:
    reference, distorted = load("astronaut.png"), load("astronaut_jpeg60.png")
    expected = ssimulacra2(reference, distorted)
    arrays = reference.numpy(), distorted.numpy()
    assert ssimulacra2(*arrays) == pytest.approx(expected, abs=1e-9)
    deep = [array.astype(np.uint16) * 257 for array in arrays]
    assert ssimulacra2(*deep) == pytest.approx(expected, abs=1e-4)


def test_sequentially_opened_files_are_read_once() -> None:
    names = "motorcycle.png", "motorcycle_webp50.png"
    opened = [pyvips.Image.new_from_file(str(DATA / name), access="sequential") for name in names]
    assert ssimulacra2(*opened) == pytest.approx(ssimulacra2(*map(load, names)), abs=1e-9)


def test_a_size_mismatch_is_refused() -> None:
    image = load("astronaut.png")
    with pytest.raises(UsageError, match="one size"):
        ssimulacra2(image, image.crop(0, 0, 200, 200))


def test_images_under_8_pixels_are_refused() -> None:
    image = load("astronaut.png").crop(0, 0, 7, 100)
    with pytest.raises(UsageError, match="at least 8×8"):
        ssimulacra2(image, image)


def test_small_and_odd_sizes_score() -> None:
    reference, distorted = load("ihc.png"), load("ihc_jpeg30.png")
    for size in ((8, 8), (9, 33), (301, 17)):
        score = ssimulacra2(reference.crop(3, 5, *size), distorted.crop(3, 5, *size))
        assert -100 < score < 100


def test_a_stronger_distortion_scores_lower() -> None:
    reference = load("astronaut.png").numpy().astype(np.float64)
    noise = np.random.default_rng(3).normal(size=reference.shape)
    scores = [
        ssimulacra2(reference.astype(np.uint8),
                    np.clip(reference + sigma * noise, 0, 255).round().astype(np.uint8))
        for sigma in (2, 6, 18)
    ]  # fmt: skip
    assert scores[0] > scores[1] > scores[2]
    jpeg = [SCORES[f"brick_jpeg{q}.png"]["ssimulacra2"] for q in (85, 60, 30)]
    ours = [ssimulacra2(load("brick.png"), load(f"brick_jpeg{q}.png")) for q in (85, 60, 30)]
    assert jpeg == sorted(jpeg, reverse=True) and ours == sorted(ours, reverse=True)
