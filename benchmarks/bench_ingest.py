"""Ingest of real-sized photographs: ``pixelmill datasets add`` over a folder of 12-megapixel
JPEGs (4000 × 3000, q 90), images per second and the peak memory of the process, beside the
floor under it, a direct libvips shrink-on-load thumbnail of every file to 512 pixels (what
the proxy decode costs, without hashing, features or the embedding), in the same run.

Each contestant runs in a fresh process (``wait4`` gives its peak resident memory). Prints JSON, then a markdown table.

    python benchmarks/bench_ingest.py                  # 48 images, --jobs 1 and 2, 3 repeats
    python benchmarks/bench_ingest.py --images 8 --repeat 1
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyvips
import recording

HERE = Path(__file__).resolve().parent
DIRECT = """
import sys, pathlib, pyvips
for path in sorted(pathlib.Path(sys.argv[1]).glob("*.jpg")):
    pyvips.Image.thumbnail(str(path), 512, height=512, size="down").copy_memory()
"""


def photographs(folder: Path, count: int) -> None:
    """``count`` distinct 4000 × 3000 photo-like JPEGs (q 90): the bundled photograph enlarged,
    shifted and grained differently each time."""
    from importlib.resources import files

    base = pyvips.Image.new_from_file(str(files("pixelmill") / "data" / "sample.jpg"))
    for i in range(count):
        big = base.resize(4000 / base.width * 1.1).crop(7 * i % 300, 5 * i % 200, 4000, 3000)
        grain = pyvips.Image.gaussnoise(4000, 3000, sigma=4, seed=i)
        (big + grain).cast("uchar").copy(interpretation="srgb").jpegsave(
            str(folder / f"photo-{i:03}.jpg"), Q=90)


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Seconds and peak resident MiB of one process (its own, from ``wait4``)."""
    start = time.perf_counter()
    child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise SystemExit(f"{' '.join(command)} failed with {child.returncode}")
    return seconds, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as temporary:
        root = Path(temporary)
        folder = root / "photos"
        folder.mkdir()
        photographs(folder, args.images)
        env = {**os.environ, "PIXELMILL_DATA_DIR": str(root / "data")}
        contestants = {
            "libvips thumbnail alone (the floor)": [sys.executable, "-c", DIRECT, str(folder)],
            **{f"pixelmill datasets add --jobs {jobs}": [
                sys.executable, "-m", "pixelmill", "datasets", "add", "{name}", str(folder),
                "--jobs", str(jobs), "-q"] for jobs in (1, 2)},
        }  # fmt: skip
        for round_ in range(args.repeat):
            for index, (name, command) in enumerate(contestants.items()):
                fresh = f"run{round_}-{index}"  # a dataset of its own: nothing is skipped
                command = [part.replace("{name}", fresh) for part in command]
                seconds, peak = timed(command, env)
                rows.append({"contestant": name, "round": round_, "seconds": seconds,
                             "images_per_s": args.images / seconds, "peak_mib": peak})
    summary = []
    for name in contestants:
        runs = [r for r in rows if r["contestant"] == name]
        summary.append({"contestant": name,
                        "images_per_s": statistics.median(r["images_per_s"] for r in runs),
                        "peak_mib": max(r["peak_mib"] for r in runs)})  # fmt: skip
    recording.save(HERE / "results" / "ingest.json", {"images": args.images, "side": "4000x3000",
                   "runs": rows, "summary": summary}, cpus=os.cpu_count())  # fmt: skip
    print(recording.table(["contestant", "images/s (median)", "peak RSS MiB"],
                          ([s["contestant"], f"{s['images_per_s']:.2f}", f"{s['peak_mib']:.0f}"]
                           for s in summary)))  # fmt: skip


if __name__ == "__main__":
    main()
