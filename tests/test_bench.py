"""``pixelmill bench`` on three pipelines: its JSON, its ranking, and its HTML report opened in
headless Chromium, with a screenshot that must show the tables, plots and crops."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import pyvips

from pixelmill.bench import images

PIPELINES = ("scale:2:kernel=nearest", "scale:2:kernel=cubic", "model:sr-x2")


@pytest.fixture(scope="module")
def image_set(tmp_path_factory):
    folder = tmp_path_factory.mktemp("set")
    written = images.write(folder, large=False)
    for path in written:  # a few small ones keep the test quick
        if path.stem not in ("astronaut", "graphics", "zone-plate"):
            path.unlink()
    return folder


def test_the_image_set_is_diverse_and_says_where_it_comes_from(tmp_path) -> None:
    written = images.write(tmp_path, large=False)
    names = {p.stem for p in written}
    assert {"portrait", "astronaut", "coffee", "zone-plate", "perlin", "graphics"} <= names
    licences = (tmp_path / "LICENCES.txt").read_text()
    assert all(p.name in licences for p in written) and "CC0" in licences
    graphics = pyvips.Image.new_from_file(str(tmp_path / "graphics.png"))
    assert graphics.numpy().std() > 30  # edges and type, not a blank page
    assert images.texture(64, 48).width == 64


@pytest.fixture(scope="module")
def report(image_set, tmp_path_factory):
    from pixelmill.cli import main

    out = tmp_path_factory.mktemp("report")
    with pytest.raises(SystemExit) as stop:
        main(["bench", "-p", PIPELINES[0], *PIPELINES[1:], "--images", str(image_set),
              "--degrade", "scale:0.5:kernel=cubic/encode:jpeg:q=90", "--out", str(out), "-q"])
    assert stop.value.code == 0
    return out


def test_bench_ranks_pipelines_by_quality_against_the_ground_truth(report) -> None:
    data = json.loads((report / "report.json").read_text())
    assert data["pipelines"] == list(PIPELINES) and data["rank_by"] == "ssimulacra2"
    assert len(data["results"]) == 3 * len(data["images"]) == 9
    ranking = [row["pipeline"] for row in data["ranking"]]
    assert ranking[-1] == "scale:2:kernel=nearest"  # the blockiest upscale comes last
    for row in data["ranking"]:
        assert set(row["metrics"]) == {"psnr-y", "ssim", "ms-ssim", "ssimulacra2", "ciede2000"}
        assert row["mp_per_s"] > 0 and row["bytes"] > 0


@pytest.mark.browser
def test_the_report_opens_in_chromium_with_tables_plots_and_crops(report, tmp_path) -> None:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    assert chromium, "Chromium is missing: run scripts/install-tools"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1200, "height": 800})
        page.goto((report / "report.html").as_uri())
        found = page.evaluate("""() => ({
            rankingRows: document.querySelectorAll('#ranking tr').length,
            detailRows: document.querySelectorAll('#details tr').length,
            plots: [...document.querySelectorAll('img.plot')].map(i => i.naturalWidth),
            crops: [...document.querySelectorAll('figure img')].map(i => i.naturalWidth),
            external: [...document.querySelectorAll('[src]')].filter(
                e => !e.getAttribute('src').startsWith('data:')).length,
        })""")
        shot = tmp_path / "report.png"
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert found["rankingRows"] == 1 + 3 and found["detailRows"] == 1 + 9
    assert len(found["plots"]) == 3 and min(found["plots"]) > 300
    assert len(found["crops"]) == 3 * (2 + 3) and min(found["crops"]) > 0
    assert found["external"] == 0  # self-contained
    screenshot = pyvips.Image.new_from_file(str(shot)).numpy()
    assert screenshot.shape[0] > 1500  # tables, plots and crops below each other
    rows = screenshot[..., :3].std(axis=(1, 2))
    assert np.count_nonzero(rows > 5) > 800  # most of the page has something drawn on it


def test_without_ground_truth_outputs_get_indicators_and_upscales_consistency(tmp_path) -> None:
    from pixelmill.bench import measure

    (tmp_path / "in").mkdir()
    images.graphics().pngsave(str(tmp_path / "in" / "g.png"))
    bench = measure.run(["scale:2:kernel=cubic", "sharpen"], str(tmp_path / "in"),
                        tmp_path / "work")  # fmt: skip
    upscale, sharpened = bench.results
    assert set(upscale.metrics) == {*measure.WITHOUT_TRUTH, "consistency"}
    assert set(sharpened.metrics) == set(measure.WITHOUT_TRUTH)
    assert bench.rank_by == "mp-per-s" and len(bench.summary()) == 2


@pytest.mark.parametrize(("options", "message"), [
    ({"metrics": ["ssim"]}, "needs a ground truth"),
    ({"rank_by": "noise", "metrics": ["sharpness"]}, "cannot rank by noise"),
])  # fmt: skip
def test_bench_refuses_what_it_cannot_measure(tmp_path, options, message) -> None:
    from pixelmill.bench import measure
    from pixelmill.errors import UsageError

    (tmp_path / "in").mkdir()
    images.graphics().pngsave(str(tmp_path / "in" / "g.png"))
    with pytest.raises(UsageError, match=message):
        measure.run(["sharpen"], str(tmp_path / "in"), tmp_path / "work", **options)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="holds no images"):
        measure.run(["sharpen"], str(tmp_path / "empty"), tmp_path / "w2")
