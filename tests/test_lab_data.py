"""The lab's data: synthetic images, photographs, the held-out guard, training pairs."""

from __future__ import annotations

import numpy as np
import pytest

from pixelmill.config import Settings
from pixelmill.errors import ModelError, UsageError
from pixelmill.lab import export, installed, photos, pixels, synthetic
from pixelmill.lab.data import Pairs
from pixelmill.lab.nets import ConvNet
from pixelmill.lab.recipe import parse


def spectrum_slope(image: np.ndarray) -> float:
    """Slope of the radially averaged power spectrum of the grey image, in log-log."""
    grey = image.mean(axis=2) - image.mean()
    power = np.abs(np.fft.fftshift(np.fft.fft2(grey))) ** 2
    side = grey.shape[0]
    ys, xs = np.indices(power.shape) - side // 2
    radius = np.hypot(xs, ys).astype(int).ravel()
    radial = np.bincount(radius, power.ravel()) / np.bincount(radius)
    freqs = np.arange(4, side // 2 - 8)
    return float(np.polyfit(np.log(freqs), np.log(radial[freqs]), 1)[0])


def test_leaf_sizes_follow_the_power_law() -> None:
    radii = synthetic.power_law(np.random.default_rng(0), 100_000, 3.0, 1.0, 1e6)
    assert radii.min() >= 1.0 and 1 + len(radii) / np.log(radii).sum() == pytest.approx(3, abs=0.05)
    bounded = synthetic.power_law(np.random.default_rng(0), 10_000, 3.0, 2.0, 40.0)
    assert bounded.min() >= 2.0 and bounded.max() <= 40.0


def test_dead_leaves_look_like_natural_images() -> None:
    images = [synthetic.dead_leaves(128, np.random.default_rng(seed)) for seed in range(4)]
    for image in images:
        assert image.shape == (128, 128, 3) and image.dtype == np.float32
        assert image.min() >= 0 and image.max() <= 1
        assert -3.5 < spectrum_slope(image) < -1.5  # natural images: about -2 to -3
        levels = np.unique(pixels.to_uint8(image).reshape(-1, 3), axis=0)
        assert len(levels) > 50  # many leaves, not a few blobs
        flat = np.abs(np.diff(image, axis=1)).max(axis=2) < 1e-3
        assert flat.mean() > 0.3  # and flat regions between edges
    assert len({image.tobytes() for image in images}) == 4
    again = synthetic.dead_leaves(128, np.random.default_rng(0))
    assert np.array_equal(again, images[0])


@pytest.mark.parametrize("make", synthetic.TEXTURES, ids=lambda f: f.__name__)
def test_textures_are_seeded_images_with_structure(make) -> None:
    first = make(96, np.random.default_rng(3))
    assert first.shape == (96, 96, 3) and first.dtype == np.float32
    assert 0 <= first.min() and first.max() <= 1 and first.std() > 0.005
    assert np.array_equal(first, make(96, np.random.default_rng(3)))
    assert not np.array_equal(first, make(96, np.random.default_rng(4)))


def test_held_out_and_training_photographs_are_apart() -> None:
    assert not set(photos.HELD_OUT) & set(photos.TRAINING)
    for name in photos.TRAINING:
        assert photos.held_out_match(photos.load(name)) is None, name
    for name in photos.HELD_OUT:
        assert photos.held_out_match(photos.load(name)) == name


def test_training_refuses_held_out_photographs_in_a_folder(tmp_path, tiny_recipe) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    pixels.write_png(photos.load("rocket"), str(folder / "rocket.png"))
    copy = pixels.to_vips(pixels.to_uint8(photos.load("coffee"))).resize(0.8)
    copy.copy(interpretation="srgb").jpegsave(str(folder / "holiday.jpg"), Q=80)
    recipe = parse(tiny_recipe(data={"photos": 1.0, "bundled": False,
                                     "folders": [str(folder)]}), "test")  # fmt: skip
    with pytest.raises(UsageError, match="holiday.jpg: is the held-out evaluation photograph "
                                         "'coffee'"):  # fmt: skip
        Pairs(recipe, Settings())
    (folder / "holiday.jpg").unlink()
    pairs = Pairs(recipe, Settings())
    degraded, target = pairs.pair(0)
    assert target.shape == (24, 24, 3) and degraded.shape == (12, 12, 3)


def test_small_photographs_are_left_out(tmp_path, tiny_recipe) -> None:
    pixels.write_png(photos.load("rocket")[:20, :20], str(tmp_path / "tiny.png"))
    pixels.write_png(photos.load("rocket"), str(tmp_path / "big.png"))
    recipe = parse(tiny_recipe(data={"photos": 1.0, "bundled": False,
                                     "folders": [str(tmp_path)]}), "test")  # fmt: skip
    pairs = Pairs(recipe, Settings())
    assert pairs.photos is not None and [e.rsplit("/", 1)[-1] for e in pairs.photos.left_out] == [
        "tiny.png"
    ]


def test_pairs_are_a_function_of_seed_and_index(tiny_recipe) -> None:
    recipe = parse(tiny_recipe(), "test")
    pairs = Pairs(recipe, Settings())
    assert len(pairs) == 6 * 2
    first = pairs[5]
    assert first[0].shape == (3, 12, 12) and first[1].shape == (3, 24, 24)
    assert all(t.dtype.is_floating_point and 0 <= t.min() and t.max() <= 1 for t in first)
    again = Pairs(recipe, Settings())[5]
    assert all(a.equal(b) for a, b in zip(first, again))
    assert not pairs[6][1].equal(first[1])
    other = Pairs(parse(tiny_recipe(train={"seed": 1}), "test"), Settings())[5]
    assert not other[1].equal(first[1])


def test_a_chained_recipe_learns_from_the_outputs_of_the_models_it_follows(tiny_recipe) -> None:
    plain = Pairs(parse(tiny_recipe(degradation=["resize", "jpeg"]), "test"), Settings()).pair(3)
    recipe = parse(tiny_recipe(degradation=["resize", "jpeg"], follows=["dejpeg"]), "test")
    chained = Pairs(recipe, Settings()).pair(3)
    assert np.array_equal(chained[1], plain[1])  # the same target
    restored = installed.restorer("dejpeg", Settings())(plain[0])
    assert np.array_equal(chained[0], restored) and not np.array_equal(restored, plain[0])
    assert np.array_equal(restored, pixels.quantised(restored))  # 8 bits, as between steps
    provenance = export.manifest_for(recipe, ConvNet(recipe.net), 6).provenance
    assert "trained on the outputs of dejpeg" in provenance
    with pytest.raises(UsageError, match="keep the size"):
        Pairs(parse(tiny_recipe(follows=["sr-x2"]), "test"), Settings())
    with pytest.raises(ModelError, match="no-such-model"):
        Pairs(parse(tiny_recipe(follows=["no-such-model"]), "test"), Settings())


def test_photographs_come_from_any_storage_prefix(tiny_recipe) -> None:
    import fsspec

    memory = fsspec.filesystem("memory")
    rocket = pixels.to_vips(pixels.to_uint8(photos.load("rocket"))).copy(interpretation="srgb")
    memory.pipe("/lab-photos/day/rocket.png", rocket.pngsave_buffer())
    try:
        data = {"photos": 1.0, "bundled": False, "folders": ["memory://lab-photos/"]}
        pairs = Pairs(parse(tiny_recipe(data=data), "test"), Settings())
        assert pairs.photos is not None
        assert pairs.photos.entries == ["memory://lab-photos/day/rocket.png"]
        degraded, target = pairs.pair(3)
        assert degraded.shape == (12, 12, 3) and target.shape == (24, 24, 3) and target.std() > 0
    finally:
        memory.rm("/lab-photos", recursive=True)
