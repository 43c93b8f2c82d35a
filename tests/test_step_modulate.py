"""``modulate``: brightness, saturation and hue through the whole engine."""

from __future__ import annotations

import pytest
from conftest import deep, load, photo

import pixelmill
from pixelmill.errors import PipelineError


def run(make_image, tmp_path, pipeline: str, image=None):
    name = "".join(c if c.isalnum() else "-" for c in pipeline)
    source = make_image(f"in-{name}.png", image if image is not None else photo(160, 120))
    return load(pixelmill.run(source, tmp_path / f"out-{name}.png", pipeline).destination)


def test_brightness_saturation_and_hue_do_what_they_say(make_image, tmp_path) -> None:
    plain = run(make_image, tmp_path, "modulate")
    brighter = run(make_image, tmp_path, "modulate:1.3")
    assert brighter.avg() > plain.avg() + 10
    grey = run(make_image, tmp_path, "modulate::0")
    assert (grey[0] - grey[1]).abs().max() <= 2 and (grey[1] - grey[2]).abs().max() <= 2
    turned = run(make_image, tmp_path, "modulate:hue=180")
    assert (turned.cast("float") - plain.cast("float")).abs().avg() > 5
    assert (turned.width, turned.height, turned.bands) == (160, 120, 3)


def test_unchanged_by_default_and_alpha_and_depth_kept(make_image, tmp_path) -> None:
    source = photo(64, 48, bands=4)
    assert (run(make_image, tmp_path, "modulate", source) - source).abs().max() == 0
    kept = run(make_image, tmp_path, "modulate:0.8:1.2:30", deep(source))
    assert (kept.format, kept.bands) == ("ushort", 4)
    assert (kept[3] - deep(source)[3]).abs().max() == 0  # alpha untouched


def test_out_of_range_values_are_refused() -> None:
    with pytest.raises(PipelineError, match="modulate: saturation '-1'"):
        pixelmill.Pipeline.parse("modulate:1:-1")
