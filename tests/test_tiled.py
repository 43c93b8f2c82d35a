"""Tiled inference equals whole-image inference, streams in bounded memory, and shows no seams."""

from __future__ import annotations

import dataclasses

import numpy as np
import onnxruntime
import pytest
import pyvips
from conftest import deep, load, photo, pixelmill_peak_mb

import pixelmill
from pixelmill.config import Settings
from pixelmill.engine.tiled import blend, plan_bytes, plan_for, run_tiles, windows
from pixelmill.errors import ModelError
from pixelmill.models import toy
from pixelmill.models.registry import find

MODELS = {"toy-x1": 1, "toy-x2": 2, "toy-x4": 4}


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    for name, scale in MODELS.items():
        toy.build(folder, name, scale=scale, seed=scale)
    toy.build(folder, "toy-grey", scale=2, channels=1, seed=7)
    toy.build(folder, "toy-deep", scale=1, layers=8, seed=8)
    return folder


@pytest.fixture
def settings(models_dir, monkeypatch) -> Settings:
    monkeypatch.setenv("PIXELMILL_MODELS_DIR", str(models_dir))
    return Settings.load()


def array(image: pyvips.Image) -> np.ndarray:
    dtype = np.uint16 if image.format == "ushort" else np.uint8
    return np.frombuffer(image.write_to_memory(), dtype).reshape(image.height, image.width,
                                                                  image.bands)  # fmt: skip


def whole_image(name: str, pixels: np.ndarray, settings: Settings) -> np.ndarray:
    """The model run once over the whole image with onnxruntime alone, as the reference."""
    model = find(name, settings)
    session = onnxruntime.InferenceSession(str(model.path), providers=["CPUExecutionProvider"])
    peak = 65535.0 if pixels.dtype == np.uint16 else 255.0
    x = pixels.astype(np.float32).transpose(2, 0, 1)[None] / peak
    if model.manifest.channels == 1:
        x = x.transpose(1, 0, 2, 3)  # each colour band as its own batch item
    y = session.run(None, {session.get_inputs()[0].name: x})[0]
    if model.manifest.channels == 1:
        y = y.transpose(1, 0, 2, 3)
    return np.clip(np.rint(y[0].transpose(1, 2, 0) * peak), 0, peak)


def test_windows_cover_every_pixel_once_with_full_halos() -> None:
    for length, core, halo in [(300, 64, 3), (257, 257, 5), (10, 64, 3), (129, 64, 0), (257, 128, 3)]:
        cuts = windows(length, core, halo)
        assert [c.core0 for c in cuts] == list(range(0, length, core))
        assert cuts[-1].core1 == length
        for cut in cuts:
            assert 0 <= cut.start <= cut.core0 and cut.core1 <= cut.stop <= length
            assert cut.stop - cut.start == min(core + 2 * halo, length)
            assert cut.core0 - cut.start >= halo or cut.start == 0
            assert cut.stop - cut.core1 >= halo or cut.stop == length
        assert [c.start for c in cuts] == sorted(c.start for c in cuts)


@pytest.mark.parametrize("tile", [64, 128, 257, 512])
@pytest.mark.parametrize("name", list(MODELS))
def test_tiled_equals_whole_image_rgb(make_image, tmp_path, settings, name, tile) -> None:
    image = photo(300, 220)
    source = make_image("in.png", image)
    out = pixelmill.run(source, tmp_path / "o.png", f"model:{name}:tile={tile}:batch=3",
                        settings=settings)  # fmt: skip
    expected = whole_image(name, array(image), settings)
    got = array(load(out.destination))
    assert got.shape == expected.shape
    assert np.abs(got.astype(int) - expected).max() <= 1


def run_model(make_image, tmp_path, image: pyvips.Image, pipeline: str,
              settings: Settings) -> pyvips.Image:  # fmt: skip
    source = make_image("in.png", image)
    return load(pixelmill.run(source, tmp_path / "o.png", pipeline, settings=settings).destination)


@pytest.mark.parametrize("tile", [64, 257])
def test_tiled_equals_whole_image_sixteen_bit(make_image, tmp_path, settings, tile) -> None:
    image = deep(photo(200, 150))
    out = run_model(make_image, tmp_path, image, f"model:toy-x2:tile={tile}", settings)
    assert out.format == "ushort"
    expected = whole_image("toy-x2", array(image), settings)
    assert np.abs(array(out).astype(int) - expected).max() <= 1


@pytest.mark.parametrize("tile", [64, 128])
def test_alpha_is_resized_beside_the_model(make_image, tmp_path, settings, tile) -> None:
    """Alpha is enlarged with the pixel centres where the model puts them: as Pillow's bicubic
    enlarging does, band by band with no seams."""
    from PIL import Image

    image = photo(200, 150).bandjoin(photo(200, 150, bands=1, seed=9))
    out = run_model(make_image, tmp_path, image, f"model:toy-x2:tile={tile}", settings)
    assert (out.bands, out.width, out.height) == (4, 400, 300)
    colour = whole_image("toy-x2", array(image)[:, :, :3], settings)
    assert np.abs(array(out)[:, :, :3].astype(int) - colour).max() <= 1
    alpha = np.asarray(Image.fromarray(array(image)[:, :, 3]).resize((400, 300), Image.BICUBIC))
    assert np.abs(array(out)[:, :, 3].astype(int) - alpha).max() <= 2


@pytest.mark.parametrize("tile", [64, 257])
def test_grey_images_and_grey_models(make_image, tmp_path, settings, tile) -> None:
    grey = photo(200, 150, bands=1)
    source = make_image("grey.png", grey)
    out = load(pixelmill.run(source, tmp_path / "o.png", f"model:toy-x2:tile={tile}",
                             settings=settings).destination)  # fmt: skip
    assert (out.bands, out.interpretation) == (1, "b-w")
    rgb = whole_image("toy-x2", array(grey.colourspace("srgb")), settings).astype(np.uint8)
    expected = array(pyvips.Image.new_from_array(rgb, interpretation="srgb").colourspace("b-w"))
    assert np.abs(array(out).astype(int) - expected).max() <= 1
    colour = photo(200, 150)
    source = make_image("rgb.png", colour)
    out = load(pixelmill.run(source, tmp_path / "g.png", f"model:toy-grey:tile={tile}",
                             settings=settings).destination)  # fmt: skip
    expected = whole_image("toy-grey", array(colour), settings)
    assert np.abs(array(out).astype(int) - expected).max() <= 1


def test_no_seams_along_tile_borders(make_image, tmp_path, settings) -> None:
    """Gradient energy across tile borders matches the interior; without overlap it does not
    match whole-image output, so the check can fail."""
    image = photo(512, 512)
    source = make_image("in.png", image)
    out = array(load(pixelmill.run(source, tmp_path / "o.png", "model:toy-x1:tile=64",
                                   settings=settings).destination)).astype(float)  # fmt: skip
    step = np.abs(np.diff(out, axis=1)).mean(axis=(0, 2))  # energy between column x and x+1
    borders = [x - 1 for x in range(64, 512, 64)]
    interior = np.delete(step, borders)
    assert step[borders].mean() == pytest.approx(interior.mean(), rel=0.15)
    seamy = array(load(pixelmill.run(source, tmp_path / "s.png", "model:toy-x1:tile=64:overlap=0",
                                     settings=settings).destination)).astype(int)  # fmt: skip
    assert np.abs(seamy - out).max() > 1


def test_model_composes_with_steps_before_and_after(make_image, tmp_path, settings) -> None:
    image = photo(240, 160)
    image.set_type(pyvips.GValue.gint_type, "orientation", 6)
    source = make_image("in.jpg", image)
    out = pixelmill.run(source, tmp_path / "o.webp",
                        "autorotate/crop:100:100/model:toy-x2/rotate:90/sharpen:0.3/encode:webp",
                        settings=settings)  # fmt: skip
    assert (out.width, out.height) == (200, 200)
    assert "model toy-x2: tile" in out.notes[0] and "batch" in out.notes[0]


def test_large_model_run_streams_in_bounded_memory(tmp_path, models_dir) -> None:
    import os

    source = tmp_path / "big.jpg"
    photo(2500, 2000).write_to_file(str(source), Q=90)
    env = {**os.environ, "PIXELMILL_MODELS_DIR": str(models_dir)}
    small = pixelmill_peak_mb("run", str(source), str(tmp_path / "s.jpg"), "-p",
                              "crop:250:2000/model:toy-x2:tile=128:batch=4", "-q", env=env)  # fmt: skip
    large = pixelmill_peak_mb("run", str(source), str(tmp_path / "o.jpg"), "-p",
                              "model:toy-x2:tile=128:batch=4", "-q", env=env)  # fmt: skip
    assert load(tmp_path / "o.jpg").width == 5000
    # ten times the width (and area): memory grows with the band, far less than the 240 MB of
    # float32 pixels the whole output would need
    assert large - small < 60, f"{small:.0f} MB for 250 wide, {large:.0f} MB for 2500 wide"


def test_truncated_input_through_a_model_names_the_decoder(tmp_path, settings) -> None:
    data = photo(600, 400).write_to_buffer(".jpg")
    (tmp_path / "t.jpg").write_bytes(data[: len(data) // 3])
    with pytest.raises(pixelmill.InputError, match="VipsJpeg: premature end"):
        pixelmill.run(tmp_path / "t.jpg", tmp_path / "o.png", "model:toy-x1", settings=settings)
    assert not (tmp_path / "o.png").exists()


def test_blend_weights_sum_to_one() -> None:
    flat = np.full((4, 10, 3), 200, np.uint8)
    assert (blend(flat, flat, axis=1) == flat).all()
    ramp = blend(np.zeros((10, 4), np.uint16), np.full((10, 4), 1000, np.uint16), axis=0)
    assert (np.diff(ramp[:, 0].astype(int)) > 0).all() and ramp[0, 0] == 50 and ramp[-1, 0] == 950


def border_and_interior_energy(pixels: np.ndarray, tile: int) -> tuple[float, float]:
    """Mean absolute step between neighbouring columns, across tile borders and elsewhere."""
    step = np.abs(np.diff(pixels.astype(float), axis=1)).mean(axis=(0, 2))
    borders = [x - 1 for x in range(tile, pixels.shape[1], tile)]
    return step[borders].mean(), np.delete(step, borders).mean()


def test_overlap_below_the_receptive_field_is_blended(make_image, tmp_path, settings) -> None:
    """toy-deep sees 8 pixels around; with an overlap of 4 no tile can be exact, and the tiles
    are cross-faded over 8 pixels: far closer to whole-image inference than plain cropping
    (overlap 0), and the step at the borders mostly gone."""
    image = photo(400, 300)
    source = make_image("in.png", image)
    expected = whole_image("toy-deep", array(image), settings)

    def tiled(overlap: int) -> tuple[np.ndarray, str]:
        out = pixelmill.run(source, tmp_path / f"o{overlap}.png",
                            f"model:toy-deep:tile=64:overlap={overlap}", settings=settings)
        return array(load(out.destination)).astype(int), out.notes[0]

    (blended, note), (cropped, _) = tiled(4), tiled(0)
    assert "overlap 4 (blended" in note
    assert np.abs(blended - expected).mean() < 0.25 * np.abs(cropped - expected).mean()
    for axis in (0, 1):
        steps = [np.subtract(*border_and_interior_energy(np.swapaxes(p, 0, axis), 64))
                 for p in (blended, cropped, expected)]  # fmt: skip
        assert steps[0] - steps[2] < 0.1 * (steps[1] - steps[2])  # excess over the reference


def test_an_out_of_memory_tile_runs_again_smaller(settings) -> None:
    """A batch that runs out of memory runs in halves, a tile in two overlapping halves of its
    width; the output is the same, and a tile that cannot shrink further is an error."""
    from pixelmill.models.runtime import session_for

    session = session_for("toy-x2", settings)
    tiles = array(photo(134, 134))[None].repeat(3, axis=0)

    class Tight:
        manifest = session.manifest

        def __init__(self, widest: int) -> None:
            self.widest, self.calls = widest, []

        def run(self, batch: np.ndarray) -> np.ndarray:
            self.calls.append(batch.shape[:3])
            if len(batch) > 1 or batch.shape[2] > self.widest:
                raise RuntimeError("Failed to allocate memory for requested buffer")
            return session.run(batch)

    tight = Tight(widest=80)
    assert (run_tiles(tight, tiles, 3) == session.run(tiles)).all()
    assert (1, 134, 70) in tight.calls and (1, 134, 134) in tight.calls
    with pytest.raises(ModelError, match=r"out of memory on one tile of 134×\d+: Failed to allocate"):
        run_tiles(Tight(widest=10), tiles[:1], 3)


def test_a_model_stops_when_the_steps_after_it_are_done(make_image, tmp_path, settings) -> None:
    image = photo(300, 400)
    source = make_image("in.png", image)
    out = pixelmill.run(source, tmp_path / "o.png", "model:toy-x2:tile=64/crop:600:100:x=0:y=0",
                        settings=settings)  # fmt: skip
    expected = whole_image("toy-x2", array(image), settings)[:100]
    assert np.abs(array(load(out.destination)).astype(int) - expected).max() <= 1


def test_sigterm_during_a_model_run_leaves_nothing(tmp_path, models_dir) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    source = tmp_path / "big.png"
    photo(1500, 1500).write_to_file(str(source))
    out = tmp_path / "out"
    env = {**os.environ, "PIXELMILL_MODELS_DIR": str(models_dir)}
    child = subprocess.Popen(
        [sys.executable, "-m", "pixelmill", "run", str(source), str(out / "o.png"), "-p",
         "model:toy-x4:tile=64"], stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not (out.exists() and os.listdir(out)) and time.monotonic() < deadline:
        time.sleep(0.01)  # the spool file exists once the model has started
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=60) == 143
    assert "pixelmill: stopped: " in child.stderr.read()
    assert not out.exists() or os.listdir(out) == []


def test_the_plan_keeps_within_the_memory_budget(settings) -> None:
    """The default tile is the smallest doing about as little work per pixel as any larger one
    (256 for an overlap of 4, against 32…256), one 264² tile per call on the CPU; a tighter
    budget takes a smaller tile, and every plan's bytes stay within the budget."""
    manifest = find("sr-x2", settings).manifest
    generous = plan_for(manifest, 512.0, 3000, None, None, None, budget=512 * 2**20)
    assert (generous.tile, generous.halo, generous.batch) == (256, 4, 1)
    for budget in (512, 128, 48, 24):
        plan = plan_for(manifest, 512.0, 3000, None, None, None, budget=budget * 2**20)
        used = plan_bytes(plan.tile, plan.halo, plan.batch, 2, 3000, 3, 512.0)
        assert used <= budget * 2**20, (budget, plan)
        assert plan.tile * plan.batch >= min(generous.tile, plan.tile)
    assert plan_for(manifest, 512.0, 3000, None, None, None, budget=24 * 2**20).tile < 256
    # a small tile is given batches that fill a call; what is asked for is kept
    small = plan_for(manifest, 512.0, 3000, 64, None, None, budget=512 * 2**20)
    assert (small.tile, small.batch) == (64, 13)  # ⌈65,536 / 72²⌉
    asked = plan_for(manifest, 512.0, 3000, 100, 10, 3, budget=1)
    assert (asked.tile, asked.halo, asked.batch) == (100, 10, 3)
    # on a GPU the tensors are in the GPU's memory, and a band's tiles go in one call
    assert plan_for(manifest, 512.0, 3000, None, None, None, budget=512 * 2**20,
                    on_gpu=True).batch == 12  # fmt: skip


def test_a_larger_tile_must_buy_speed(settings) -> None:
    manifest = find("sr-x2", settings).manifest
    wide = dataclasses.replace(manifest, receptive_field=40, tile=1024)
    plans = {rf: plan_for(dataclasses.replace(wide, receptive_field=rf), 256.0, 8000, None, None,
                          None, budget=2**31).tile for rf in (0, 4, 20, 40)}  # fmt: skip
    # work per pixel ((tile + 2·overlap) / tile)² within 5 % of the least, among the tiles
    # whose windows are at most 2¹⁹ pixels (not 1024: 1064² for an overlap of 20)
    assert plans == {0: 32, 4: 256, 20: 512, 40: 512}
    reach = dataclasses.replace(wide, receptive_field=20)
    assert plan_for(reach, 256.0, 8000, None, None, None, budget=64 * 2**20).tile == 128  # 256
    # would plan 110 MB; on a GPU windows may be larger
    assert plan_for(reach, 256.0, 8000, None, None, None, budget=2**31, on_gpu=True).tile == 1024


def test_the_default_memory_budget_is_a_share_of_the_machine(monkeypatch) -> None:
    from pixelmill import config

    monkeypatch.setattr(config, "machine_memory", lambda: 2 * 2**30)
    assert Settings().max_memory == 512 * 2**20
    monkeypatch.setattr(config, "machine_memory", lambda: 64 * 2**30)
    assert Settings().max_memory == 2**30
    monkeypatch.setattr(config, "machine_memory", lambda: None)
    assert Settings().max_memory == 2**30
    assert config.machine_memory() is None or config.machine_memory() > 0


def test_a_run_keeps_its_model_within_max_memory(tmp_path) -> None:
    """The case that asked for the budget: a 64-channel ×2 model preferring 512² tiles, on an
    image 3,000 wide. Planned as before (a band's 6 tiles of 518² at once) it holds 1.9 GB and
    is stopped at the default 1 GiB; now it holds a fraction of the budget, and a tighter
    budget plans a smaller batch."""
    import json
    import os

    toy.build(tmp_path, "toy-wide", scale=2, width=64, seed=2)
    manifest = json.loads((tmp_path / "toy-wide.json").read_text())
    (tmp_path / "toy-wide.json").write_text(json.dumps({**manifest, "tile": 512}))
    source = tmp_path / "wide.jpg"
    photo(3000, 1200).write_to_file(str(source), Q=90)
    env = {**os.environ, "PIXELMILL_MODELS_DIR": str(tmp_path)}
    baseline = pixelmill_peak_mb("run", str(source), str(tmp_path / "p.jpg"), "-q", env=env)
    peaks, plans = {}, {}
    for budget in (128, 1024):
        args = ("run", str(source), str(tmp_path / "o.jpg"), "-p", "model:toy-wide",
                "--max-memory", str(budget * 2**20))  # fmt: skip
        peaks[budget] = pixelmill_peak_mb(*args, "-q", env=env) - baseline
        plan = next(p for p in pixelmill.run(source, tmp_path / "n.jpg", "model:toy-wide",
                                             settings=Settings.load().replace(
                                                 models_dir=str(tmp_path),
                                                 max_memory=budget * 2**20)).notes)
        plans[budget] = plan
    assert plans[1024].startswith("model toy-wide: tile 256, overlap 3, batch 1"), plans
    assert plans[128].startswith("model toy-wide: tile 128, overlap 3, batch 2"), plans
    assert peaks[1024] < 512, peaks
    assert peaks[128] < 128 + 256, peaks  # max_memory + MEMORY_MARGIN: what the watchdog allows
