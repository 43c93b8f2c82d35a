"""Time ``pixelmill run`` against the same work done by a direct pyvips call and by Pillow.

Every run is a fresh process; its wall time (interpreter start included), the work time it
prints itself (imports excluded) and its peak RSS are recorded. Contestants take turns within
each repetition, in a rotating order, so machine noise falls on all of them alike. Inputs are
synthetic photo-like JPEGs, generated once into the work folder and reused.

A child's ``ru_maxrss`` never reads below its parent's peak RSS on Linux, so this runner never
loads libvips or Pillow itself: inputs and versions come from a helper process.

    python benchmarks/bench_foundation.py              # full run: takes a while
    python benchmarks/bench_foundation.py --quick      # small inputs, one repetition
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import statistics
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import recording

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable
CLI = str(Path(sys.executable).with_name("pixelmill"))
BASELINE = "pyvips"
CONTESTANTS = ("pixelmill-api", "pixelmill-cli", BASELINE, "pillow")
MEASURES = ("wall_s", "work_s", "cpu_s", "peak_rss_mb", "output_mb")
OPTIMIZE_CODING_UP_TO = 16_000_000
"""pixelmill's JPEG default: Huffman tables optimised only for outputs up to this many pixels."""
TIMED = """\
import sys, time
{imports}
src, dst, pipeline = sys.argv[1:4]
start = time.perf_counter()
{work}
print(time.perf_counter() - start)
"""
"""A Python contestant: arguments SRC DST PIPELINE; prints the seconds the work took."""
IMPORTS = {
    "pixelmill-api": "import pixelmill\nrun = pixelmill.run  # imports pixelmill.api and pyvips",
    BASELINE: "import pyvips",
    "pillow": "from PIL import Image\nImage.MAX_IMAGE_PIXELS = None",
}


@dataclass(frozen=True)
class Case:
    name: str
    summary: str
    size: tuple[int, int]
    """Input width and height; ``--quick`` uses ``quick_size``."""
    quick_size: tuple[int, int]
    suffix: str
    pipeline: str
    pyvips: str
    """Direct pyvips code doing the same work, with the same encoder options."""
    pillow: str
    repeat: int


def scale_case(name: str, factor: float, summary: str) -> Case:
    optimize = f"out.width * out.height <= {OPTIMIZE_CODING_UP_TO}"
    return Case(
        name, summary, (20_000, 20_000), (2_000, 2_000), ".jpg", f"scale:{factor:g}",
        pyvips=(f'out = pyvips.Image.new_from_file(src, access="sequential")'
                f'.resize({factor}, kernel="lanczos3")\n'
                f"out.jpegsave(dst, Q=85, optimize_coding={optimize})"),
        pillow=("with Image.open(src) as im:\n"
                f"    out = im.resize((round(im.width * {factor}), round(im.height * {factor})),"
                " Image.LANCZOS)\n"
                f"out.save(dst, quality=85, optimize={optimize})"),
        repeat=3,
    )  # fmt: skip


CASES = {
    case.name: case
    for case in (
        Case(
            "thumb", "24 MP JPEG to a 512 px WebP (q80), shrink-on-load",
            (6_000, 4_000), (1_500, 1_000), ".webp", "thumbnail:512",
            pyvips=('pyvips.Image.thumbnail(src, 512, height=512, size="down")'
                    ".webpsave(dst, Q=80, effort=4)"),
            pillow=("im = Image.open(src)\n"
                    'im.draft("RGB", (512, 512))\n'
                    "im.thumbnail((512, 512), Image.LANCZOS)\n"
                    "im.save(dst, quality=80, method=4)"),
            repeat=7,
        ),
        scale_case("up2x", 2, "20,000² JPEG, 2x Lanczos3 upscale to a 40,000² JPEG (q85)"),
        scale_case("down2x", 0.5, "20,000² JPEG, 2x Lanczos3 downscale to a 10,000² JPEG (q85)"),
    )
}


@dataclass(frozen=True)
class Sample:
    case: str
    contestant: str
    rep: int
    wall_s: float
    work_s: float | None
    """Seconds the program measured around the work alone; None for the CLI."""
    cpu_s: float
    """User plus system CPU seconds of the whole process: unlike wall time, barely stretched by
    other work on the machine."""
    peak_rss_mb: float
    output_mb: float


def make_photo(path: Path, width: int, height: int, seed: int = 7) -> None:
    """A deterministic photo-like JPEG: Perlin colour fields plus grain, streamed to disk."""
    import pyvips

    cell = max(width, height) // 16
    bands = [pyvips.Image.perlin(width, height, cell_size=cell, uchar=True, seed=seed + b)
             for b in range(3)]  # fmt: skip
    grain = pyvips.Image.gaussnoise(width, height, sigma=6, mean=0, seed=seed)
    image = (bands[0].bandjoin(bands[1:]) + grain).cast("uchar").copy(interpretation="srgb")
    partial = path.with_suffix(".part.jpg")
    image.jpegsave(str(partial), Q=90)
    partial.replace(path)


def versions() -> dict[str, str]:
    import PIL
    import pyvips

    import pixelmill

    return {
        "libvips": ".".join(str(pyvips.version(i)) for i in range(3)),
        "pyvips": pyvips.__version__,
        "pillow": PIL.__version__,
        "pixelmill": pixelmill.__version__,
    }


def setup(cases: list[Case], quick: bool, work: Path) -> tuple[dict[str, Path], dict[str, str]]:
    """Each case's input, generated where missing, and the library versions, both from a helper
    process so that this one stays small."""
    sizes = {case.name: case.quick_size if quick else case.size for case in cases}
    inputs = {name: work / f"photo-{w}x{h}.jpg" for name, (w, h) in sizes.items()}
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as helper:
        for name, path in inputs.items():
            if not path.exists():
                print(f"generating {path.name} …", file=sys.stderr, flush=True)
                helper.submit(make_photo, path, *sizes[name]).result()
        return inputs, helper.submit(versions).result()


def command(contestant: str, case: Case, src: Path, dst: Path) -> list[str]:
    if contestant == "pixelmill-cli":
        return [CLI, "run", str(src), str(dst), "-p", case.pipeline, "-q"]
    work = {"pixelmill-api": "run(src, dst, pipeline)", BASELINE: case.pyvips,
            "pillow": case.pillow}[contestant]  # fmt: skip
    code = TIMED.format(imports=IMPORTS[contestant], work=work)
    return [PYTHON, "-c", code, str(src), str(dst), case.pipeline]


def measure(argv: list[str], dst: Path) -> tuple[float, float | None, float, float, float]:
    """Wall seconds, printed work seconds (Python contestants), CPU seconds, peak RSS MB and
    output MB of one process; the output is removed afterwards."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[:2]} failed with exit code {proc.returncode}:\n{output}")
    work = float(output.split()[-1]) if argv[0] == PYTHON else None
    size = dst.stat().st_size / 1e6
    dst.unlink()
    cpu = usage.ru_utime + usage.ru_stime
    return wall, work, cpu, usage.ru_maxrss / 1024, size  # ru_maxrss is in KiB on Linux


def run_case(case: Case, src: Path, repeat: int, work: Path) -> list[Sample]:
    samples = []
    for rep in range(repeat):
        shift = rep % len(CONTESTANTS)
        for contestant in CONTESTANTS[shift:] + CONTESTANTS[:shift]:
            dst = work / f"out-{case.name}-{contestant}{case.suffix}"
            sample = Sample(case.name, contestant, rep,
                            *measure(command(contestant, case, src, dst), dst))  # fmt: skip
            samples.append(sample)
            work_s = "-" if sample.work_s is None else f"{sample.work_s:.3f}"
            print(f"{case.name} {contestant} rep {rep}: wall {sample.wall_s:.3f} s, "
                  f"work {work_s} s, CPU {sample.cpu_s:.3f} s, peak {sample.peak_rss_mb:,.0f} MB",
                  file=sys.stderr, flush=True)  # fmt: skip
    return samples


def median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def ratio(value: float | None, base: float | None) -> float | None:
    return None if value is None or not base else value / base


def summarise(samples: list[Sample]) -> list[dict]:
    """Per case and contestant: the median of each measure and the median times over pyvips'."""
    rows = []
    for case in dict.fromkeys(s.case for s in samples):
        medians = {
            contestant: {
                field: median([getattr(s, field) for s in samples
                               if s.case == case and s.contestant == contestant])
                for field in MEASURES
            }
            for contestant in CONTESTANTS
        }  # fmt: skip
        base = medians[BASELINE]
        for contestant, m in medians.items():
            rows.append({
                "case": case, "contestant": contestant, **m,
                "wall_ratio": ratio(m["wall_s"], base["wall_s"]),
                "work_ratio": ratio(m["work_s"], base["work_s"]),
            })  # fmt: skip
    return rows


def markdown(rows: list[dict]) -> str:
    columns = [
        ("case", "case", "s"), ("contestant", "contestant", "s"),
        ("wall s", "wall_s", ".3f"), ("work s", "work_s", ".3f"), ("CPU s", "cpu_s", ".3f"),
        ("peak RSS MB", "peak_rss_mb", ",.0f"), ("output MB", "output_mb", ",.2f"),
        ("wall / pyvips", "wall_ratio", ".2f"), ("work / pyvips", "work_ratio", ".2f"),
    ]  # fmt: skip
    return recording.table(
        [title for title, _, _ in columns],
        ([None if row[key] is None else format(row[key], spec) for _, key, spec in columns]
         for row in rows), text=2)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    parser.add_argument("--repeat", type=int, help="repetitions of every case (default: per case)")
    parser.add_argument("--quick", action="store_true", help="small inputs, one repetition")
    parser.add_argument("--work", type=Path, default=HERE / "work", help="inputs and outputs")
    parser.add_argument("--json", type=Path, help="results file (default: "
                        "results/foundation.json, or foundation-quick.json in the work folder)")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    out = args.json or (args.work / "foundation-quick.json" if args.quick
                        else HERE / "results" / "foundation.json")  # fmt: skip

    cases = [CASES[name] for name in args.cases]
    inputs, libraries = setup(cases, args.quick, args.work)
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    samples: list[Sample] = []
    for case in cases:
        repeat = args.repeat or (1 if args.quick else case.repeat)
        samples += run_case(case, inputs[case.name], repeat, args.work)
    rows = summarise(samples)
    for case in cases:
        sizes = {r["contestant"]: r["output_mb"] for r in rows if r["case"] == case.name}
        if abs(sizes["pixelmill-api"] / sizes[BASELINE] - 1) > 0.01:
            print(f"warning: {case.name}: pixelmill's and pyvips' outputs differ in size by "
                  "over 1 %; are the encoder options still the same?", file=sys.stderr)
    floor = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if any(s.peak_rss_mb <= floor for s in samples):
        print(f"warning: some peaks are at this runner's own peak ({floor:.0f} MB), a floor that "
              "may hide lower ones", file=sys.stderr)  # fmt: skip

    recording.save(out, {
        "started": started,
        "runner_peak_rss_mb": floor,
        "cases": {name: {"summary": CASES[name].summary, "pipeline": CASES[name].pipeline}
                  for name in args.cases},
        "summary": rows,
        "samples": [asdict(s) for s in samples],
    }, **libraries)  # fmt: skip
    print(markdown(rows))


if __name__ == "__main__":
    main()
