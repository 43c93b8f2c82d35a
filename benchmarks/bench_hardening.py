"""What the hardening costs and whether its estimates hold, measured side by side.

1. **Decode memory.** For each decoder that holds a whole image at once (progressive JPEG,
   interlaced PNG, GIF, WebP, AVIF), a 6000×4000 photograph is made smaller with
   ``pixelmill run``, each run a fresh process; the peak resident memory over that of a
   streaming decode of the same picture (a baseline JPEG) gives the bytes per pixel the decoder
   held, set beside the estimate :mod:`pixelmill.codecs.budget` refuses by. An estimate at or
   above the measure refuses nothing that would have fitted.
2. **Jobs in their own process.** The same small job (a thumbnail of the 6000×4000 JPEG) run
   by ``pixelmill.run`` in the calling process and through a worker's job process
   (:class:`pixelmill.jobs.runner.Runner`), alternately; and how long a job process takes to
   start (spawn, imports).
3. **The hostile set.** Each case of ``tests/test_hostile.py`` (the same inputs, built by
   ``tests/hostile.py``), run as the test runs them: one child process, its peak resident
   memory reset before each case, ``--max-memory 512 MiB``; the exit code and what each case
   held over the process's memory before it.

    python benchmarks/bench_hardening.py            # about two minutes on 2 cores
    python benchmarks/bench_hardening.py --quick    # smaller inputs, fewer repetitions

Results: ``benchmarks/results/hardening.json`` and a markdown table on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import recording

HERE = Path(__file__).resolve().parent
WORK = HERE / "work" / "hardening"
PYTHON = sys.executable
MAKE = """
import sys, pyvips
w, h = int(sys.argv[2]), int(sys.argv[3])
bands = [pyvips.Image.perlin(w, h, cell_size=max(8, w // 6), uchar=True, seed=s) for s in (1, 2, 3)]
photo = (bands[0].bandjoin(bands[1:]) + pyvips.Image.gaussnoise(w, h, sigma=6)).cast("uchar")
photo = photo.copy(interpretation="srgb")
out = sys.argv[1]
photo.write_to_file(out + "/baseline.jpg", Q=90)
photo.write_to_file(out + "/progressive.jpg", Q=90, interlace=True)
photo.write_to_file(out + "/interlaced.png", interlace=True, compression=1)
photo.write_to_file(out + "/still.gif", effort=1)
photo.write_to_file(out + "/still.webp", Q=80)
photo.write_to_file(out + "/still.avif", Q=50, compression="av1", effort=0)
"""
DECODERS = {  # file: its loader
    "progressive.jpg": "jpegload",
    "interlaced.png": "pngload",
    "still.gif": "gifload",
    "still.webp": "webpload",
    "still.avif": "heifload",
}
ESTIMATE = """
import json, sys
from pixelmill import codecs, storage
from pixelmill.codecs.budget import decode_bytes
from pixelmill.config import Settings
out = {}
for name in sys.argv[1:]:
    with codecs.open_source(storage.locate(name), Settings(max_memory=1 << 40)) as src:
        need, _ = decode_bytes(src.header, src.loader)
        out[name] = need / (src.header.width * src.header.height)
print(json.dumps(out))
"""
JOBS = """
import json, sys, time
import pixelmill
from pixelmill.config import Settings
from pixelmill.jobs.runner import Runner
from pixelmill.jobs.worker import run_job

src, out, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3])
settings = Settings()
began = time.perf_counter()
runner = Runner(settings, run_job)
runner.start()
start_s = time.perf_counter() - began
spec = {"source": src, "destination": out + "/job.webp",
        "pipeline": "thumbnail:256/encode:webp"}
inline, child = [], []
for index in range(repeat + 1):
    t = time.perf_counter()
    pixelmill.run(src, out + "/inline.webp", spec["pipeline"], settings=settings)
    inline.append(time.perf_counter() - t)
    t = time.perf_counter()
    ended = runner.run(spec, settings, lambda: False, lambda share: None)
    child.append(time.perf_counter() - t)
    assert ended.state == "succeeded", ended
runner.close()
print(json.dumps({"start_s": start_s, "inline": inline[1:], "child": child[1:]}))
"""


def peak_mb(*args: str) -> float:
    """Peak resident memory (MB) of ``pixelmill ARGS…`` in a fresh process, from ``wait4``."""
    child = subprocess.Popen([PYTHON, "-m", "pixelmill", *args], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)  # fmt: skip
    _, status, usage = os.wait4(child.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, child.stderr.read().decode()
    return usage.ru_maxrss / 1024


def decode_memory(size: tuple[int, int], repeat: int) -> list[dict]:
    WORK.mkdir(parents=True, exist_ok=True)
    if not (WORK / f"{size[0]}x{size[1]}").exists():
        (WORK / f"{size[0]}x{size[1]}").mkdir()
        subprocess.run([PYTHON, "-c", MAKE, str(WORK / f"{size[0]}x{size[1]}"), *map(str, size)],
                       check=True)  # fmt: skip
    folder = WORK / f"{size[0]}x{size[1]}"
    names = ["baseline.jpg", *DECODERS]
    estimates = json.loads(subprocess.run(
        [PYTHON, "-c", ESTIMATE, *[str(folder / n) for n in DECODERS]], check=True,
        capture_output=True, text=True).stdout)  # fmt: skip
    peaks: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(repeat):
        for name in names[round_ % len(names):] + names[: round_ % len(names)]:
            peaks[name].append(peak_mb("run", str(folder / name), str(folder / "o.png"), "-q",
                                       "-p", "resize:fit:100", "--max-memory", str(1 << 40)))
    base = statistics.median(peaks["baseline.jpg"])
    pixels = size[0] * size[1]
    rows = [{"file": "baseline.jpg", "loader": "jpegload (baseline, streams)",
             "peak_mb": base, "held_bytes_per_pixel": 0.0, "estimate": 0.0}]
    for name, loader in DECODERS.items():
        peak = statistics.median(peaks[name])
        held = (peak - base) * 2**20 / pixels
        rows.append({"file": name, "loader": loader, "peak_mb": peak,
                     "held_bytes_per_pixel": held,
                     "estimate": estimates[str(folder / name)]})  # fmt: skip
    return rows


def job_overhead(size: tuple[int, int], repeat: int) -> dict:
    folder = WORK / f"{size[0]}x{size[1]}"
    done = subprocess.run([PYTHON, "-c", JOBS, str(folder / "baseline.jpg"), str(folder),
                           str(repeat)], check=True, capture_output=True, text=True)  # fmt: skip
    found = json.loads(done.stdout)
    inline, child = statistics.median(found["inline"]), statistics.median(found["child"])
    return {"start_s": found["start_s"], "inline_s": inline, "child_s": child,
            "overhead_ms": (child - inline) * 1000, "ratio": child / inline,
            "samples": found}  # fmt: skip


def hostile_set() -> list[dict]:
    """The test suite's hostile cases, run by its own probe: exit code and memory held."""
    sys.path.insert(0, str(HERE.parent / "tests"))
    import hostile  # the test suite's inputs, cases and probe
    import test_hostile

    folder = WORK / "hostile"
    sources = hostile.write(folder / "in")
    runs = [(name, ["run", str(sources[source]), str(folder / "out" / name / "o.png"), "-p",
                    pipeline, "--max-memory", str(test_hostile.MAX_MEMORY)])
            for name, source, pipeline, *_ in test_hostile.CASES]  # fmt: skip
    done = subprocess.run([PYTHON, "-c", test_hostile.PROBE, json.dumps(runs)], check=True,
                          capture_output=True, text=True)  # fmt: skip
    found = json.loads(done.stdout)
    return [{"case": name, "bytes": (folder / "in" / source).stat().st_size,
             "code": found[name]["code"], "held_mib": found[name]["held"] / 2**20}
            for name, source, *_ in test_hostile.CASES]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small inputs, few repetitions")
    args = parser.parse_args()
    memory_size = (1500, 1000) if args.quick else (6000, 4000)
    rows = decode_memory(memory_size, 1 if args.quick else 3)
    jobs = job_overhead(memory_size, 5 if args.quick else 25)
    print(f"\nDecode memory, {memory_size[0]}×{memory_size[1]}, `resize:fit:100`, medians:\n")
    print(recording.table(
        ["file", "loader", "peak RSS MB", "held, bytes/pixel", "estimate, bytes/pixel",
         "estimate / held"],
        ([row["file"], row["loader"], f"{row['peak_mb']:.0f}",
          *((f"{row['held_bytes_per_pixel']:.2f}", f"{row['estimate']:.2f}",
             f"{row['estimate'] / row['held_bytes_per_pixel']:.2f}") if row["estimate"]
            else (None, None, None))] for row in rows), text=2))  # fmt: skip
    print(f"\nA job in its own process: start {jobs['start_s']:.2f} s; one job "
          f"{jobs['inline_s'] * 1000:.1f} ms in-process, {jobs['child_s'] * 1000:.1f} ms through "
          f"the job process ({jobs['overhead_ms']:+.1f} ms, ×{jobs['ratio']:.2f})")
    cases = hostile_set()
    print("\nThe hostile set, `--max-memory 512 MiB` (bounded at 1,024 MiB held):\n")
    print(recording.table(["case", "input bytes", "exit", "held MiB"],
                          ([c["case"], f"{c['bytes']:,}", c["code"], f"{c['held_mib']:.0f}"]
                           for c in cases)))  # fmt: skip
    name = "hardening-quick.json" if args.quick else "hardening.json"
    recording.save((HERE / "work" if args.quick else HERE / "results") / name,
                   {"decode_memory": rows, "jobs": jobs, "hostile": cases})  # fmt: skip


if __name__ == "__main__":
    main()
