"""Regions of images for the review viewer: cut from a pyramid made once, scaled to the screen,
never past 1:1, lined up between a source and its upscale, in sRGB whatever came in, refused for
bad input, and kept within a budget of bytes."""

from __future__ import annotations

import logging
import math
import os
import threading

import numpy as np
import pytest
import pyvips
from conftest import deep, photo

from pixelmill.config import Settings
from pixelmill.errors import InputError, LimitError, UsageError
from pixelmill.review.images import Previews


def decoded(body: bytes) -> np.ndarray:
    return pyvips.Image.new_from_buffer(body, "").numpy().astype(np.float32)


def saved(image: pyvips.Image, path) -> str:
    image.write_to_file(str(path))
    return str(path)


class Counting(Previews):
    """Previews that count the pyramids they make."""

    made = 0

    def _make(self, loc, path) -> None:
        type(self).made += 1
        super()._make(loc, path)


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> str:
    """A 6000×4000 photo-like JPEG (a smaller photo enlarged, with fine grain on top)."""
    grain = pyvips.Image.gaussnoise(500, 500, sigma=3, mean=0, seed=3).cast("char")
    smooth = photo(1500, 1000, seed=3).copy_memory().resize(4) * 0.7 + 20  # not clipped at white
    image = (smooth + grain.replicate(12, 8)).cast("uchar").copy(interpretation="srgb")
    return saved(image, tmp_path_factory.mktemp("big") / "big.jpg")


@pytest.fixture
def previews(tmp_path) -> Previews:
    return Previews(Settings(data_dir=str(tmp_path / "data")))


def test_regions_are_scaled_from_the_pyramid_and_match_the_pixels(previews, big) -> None:
    whole = pyvips.Image.new_from_buffer(previews.crop(big, 0, 0, 1, 1, 1024), "")
    assert (whole.width, whole.height) == (1024, 683)
    prepared = previews.prepare(big)
    assert (prepared.width, prepared.height) == (6000, 4000)
    assert prepared.levels == math.ceil(math.log2(6000 / 256)) + 1  # halved down to one tile
    exact = decoded(previews.crop(big, 0.5, 0.5, 0.1, 0.1, 4096))  # asks past 1:1
    assert exact.shape == (400, 600, 3)
    original = pyvips.Image.new_from_file(big).crop(3000, 2000, 600, 400).numpy()
    assert np.abs(exact - original).mean() < 3  # JPEG tiles of the same pixels
    smaller = decoded(previews.crop(big, 0.5, 0.5, 0.1, 0.1, 300))
    assert smaller.shape == (200, 300, 3)
    shrunk = pyvips.Image.new_from_file(big).crop(3000, 2000, 600, 400).resize(0.5).numpy()
    assert np.abs(smaller - shrunk).mean() < 3
    capped = pyvips.Image.new_from_buffer(previews.crop(big, 0, 0, 1, 1, 4096), "")
    assert (capped.width, capped.height) == (2048, 1365)  # MAX_SIDE


def test_a_source_and_its_upscale_line_up(previews, tmp_path) -> None:
    small = photo(1200, 800, seed=5)
    source = saved(small, tmp_path / "small.png")
    upscaled = saved(small.resize(2), tmp_path / "up.png")
    region = (0.3, 0.6, 0.1, 0.1, 120)
    cut, cut_up = decoded(previews.crop(source, *region)), decoded(previews.crop(upscaled, *region))
    assert cut.shape == cut_up.shape == (80, 120, 3)
    assert np.abs(cut - cut_up).mean() < 6
    elsewhere = decoded(previews.crop(upscaled, 0.35, 0.6, 0.1, 0.1, 120))
    assert np.abs(cut - elsewhere).mean() > 2 * np.abs(cut - cut_up).mean()


def test_a_pyramid_is_made_once_even_when_asked_at_once(tmp_path, big) -> None:
    previews = Counting(Settings(data_dir=str(tmp_path / "data")))
    found = []
    threads = [threading.Thread(target=lambda: found.append(previews.prepare(big)))
               for _ in range(4)]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(found) == 4 and len({p.path for p in found}) == 1 and Counting.made == 1
    assert os.listdir(previews.folder) == [os.path.basename(found[0].path)]  # no spool left
    made = os.stat(found[0].path)
    previews.crop(big, 0, 0, 1, 1, 512)
    again = os.stat(previews.prepare(big).path)
    assert (again.st_mtime_ns, again.st_ino) == (made.st_mtime_ns, made.st_ino)
    assert Counting.made == 1


def test_alpha_16_bits_grey_colour_profiles_and_orientation(previews, tmp_path) -> None:
    original = photo(300, 200)
    inputs = [saved(photo(300, 200, bands=4), tmp_path / "rgba.png"),
              saved(deep(original), tmp_path / "deep.png"),
              saved(original.colourspace("b-w"), tmp_path / "grey.png")]  # fmt: skip
    for path in inputs:
        image = pyvips.Image.new_from_buffer(previews.crop(path, 0, 0, 1, 1, 300), "")
        assert (image.width, image.height, image.bands, image.format) == (300, 200, 3, "uchar")
    half = decoded(previews.crop(inputs[0], 0, 0, 1, 1, 300))
    assert abs(half[:, -20:].mean() - original.numpy()[:, -20:].mean()) < 8  # opaque
    assert abs(half[:, :5].mean() - 128) < 8  # transparent: mid grey
    ramps = pyvips.Image.xyz(300, 200) * [255 / 299, 255 / 199]
    colours = ramps[0].bandjoin([ramps[1], 255 - ramps[0]]).cast("uchar").copy(interpretation="srgb")
    wide = colours.icc_transform("p3", input_profile="srgb")  # P3 numbers, P3 profile attached
    shown = decoded(previews.crop(saved(wide, tmp_path / "p3.png"), 0, 0, 1, 1, 300))
    assert np.abs(shown - colours.numpy()).mean() < 3
    assert np.abs(wide.numpy().astype(np.float32) - colours.numpy()).mean() > 6
    tilted = original.copy()
    tilted.set_type(pyvips.GValue.gint_type, "orientation", 6)
    turned = saved(tilted, tmp_path / "turned.jpg")
    upright = pyvips.Image.new_from_buffer(previews.crop(turned, 0, 0, 1, 1, 300), "")
    assert (upright.width, upright.height) == (200, 300)
    assert previews.size(turned) == (200, 300)


def test_bad_inputs_and_regions_are_refused(tmp_path, big) -> None:
    limited = Previews(Settings(data_dir=str(tmp_path / "data"), max_pixels=1_000_000))
    with pytest.raises(LimitError):
        limited.prepare(big)
    previews = Previews(Settings(data_dir=str(tmp_path / "data")))
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 100)
    with pytest.raises(InputError):
        previews.prepare(str(broken))
    assert previews.size(str(broken)) is None
    whole = photo(600, 400).jpegsave_buffer(Q=90)
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(whole[: len(whole) // 2])  # a good header, half the data
    with pytest.raises(InputError, match="truncated"):
        previews.prepare(str(truncated))
    assert os.listdir(previews.folder) == []  # no pyramid, no spool
    for region in ((-0.1, 0, 0.5, 0.5, 100), (0.5, 0, 0.6, 0.5, 100), (0, 0, 1, 1, 8),
                   (0, 0, 0, 1, 100), (0, 1, 0.5, 0.5, 100), (0, 0, 1, 1, 4097),
                   (math.nan, 0, 0.5, 0.5, 100)):  # fmt: skip
        with pytest.raises(UsageError):
            previews.crop(big, *region)


def test_the_least_recently_used_pyramids_go_past_the_budget(tmp_path) -> None:
    paths = [saved(photo(600, 400, seed=seed), tmp_path / f"p{seed}.png") for seed in range(3)]
    scratch = Previews(Settings(data_dir=str(tmp_path / "scratch")))
    sizes = [os.path.getsize(scratch.prepare(path).path) for path in paths]
    previews = Previews(Settings(data_dir=str(tmp_path / "data")), budget=sum(sizes) - 1)
    first, second = previews.prepare(paths[0]).path, previews.prepare(paths[1]).path
    previews.crop(paths[0], 0, 0, 1, 1, 100)  # the first is used again: the second is older
    third = previews.prepare(paths[2]).path
    assert [os.path.exists(path) for path in (first, second, third)] == [True, False, True]


def test_warming_prepares_in_the_background_and_logs_failures(previews, tmp_path,
                                                              caplog) -> None:  # fmt: skip
    good = saved(photo(600, 400), tmp_path / "good.png")
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    with caplog.at_level(logging.WARNING, logger="pixelmill.review"):
        previews.warm([good, str(broken)])
        previews._waiting.join()  # both taken and done with
    assert os.listdir(previews.folder) == [os.path.basename(previews.prepare(good).path)]
    assert any(str(broken) in record.getMessage() for record in caplog.records)
