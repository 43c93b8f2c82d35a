"""Regions of images for the review viewer: cut from a pyramid made once, scaled to the screen,
never past 1:1, lined up between a source and its upscale, and refused for bad input."""

from __future__ import annotations

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


@pytest.fixture
def big(tmp_path):
    path = tmp_path / "big.png"
    photo(3000, 2000, seed=3).pngsave(str(path), compression=1)
    return str(path)


def test_regions_are_scaled_from_the_pyramid_and_match_the_pixels(tmp_path, big) -> None:
    previews = Previews(Settings(data_dir=str(tmp_path / "data")))
    whole = pyvips.Image.new_from_buffer(previews.crop(big, 0, 0, 1, 1, 1024), "")
    assert (whole.width, whole.height) == (1024, 683)
    prepared = previews.prepare(big)
    assert (prepared.width, prepared.height) == (3000, 2000) and prepared.levels >= 4
    exact = decoded(previews.crop(big, 0.5, 0.5, 0.1, 0.1, 4096))  # asks past 1:1
    assert exact.shape == (200, 300, 3)
    original = pyvips.Image.new_from_file(big).crop(1500, 1000, 300, 200).numpy()
    assert np.abs(exact - original).mean() < 3  # JPEG tiles of the same pixels


def test_a_source_and_its_upscale_line_up(tmp_path, big) -> None:
    previews = Previews(Settings(data_dir=str(tmp_path / "data")))
    upscaled = tmp_path / "up.png"
    pyvips.Image.new_from_file(big).resize(2).pngsave(str(upscaled), compression=1)
    region = (0.3, 0.6, 0.05, 0.05, 150)
    small, large = decoded(previews.crop(big, *region)), decoded(previews.crop(str(upscaled), *region))
    assert small.shape == large.shape == (100, 150, 3)
    assert np.abs(small - large).mean() < 6


def test_a_pyramid_is_made_once_even_when_asked_at_once(tmp_path, big) -> None:
    previews = Previews(Settings(data_dir=str(tmp_path / "data")))
    found = []
    threads = [threading.Thread(target=lambda: found.append(previews.prepare(big)))
               for _ in range(4)]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({p.path for p in found}) == 1
    made = os.stat(found[0].path).st_mtime_ns
    files = os.listdir(os.path.dirname(found[0].path))
    assert files == [os.path.basename(found[0].path)]  # no spool left
    previews.prepare(big)
    assert os.stat(found[0].path).st_size > 0 and os.stat(found[0].path).st_mtime_ns >= made


def test_alpha_16_bit_grey_and_orientation(tmp_path) -> None:
    previews = Previews(Settings(data_dir=str(tmp_path / "data")))
    rgba = tmp_path / "rgba.png"
    photo(300, 200, bands=4).pngsave(str(rgba))
    wide = tmp_path / "deep.png"
    deep(photo(300, 200)).pngsave(str(wide))
    grey = tmp_path / "grey.png"
    photo(300, 200).colourspace("b-w").pngsave(str(grey))
    turned = tmp_path / "turned.jpg"
    tilted = photo(300, 200).copy()
    tilted.set_type(pyvips.GValue.gint_type, "orientation", 6)
    tilted.jpegsave(str(turned))
    for path in (rgba, wide, grey):
        image = pyvips.Image.new_from_buffer(previews.crop(str(path), 0, 0, 1, 1, 300), "")
        assert (image.width, image.height, image.bands) == (300, 200, 3)
    upright = pyvips.Image.new_from_buffer(previews.crop(str(turned), 0, 0, 1, 1, 300), "")
    assert (upright.width, upright.height) == (200, 300)
    assert previews.size(str(turned)) == (200, 300)


def test_bad_inputs_and_regions_are_refused(tmp_path, big) -> None:
    previews = Previews(Settings(data_dir=str(tmp_path / "data"), max_pixels=1_000_000))
    with pytest.raises(LimitError):
        previews.prepare(big)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 100)
    with pytest.raises(InputError):
        previews.prepare(str(broken))
    assert previews.size(str(broken)) is None
    fine = Previews(Settings(data_dir=str(tmp_path / "data")))
    for region in ((-0.1, 0, 0.5, 0.5, 100), (0.5, 0, 0.6, 0.5, 100), (0, 0, 1, 1, 8),
                   (0, 0, 0, 1, 100)):  # fmt: skip
        with pytest.raises(UsageError):
            fine.crop(big, *region)


def test_the_oldest_pyramids_go_past_the_budget(tmp_path) -> None:
    paths = []
    for seed in range(3):
        path = tmp_path / f"p{seed}.png"
        photo(600, 400, seed=seed).pngsave(str(path))
        paths.append(str(path))
    previews = Previews(Settings(data_dir=str(tmp_path / "data")), budget=1)
    made = [previews.prepare(path).path for path in paths]
    assert [os.path.exists(path) for path in made] == [False, False, True]
