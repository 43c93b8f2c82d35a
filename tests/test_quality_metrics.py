"""Full-reference metrics against scikit-image, and the no-reference indicators on images whose
answer is known (injected noise, blur, JPEG blocks, clipped and grey images)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import pyvips
from skimage import color, data, metrics

from pixelmill.errors import UsageError
from pixelmill.quality import METRICS, blind, compare, metric, reference
from pixelmill.quality.images import working

ASTRONAUT = data.astronaut()


def noisy(image: np.ndarray, sigma: float, seed: int = 0, grey: bool = False) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.normal(0, sigma, image.shape[:2] + ((1,) if grey else image.shape[2:]))
    return np.clip(np.round(image + noise), 0, 255).astype(np.uint8)


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    vips = pyvips.Image.new_from_array(image, interpretation="srgb")
    return pyvips.Image.new_from_buffer(vips.jpegsave_buffer(Q=quality), "").numpy()


def luma(image: np.ndarray) -> np.ndarray:
    return color.rgb2ycbcr(image)[..., 0]


DISTORTED = noisy(ASTRONAUT, 12)


def test_psnr_agrees_with_scikit_image() -> None:
    expected = metrics.peak_signal_noise_ratio(ASTRONAUT, DISTORTED)
    assert reference.psnr(ASTRONAUT, DISTORTED) == pytest.approx(expected, abs=1e-4)
    expected_y = metrics.peak_signal_noise_ratio(luma(ASTRONAUT), luma(DISTORTED), data_range=255)
    assert reference.psnr(ASTRONAUT, DISTORTED, luma=True) == pytest.approx(expected_y, abs=1e-4)
    assert reference.psnr(ASTRONAUT, ASTRONAUT) == reference.PEAK_DB


@pytest.mark.parametrize("distorted", [DISTORTED, jpeg(ASTRONAUT, 20)], ids=["noise", "jpeg"])
def test_ssim_agrees_with_scikit_image(distorted: np.ndarray) -> None:
    options = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False,
               "data_range": 255}  # fmt: skip
    expected = metrics.structural_similarity(ASTRONAUT, distorted, channel_axis=2, **options)
    assert reference.ssim(ASTRONAUT, distorted) == pytest.approx(expected, abs=1e-5)
    expected_y = metrics.structural_similarity(luma(ASTRONAUT), luma(distorted), **options)
    assert reference.ssim(ASTRONAUT, distorted, luma=True) == pytest.approx(expected_y, abs=1e-5)


def test_identical_images_score_perfectly_and_distortion_lowers_every_score() -> None:
    mild, strong = noisy(ASTRONAUT, 4), noisy(ASTRONAUT, 20)
    for name in ("psnr", "psnr-y", "ssim", "ssim-y", "ms-ssim"):
        best = metric(name)(ASTRONAUT, ASTRONAUT)
        assert best == (reference.PEAK_DB if "psnr" in name else pytest.approx(1.0, abs=1e-6))
        assert best > metric(name)(mild, ASTRONAUT) > metric(name)(strong, ASTRONAUT), name
    assert reference.ciede2000(ASTRONAUT, ASTRONAUT) == 0
    assert 0 < reference.ciede2000(ASTRONAUT, mild) < reference.ciede2000(ASTRONAUT, strong)


def test_ciede2000_agrees_with_scikit_image() -> None:
    expected = color.deltaE_ciede2000(color.rgb2lab(ASTRONAUT), color.rgb2lab(DISTORTED)).mean()
    assert reference.ciede2000(ASTRONAUT, DISTORTED) == pytest.approx(expected, rel=2e-3)


def test_ms_ssim_needs_room_for_five_scales() -> None:
    small = ASTRONAUT[:150, :150]
    with pytest.raises(UsageError, match="at least 176×176"):
        reference.ms_ssim(small, small)


def test_images_of_two_sizes_are_refused() -> None:
    with pytest.raises(UsageError, match="512×512 and the image 512×256"):
        reference.psnr(ASTRONAUT, ASTRONAUT[:256])


def test_inputs_of_any_depth_alpha_and_channels_become_the_same_working_form() -> None:
    deep = ASTRONAUT.astype(np.uint16) * 257
    assert reference.psnr(ASTRONAUT, deep) == reference.PEAK_DB
    assert reference.psnr(ASTRONAUT, ASTRONAUT / 255.0) == reference.PEAK_DB
    opaque = np.dstack([ASTRONAUT, np.full(ASTRONAUT.shape[:2], 255, np.uint8)])
    assert reference.psnr(ASTRONAUT, opaque) == reference.PEAK_DB
    clear = np.dstack([ASTRONAUT, np.zeros(ASTRONAUT.shape[:2], np.uint8)])
    assert working(clear).min() == 1.0  # flattened onto white
    grey = ASTRONAUT[..., 1]
    assert working(grey).bands == 3
    with pytest.raises(UsageError, match="uint8, uint16 or float"):
        working(ASTRONAUT.astype(np.int32))


def smooth(side: int = 256) -> np.ndarray:
    """A gentle colour ramp: no edges or texture to mistake for noise."""
    ramp = np.linspace(40, 200, side)
    return np.dstack([np.add.outer(ramp, ramp) / 2, np.tile(ramp, (side, 1)),
                      np.tile(ramp[:, None], (1, side))]).astype(np.uint8)  # fmt: skip


@pytest.mark.parametrize("sigma", [3.0, 8.0, 15.0])
def test_noise_estimate_finds_injected_noise(sigma: float) -> None:
    estimate = blind.noise(noisy(smooth(), sigma, grey=True))
    assert estimate == pytest.approx(sigma, rel=0.1)
    assert blind.noise(smooth()) < 1.0


def test_sharpness_falls_with_blur() -> None:
    vips = pyvips.Image.new_from_array(ASTRONAUT, interpretation="srgb")
    values = [blind.sharpness(vips.gaussblur(s) if s else vips) for s in (0, 1, 3)]
    assert values[0] > 4 * values[1] > 4 * values[2] > 0


def test_blockiness_rises_as_jpeg_quality_falls() -> None:
    values = [blind.blockiness(jpeg(ASTRONAUT, q)) for q in (10, 40, 90)]
    assert values[0] > values[1] > values[2] > 1.0
    assert blind.blockiness(ASTRONAUT) == pytest.approx(1.0, abs=0.08)
    shifted = jpeg(ASTRONAUT, 10)[3:, 5:]  # a crop moves the grid: no longer where it looks
    assert blind.blockiness(shifted) < values[1]


def test_exposure_counts_clipped_pixels() -> None:
    image = np.full((100, 100, 3), 128, np.uint8)
    image[:10] = 0
    image[10:35] = 255
    image[35:40, :, 0] = 255  # one channel at full scale is not clipped white
    found = blind.exposure(image)
    assert found["clipped_black"] == pytest.approx(0.10)
    assert found["clipped_white"] == pytest.approx(0.25)
    assert 0 < found["mean_luma"] < 1


def test_colourfulness_is_zero_for_grey_and_follows_saturation() -> None:
    assert blind.colourfulness(np.full((32, 32, 3), 90, np.uint8)) == 0
    vips = pyvips.Image.new_from_array(ASTRONAUT, interpretation="srgb")
    lch = vips.colourspace("lch")
    dull = (lch * [1, 0.3, 1]).colourspace("srgb")
    assert blind.colourfulness(ASTRONAUT) > 2 * blind.colourfulness(dull) > 0


def test_consistency_of_an_upscale_with_its_source() -> None:
    from pixelmill.engine.imaging import rescale

    vips = pyvips.Image.new_from_array(ASTRONAUT, interpretation="srgb")
    faithful = rescale(vips, 2, 2, "cubic")
    assert blind.consistency(ASTRONAUT, faithful) > 38
    shifted = faithful.embed(3, 0, faithful.width, faithful.height, extend="copy")
    assert blind.consistency(ASTRONAUT, shifted) < blind.consistency(ASTRONAUT, faithful) - 8


def test_compare_picks_metrics_by_the_sizes() -> None:
    same = compare(ASTRONAUT, DISTORTED, ["psnr", "ssim", "noise"])
    assert list(same) == ["psnr", "ssim", "noise"]
    upscale = pyvips.Image.new_from_array(ASTRONAUT, interpretation="srgb").resize(2)
    assert list(compare(ASTRONAUT, upscale)) == ["consistency"]
    with pytest.raises(UsageError, match="unknown metric 'vmaf'"):
        compare(ASTRONAUT, DISTORTED, ["vmaf"])
    assert all(m.kind in ("reference", "consistency", "blind") for m in METRICS.values())


REFERENCE_VALUES = Path(__file__).parent / "data" / "quality-reference.json"
PAIRS = json.loads(REFERENCE_VALUES.read_text())["pairs"]


def matlab_grey(path: Path) -> np.ndarray:
    """MATLAB's rgb2gray of an 8-bit image, as the reference values were made with."""
    rgb = pyvips.Image.new_from_file(str(path)).numpy().astype(np.float64)
    weights = np.array([0.298936021293775, 0.587043074451121, 0.114020904255103])
    return np.floor(rgb[..., :3] @ weights + 0.5).astype(np.uint8)


@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: p["distorted"])
def test_ssim_and_ms_ssim_agree_with_the_authors_matlab_code(pair: dict) -> None:
    folder = REFERENCE_VALUES.parent / "ssimulacra2"
    left, right = (matlab_grey(folder / pair[k]) for k in ("reference", "distorted"))
    assert reference.ssim(left, right, downsample=True) == pytest.approx(pair["ssim"], abs=1e-5)
    assert reference.ms_ssim(left, right, luma=False) == pytest.approx(pair["ms_ssim"], abs=1e-5)
