"""The lab's degradations and augmentation: kernels, noise levels, JPEG, resizing, seeds."""

from __future__ import annotations

import numpy as np
import pytest

from pixelmill.errors import UsageError
from pixelmill.lab import degrade, photos
from pixelmill.lab.augment import Augment
from pixelmill.lab.degrade import Blur, Degradation, Jpeg, Noise, Resize


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def grey(value: float = 0.5, side: int = 128) -> np.ndarray:
    return np.full((side, side, 3), value, np.float32)


def test_blur_kernels_are_normalised_and_shaped_as_asked() -> None:
    for kind in degrade.BLUR_KINDS:
        for seed in range(20):
            kernel = Blur(kinds=(kind,)).kernel(rng(seed))
            assert kernel.min() >= 0 and kernel.sum() == pytest.approx(1, abs=1e-9)
            assert kernel.shape[0] == kernel.shape[1] and kernel.shape[0] % 2 == 1
    wide = degrade.gaussian_kernel(3.0, 1.0, 0.0)
    ys, xs = np.mgrid[: wide.shape[0], : wide.shape[1]] - wide.shape[0] // 2
    assert (wide * xs**2).sum() == pytest.approx(9.0, rel=0.05)
    assert (wide * ys**2).sum() == pytest.approx(1.0, rel=0.05)
    streak = degrade.motion_kernel(9.0, 0.0)
    centre = streak.shape[0] // 2
    assert streak[centre].sum() > 0.99 and np.count_nonzero(streak[centre]) >= 9


def test_gaussian_noise_has_the_requested_sigma() -> None:
    for sigma in (5.0, 15.0, 25.0):
        noisy = Noise(sigma=(sigma, sigma))(grey(side=256), rng(), (256, 256))
        assert (noisy - 0.5).std() * 255 == pytest.approx(sigma, rel=0.02)
    classic = degrade.track("classic", "denoise", 1)(grey(side=256), rng())
    assert (classic - 0.5).std() * 255 == pytest.approx(15.0, rel=0.02)
    assert np.array_equal(classic, np.round(classic * 255) / 255)  # 8-bit levels


def test_poisson_noise_follows_the_photon_count() -> None:
    noisy = Noise(poisson=1.0, peak=(100.0, 100.0))(grey(side=256), rng(), (256, 256))
    assert (noisy - 0.5).std() == pytest.approx(np.sqrt(0.5 / 100), rel=0.03)


def test_grey_noise_is_the_same_in_every_channel() -> None:
    noisy = Noise(sigma=(10.0, 10.0), gray=1.0)(grey(), rng(), (128, 128))
    assert np.array_equal(noisy[..., 0], noisy[..., 2]) and noisy.std() > 0.02


def test_jpeg_is_lossy_and_worse_at_lower_quality() -> None:
    image = photos.load("astronaut")[:128, :128]
    errors = [np.abs(degrade.jpeg(image, q) - image).mean() for q in (30, 90)]
    assert errors[0] > errors[1] > 1 / 255


def test_a_shifted_jpeg_grid_starts_at_a_random_offset() -> None:
    image = photos.load("astronaut")[:64, :64]
    aligned = degrade.Jpeg(quality=(20.0, 20.0), shift=False)(image, rng(), (64, 64))
    assert np.array_equal(aligned, degrade.jpeg(image, 20))
    grid = np.arange(64) % 8 == 7  # steps across block edges, between columns 7 and 8, …

    def edge_excess(out: np.ndarray, offset: int) -> float:
        steps = np.abs(np.diff(out - image, axis=1)).mean(axis=(0, 2))
        edges = np.roll(grid, offset)[:-1]
        return float(steps[edges].mean() / steps[~edges].mean())

    assert edge_excess(aligned, 0) > 1.3
    offsets = set()
    for seed in range(6):
        generator = np.random.default_rng(seed)
        top, left = np.random.default_rng(seed).integers(0, degrade.JPEG_MCU, size=2)
        shifted = degrade.Jpeg(quality=(20.0, 20.0))(image, generator, (64, 64))
        assert shifted.shape == image.shape
        padded = np.pad(image, ((top, 0), (left, 0), (0, 0)), mode="edge")
        assert np.array_equal(shifted, degrade.jpeg(padded, 20)[top:, left:])
        offsets.add(int(left) % 8)
        assert edge_excess(shifted, -int(left)) > 1.3  # the blocks moved with the offset
    assert len(offsets) > 2


def test_the_compressed_track_adds_jpeg_to_the_classic_one() -> None:
    stages = degrade.track("compressed", "super-resolution", 2).stages
    assert [type(s).__name__ for s in stages] == ["Resize", "Jpeg"]
    assert stages[1].quality == (30.0, 30.0) and not stages[1].shift
    assert degrade.track("compressed", "dejpeg", 1) == degrade.track("classic", "dejpeg", 1)


def test_classic_bicubic_downscaling_matches_matlab_style_resizing() -> None:
    from PIL import Image

    image = photos.load("astronaut")
    for scale in (2, 4):
        small = degrade.track("classic", "super-resolution", scale)(image, rng())
        assert small.shape == (512 // scale, 512 // scale, 3)
        side = 512 // scale
        reference = Image.fromarray((image * 255).round().astype(np.uint8)).resize(
            (side, side), Image.Resampling.BICUBIC
        )  # antialiased, like MATLAB's imresize
        assert np.abs(small * 255 - np.asarray(reference)).mean() < 0.5


@pytest.mark.parametrize("kernel", list(degrade.KERNELS))
def test_resizing_reaches_the_exact_size_with_every_kernel(kernel: str) -> None:
    image = photos.load("rocket")[:97, :131]
    for size in ((48, 65), (31, 40), (150, 200)):
        out = degrade.resize(image, size, degrade.KERNELS[kernel])
        assert out.shape == (*size, 3) and abs(out.mean() - image.mean()) < 0.02


def test_a_chain_is_reproducible_by_seed() -> None:
    chain = Degradation((Blur(), Resize(factor=(0.4, 1.3)), Noise(poisson=0.5), Jpeg(),
                         Blur(p=0.5), Resize(), Noise(p=0.5), Jpeg(p=0.8)), scale=2)  # fmt: skip
    image = photos.load("rocket")[:96, :128]
    first, again, other = chain(image, rng(7)), chain(image, rng(7)), chain(image, rng(8))
    assert first.shape == (48, 64, 3)
    assert np.array_equal(first, again) and not np.array_equal(first, other)


def test_the_realistic_track_is_fixed() -> None:
    image = photos.load("rocket")[:96, :128]
    realistic = degrade.track("realistic", "super-resolution", 2)
    assert np.array_equal(realistic(image, rng(1)), realistic(image, rng(1)))
    assert realistic(image, rng(1)).shape == (48, 64, 3)


def test_a_chain_must_end_at_the_input_size() -> None:
    with pytest.raises(UsageError, match="last resize must be one to the input size"):
        Degradation((Noise(),), scale=2)
    with pytest.raises(UsageError, match="last resize"):
        Degradation((Resize(), Resize(factor=(0.5, 1.0))), scale=1)
    with pytest.raises(UsageError, match=r"sigma \[30.0, 5.0\] is not a range"):
        Noise(sigma=(30.0, 5.0))


def test_augmentation_keeps_the_pixels_and_jitter_stays_in_range() -> None:
    image = photos.load("rocket")[:64, :64]
    moved = [Augment(jitter=0.0)(image, rng(seed)) for seed in range(8)]
    assert all(np.array_equal(np.sort(m, axis=None), np.sort(image, axis=None)) for m in moved)
    assert len({m.tobytes() for m in moved}) > 2
    jittered = Augment(flip=False, rotate=False, jitter=0.3)(image, rng())
    assert jittered.min() >= 0 and jittered.max() <= 1 and not np.allclose(jittered, image)
