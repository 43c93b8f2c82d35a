"""SSIMULACRA 2 on a 12-megapixel pair: the time of one ``ssimulacra2`` call and the peak RSS.

The pair is a photo-like 4000×3000 JPEG (``bench_foundation``'s Perlin colour fields plus
grain, quality 90) and its re-encoding at quality 40, generated once into the work folder. Each
run is a fresh process, given the pair one of two ways:

- ``files``: opened with ``access="sequential"``, so decoding runs inside the timed call,
  streamed with the metric;
- ``memory``: decoded into memory (72 MB) before the clock starts, so the call times the
  metric alone.

The child times the call (``perf_counter``) and its CPU time (all threads, ``os.times``), and
reports the memory resident before the call and the peak during it: VmHWM, reset just before the
call through ``/proc/self/clear_refs`` (``ru_maxrss`` can be neither reset nor, in a child, read
below this runner's peak). The modes take turns in every repetition. Prints the results as JSON,
then a markdown table of medians; the load average is recorded because the CPU may be shared.

    python benchmarks/bench_ssimulacra2.py             # 5 runs of each mode
    python benchmarks/bench_ssimulacra2.py --quick     # a 1000×750 pair, one run
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
MODES = ("files", "memory")
MAKE_PAIR = """
import sys
from pathlib import Path
import pyvips
sys.path.insert(0, sys.argv[1])
from bench_foundation import make_photo
reference, distorted, width, height = Path(sys.argv[2]), Path(sys.argv[3]), *map(int, sys.argv[4:])
make_photo(reference, width, height)
pyvips.Image.new_from_file(str(reference)).jpegsave(str(distorted), Q=40)
"""
CHILD = """
import json, os, sys, time
import pyvips
from pixelmill.quality.ssimulacra2 import ssimulacra2

def status_mb(field):
    status = open("/proc/self/status").read()
    return int(next(l for l in status.splitlines() if l.startswith(field)).split()[1]) / 1024

mode, paths = sys.argv[1], sys.argv[2:4]
if mode == "files":
    images = [pyvips.Image.new_from_file(path, access="sequential") for path in paths]
else:
    images = [pyvips.Image.new_from_file(path).copy_memory() for path in paths]
resident = status_mb("VmRSS")
with open("/proc/self/clear_refs", "w") as clear:
    clear.write("5")  # VmHWM from here on
cpu, start = os.times(), time.perf_counter()
score = ssimulacra2(*images)
seconds, cpu_end = time.perf_counter() - start, os.times()
print(json.dumps({"mode": mode, "score": score, "seconds": seconds,
                  "cpu_s": cpu_end.user - cpu.user + cpu_end.system - cpu.system,
                  "peak_rss_mb": status_mb("VmHWM"), "resident_before_mb": resident}))
"""
MEASURES = ("seconds", "cpu_s", "peak_rss_mb", "resident_before_mb")


def make_pair(work: Path, width: int, height: int) -> tuple[Path, Path]:
    """The reference and distorted JPEGs, generated (in a helper process) where missing."""
    reference = work / f"photo-{width}x{height}.jpg"
    distorted = work / f"photo-{width}x{height}-q40.jpg"
    if not (reference.exists() and distorted.exists()):
        print(f"generating {reference.name} …", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-c", MAKE_PAIR, str(HERE), str(reference),
                        str(distorted), str(width), str(height)], check=True)  # fmt: skip
    return reference, distorted


def child(script: str, *args: str) -> dict:
    """Run ``script`` in a fresh Python with ``args``; its last output line, as JSON."""
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True,
                          text=True, check=False)  # fmt: skip
    if done.returncode:
        raise SystemExit(f"{' '.join(args[:2])} failed:\n{done.stderr}")
    return json.loads(done.stdout)


def setup(description: str, repeat: int) -> tuple[argparse.Namespace, tuple[Path, Path],
                                                  int, int]:  # fmt: skip
    """The command line (--quick, --repeat, --work) and the pair it asks for, made if missing;
    returns the arguments, the pair, and its width and height."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="a small pair, one run")
    parser.add_argument("--repeat", type=int, default=repeat)
    parser.add_argument("--work", type=Path, default=HERE / "work", help="inputs")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    width, height = (1000, 750) if args.quick else (4000, 3000)
    return args, make_pair(args.work, width, height), width, height


def save(args: argparse.Namespace, name: str, pair: str, load_before: tuple[float, ...],
         rows: list[dict], samples: list[dict]) -> None:  # fmt: skip
    """Record a pair program's results in results/NAME.json (the work folder's for --quick)."""
    path = args.work / f"{name}-quick.json" if args.quick else HERE / "results" / f"{name}.json"
    recording.save(path, {"pair": pair, "load_average_before": load_before,
                          "load_average_after": os.getloadavg(), "summary": rows,
                          "samples": samples})  # fmt: skip


def main() -> None:
    args, pair, width, height = setup(__doc__.splitlines()[0], repeat=5)
    load_before = os.getloadavg()
    samples = []
    for rep in range(1 if args.quick else args.repeat):
        for mode in MODES[rep % 2 :] + MODES[: rep % 2]:
            samples.append(child(CHILD, mode, *map(str, pair)))
            print(json.dumps(samples[-1]), file=sys.stderr, flush=True)
    rows = [
        {"mode": mode, "runs": len(runs), "score": runs[0]["score"],
         **{key: statistics.median(r[key] for r in runs) for key in MEASURES}}
        for mode in MODES if (runs := [s for s in samples if s["mode"] == mode])
    ]  # fmt: skip
    save(args, "ssimulacra2", f"{width}×{height}", load_before, rows, samples)
    print(recording.table(
        [f"{width}×{height} pair", "runs", "seconds (median)", "CPU s", "resident before MB",
         "peak RSS in the call MB", "score"],
        ([r["mode"], r["runs"], f"{r['seconds']:.2f}", f"{r['cpu_s']:.2f}",
          f"{r['resident_before_mb']:.0f}", f"{r['peak_rss_mb']:.0f}", f"{r['score']:.3f}"]
         for r in rows)))  # fmt: skip


if __name__ == "__main__":
    main()
