"""``pixelmill batch``: throughput of the local engine against Ray at equal CPUs, the cost of
resuming (skipping items an earlier attempt finished), and the driver's memory over a listing
of a million keys.

- **Throughput**: ``--images`` generated photographs of ``--mp`` megapixels (JPEG, made once
  into ``--data``) through ``thumbnail:256/encode:webp``, with ``--engine local`` (threads) and
  ``--engine ray`` (actors) at 1 and 2 workers, each run ``--repeats`` times into a fresh
  folder under a fresh run id. Ray is started once per CPU count before its runs (its start-up,
  timed apart, is not in the runs' seconds); the median run is reported.
- **Resume**: ``--skip`` tiny images run once, then the same run resumed: every item is
  skipped, so the second run's time is the cost of listing and skipping them.
- **Driver memory**: a tree of ``--keys`` empty ``.png`` files (1,000 folders), run through
  the driver with an engine that ends every item at once as succeeded (nothing is read: what
  is measured is the driver's listing, claiming and recording), in a fresh process; its RSS
  sampled every 20 ms during the run (peak) against its RSS just before, beside the same for
  ``api.plan_tree`` (what a folder run holds: the whole listing).

    python benchmarks/bench_batch.py --data DATA/batch
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pyvips
import recording

from pixelmill import batch
from pixelmill.batch.manifest import Ended, Item
from pixelmill.config import Settings

PIPELINE = "thumbnail:256/encode:webp"
log = recording.log


def photographs(folder: Path, count: int, megapixels: float) -> Path:
    """``count`` distinct photo-like JPEGs (smooth structure and grain) of ``megapixels``."""
    folder.mkdir(parents=True, exist_ok=True)
    width = int((megapixels * 1e6 * 4 / 3) ** 0.5)
    height = int(width * 3 / 4)
    for i in range(count):
        path = folder / f"{i // 100:03}" / f"photo{i:05}.jpg"
        if path.exists():
            continue
        path.parent.mkdir(exist_ok=True)
        bands = [pyvips.Image.perlin(width, height, cell_size=64 + i % 97, uchar=True, seed=i * 3 + b)
                 for b in range(3)]  # fmt: skip
        grain = pyvips.Image.gaussnoise(width, height, sigma=5, seed=i)
        image = (bands[0].bandjoin(bands[1:]) + grain).cast("uchar").copy(interpretation="srgb")
        image.write_to_file(str(path), Q=88)
        if i % 200 == 0:
            log(f"  {i}/{count} images made")
    return folder


def tiny(folder: Path, count: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    image = pyvips.Image.black(8, 8, bands=3).copy(interpretation="srgb")
    data = image.write_to_buffer(".png")
    for i in range(count):
        path = folder / f"{i // 1000:03}" / f"t{i:06}.png"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
    return folder


def throughput(data: Path, images: int, megapixels: float, repeats: int) -> list[dict]:
    import ray

    src = photographs(data / f"photos-{images}-{megapixels}", images, megapixels)
    rows = []
    for cpus in (1, 2):
        for name in ("local", "ray"):
            startup = None
            if name == "ray":
                began = time.monotonic()
                ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
                startup = time.monotonic() - began
            seconds = []
            for attempt in range(repeats):
                out = data / "out"
                shutil.rmtree(out, ignore_errors=True)
                engine = batch.Local(cpus) if name == "local" else batch.Ray(workers=cpus)
                settings = Settings(data_dir=str(data / "state"))
                summary = batch.run(str(src), str(out), PIPELINE, engine=engine, settings=settings,
                                    run_id=f"{name}-{cpus}-{attempt}-{time.time_ns()}")  # fmt: skip
                assert summary.succeeded == images and not summary.failed, summary.to_json()
                seconds.append(summary.seconds)
                log(f"  {name} × {cpus}: {summary.seconds:.1f} s")
            if name == "ray":
                ray.shutdown()
            median = statistics.median(seconds)
            rows.append({"engine": name, "cpus": cpus, "seconds": seconds, "median": median,
                         "images_per_second": images / median, "ray_startup": startup})  # fmt: skip
    for row in rows:
        local = next(r for r in rows if r["engine"] == "local" and r["cpus"] == row["cpus"])
        row["vs_local"] = row["median"] / local["median"]
    return rows


def resume_cost(data: Path, count: int) -> dict:
    src = tiny(data / f"tiny-{count}", count)
    out = data / "tiny-out"
    shutil.rmtree(out, ignore_errors=True)
    settings = Settings(data_dir=str(data / "state"))
    run_id = f"resume-{time.time_ns()}"
    first = batch.run(str(src), str(out), "encode:png", engine=batch.Local(2), settings=settings,
                      run_id=run_id)  # fmt: skip
    again = batch.run(str(src), str(out), "encode:png", engine=batch.Local(2), settings=settings,
                      run_id=run_id, resume=True)  # fmt: skip
    assert again.skipped == count and again.succeeded == 0
    return {"items": count, "first_seconds": first.seconds, "resume_seconds": again.seconds,
            "skipped_per_second": count / again.seconds}  # fmt: skip


class Instant:
    """An engine that ends every item at once as succeeded: the driver alone is measured."""

    name = "instant"

    def results(self, task: object, items: Iterator[Item]) -> Iterator[Ended]:
        for item in items:
            yield Ended(item, "succeeded", "0" * 64, {})


CHILD = """
import json, os, resource, sys, threading, time
sys.path.insert(0, sys.argv[4])
from bench_batch import Instant
from pixelmill import api, batch
from pixelmill.config import Settings
page = os.sysconf("SC_PAGE_SIZE")
def rss():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * page / 2**20
peak, running = [rss()], True
def sample():
    while running:
        peak.append(max(peak.pop(), rss()))
        time.sleep(0.02)
watcher = threading.Thread(target=sample, daemon=True)
before = rss()
watcher.start()
began = time.monotonic()
if sys.argv[1] == "batch":
    summary = batch.run(sys.argv[2], sys.argv[3], "encode:png", engine=Instant(),
                        settings=Settings(data_dir=sys.argv[3] + "-state"), run_id="memory")
    count = summary.succeeded
else:
    count = len(api.plan_tree(sys.argv[2], sys.argv[3], "encode:png"))
seconds = time.monotonic() - began
running = False
watcher.join()
print(json.dumps({"items": count, "seconds": seconds, "rss_before_mb": before,
                  "peak_mb": peak[0]}))
"""


def driver_memory(data: Path, keys: int) -> list[dict]:
    tree = data / f"keys-{keys}"
    if not (tree / "done").exists():
        log(f"  making {keys:,} empty files")
        for i in range(keys):
            folder = tree / f"{i % 1000:03}"
            if i < 1000:
                folder.mkdir(parents=True, exist_ok=True)
            (folder / f"k{i:07}.png").touch()
        (tree / "done").touch()
    rows = []
    for how in ("batch", "plan_tree"):
        out = data / f"keys-out-{how}"
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(str(out) + "-state", ignore_errors=True)
        done = subprocess.run([sys.executable, "-c", CHILD, how, str(tree), str(out),
                               str(Path(__file__).parent)], capture_output=True, text=True,
                              check=True)  # fmt: skip
        rows.append({"how": how, **json.loads(done.stdout.strip().splitlines()[-1])})
        log(f"  {how}: {rows[-1]}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="folder for generated data")
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--mp", type=float, default=2.0)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--skip", type=int, default=10_000)
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--only", choices=["throughput", "resume", "memory"])
    parser.add_argument("--out", type=Path, default=recording.HERE / "results" / "batch.json")
    args = parser.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    figures: dict = {"pipeline": PIPELINE, "images": args.images, "megapixels": args.mp}
    if args.only in (None, "throughput"):
        figures["throughput"] = throughput(args.data, args.images, args.mp, args.repeats)
    if args.only in (None, "resume"):
        figures["resume"] = resume_cost(args.data, args.skip)
    if args.only in (None, "memory"):
        figures["driver_memory"] = driver_memory(args.data, args.keys)
    import ray

    recording.save(args.out, figures, pyvips=pyvips.__version__, ray=ray.__version__)
    if "throughput" in figures:
        print(recording.table(
            ["engine", "CPUs", "median s", "images/s", "× local", "Ray start-up s"],
            [[r["engine"], r["cpus"], f"{r['median']:.1f}", f"{r['images_per_second']:.1f}",
              f"{r['vs_local']:.3f}", f"{r['ray_startup']:.1f}" if r["ray_startup"] else "–"]
             for r in figures["throughput"]], text=2))  # fmt: skip
    if "resume" in figures:
        r = figures["resume"]
        print(f"\nresume: {r['items']:,} items skipped in {r['resume_seconds']:.2f} s "
              f"({r['skipped_per_second']:,.0f}/s; the first run took {r['first_seconds']:.1f} s)")
    for r in figures.get("driver_memory", []):
        print(f"{r['how']}: {r['items']:,} keys, peak RSS {r['peak_mb']:.0f} MB "
              f"(before {r['rss_before_mb']:.0f} MB), {r['seconds']:.1f} s")
    print(f"peak of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB",
          file=sys.stderr)


if __name__ == "__main__":
    main()
