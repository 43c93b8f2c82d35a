"""Time ``pixelmill run`` against the same work done by a direct pyvips call and by Pillow.

Every run is a fresh process; its wall time (interpreter start included), the work time it
prints itself (imports excluded) and its peak RSS are recorded. Contestants take turns within
each repetition, in a rotating order, so machine noise falls on all of them alike. Inputs are
synthetic photo-like JPEGs generated once into the work folder and reused.

    python benchmarks/bench_foundation.py              # full run, a while
    python benchmarks/bench_foundation.py --quick      # small inputs, one repetition
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pyvips

import pixelmill

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable
CLI = str(Path(sys.executable).with_name("pixelmill"))
BASELINE = "pyvips"
CONTESTANTS = ("pixelmill-api", "pixelmill-cli", BASELINE, "pillow")
TIMED = """\
import sys, time
{imports}
src, dst, pipeline = sys.argv[1:4]
start = time.perf_counter()
{work}
print(time.perf_counter() - start)
"""
"""A contestant's program: arguments SRC DST PIPELINE; prints the seconds the work took."""
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
    """The direct pyvips code doing the same work (``src``, ``dst`` are bound)."""
    pillow: str
    repeat: int


def scale_case(name: str, factor: float, summary: str) -> Case:
    return Case(
        name, summary, (20_000, 20_000), (2_000, 2_000), ".jpg", f"scale:{factor:g}",
        pyvips=(f'pyvips.Image.new_from_file(src, access="sequential")'
                f'.resize({factor}, kernel="lanczos3").jpegsave(dst, Q=85, optimize_coding=True)'),
        pillow=("with Image.open(src) as im:\n"
                f"    out = im.resize((round(im.width * {factor}), round(im.height * {factor})),"
                " Image.LANCZOS)\n"
                "out.save(dst, quality=85, optimize=True)"),
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
        ),  # fmt: skip
        scale_case("up2x", 2, "20,000² JPEG, 2x Lanczos3 upscale to 40,000² JPEG (q85)"),
        scale_case("down2x", 0.5, "20,000² JPEG, 2x Lanczos3 downscale to 10,000² JPEG (q85)"),
    )
}


@dataclass(frozen=True)
class Sample:
    case: str
    contestant: str
    rep: int
    wall_s: float
    work_s: float | None
    """Seconds the program measured around the work itself; None for the CLI."""
    peak_rss_mb: float
    output_mb: float


def make_photo(path: Path, width: int, height: int, seed: int = 7) -> None:
    """A deterministic photo-like JPEG: Perlin colour fields plus grain, streamed to disk."""
    cell = max(width, height) // 16
    bands = [pyvips.Image.perlin(width, height, cell_size=cell, uchar=True, seed=seed + b)
             for b in range(3)]  # fmt: skip
    grain = pyvips.Image.gaussnoise(width, height, sigma=6, mean=0, seed=seed)
    image = (bands[0].bandjoin(bands[1:]) + grain).cast("uchar").copy(interpretation="srgb")
    partial = path.with_suffix(".part.jpg")
    image.jpegsave(str(partial), Q=90)
    partial.replace(path)


def input_for(case: Case, quick: bool, work: Path) -> Path:
    width, height = case.quick_size if quick else case.size
    path = work / f"photo-{width}x{height}.jpg"
    if not path.exists():
        print(f"generating {path.name} …", file=sys.stderr, flush=True)
        make_photo(path, width, height)
    return path


def command(contestant: str, case: Case, src: Path, dst: Path) -> list[str]:
    if contestant == "pixelmill-cli":
        return [CLI, "run", str(src), str(dst), "-p", case.pipeline, "-q"]
    work = {"pixelmill-api": "run(src, dst, pipeline)", BASELINE: case.pyvips,
            "pillow": case.pillow}[contestant]  # fmt: skip
    code = TIMED.format(imports=IMPORTS[contestant], work=work)
    return [PYTHON, "-c", code, str(src), str(dst), case.pipeline]


def measure(argv: list[str], dst: Path) -> tuple[float, float | None, float, float]:
    """Wall seconds, printed work seconds (if any), peak RSS MB and output MB of one process."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({proc.returncode}):\n{output}")
    work = float(output.split()[-1]) if argv[0] == PYTHON else None
    size = dst.stat().st_size / 1e6
    dst.unlink()
    return wall, work, usage.ru_maxrss / 1024, size  # ru_maxrss is in KiB on Linux


def run_case(case: Case, src: Path, repeat: int, work: Path) -> list[Sample]:
    samples = []
    for rep in range(repeat):
        shift = rep % len(CONTESTANTS)
        for contestant in CONTESTANTS[shift:] + CONTESTANTS[:shift]:
            dst = work / f"out-{case.name}-{contestant}{case.suffix}"
            argv = command(contestant, case, src, dst)
            sample = Sample(case.name, contestant, rep, *measure(argv, dst))
            samples.append(sample)
            work_text = "-" if sample.work_s is None else f"{sample.work_s:.3f}"
            print(f"{case.name:7} {contestant:14} rep {rep}: wall {sample.wall_s:.3f} s, work "
                  f"{work_text} s, peak {sample.peak_rss_mb:,.0f} MB", file=sys.stderr, flush=True)  # fmt: skip
    return samples


def median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def summarise(samples: list[Sample]) -> list[dict]:
    rows = []
    for case in dict.fromkeys(s.case for s in samples):
        mine = [s for s in samples if s.case == case]
        medians = {
            contestant: {
                field: median([getattr(s, field) for s in mine if s.contestant == contestant])
                for field in ("wall_s", "work_s", "peak_rss_mb", "output_mb")
            }
            for contestant in CONTESTANTS
        }
        base = medians[BASELINE]
        for contestant, m in medians.items():
            ratios = {
                f"{kind}_ratio": None if m[f"{kind}_s"] is None else m[f"{kind}_s"] / base[f"{kind}_s"]
                for kind in ("wall", "work")
            }
            rows.append({"case": case, "contestant": contestant, **m, **ratios})
    return rows


def markdown(rows: list[dict]) -> str:
    def cell(value: float | None, spec: str) -> str:
        return "–" if value is None else format(value, spec)

    lines = [
        "| case | contestant | wall s | work s | peak RSS MB | output MB | wall / pyvips | work / pyvips |",
        "|---|---|--:|--:|--:|--:|--:|--:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['case']} | {r['contestant']} | {cell(r['wall_s'], '.3f')} | "
            f"{cell(r['work_s'], '.3f')} | {cell(r['peak_rss_mb'], ',.0f')} | "
            f"{cell(r['output_mb'], ',.2f')} | {cell(r['wall_ratio'], '.2f')} | "
            f"{cell(r['work_ratio'], '.2f')} |"
        )
    return "\n".join(lines)


def machine() -> dict:
    from PIL import __version__ as pillow_version

    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text()
                  .splitlines() if line.startswith("model name")), platform.processor())  # fmt: skip
    return {
        "cpu_count": os.cpu_count(),
        "cpu": model,
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "libvips": ".".join(str(pyvips.version(i)) for i in range(3)),
        "pyvips": pyvips.__version__,
        "pillow": pillow_version,
        "pixelmill": pixelmill.__version__,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    parser.add_argument("--repeat", type=int, help="repetitions per case (default: per case)")
    parser.add_argument("--quick", action="store_true", help="small inputs, one repetition")
    parser.add_argument("--work", type=Path, default=HERE / "work", help="inputs and outputs")
    parser.add_argument("--json", type=Path, help="results file (default: results/foundation.json,"
                        " or the work folder with --quick)")  # fmt: skip
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    default_json = args.work / "foundation-quick.json" if args.quick else HERE / "results/foundation.json"
    out = args.json or default_json

    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    samples: list[Sample] = []
    for case in (CASES[name] for name in args.cases):
        repeat = args.repeat or (1 if args.quick else case.repeat)
        samples += run_case(case, input_for(case, args.quick, args.work), repeat, args.work)
    rows = summarise(samples)

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "started": started,
        "command": " ".join(["python", "benchmarks/bench_foundation.py", *sys.argv[1:]]),
        "machine": machine(),
        "cases": {name: {"summary": CASES[name].summary, "pipeline": CASES[name].pipeline}
                  for name in args.cases},
        "summary": rows,
        "samples": [asdict(s) for s in samples],
    }, indent=2) + "\n")  # fmt: skip
    print(markdown(rows))
    print(f"\nwrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
