"""The review app on 400-megapixel images (20,000 × 20,000 JPEGs), in Chromium against a real
``pixelmill serve``: time to first paint of the review screen (both images shown) with the
images' pyramids cold and ready, time from a key press to the next item shown, the regions cut
while zooming, and the memory of ``serve`` while three reviewers zoom and pan at once. Beside
it, in the same run, the reference a viewer without pyramids would pay for every view: a direct
libvips shrink-on-load thumbnail of the whole JPEG to 1,024 pixels.

Prints JSON (benchmarks/results/review.json), then a markdown table.

    python benchmarks/bench_review.py               # 2 image pairs, 9 items, 20 s of zooming
    python benchmarks/bench_review.py --side 8000   # 64 MP, quicker
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from importlib.resources import files
from pathlib import Path

import httpx
import psutil
import pyvips
import recording

HERE = Path(__file__).resolve().parent
PASSWORD = "correct horse battery"
SETTLED = ("() => ['source', 'output'].every(which => { const image = document.getElementById("
           "'img-' + which); return image.dataset.item === document.body.dataset.item && "
           "image.dataset.want && image.dataset.want === image.dataset.complete; })")  # fmt: skip


def huge(path: Path, side: int, seed: int) -> None:
    """A photo-like JPEG of side × side pixels: the bundled photograph enlarged, tiled and
    grained (made sequentially, in bounded memory)."""
    base = pyvips.Image.new_from_file(str(files("pixelmill") / "data" / "sample.jpg"))
    tile = base.resize(side / 4 / base.width).flipver() if seed % 2 else base.resize(
        side / 4 / base.width)
    big = tile.replicate(5, 5).crop(0, 0, side, side)
    grain = pyvips.Image.gaussnoise(side, side, sigma=6, seed=seed)
    (big + grain).cast("uchar").copy(interpretation="srgb").jpegsave(str(path), Q=85)


def serve(data: Path, port: int, log: Path) -> subprocess.Popen:
    server = subprocess.Popen([sys.executable, "-m", "pixelmill", "serve", "--port", str(port),
                               "--data-dir", str(data), "--workers", "0"],
                              stdout=log.open("wb"), stderr=subprocess.STDOUT)  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.2)
    raise SystemExit(f"serve did not start: {log.read_text()[-2000:]}")


def rss_mib(pid: int) -> float:
    """Resident memory of a process and its children, MiB."""
    root = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)]) / 2**20


def signed_in(browser, base: str, name: str):
    page = browser.new_context(viewport={"width": 1600, "height": 1000},
                               bypass_csp=True).new_page()  # fmt: skip
    page.goto(f"{base}/review/login")
    page.fill("#name", name)
    page.fill("#password", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/review")
    return page


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=20_000)
    parser.add_argument("--items", type=int, default=9)
    parser.add_argument("--zoom-seconds", type=float, default=20.0)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    from pixelmill.config import Settings
    from pixelmill.review import Reviews
    from pixelmill.review.accounts import Reviewers
    from pixelmill.review.images import Previews

    figures: dict[str, object] = {"side": args.side, "megapixels": args.side**2 / 1e6}
    with tempfile.TemporaryDirectory() as temporary:
        root = Path(temporary)
        data = root / "data"
        data.mkdir()
        pairs = []
        began = time.perf_counter()
        for seed in range(2):
            source, output = root / f"source-{seed}.jpg", root / f"output-{seed}.jpg"
            huge(source, args.side, seed)
            huge(output, args.side, seed + 10)
            pairs.append((source, output))
        figures["making_images_s"] = time.perf_counter() - began
        direct = []
        for _ in range(3):
            start = time.perf_counter()
            pyvips.Image.thumbnail(str(pairs[0][0]), 1024).copy_memory()
            direct.append(time.perf_counter() - start)
        figures["direct_thumbnail_s"] = statistics.median(direct)
        start = time.perf_counter()  # one pyramid, in a folder of its own
        Previews(Settings(data_dir=str(root / "alone"))).prepare(str(pairs[0][0]))
        figures["pyramid_s_per_image"] = time.perf_counter() - start
        url = f"sqlite:///{data / 'jobs.db'}"
        reviews = Reviews(url)
        reviews.configure("big")
        for i in range(args.items):
            source, output = pairs[i % 2]
            reviews.push("big", key=f"item-{i}", origin="flag", source_uri=str(source),
                         output_uri=str(output), reason="benchmark")  # fmt: skip
        accounts = Reviewers(reviews.engine)
        for name in ("ann", "bob", "cid"):
            accounts.add(name, PASSWORD, ["big"])
        port = 18_000 + os.getpid() % 1000
        server = serve(data, port, root / "serve.log")
        base = f"http://127.0.0.1:{port}"
        try:
            chromium = shutil.which("chromium")
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium,
                                                     args=["--no-sandbox"])  # fmt: skip
                page = signed_in(browser, base, "ann")
                start = time.perf_counter()
                page.goto(f"{base}/review/big")
                page.wait_for_function(SETTLED, timeout=600_000)
                figures["first_paint_cold_s"] = time.perf_counter() - start
                start = time.perf_counter()
                page.reload()
                page.wait_for_function(SETTLED)
                figures["first_paint_ready_s"] = time.perf_counter() - start
                deadline = time.monotonic() + 600  # both pairs' pyramids made ahead
                pyramids = data / "review" / "pyramids"
                while len(list(pyramids.glob("*.tif"))) < 4 and time.monotonic() < deadline:
                    time.sleep(0.5)
                nexts = []
                for _ in range(args.items - 3):  # three stay, one for each zoomer
                    current = page.evaluate("document.body.dataset.item")
                    start = time.perf_counter()
                    page.keyboard.press("a")
                    page.wait_for_function(f"document.body.dataset.item !== '{current}'")
                    page.wait_for_function(SETTLED)
                    nexts.append(time.perf_counter() - start)
                figures["next_item_s"] = nexts
                figures["next_item_median_s"] = statistics.median(nexts)
                zoomers = [page] + [signed_in(browser, base, name) for name in ("bob", "cid")]
                for other in zoomers[1:]:
                    other.goto(f"{base}/review/big")
                    other.wait_for_function(SETTLED)
                samples: list[float] = []
                done = threading.Event()

                def sample() -> None:
                    while not done.is_set():
                        samples.append(rss_mib(server.pid))
                        time.sleep(0.2)

                sampler = threading.Thread(target=sample)
                baseline = rss_mib(server.pid)
                sampler.start()
                rng, crops, stop = random.Random(0), [], time.monotonic() + args.zoom_seconds
                while time.monotonic() < stop:
                    for reviewer in zoomers:
                        key = rng.choice(["+", "+", "-", "ArrowLeft", "ArrowRight", "ArrowUp",
                                          "ArrowDown", "z", "0", "v"])  # fmt: skip
                        begun = time.perf_counter()
                        reviewer.keyboard.press(key)
                        reviewer.wait_for_timeout(100)
                        reviewer.wait_for_function(SETTLED)
                        crops.append(time.perf_counter() - begun - 0.1)
                done.set()
                sampler.join()
                figures.update(serve_baseline_mib=baseline, serve_peak_mib=max(samples),
                               view_changes=len(crops),
                               view_change_median_s=statistics.median(crops),
                               view_change_p95_s=sorted(crops)[int(0.95 * len(crops))])  # fmt: skip
                browser.close()
        finally:
            server.terminate()
            server.wait(30)
            reviews.close()
    recording.save(HERE / "results" / "review.json", figures, cpus=os.cpu_count())
    rows = [
        ["direct libvips thumbnail of the whole JPEG to 1,024 px (per view, without pyramids)",
         f"{figures['direct_thumbnail_s']:.2f} s"],
        ["pyramid of one image, made once (in the background for items next in line)",
         f"{figures['pyramid_s_per_image']:.1f} s"],
        ["first paint of the review screen, pyramids cold", f"{figures['first_paint_cold_s']:.1f} s"],
        ["first paint of the review screen, pyramids ready",
         f"{figures['first_paint_ready_s'] * 1000:.0f} ms"],
        ["key press to the next item shown (median)",
         f"{figures['next_item_median_s'] * 1000:.0f} ms"],
        ["zoom / pan / 1:1 / slider to the new view shown (median, p95)",
         (f"{figures['view_change_median_s'] * 1000:.0f} ms, "
          f"{figures['view_change_p95_s'] * 1000:.0f} ms")],
        ["serve's memory, idle then peak with three reviewers zooming",
         f"{figures['serve_baseline_mib']:.0f} MiB → {figures['serve_peak_mib']:.0f} MiB"],
    ]  # fmt: skip
    print(recording.table([f"{figures['megapixels']:.0f} MP images", "measured"], rows))


if __name__ == "__main__":
    main()
