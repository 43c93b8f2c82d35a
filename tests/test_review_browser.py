"""The review app in a real browser (Playwright driving Chromium) against a real ``pixelmill
serve``: a reviewer signs in and judges with the keyboard alone, zooms, pans and swipes, undoes;
two reviewers at once get different items; a held job output is released by her approval; her
verdicts reach the dataset and calibration, and survive a ``kill -9`` of the server.

With ``PIXELMILL_DOCS_SCREENSHOTS=1`` the screenshots of docs/review.md are written to
docs/images/ (else into the test's folder)."""

from __future__ import annotations

import os
import shutil
import signal
from importlib.resources import files
from pathlib import Path

import httpx
import pytest
import pyvips
from conftest import photo
from test_service import free_port
from test_service_reliability import processes, serve  # noqa: F401  (fixture)

from pixelmill.datasets import Record, Store
from pixelmill.review import Reviews
from pixelmill.review.accounts import Reviewers
from pixelmill.review.calibrate import calibrate

pytestmark = pytest.mark.browser
PASSWORD = "correct horse battery"
SAMPLE = pyvips.Image.new_from_file(str(files("pixelmill") / "data" / "sample.jpg"))
DOCS = Path(__file__).resolve().parent.parent / "docs" / "images"
QUEUE_TEXT = "Reject outputs with **halos** around edges, colour shifts or damaged faces."


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    assert chromium, "Chromium is missing: run scripts/install-tools"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield launched
        launched.close()


def screenshots(tmp_path: Path) -> Path:
    if os.environ.get("PIXELMILL_DOCS_SCREENSHOTS") == "1":
        return DOCS
    return tmp_path


def prepare(data: Path, items: int = 3, reviewers: tuple[str, ...] = ("ann",)) -> list[int]:
    """A queue ``faces`` of ``items`` sources beside their (blurred, doubled) outputs, each a
    dataset item with QC values, and reviewers who may review it."""
    url = f"sqlite:///{data / 'jobs.db'}"
    data.mkdir(parents=True, exist_ok=True)
    reviews, store = Reviews(url), Store(url)
    reviews.configure("faces", labels=["artefacts", "colour-shift", "face-damaged"],
                      instructions=QUEUE_TEXT)  # fmt: skip
    dataset = store.create("shots")
    ids = []
    for i in range(items):
        source, output = data / f"source-{i}.jpg", data / f"output-{i}.jpg"
        image = SAMPLE.thumbnail_image(900, height=600, crop="centre") if i == 0 else photo(
            900, 600, seed=i + 1)  # the first a photograph, for the screenshots
        image.jpegsave(str(source), Q=92)
        image.resize(2).gaussblur(2.5).jpegsave(str(output), Q=92)
        sha = f"{i:064x}"
        store.add(dataset, [Record(str(source), sha, {"width": 900, "height": 600})])
        value = 0.80 + 0.05 * i
        ids.append(reviews.push(
            "faces", key=f"demo:{i}", origin="flag", source_uri=str(source),
            output_uri=str(output), sha256=sha, dataset="shots", pipeline="model:sr-x2",
            reason=f"qc flag: ssim {value:.3f}; failed ssim>=0.9",
            qc=[{"outcome": "flag", "values": {"ssim": value}, "gates": ["ssim>=0.9"],
                 "failed": ["ssim>=0.9"]}])[0].id)  # fmt: skip
    accounts = Reviewers(reviews.engine)
    for name in reviewers:
        accounts.add(name, PASSWORD, ["faces"])
    reviews.close()
    store.close()
    return ids


def new_page(browser):
    """A page of its own (cookies apart); the waits below evaluate script, which the app's
    Content-Security-Policy would refuse."""
    return browser.new_context(viewport={"width": 1400, "height": 860},
                               bypass_csp=True).new_page()  # fmt: skip


def signed_in(browser, base: str, name: str = "ann"):
    page = new_page(browser)
    page.goto(f"{base}/review")
    assert page.url.endswith("/review/login")
    page.fill("#name", name)
    page.fill("#password", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/review")
    return page


def showing(page, item_id: int) -> None:
    """Wait until the screen shows the item with both images loaded."""
    page.wait_for_function(f"document.body.dataset.item === '{item_id}'")
    for which in ("source", "output"):
        page.wait_for_selector(f"#img-{which}[data-item='{item_id}'][data-complete]",
                               state="attached")  # fmt: skip


def settled(page) -> None:
    """Wait until both images show the current view (past the viewer's debounce)."""
    page.wait_for_timeout(150)
    page.wait_for_function("() => ['source', 'output'].every(which => { const image = "
                           "document.getElementById('img-' + which); return image.hidden || "
                           "(image.dataset.want && image.dataset.want === image.dataset.complete)"
                           "; })")  # fmt: skip


def test_a_reviewer_judges_with_the_keyboard(tmp_path, processes, browser) -> None:  # noqa: F811
    data = tmp_path / "data"
    ids = prepare(data)
    shots = screenshots(tmp_path)
    _, base = serve(processes, "serve", free_port(), data, "--workers", "0")
    login = new_page(browser)
    login.goto(f"{base}/review/login")
    login.screenshot(path=str(shots / "review-login.png"))
    login.close()
    page = signed_in(browser, base)
    assert "faces" in page.inner_text("table.queues")
    page.screenshot(path=str(shots / "review-queues.png"))
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.click("a[href='/review/faces']")
    showing(page, ids[0])
    assert "halos" in page.inner_text(".instructions")
    gate = page.locator("#gates tbody tr.failed")  # the value against its threshold, failed
    assert gate.inner_text().split() == ["ssim", "0.8000", ">=", "0.9", "✗"]
    settled(page)
    page.keyboard.press("?")
    assert page.is_visible("#help")
    page.screenshot(path=str(shots / "review-help.png"))
    page.keyboard.press("?")
    # zoom in with the keys and the wheel: only smaller regions are asked for, never the image
    page.keyboard.press("+")
    page.keyboard.press("+")
    box = page.locator("#stage").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 4, box["y"] + box["height"] / 2)
    page.mouse.wheel(0, -300)
    page.wait_for_function("() => { const url = document.getElementById('img-source')"
                           ".dataset.complete || ''; const found = url.match(/width=([0-9.]+)/);"
                           " return found && Number(found[1]) < 0.5; }")  # fmt: skip
    page.keyboard.press("ArrowLeft")
    page.click("button[aria-label='pan up']")
    page.mouse.move(box["x"] + 300, box["y"] + 300)
    page.mouse.down()
    page.mouse.move(box["x"] + 200, box["y"] + 250)
    page.mouse.up()
    settled(page)
    regions = [url for url in requests if "/image/" in url]
    widths = [float(url.split("width=")[1].split("&")[0]) for url in regions]
    assert min(widths) < 0.5 and all("size=" in url for url in regions)
    page.screenshot(path=str(shots / "review-screen.png"))
    page.keyboard.press("z")  # 1:1
    page.keyboard.press("v")  # the slider
    assert "slider" in page.get_attribute("#stage", "class")
    page.keyboard.press("]")
    page.keyboard.press("]")
    assert page.input_value("#split") == "60"
    page.focus("#split")  # the range input takes its arrows; the other keys still work
    page.keyboard.press("ArrowRight")
    assert page.input_value("#split") == "61"
    page.keyboard.press("0")
    settled(page)
    page.screenshot(path=str(shots / "review-slider.png"))
    page.keyboard.press("v")
    # approve the first, reject the second with a label and a note, undo, judge again
    page.keyboard.press("a")
    showing(page, ids[1])
    page.keyboard.press("1")
    assert page.get_attribute("#labels li:first-child button", "aria-pressed") == "true"
    page.keyboard.press("n")
    page.keyboard.type("halo on the left ear")  # typing a, r, s… in the note judges nothing
    page.keyboard.press("Escape")
    page.keyboard.press("r")
    showing(page, ids[2])
    assert f"#{ids[1]} rejected" in page.inner_text("#status")
    page.keyboard.press("u")
    showing(page, ids[1])
    assert "is back" in page.inner_text("#status")
    page.keyboard.press("r")
    showing(page, ids[2])
    page.keyboard.press("s")  # skipped: the only one left, it comes back
    page.wait_for_function(f"document.getElementById('status').textContent"
                           f".startsWith('#{ids[2]} skipped')")  # fmt: skip
    showing(page, ids[2])
    page.keyboard.press("a")
    page.wait_for_function("document.body.dataset.item === ''")
    assert page.is_visible("#empty")
    reviews = Reviews(f"sqlite:///{data / 'jobs.db'}")
    trail = [(v["verdict"], v["labels"], v["note"]) for v in reviews.verdicts(ids[1])]
    assert trail == [("rejected", ["artefacts"], "halo on the left ear"), ("undo", [], ""),
                     ("rejected", [], "")]  # fmt: skip
    assert all(v["seconds"] and v["seconds"] > 0 for v in reviews.verdicts(ids[0]))
    assert [reviews.item(i).state for i in ids] == ["approved", "rejected", "approved"]
    store = Store(f"sqlite:///{data / 'jobs.db'}")
    events = store.history(store.get("shots"), f"{1:064x}")
    assert ("review", "rejected", "ann", "halo on the left ear") in [
        (e["kind"], e["verdict"], e["by"], e["note"]) for e in events]
    assert [r["uri"] for r in store.query(store.view("shots"), 'review = "rejected"')] == [
        str(data / "source-1.jpg")]
    gate = calibrate(reviews.decided("faces"))[0]
    assert gate.metric == "ssim" and gate.n == 3
    reviews.close()
    store.close()


def test_two_reviewers_at_once_get_different_items(
        tmp_path, processes, browser) -> None:  # noqa: F811  # fmt: skip
    data = tmp_path / "data"
    ids = prepare(data, items=2, reviewers=("ann", "bob"))
    _, base = serve(processes, "serve", free_port(), data, "--workers", "0")
    ann, bob = (signed_in(browser, base, name) for name in ("ann", "bob"))
    for page in (ann, bob):
        page.goto(f"{base}/review/faces")
    shown = {page.evaluate("document.body.dataset.item") for page in (ann, bob)}
    assert shown == {str(i) for i in ids}


def test_a_held_output_is_released_by_approval_and_verdicts_survive_kill_9(
        tmp_path, processes, browser) -> None:  # noqa: F811  # fmt: skip
    data = tmp_path / "data"
    (data / "files").mkdir(parents=True)
    photo(640, 480).jpegsave(str(data / "files" / "in.jpg"))
    prepare(data, items=0)
    port = free_port()
    server, base = serve(processes, "serve", port, data, "--workers", "1")
    job = httpx.post(f"{base}/v1/jobs", json={
        "sources": ["in.jpg"], "dataset": "shots",
        "pipeline": "blur:3/qc:ssim>=0.99:on_fail=hold:queue=faces"}).json()  # fmt: skip
    ended = httpx.get(f"{base}/v1/jobs/{job['id']}", params={"wait": 60}, timeout=70).json()
    assert ended["state"] == "succeeded", ended
    held = httpx.get(f"{base}/v1/jobs/{job['id']}/output")
    assert held.status_code == 409 and "held for review in queue faces" in held.text
    page = signed_in(browser, base)
    page.goto(f"{base}/review/faces")
    item = int(page.evaluate("document.body.dataset.item"))
    showing(page, item)
    assert "hold" in page.inner_text("#reason")
    page.keyboard.press("a")
    page.wait_for_function("document.body.dataset.item === ''")
    released = httpx.get(f"{base}/v1/jobs/{job['id']}/output")
    assert released.status_code == 200
    assert pyvips.Image.new_from_buffer(released.content, "").width == 640
    os.kill(server.pid, signal.SIGKILL)  # the verdict was acknowledged: it must survive
    server.wait()
    _, base = serve(processes, "serve-again", port, data, "--workers", "0")
    reviews = Reviews(f"sqlite:///{data / 'jobs.db'}")
    assert [v["verdict"] for v in reviews.verdicts(item)] == ["approved"]
    assert reviews.item(item).state == "approved"
    assert httpx.get(f"{base}/v1/jobs/{job['id']}/output").status_code == 200
    store = Store(f"sqlite:///{data / 'jobs.db'}")
    view = store.view("shots")
    assert [row["role"] for row in store.query(view, 'review = "approved"')] == ["source"]
    reviews.close()
    store.close()
